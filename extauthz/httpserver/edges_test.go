package httpserver_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/claimcheck/claimcheck/extauthz"
	"github.com/claimcheck/claimcheck/extauthz/httpserver"
	"github.com/claimcheck/claimcheck/extauthz/reason"
	"github.com/claimcheck/claimcheck/policy"
)

// edgesRego allows a verified token and, as the query says, sets a header
// (where=headers, response_headers_to_add, deny_headers) or removes one
// (where=request_headers_to_remove) whose name and value come from the
// query, decoded: a way to have a policy hand back CR, LF or NUL through
// either adapter.
const edgesRego = `package edges

q(k) := input.request.query[k][0]

default decision := {"allowed": false}

decision := {"allowed": true} if not input.request.query.where

decision := {"allowed": true, "headers": {q("name"): q("value")}} if q("where") == "headers"

decision := {"allowed": true, "response_headers_to_add": {q("name"): q("value")}} if q("where") == "response_headers_to_add"

decision := {"allowed": true, "request_headers_to_remove": [q("name")]} if q("where") == "request_headers_to_remove"

decision := {"allowed": false, "http_status": 418, "headers": {q("name"): q("value")}} if q("where") == "deny_headers"
`

// edgesRig serves an Authorizer with edgesRego and sources (every kind
// when nil) over gRPC and forward-auth, logging to log (nowhere when nil).
func edgesRig(t *testing.T, sources []extauthz.TokenSource, log io.Writer) *pathRig {
	t.Helper()
	if sources == nil {
		sources = []extauthz.TokenSource{{Header: "authorization", Prefix: "Bearer "}, {Query: "access_token"}, {Cookie: "at"}}
	}
	var logger *slog.Logger
	if log != nil {
		logger = slog.New(slog.NewTextHandler(log, nil))
	}
	a, err := extauthz.New(extauthz.Config{TokenRequired: true, Sources: sources}, twoClients{},
		extauthz.StaticPolicy(regoEngine(t, edgesRego, "edges/decision")), logger)
	if err != nil {
		t.Fatal(err)
	}
	return serveAdapters(t, a)
}

// lockedBuffer is a log both servers' goroutines write while a test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// checkGRPC sends req to the rig's gRPC server.
func (r *pathRig) checkGRPC(t *testing.T, req *authv3.CheckRequest) *authv3.CheckResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := r.grpc.Check(ctx, req)
	if err != nil {
		t.Fatalf("gRPC Check: %v", err)
	}
	return resp
}

// grpcRequest is a CheckRequest for GET target with these headers (names
// as given) or, with raw, these header_map entries.
func grpcRequest(target string, headers map[string]string, raw [][2]string) *authv3.CheckRequest {
	req := envoyCheckRequest(original{method: "GET", uri: target, host: "api.example.com", scheme: "https",
		clientIP: "203.0.113.7", clientPort: 40000}, nil)
	h := req.Attributes.Request.Http
	for k, v := range headers {
		h.Headers[k] = v
	}
	if raw != nil {
		hm := &corev3.HeaderMap{}
		for k, v := range h.Headers {
			hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: k, RawValue: []byte(v)})
		}
		for _, e := range raw {
			hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: e[0], RawValue: []byte(e[1])})
		}
		h.Headers, h.HeaderMap = nil, hm
	}
	return req
}

func grpcReason(resp *authv3.CheckResponse) string {
	reason, _ := resp.GetDynamicMetadata().AsMap()["claimcheck"].(map[string]any)["reason"].(string)
	return reason
}

// TestCollidingHeaderNamesOverGRPC: over a real gRPC connection, a
// CheckRequest whose headers map spells one name twice is a 400
// bad_request naming it, whichever spelling carries the token; in
// header_map, where order is the request's, repeated cookie lines are
// joined and the token cookie is found in any of them.
func TestCollidingHeaderNamesOverGRPC(t *testing.T) {
	r := edgesRig(t, nil, nil)
	tests := []struct {
		name    string
		headers map[string]string
		raw     [][2]string
		status  int
		reason  string
		names   string // in the deny's body
	}{
		{name: "Authorization and authorization", headers: map[string]string{"Authorization": "Bearer most", "authorization": "Bearer orders"},
			status: 400, reason: "bad_request", names: "authorization"},
		{name: "one token, one empty", headers: map[string]string{"AUTHORIZATION": "Bearer most", "authorization": ""},
			status: 400, reason: "bad_request", names: "authorization"},
		{name: "Cookie and cookie", headers: map[string]string{"authorization": "Bearer most", "Cookie": "at=x", "cookie": "a=1"},
			status: 400, reason: "bad_request", names: "cookie"},
		{name: "X-Forwarded-For twice", headers: map[string]string{"authorization": "Bearer most", "X-Forwarded-For": "10.0.0.1", "x-forwarded-for": "203.0.113.7"},
			status: 400, reason: "bad_request", names: "x-forwarded-for"},
		{name: "header_map: token cookie in the second cookie line", raw: [][2]string{{"cookie", "theme=dark"}, {"cookie", "a=1; at=most"}},
			status: 200, reason: "allowed"},
		{name: "header_map: token cookie in the first of two spellings", raw: [][2]string{{"Cookie", "at=most"}, {"cookie", "a=1"}},
			status: 200, reason: "allowed"},
		{name: "header_map: two authorization entries are joined, not picked from", raw: [][2]string{{"authorization", "Bearer most"}, {"Authorization", "Bearer orders"}},
			status: 401, reason: "signature_invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 10 { // map order varies: the answer must not
				resp := r.checkGRPC(t, grpcRequest("/orders/1", tt.headers, tt.raw))
				status := http.StatusOK
				if d := resp.GetDeniedResponse(); d != nil {
					status = int(d.GetStatus().GetCode())
				}
				if status != tt.status || grpcReason(resp) != tt.reason {
					t.Fatalf("got %d %s, want %d %s", status, grpcReason(resp), tt.status, tt.reason)
				}
				if tt.names != "" && !strings.Contains(resp.GetDeniedResponse().GetBody(), `\"`+tt.names+`\"`) {
					t.Fatalf("body %s does not name %q", resp.GetDeniedResponse().GetBody(), tt.names)
				}
			}
		})
	}
}

// TestPolicyHeadersThatCouldSplitAreRefusedByEveryAdapter: a decision
// whose headers, response_headers_to_add, request_headers_to_remove or deny
// headers carry CR, LF, NUL or another control character in a value, or a
// name that is not an HTTP token, is a 503 policy_error — logged — over a
// real gRPC connection and over forward-auth alike; tab and text beyond
// ASCII are fine.
func TestPolicyHeadersThatCouldSplitAreRefusedByEveryAdapter(t *testing.T) {
	var log lockedBuffer
	r := edgesRig(t, nil, &log)
	hostile := []struct{ name, value string }{
		{"x-a", "1\r\nx-injected: 1"},
		{"x-a", "1\nx-injected: 1"},
		{"x-a", "1\rx-injected: 1"},
		{"x-a", "1\x00"},
		{"x-a", "\x00"},
		{"x-a", "1\x7f"},
		{"x-a", "1\x0b"},
		{"x-a", "\r\n\r\nHTTP/1.1 200 OK"},
		{"x-a\r\nx-injected", "1"},
		{"x-a: 1\r\nx-b", "1"},
		{"x a", "1"},
		{"x-a\x00", "1"},
		{"x-\u00e9", "1"},
		{":authority", "evil.example"},
		{"x-a:", "1"},
		{"(x)", "1"},
	}
	for _, where := range []string{"headers", "response_headers_to_add", "request_headers_to_remove", "deny_headers"} {
		for _, h := range hostile {
			if where == "request_headers_to_remove" && policy.IsToken(h.name) {
				continue // the value plays no part
			}
			target := "/orders/1?" + url.Values{"where": {where}, "name": {h.name}, "value": {h.value}}.Encode()
			t.Run(fmt.Sprintf("%s %q: %q", where, h.name, h.value), func(t *testing.T) {
				resp := r.checkGRPC(t, grpcRequest(target, map[string]string{"authorization": "Bearer most"}, nil))
				if resp.GetOkResponse() != nil || resp.GetDeniedResponse().GetStatus().GetCode() != 503 || grpcReason(resp) != reason.PolicyError {
					t.Errorf("gRPC: %v, want a 503 policy_error deny", resp)
				}
				status, code, header := r.forwardAuth(t, target, "Bearer most")
				if status != 503 || code != reason.PolicyError {
					t.Errorf("forward-auth: %d %s, want 503 policy_error", status, code)
				}
				for k := range header {
					if strings.EqualFold(k, "x-injected") || strings.EqualFold(k, "x-a") {
						t.Errorf("forward-auth answer carries %s", k)
					}
				}
			})
		}
	}
	if !strings.Contains(log.String(), "policy evaluation failed") || !strings.Contains(log.String(), "is not a header name") ||
		!strings.Contains(log.String(), "the value has a control character") {
		t.Errorf("the refusals are not logged:\n%s", log.String())
	}
	// Header text that only looks odd passes on both.
	for _, where := range []string{"headers", "response_headers_to_add"} {
		target := "/orders/1?" + url.Values{"where": {where}, "name": {"x-a"}, "value": {"a\tb caf\u00e9"}}.Encode()
		if resp := r.checkGRPC(t, grpcRequest(target, map[string]string{"authorization": "Bearer most"}, nil)); resp.GetOkResponse() == nil {
			t.Errorf("%s: gRPC denied a tab and UTF-8: %v", where, resp)
		}
		if status, _, header := r.forwardAuth(t, target, "Bearer most"); status != 200 || header.Get("x-a") != "a\tb caf\u00e9" {
			t.Errorf("%s: forward-auth %d, x-a %q", where, status, header.Get("x-a"))
		}
	}
}

// forwardAuth asks the rig's forward-auth listener as Caddy does for GET
// target with this Authorization header, and returns the answer's status,
// reason and headers.
func (r *pathRig) forwardAuth(t *testing.T, target, authorization string, headers ...hdr) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+r.http+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-Method", "GET")
	req.Header.Set("X-Forwarded-Uri", target)
	req.Header.Set("X-Forwarded-Host", "api.example.com")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	for _, h := range headers {
		req.Header.Add(h.name, h.value)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get(httpserver.HeaderReason), resp.Header
}
