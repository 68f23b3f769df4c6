package httpserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/claimcheck/claimcheck/extauthz"
	"github.com/claimcheck/claimcheck/extauthz/httpserver"
	"github.com/claimcheck/claimcheck/extauthz/reason"
	"github.com/claimcheck/claimcheck/policy"
)

// TestForwardAuthAnswers checks how decisions become HTTP answers.
func TestForwardAuthAnswers(t *testing.T) {
	jsonBody := `{"error":"invalid_token","error_description":"token expired"}`
	tests := []struct {
		name     string
		decision extauthz.Decision
		status   int
		headers  map[string][]string // must have exactly these values
		absent   []string
		body     string
	}{
		{
			name: "allow: upstream and response headers, headers to remove, no body",
			decision: extauthz.Decision{
				Allowed: true, Status: 200, Reason: "allowed",
				UpstreamHeaders: []policy.Header{{Key: "x-client-id", Value: "svc"}, {Key: "x-role", Value: "a"}, {Key: "x-role", Value: "b"}},
				ResponseHeaders: []policy.Header{{Key: "x-authz", Value: "claimcheck"}},
				RemoveHeaders:   []string{"Authorization", "x-subject"},
			},
			status: 200,
			headers: map[string][]string{
				"X-Client-Id": {"svc"}, "X-Role": {"a", "b"}, "X-Authz": {"claimcheck"},
				"X-Envoy-Auth-Headers-To-Remove": {"authorization, x-subject"}, "X-Claimcheck-Reason": {"allowed"},
			},
			absent: []string{"X-Claimcheck-Dry-Run", "Content-Type"},
		},
		{
			name:     "allow without headers to remove: no removal header",
			decision: extauthz.Decision{Allowed: true, Status: 200, Reason: "allowed"},
			status:   200,
			headers:  map[string][]string{"X-Claimcheck-Reason": {"allowed"}},
			absent:   []string{"X-Envoy-Auth-Headers-To-Remove"},
		},
		{
			name: "dry-run allow: 200 with the real reason, whatever the real status",
			decision: extauthz.Decision{Allowed: true, DryRun: true, Status: 403, Reason: "policy_denied",
				UpstreamHeaders: []policy.Header{{Key: "x-client-id", Value: "svc"}}},
			status:  200,
			headers: map[string][]string{"X-Claimcheck-Reason": {"policy_denied"}, "X-Claimcheck-Dry-Run": {"true"}, "X-Client-Id": {"svc"}},
		},
		{
			name: "deny 401: status, challenge, content type and body",
			decision: extauthz.Decision{Status: 401, Reason: "token_expired",
				DenyHeaders: []policy.Header{{Key: "content-type", Value: "application/json"},
					{Key: "www-authenticate", Value: `Bearer realm="claimcheck", error="invalid_token"`}},
				Body: jsonBody,
				// Only an allow carries these.
				UpstreamHeaders: []policy.Header{{Key: "x-client-id", Value: "svc"}},
				RemoveHeaders:   []string{"authorization"},
			},
			status: 401,
			headers: map[string][]string{"Content-Type": {"application/json"}, "X-Claimcheck-Reason": {"token_expired"},
				"Www-Authenticate": {`Bearer realm="claimcheck", error="invalid_token"`}},
			absent: []string{"X-Client-Id", "X-Envoy-Auth-Headers-To-Remove"},
			body:   jsonBody,
		},
		{
			name: "deny with the policy's status, headers and plain body",
			decision: extauthz.Decision{Status: 302, Reason: "policy_denied",
				DenyHeaders: []policy.Header{{Key: "location", Value: "https://login.example.com/"}}, Body: "log in first"},
			status:  302,
			headers: map[string][]string{"Location": {"https://login.example.com/"}, "Content-Type": {"text/plain; charset=utf-8"}},
			body:    "log in first",
		},
		{
			name:     "deny 503 when the decision path cannot decide",
			decision: extauthz.Decision{Status: 503, Reason: "policy_error", Body: `{"error":"temporarily_unavailable"}`},
			status:   503,
			headers:  map[string][]string{"X-Claimcheck-Reason": {"policy_error"}},
			body:     `{"error":"temporarily_unavailable"}`,
		},
		// The Authorizer sends such statuses as 403 (deny_test.go); one that
		// still reaches the adapter cannot be sent, and is refused.
		{
			name:     "deny with a 2xx status is a 503, never an allow",
			decision: extauthz.Decision{Status: 200, Reason: "policy_denied", Body: "no"},
			status:   503,
			headers:  map[string][]string{"X-Claimcheck-Reason": {"internal_error"}},
		},
		{
			name:     "deny with a 1xx status is a 503",
			decision: extauthz.Decision{Status: 101, Reason: "policy_denied"},
			status:   503,
		},
		{
			name:     "deny without a status is a 503",
			decision: extauthz.Decision{Reason: "policy_denied"},
			status:   503,
		},
		{
			name: "framing headers in a decision are left out",
			decision: extauthz.Decision{Allowed: true, Reason: "allowed",
				UpstreamHeaders: []policy.Header{{Key: "content-length", Value: "999"}, {Key: "transfer-encoding", Value: "chunked"}, {Key: "x-ok", Value: "1"}},
				RemoveHeaders:   []string{"connection", "x-gone"}},
			status:  200,
			headers: map[string][]string{"X-Ok": {"1"}, "X-Envoy-Auth-Headers-To-Remove": {"x-gone"}},
			absent:  []string{"Transfer-Encoding"},
		},
		{
			name: "allow with a header value that cannot be sent is a 503 deny",
			decision: extauthz.Decision{Allowed: true, Reason: "allowed",
				UpstreamHeaders: []policy.Header{{Key: "x-client-id", Value: "svc\r\nx-admin: true"}}},
			status:  503,
			headers: map[string][]string{"X-Claimcheck-Reason": {"internal_error"}, "Content-Type": {"application/json"}},
			absent:  []string{"X-Client-Id", "X-Admin"},
			body:    `{"error":"temporarily_unavailable","error_description":"internal error"}`,
		},
		{
			name: "allow with a header name that cannot be sent is a 503 deny",
			decision: extauthz.Decision{Allowed: true, Reason: "allowed",
				RemoveHeaders: []string{"bad name"}},
			status:  503,
			headers: map[string][]string{"X-Claimcheck-Reason": {"internal_error"}},
			absent:  []string{"X-Envoy-Auth-Headers-To-Remove"},
		},
		{
			name: "deny with a header that cannot be sent is still a deny",
			decision: extauthz.Decision{Status: 403, Reason: "policy_denied",
				DenyHeaders: []policy.Header{{Key: "x:y", Value: "1"}}},
			status:  503,
			headers: map[string][]string{"X-Claimcheck-Reason": {"internal_error"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{decide: func(*authv3.CheckRequest) extauthz.Decision { return tt.decision }}
			h := httpserver.NewForwardAuth(rec, httpserver.Config{}, nil)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, fwdRequest{target: "/orders", host: "api", remote: "203.0.113.7:5000"}.build())
			if w.Code != tt.status {
				t.Errorf("status %d, want %d", w.Code, tt.status)
			}
			for k, want := range tt.headers {
				if got := w.Header().Values(k); !reflect.DeepEqual(got, want) {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			for _, k := range tt.absent {
				if got := w.Header().Values(k); len(got) > 0 {
					t.Errorf("header %s = %q, want none", k, got)
				}
			}
			if got := w.Body.String(); tt.body != "" && got != tt.body || tt.status == 200 && got != "" {
				t.Errorf("body %q, want %q", got, tt.body)
			}
		})
	}
}

// panicky is a Checker whose Check panics; its refusals are a real
// Authorizer's, logging to log.
type panicky struct{ *extauthz.Authorizer }

func (panicky) Check(context.Context, *authv3.CheckRequest) extauthz.Decision { panic("boom") }

// TestForwardAuthPanicIsA503: a panic on the decision path still answers,
// with a 503 deny, and is logged.
func TestForwardAuthPanicIsA503(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	a, err := extauthz.New(extauthz.Config{}, oneToken{}, extauthz.StaticPolicy(&inputRecorder{}), log)
	if err != nil {
		t.Fatal(err)
	}
	h := httpserver.NewForwardAuth(panicky{a}, httpserver.Config{}, nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, fwdRequest{target: "/orders", host: "api", remote: "203.0.113.7:5000"}.build())
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", w.Code)
	}
	var body map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body["error"] != "temporarily_unavailable" {
		t.Errorf("body %q (%v), want a JSON temporarily_unavailable", w.Body, err)
	}
	if r := w.Header().Get("X-Claimcheck-Reason"); r != reason.Internal {
		t.Errorf("x-claimcheck-reason %q", r)
	}
	if !strings.Contains(logs.String(), "boom") {
		t.Errorf("the panic was not logged: %s", logs.String())
	}
}

// TestForwardAuthOverRealHTTP serves the handler on a real listener and asks
// it as Traefik would, from loopback.
func TestForwardAuthOverRealHTTP(t *testing.T) {
	rec := &recorder{decide: func(req *authv3.CheckRequest) extauthz.Decision {
		if req.GetAttributes().GetRequest().GetHttp().GetHeaders()["authorization"] == "" {
			return extauthz.Decision{Status: 401, Reason: "missing_token",
				DenyHeaders: []policy.Header{{Key: "www-authenticate", Value: `Bearer realm="claimcheck"`}, {Key: "content-type", Value: "application/json"}},
				Body:        `{"error":"unauthorized"}`}
		}
		return extauthz.Decision{Allowed: true, Status: 200, Reason: "allowed",
			UpstreamHeaders: []policy.Header{{Key: "x-client-id", Value: "svc"}}, RemoveHeaders: []string{"authorization"}}
	}}
	srv := httptest.NewServer(httpserver.NewForwardAuth(rec, httpserver.Config{TrustedProxies: trusted}, nil))
	defer srv.Close()

	ask := func(auth string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest("GET", srv.URL+"/auth", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Forwarded-Method", "POST")
		req.Header.Set("X-Forwarded-Uri", "/orders/1?x=1")
		req.Header.Set("X-Forwarded-Host", "api.example.com")
		req.Header.Set("X-Forwarded-Proto", "https")
		req.Header.Set("X-Forwarded-For", "203.0.113.7")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}

	resp, body := ask("Bearer t")
	if resp.StatusCode != 200 || resp.Header.Get("X-Client-Id") != "svc" || resp.Header.Get("X-Envoy-Auth-Headers-To-Remove") != "authorization" ||
		resp.Header.Get("X-Claimcheck-Reason") != "allowed" || body != "" {
		t.Errorf("allow: %d %v %q", resp.StatusCode, resp.Header, body)
	}
	attrs := rec.only(t).GetAttributes()
	hr := attrs.GetRequest().GetHttp()
	if hr.GetMethod() != "POST" || hr.GetPath() != "/orders/1?x=1" || hr.GetHost() != "api.example.com" || hr.GetScheme() != "https" || hr.GetProtocol() != "HTTP/1.1" {
		t.Errorf("request = %s %s://%s%s %s", hr.GetMethod(), hr.GetScheme(), hr.GetHost(), hr.GetPath(), hr.GetProtocol())
	}
	if got := addr(attrs.GetSource().GetAddress()); got != "203.0.113.7:0" {
		t.Errorf("source %s", got)
	}
	if got, want := addr(attrs.GetDestination().GetAddress()), srv.Listener.Addr().String(); got != want {
		t.Errorf("destination %s, want the listener's %s", got, want)
	}

	resp, body = ask("")
	if resp.StatusCode != 401 || resp.Header.Get("Www-Authenticate") != `Bearer realm="claimcheck"` ||
		resp.Header.Get("Content-Type") != "application/json" || body != `{"error":"unauthorized"}` {
		t.Errorf("deny: %d %v %q", resp.StatusCode, resp.Header, body)
	}
}

// TestForwardAuthDoesNotReadTheBody: the forward-auth request's body is not
// the original's and is never read.
func TestForwardAuthDoesNotReadTheBody(t *testing.T) {
	rec := &recorder{}
	h := httpserver.NewForwardAuth(rec, httpserver.Config{}, nil)
	r := fwdRequest{method: "POST", target: "/orders", host: "api", remote: "203.0.113.7:5000"}.build()
	body := &countingReader{}
	r.Body = body
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 || body.n != 0 {
		t.Errorf("status %d, %d body reads", w.Code, body.n)
	}
	if b := rec.only(t).GetAttributes().GetRequest().GetHttp().GetBody(); b != "" {
		t.Errorf("body in the CheckRequest: %q", b)
	}
}

type countingReader struct{ n int }

func (c *countingReader) Read([]byte) (int, error) { c.n++; return 0, io.EOF }
func (c *countingReader) Close() error             { return nil }
