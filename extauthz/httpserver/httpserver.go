package httpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"golang.org/x/time/rate"

	"github.com/claimcheck/claimcheck/extauthz"
	"github.com/claimcheck/claimcheck/policy"
)

// Response headers claimcheck sets itself.
const (
	// HeaderReason carries the decision's reason code, for the proxy's logs.
	HeaderReason = "X-Claimcheck-Reason"
	// HeaderDryRun is "true" when the request was allowed only by dry-run.
	HeaderDryRun = "X-Claimcheck-Dry-Run"
	// HeaderRemove lists the headers to remove from the upstream request;
	// Envoy's http_service honours it.
	HeaderRemove = "X-Envoy-Auth-Headers-To-Remove"
)

// Checker makes decisions; *extauthz.Authorizer is one.
type Checker interface {
	Check(ctx context.Context, req *authv3.CheckRequest) extauthz.Decision
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
	defer func() {
		if p := recover(); p != nil {
			h.log.Error("forward-auth panicked; denying", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			a = errorAnswer(http.StatusServiceUnavailable, extauthz.ReasonInternal, "temporarily_unavailable", "internal error")
		}
	}()
	req, err := h.mapper.checkRequest(r)
	if err != nil {
		var re *requestError
		if !errors.As(err, &re) {
			re = &requestError{status: http.StatusBadRequest, msg: err.Error()}
		}
		reason := re.reason
		switch {
		case reason == extauthz.ReasonForwardedUntrusted:
			// A deployment mistake (a proxy missing from trusted_proxies)
			// or a client's forgery: worth a warning, but not one per request.
			h.untrusted.Do(func() {
				h.log.Warn("forward-auth request refused: forwarding headers from an untrusted peer (logged at most once a minute)",
					"err", re.msg, "remote", r.RemoteAddr)
			})
		case re.status == http.StatusRequestHeaderFieldsTooLarge:
			reason = extauthz.ReasonHeadersTooLarge // the same code as over gRPC
		case reason == "":
			reason = extauthz.ReasonBadRequest
		}
		h.log.Debug("forward-auth request refused", "status", re.status, "reason", reason, "err", re.msg, "remote", r.RemoteAddr)
		return errorAnswer(re.status, reason, "invalid_request", re.msg)
	}
	d := h.checker.Check(r.Context(), req)
	a, err = decisionAnswer(d)
	if err != nil {
		h.log.Error("decision cannot be sent over HTTP; denying", "reason", d.Reason, "id", d.ID, "err", err)
		return errorAnswer(http.StatusServiceUnavailable, extauthz.ReasonInternal, "temporarily_unavailable", "internal error")
	}
	if !d.Allowed && d.Status != a.status {
		h.log.Warn("a deny cannot be sent with this status; sending 403", "status", d.Status, "reason", d.Reason, "id", d.ID)
	}
	return a
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

// errorAnswer is a JSON error answer, as the decision path's denies are.
func errorAnswer(status int, reason, oauthErr, desc string) answer {
	b, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{oauthErr, desc})
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(HeaderReason, reason)
	return answer{status: status, header: h, body: string(b)}
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
		a.status = d.Status
		if a.status < 300 || a.status > 599 {
			a.status = http.StatusForbidden
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
