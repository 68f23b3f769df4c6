package httpserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"golang.org/x/time/rate"

	"github.com/claimcheck/claimcheck/extauthz"
	"github.com/claimcheck/claimcheck/extauthz/reason"
	"github.com/claimcheck/claimcheck/policy"
)

// Response headers claimcheck sets itself.
const (
	// HeaderReason carries the decision's reason code, for the proxy's logs.
	HeaderReason = "X-Claimcheck-Reason"
	// HeaderDecisionID carries the decision's ID, as in claimcheck's logs
	// and Envoy's dynamic metadata (decision_id).
	HeaderDecisionID = "X-Claimcheck-Decision-Id"
	// HeaderDryRun is "true" when the request was allowed only by dry-run.
	HeaderDryRun = "X-Claimcheck-Dry-Run"
	// HeaderRemove lists the headers to remove from the upstream request;
	// Envoy's http_service honours it.
	HeaderRemove = "X-Envoy-Auth-Headers-To-Remove"
)

// Checker makes decisions; *extauthz.Authorizer is one. The handler's own
// refusals (a request it cannot map, a panic, a decision it cannot send)
// go through Refuse and Panicked, so they are answered, logged and counted
// as the Checker's denies are.
type Checker interface {
	Check(ctx context.Context, req *authv3.CheckRequest) extauthz.Decision
	Refuse(ctx context.Context, req *authv3.CheckRequest, code, desc string) extauthz.Decision
	Panicked(ctx context.Context, req *authv3.CheckRequest, p any) extauthz.Decision
}

// Config configures the forward-auth handler.
type Config struct {
	// TrustedProxies are the peers whose forwarded headers (X-Original-*,
	// X-Forwarded-*) are believed.
	TrustedProxies []netip.Prefix
	// PathPrefix is Envoy http_service's path_prefix, stripped from the path.
	PathPrefix string
	// MaxHeaderBytes bounds the request target and headers (431 beyond);
	// default 60 KiB, Envoy's max_request_headers_kb.
	MaxHeaderBytes int
	// MaxBodyBytes, when above zero, reads the request body (Envoy
	// http_service with with_request_body) into the CheckRequest, up to one
	// byte more than this, for the decision path to refuse.
	MaxBodyBytes int
}

// forwardAuth is the forward-auth handler.
type forwardAuth struct {
	checker   Checker
	mapper    mapper
	log       *slog.Logger
	untrusted *rate.Sometimes // rate-limits the untrusted-peer warning
}

// NewForwardAuth returns the forward-auth handler (it answers every path and
// method). A nil logger discards logs.
func NewForwardAuth(c Checker, cfg Config, log *slog.Logger) http.Handler {
	if c == nil {
		panic("httpserver: NewForwardAuth needs a Checker")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &forwardAuth{
		checker: c,
		mapper: mapper{trusted: append([]netip.Prefix(nil), cfg.TrustedProxies...), pathPrefix: cfg.PathPrefix,
			maxHeader: cfg.MaxHeaderBytes, maxBody: cfg.MaxBodyBytes},
		log:       log,
		untrusted: &rate.Sometimes{First: 1, Interval: time.Minute},
	}
}

func (h *forwardAuth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.answer(r).write(w)
}

// answer decides r. It never panics: a panic is a 503 deny.
func (h *forwardAuth) answer(r *http.Request) (a answer) {
	asked := askedAbout(r)
	defer func() {
		if p := recover(); p != nil {
			a = h.render(h.checker.Panicked(r.Context(), asked, p))
		}
	}()
	req, err := h.mapper.checkRequest(r)
	if err != nil {
		var re *requestError
		if !errors.As(err, &re) {
			re = &requestError{msg: err.Error()}
		}
		code := re.reason
		switch {
		case code == reason.ForwardedUntrusted:
			// A deployment mistake (a proxy missing from trusted_proxies)
			// or a client's forgery: worth a warning, but not one per request.
			h.untrusted.Do(func() {
				h.log.Warn("forward-auth request refused: forwarding headers from an untrusted peer (logged at most once a minute)",
					"err", re.msg, "remote", r.RemoteAddr)
			})
		case code == "":
			code = reason.BadRequest
		}
		h.log.Debug("forward-auth request refused", "reason", code, "err", re.msg, "remote", r.RemoteAddr)
		return h.render(h.checker.Refuse(r.Context(), asked, code, re.msg))
	}
	d := h.checker.Check(r.Context(), req)
	a, err = decisionAnswer(d)
	if err != nil {
		h.log.Error("decision cannot be sent over HTTP; denying", "reason", d.Reason, "id", d.ID, "err", err)
		return h.render(h.checker.Refuse(r.Context(), req, reason.Internal, "internal error"))
	}
	return a
}

// render writes d, a deny of the Checker's own making, as HTTP; should even
// that fail, the answer is a bare 503.
func (h *forwardAuth) render(d extauthz.Decision) answer {
	a, err := decisionAnswer(d)
	if err != nil || a.status == http.StatusOK {
		h.log.Error("a refusal cannot be sent over HTTP; answering a bare 503", "reason", d.Reason, "err", err)
		return answer{status: http.StatusServiceUnavailable, header: http.Header{HeaderReason: {reason.Internal}}}
	}
	return a
}

// askedAbout is what the logs say r asked about when it cannot be mapped:
// its own method, host, path (never the query, which may hold a token)
// and request ID.
func askedAbout(r *http.Request) *authv3.CheckRequest {
	path, _, _ := strings.Cut(r.RequestURI, "?")
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: r.Method, Host: r.Host, Path: path, Id: r.Header.Get(hRequestID)},
	}}}
}

// answer is an HTTP response, built whole before anything is written.
type answer struct {
	status int
	header http.Header
	body   string
}

func (a answer) write(w http.ResponseWriter) {
	for k, vs := range a.header {
		w.Header()[k] = vs
	}
	w.WriteHeader(a.status)
	if a.body != "" {
		_, _ = io.WriteString(w, a.body)
	}
}

// decisionAnswer writes d as HTTP. Its error says why d cannot be sent.
func decisionAnswer(d extauthz.Decision) (answer, error) {
	a := answer{header: http.Header{}}
	if d.Allowed {
		// d.Status is the real deny status under dry-run; the answer is an allow.
		a.status = http.StatusOK
		if err := addHeaders(a.header, d.UpstreamHeaders); err != nil {
			return answer{}, fmt.Errorf("upstream headers: %w", err)
		}
		if err := addHeaders(a.header, d.ResponseHeaders); err != nil {
			return answer{}, fmt.Errorf("response headers: %w", err)
		}
		var remove []string
		for _, k := range d.RemoveHeaders {
			if !policy.IsToken(k) {
				return answer{}, fmt.Errorf("headers to remove: %q is not a header name", k)
			}
			if !framing[strings.ToLower(k)] {
				remove = append(remove, strings.ToLower(k))
			}
		}
		if len(remove) > 0 {
			a.header.Set(HeaderRemove, strings.Join(remove, ", "))
		}
	} else {
		// The Authorizer keeps deny statuses in range (its sanitize step).
		if a.status = d.Status; a.status < 300 || a.status > 599 {
			return answer{}, fmt.Errorf("deny status %d", d.Status)
		}
		if err := addHeaders(a.header, d.DenyHeaders); err != nil {
			return answer{}, fmt.Errorf("deny headers: %w", err)
		}
		a.body = d.Body
		if a.body != "" && a.header.Get("Content-Type") == "" {
			a.header.Set("Content-Type", "text/plain; charset=utf-8")
		}
	}
	a.header.Set(HeaderReason, d.Reason)
	if d.ID != "" {
		a.header.Set(HeaderDecisionID, d.ID)
	}
	if d.DryRun {
		a.header.Set(HeaderDryRun, "true")
	}
	return a, nil
}

// framing are headers about the HTTP message itself, which a decision cannot
// set or remove; they are left out.
var framing = map[string]bool{
	"connection": true, "content-length": true, "keep-alive": true, "proxy-connection": true,
	"te": true, "trailer": true, "transfer-encoding": true, "upgrade": true,
}

// addHeaders adds hs to h, repeated keys as several values. The policy's
// headers were checked as it answered (a 503 policy_error); this is a second
// line of defence, for headers from anywhere else.
func addHeaders(h http.Header, hs []policy.Header) error {
	for _, x := range hs {
		if !policy.IsToken(x.Key) {
			return fmt.Errorf("%q is not a header name", x.Key)
		}
		if !policy.ValidHeaderValue(x.Value) {
			return fmt.Errorf("header %s: the value has control characters", x.Key)
		}
		if framing[strings.ToLower(x.Key)] {
			continue
		}
		h.Add(x.Key, x.Value)
	}
	return nil
}
