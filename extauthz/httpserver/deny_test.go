package httpserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/claimcheck/claimcheck/extauthz"
	"github.com/claimcheck/claimcheck/extauthz/grpcserver"
	"github.com/claimcheck/claimcheck/extauthz/httpserver"
	"github.com/claimcheck/claimcheck/extauthz/reason"
	"github.com/claimcheck/claimcheck/policy"
)

// counting is an Observer and DecisionLogger that keeps what it is told.
type counting struct {
	mu       sync.Mutex
	observed []string // reasons
	logged   []string // decision IDs
}

func (c *counting) ObserveDecision(d *extauthz.Decision) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.observed = append(c.observed, d.Reason)
}

func (c *counting) LogDecision(_ context.Context, d *extauthz.Decision) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.logged = append(c.logged, d.ID)
}

func (c *counting) NeedsInput() bool { return false }

func (c *counting) take() (observed, logged []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	observed, logged = c.observed, c.logged
	c.observed, c.logged = nil, nil
	return observed, logged
}

// refusing is a Checker whose Check answers with the Authorizer's deny of
// code, as the core builds it for a request it refuses.
type refusing struct {
	*extauthz.Authorizer
	code string
}

func (r refusing) Check(ctx context.Context, req *authv3.CheckRequest) extauthz.Decision {
	return r.Refuse(ctx, req, r.code, "because "+r.code)
}

// wire is one answer as an adapter sent it.
type wire struct {
	status             int
	reason, id         string
	challenge          string
	oauthError, detail string
}

func grpcWire(t *testing.T, resp *authv3.CheckResponse) wire {
	t.Helper()
	meta, _ := resp.GetDynamicMetadata().AsMap()["claimcheck"].(map[string]any)
	w := wire{reason: fmt.Sprint(meta["reason"]), id: fmt.Sprint(meta["decision_id"])}
	dr := resp.GetDeniedResponse()
	if dr == nil {
		t.Fatalf("not a deny: %v", resp)
	}
	w.status = int(dr.GetStatus().GetCode())
	for _, h := range dr.GetHeaders() {
		if strings.EqualFold(h.GetHeader().GetKey(), "www-authenticate") {
			w.challenge = h.GetHeader().GetValue()
		}
	}
	w.oauthError, w.detail = jsonError(t, dr.GetBody())
	return w
}

func httpWire(t *testing.T, rec *httptest.ResponseRecorder) wire {
	t.Helper()
	w := wire{status: rec.Code, reason: rec.Header().Get(httpserver.HeaderReason), id: rec.Header().Get(httpserver.HeaderDecisionID),
		challenge: rec.Header().Get("WWW-Authenticate")}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("content-type %q", ct)
	}
	w.oauthError, w.detail = jsonError(t, rec.Body.String())
	return w
}

func jsonError(t *testing.T, body string) (oauthErr, desc string) {
	t.Helper()
	var b struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal([]byte(body), &b); err != nil {
		t.Fatalf("body %q is not the JSON error: %v", body, err)
	}
	return b.Error, b.Description
}

// TestEveryReasonIsAnsweredAlikeOverBothAdapters: for every code in the
// table, the deny the Authorizer builds has the table's status, the code in
// the reason header and the metadata, a decision ID, the JSON body with the
// table's OAuth error, and a challenge exactly on 401s — over gRPC and HTTP
// alike — and each is logged and counted once.
func TestEveryReasonIsAnsweredAlikeOverBothAdapters(t *testing.T) {
	obs := &counting{}
	a, err := extauthz.New(extauthz.Config{Observer: obs, DecisionLog: obs}, oneToken{}, extauthz.StaticPolicy(&inputRecorder{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, code := range reason.All() {
		if code == reason.Allowed {
			continue
		}
		t.Run(code, func(t *testing.T) {
			info := reason.Of(code)
			req := envoyCheckRequest(original{method: "GET", uri: "/orders/1", host: "api", scheme: "https", clientIP: "203.0.113.7"}, nil)
			resp, err := grpcserver.New(refusing{a, code}, nil).Check(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			g := grpcWire(t, resp)

			rec := httptest.NewRecorder()
			httpserver.NewForwardAuth(refusing{a, code}, httpserver.Config{}, nil).
				ServeHTTP(rec, fwdRequest{target: "/orders/1", host: "api", remote: "127.0.0.1:1"}.build())
			h := httpWire(t, rec)

			for name, w := range map[string]wire{"gRPC": g, "HTTP": h} {
				if w.status != info.Status || w.reason != code || w.oauthError != info.OAuthError || w.detail != "because "+code {
					t.Errorf("%s: %+v, want status %d, reason %s, error %s", name, w, info.Status, code, info.OAuthError)
				}
				if w.id == "" || w.id == "<nil>" {
					t.Errorf("%s: no decision ID", name)
				}
				if (w.challenge != "") != (info.Status == http.StatusUnauthorized) || (w.challenge != "" && !strings.HasPrefix(w.challenge, `Bearer realm="claimcheck"`)) {
					t.Errorf("%s: WWW-Authenticate %q for status %d", name, w.challenge, info.Status)
				}
			}
			g.id, h.id = "", ""
			if g != h {
				t.Errorf("gRPC %+v\nHTTP %+v", g, h)
			}
			observed, logged := obs.take()
			if len(observed) != 2 || observed[0] != code || observed[1] != code || len(logged) != 2 {
				t.Errorf("observed %v, logged %v: want each answer once", observed, logged)
			}
		})
	}
}

// TestAdapterRefusalsAreRecorded: what the forward-auth adapter refuses
// itself (a request it cannot map, forwarding headers from a stranger,
// oversized headers) and a panic get a decision ID, a log line and a metric
// like the core's denies.
func TestAdapterRefusalsAreRecorded(t *testing.T) {
	obs := &counting{}
	var logs bytes.Buffer
	a, err := extauthz.New(extauthz.Config{Observer: obs, DecisionLog: obs}, oneToken{}, extauthz.StaticPolicy(&inputRecorder{}),
		slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		req    fwdRequest
		code   string
		status int
	}{
		{"both header pairs", fwdRequest{remote: "127.0.0.1:1", headers: []hdr{
			{"X-Forwarded-Uri", "/a"}, {"X-Forwarded-Method", "GET"}, {"X-Original-URI", "/b"}, {"X-Original-Method", "GET"}}}, reason.BadRequest, 400},
		{"forwarding headers from a stranger", fwdRequest{remote: "203.0.113.7:1", headers: []hdr{{"X-Forwarded-Uri", "/admin"}, {"X-Forwarded-Method", "GET"}}},
			reason.ForwardedUntrusted, 400},
		{"headers over 60 KiB", fwdRequest{remote: "127.0.0.1:1", headers: []hdr{{"Cookie", strings.Repeat("a", 61<<10)}}}, reason.HeadersTooLarge, 431},
		{"a path the decision path refuses", fwdRequest{remote: "127.0.0.1:1", headers: []hdr{{"X-Forwarded-Uri", "/a/../b"}, {"X-Forwarded-Method", "GET"}}},
			reason.PathInvalid, 400},
	}
	h := httpserver.NewForwardAuth(a, httpserver.Config{TrustedProxies: trusted}, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.req
			req.target, req.host = "/auth", "claimcheck"
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req.build())
			w := httpWire(t, rec)
			if w.status != tt.status || w.reason != tt.code || w.id == "" {
				t.Errorf("answer %+v, want %d %s with a decision ID", w, tt.status, tt.code)
			}
			observed, logged := obs.take()
			if len(observed) != 1 || observed[0] != tt.code || len(logged) != 1 || logged[0] != w.id {
				t.Errorf("observed %v, logged %v, want %s and decision %s once", observed, logged, tt.code, w.id)
			}
			if !strings.Contains(logs.String(), "id="+w.id) {
				t.Errorf("no log line for decision %s:\n%s", w.id, logs.String())
			}
		})
	}
}

// statusPolicy denies with a status of its choosing.
type statusPolicy struct{ status int }

func (p statusPolicy) Eval(ctx context.Context, v ast.Value) (policy.Result, error) {
	return p.EvalRule(ctx, "", v)
}

func (p statusPolicy) EvalRule(context.Context, string, ast.Value) (policy.Result, error) {
	return policy.Result{Allowed: false, HTTPStatus: p.status, Body: "no"}, nil
}

func (statusPolicy) Revision() string         { return "test" }
func (statusPolicy) UsesInput(...string) bool { return false }

// TestPolicyDenyStatusIsClampedOnceForBothAdapters: a policy's http_status
// that would read as success, or is no HTTP status, is sent as 403 over
// gRPC and HTTP alike; a redirect or a 4xx/5xx is sent as it is.
func TestPolicyDenyStatusIsClampedOnceForBothAdapters(t *testing.T) {
	for _, tt := range []struct{ policy, sent int }{
		{0, 403}, {101, 403}, {200, 403}, {204, 403}, {299, 403}, {302, 302}, {404, 404}, {429, 429}, {599, 599}, {600, 403}, {-1, 403}, {1 << 20, 403},
	} {
		t.Run(fmt.Sprint(tt.policy), func(t *testing.T) {
			a, err := extauthz.New(extauthz.Config{TokenRequired: true}, oneToken{}, extauthz.StaticPolicy(statusPolicy{tt.policy}), nil)
			if err != nil {
				t.Fatal(err)
			}
			req := envoyCheckRequest(original{method: "GET", uri: "/", host: "api", scheme: "https",
				headers: []hdr{{"Authorization", "Bearer good"}}, clientIP: "203.0.113.7"}, nil)
			resp, err := grpcserver.New(a, nil).Check(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if got := int(resp.GetDeniedResponse().GetStatus().GetCode()); got != tt.sent || resp.GetOkResponse() != nil {
				t.Errorf("gRPC: status %d (ok %v), want %d", got, resp.GetOkResponse() != nil, tt.sent)
			}
			rec := httptest.NewRecorder()
			httpserver.NewForwardAuth(a, httpserver.Config{}, nil).ServeHTTP(rec,
				fwdRequest{target: "/", host: "api", remote: "127.0.0.1:1", headers: []hdr{{"Authorization", "Bearer good"}}}.build())
			if rec.Code != tt.sent || rec.Header().Get(httpserver.HeaderReason) != reason.PolicyDenied || rec.Body.String() != "no" {
				t.Errorf("HTTP: %d %q %q, want %d policy_denied \"no\"", rec.Code, rec.Header().Get(httpserver.HeaderReason), rec.Body, tt.sent)
			}
		})
	}
}

// TestDryRunNeverLetsAdapterRefusalsThrough: with dry-run on, what the
// forward-auth adapter refuses itself (forwarding headers from a stranger,
// a request it cannot map) and a path the decision path refuses are still
// denied: dry-run lets only token and policy denials through.
func TestDryRunNeverLetsAdapterRefusalsThrough(t *testing.T) {
	a, err := extauthz.New(extauthz.Config{DryRun: true}, oneToken{}, extauthz.StaticPolicy(&inputRecorder{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := httpserver.NewForwardAuth(a, httpserver.Config{TrustedProxies: trusted}, nil)
	for _, tt := range []struct {
		name string
		req  fwdRequest
		code string
	}{
		{"forwarding headers from a stranger", fwdRequest{remote: "203.0.113.7:1", headers: []hdr{{"X-Forwarded-Uri", "/admin"}, {"X-Forwarded-Method", "GET"}}}, reason.ForwardedUntrusted},
		{"both header pairs", fwdRequest{remote: "127.0.0.1:1", headers: []hdr{
			{"X-Forwarded-Uri", "/a"}, {"X-Forwarded-Method", "GET"}, {"X-Original-URI", "/b"}, {"X-Original-Method", "GET"}}}, reason.BadRequest},
		{"a dot segment", fwdRequest{remote: "127.0.0.1:1", headers: []hdr{{"X-Forwarded-Uri", "/a/../admin"}, {"X-Forwarded-Method", "GET"}}}, reason.PathInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.req
			req.target, req.host = "/auth", "claimcheck"
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req.build())
			if rec.Code != http.StatusBadRequest || rec.Header().Get(httpserver.HeaderReason) != tt.code {
				t.Errorf("%d %s, want 400 %s", rec.Code, rec.Header().Get(httpserver.HeaderReason), tt.code)
			}
		})
	}
}
