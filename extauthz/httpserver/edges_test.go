package httpserver_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/claimcheck/claimcheck/extauthz"
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
// when nil) over gRPC and forward-auth.
func edgesRig(t *testing.T, sources []extauthz.TokenSource) *pathRig {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "edges.rego"), []byte(edgesRego), 0o644); err != nil {
		t.Fatal(err)
	}
	engine, err := policy.New(context.Background(), policy.Config{Paths: []string{dir}, Decision: "edges/decision"})
	if err != nil {
		t.Fatal(err)
	}
	if sources == nil {
		sources = []extauthz.TokenSource{{Header: "authorization", Prefix: "Bearer "}, {Query: "access_token"}, {Cookie: "at"}}
	}
	a, err := extauthz.New(extauthz.Config{TokenRequired: true, Sources: sources}, twoClients{}, extauthz.StaticPolicy(engine), nil)
	if err != nil {
		t.Fatal(err)
	}
	return serveAdapters(t, a)
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
	r := edgesRig(t, nil)
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
