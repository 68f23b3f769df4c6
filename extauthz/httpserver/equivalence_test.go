package httpserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/claimcheck/claimcheck/extauthz"
	"github.com/claimcheck/claimcheck/extauthz/httpserver"
	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/policy"
)

// inputRecorder is a policy that allows and records its last input.
type inputRecorder struct {
	mu    sync.Mutex
	input map[string]any
}

func (p *inputRecorder) Eval(ctx context.Context, v ast.Value) (policy.Result, error) {
	return p.EvalRule(ctx, "", v)
}

func (p *inputRecorder) EvalRule(_ context.Context, _ string, v ast.Value) (policy.Result, error) {
	var m map[string]any
	if err := ast.As(v, &m); err != nil {
		return policy.Result{}, err
	}
	p.mu.Lock()
	p.input = m
	p.mu.Unlock()
	return policy.Result{Allowed: true}, nil
}

func (p *inputRecorder) Revision() string { return "test" }

// take returns the last input and forgets it.
func (p *inputRecorder) take() map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	in := p.input
	p.input = nil
	return in
}

func (p *inputRecorder) UsesInput(...string) bool { return true }

// oneToken verifies the token "good" and nothing else.
type oneToken struct{}

func (oneToken) Verify(_ context.Context, raw string) (*token.Token, error) {
	if raw != "good" {
		return nil, fmt.Errorf("%w: test", token.ErrSignature)
	}
	return &token.Token{
		Issuer: "https://id.example.com",
		Header: map[string]any{"alg": "ES256"},
		Claims: map[string]any{"iss": "https://id.example.com", "client_id": "svc"},
		Scopes: []string{},
	}, nil
}

// original is a request as a client sent it.
type original struct {
	method, uri, host, scheme string
	headers                   []hdr
	clientIP                  string
	clientPort                uint32
}

// envoyCheckRequest is the CheckRequest Envoy's gRPC ext_authz filter sends
// for o: lower-case headers with repeated ones joined by "," (cookie lines
// by "; "), the host as
// :authority (no host header), :method, :path and :scheme, plus the headers
// Envoy's connection manager adds itself (added, e.g. x-forwarded-for and
// x-forwarded-proto at the edge); the request ID is x-request-id.
func envoyCheckRequest(o original, added map[string]string) *authv3.CheckRequest {
	h := map[string]string{":authority": o.host, ":method": o.method, ":path": o.uri, ":scheme": o.scheme}
	for _, x := range o.headers {
		k := strings.ToLower(x.name)
		if prev, ok := h[k]; ok {
			sep := ","
			if k == "cookie" {
				sep = "; "
			}
			h[k] = prev + sep + x.value
		} else {
			h[k] = x.value
		}
	}
	for k, v := range added {
		h[k] = v
	}
	sock := func(ip string, port uint32) *corev3.Address {
		return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Address: sock(o.clientIP, o.clientPort)},
		Destination: &authv3.AttributeContext_Peer{Address: sock("192.0.2.1", 443)},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: h["x-request-id"], Method: o.method, Path: o.uri, Host: o.host, Scheme: o.scheme,
			Protocol: "HTTP/1.1", Headers: h,
		}},
	}}
}

// TestInputIsTheSameWhicheverAdapterBuiltIt runs, for each proxy flavour, the
// forward-auth request through the HTTP adapter and the CheckRequest Envoy's
// gRPC filter would send for the same original request straight through the
// same Authorizer, and compares the policy inputs.
func TestInputIsTheSameWhicheverAdapterBuiltIt(t *testing.T) {
	// A client at 203.0.113.7 sends this, through a proxy at 127.0.0.1 or
	// 10.0.0.5 (trusted).
	orig := original{
		method: "POST", uri: "/orders/42?expand=items&expand=customer&q=a%20b", host: "api.example.com", scheme: "https",
		headers: []hdr{
			{"Authorization", "Bearer good"}, {"Accept", "application/json"}, {"X-Request-Id", "req-1"},
			{"X-Trace", "a"}, {"X-Trace", "b"}, {"Cookie", "session=1"}, {"Cookie", "theme=dark; lang=en"},
		},
		clientIP: "203.0.113.7", clientPort: 51234,
	}
	// At the edge (use_remote_address), Envoy itself sets these.
	edge := map[string]string{"x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "https"}
	with := func(extra ...hdr) []hdr { return append(append([]hdr(nil), orig.headers...), extra...) }

	// A client at 198.51.100.9 calls claimcheck directly and tries to pass
	// off another host and source through forwarding headers. (With
	// X-Forwarded-Uri or X-Original-URI it is refused: request_test.go.)
	direct := original{
		method: "GET", uri: "/orders/42", host: "api.example.com", scheme: "http",
		headers: []hdr{
			{"Authorization", "Bearer good"}, {"X-Forwarded-Host", "admin.internal"}, {"X-Forwarded-For", "10.0.0.1"},
			{"X-Forwarded-Proto", "https"},
		},
		clientIP: "198.51.100.9", clientPort: 40000,
	}

	tests := []struct {
		name   string
		prefix string
		orig   original
		added  map[string]string
		fwd    fwdRequest
	}{
		{
			name: "Envoy http_service with path_prefix", prefix: "/authz", orig: orig, added: edge,
			fwd: fwdRequest{method: "POST", target: "/authz" + orig.uri, host: orig.host, remote: "127.0.0.1:33000",
				headers: with(hdr{"X-Forwarded-For", "203.0.113.7"}, hdr{"X-Forwarded-Proto", "https"})},
		},
		{
			name: "Envoy http_service without path_prefix", orig: orig, added: edge,
			fwd: fwdRequest{method: "POST", target: orig.uri, host: orig.host, remote: "10.0.0.5:33000",
				headers: with(hdr{"X-Forwarded-For", "203.0.113.7"}, hdr{"X-Forwarded-Proto", "https"})},
		},
		{
			// examples/nginx/nginx.conf: proxy_pass http://claimcheck/ with
			// X-Original-URI, -Method, X-Forwarded-Proto, -Host, -For.
			name: "nginx auth_request", orig: orig, added: edge,
			fwd: fwdRequest{method: "GET", target: "/", host: "claimcheck", remote: "127.0.0.1:33000",
				headers: with(hdr{"X-Original-URI", orig.uri}, hdr{"X-Original-Method", "POST"}, hdr{"X-Forwarded-Proto", "https"},
					hdr{"X-Forwarded-Host", orig.host}, hdr{"X-Forwarded-For", "203.0.113.7"}, hdr{"Connection", "close"})},
		},
		{
			name: "Traefik forwardAuth", orig: orig, added: edge,
			fwd: fwdRequest{method: "GET", target: "/auth", host: "claimcheck:9192", remote: "10.0.0.5:33000",
				headers: with(hdr{"X-Forwarded-Method", "POST"}, hdr{"X-Forwarded-Proto", "https"}, hdr{"X-Forwarded-Host", orig.host},
					hdr{"X-Forwarded-Uri", orig.uri}, hdr{"X-Forwarded-For", "203.0.113.7"})},
		},
		{
			// Caddy rewrites to GET uri, keeps the Host and adds its
			// X-Forwarded-For, -Proto and -Host.
			name: "Caddy forward_auth", orig: orig, added: edge,
			fwd: fwdRequest{method: "GET", target: "/", host: orig.host, remote: "127.0.0.1:33000",
				headers: with(hdr{"X-Forwarded-Method", "POST"}, hdr{"X-Forwarded-Uri", orig.uri}, hdr{"X-Forwarded-For", "203.0.113.7"},
					hdr{"X-Forwarded-Proto", "https"}, hdr{"X-Forwarded-Host", orig.host})},
		},
		{
			name: "untrusted peer: its forwarding headers are plain headers", orig: direct,
			fwd: fwdRequest{method: "GET", target: direct.uri, host: direct.host, remote: "198.51.100.9:40000", headers: direct.headers},
		},
	}
	pol := &inputRecorder{}
	a, err := extauthz.New(extauthz.Config{TokenRequired: true}, oneToken{}, extauthz.StaticPolicy(pol), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := a.Check(context.Background(), envoyCheckRequest(tt.orig, tt.added)); !d.Allowed {
				t.Fatalf("gRPC-shaped request denied: %s %s", d.Reason, d.Description)
			}
			viaGRPC := pol.take()

			h := httpserver.NewForwardAuth(a, httpserver.Config{TrustedProxies: trusted, PathPrefix: tt.prefix}, nil)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, tt.fwd.build())
			if w.Code != http.StatusOK {
				t.Fatalf("forward-auth status %d: %s", w.Code, w.Body)
			}
			viaHTTP := pol.take()
			if viaGRPC == nil || viaHTTP == nil {
				t.Fatal("the policy was not evaluated")
			}

			// The original request, not the forward-auth request.
			req := viaHTTP["request"].(map[string]any)
			path, _, _ := strings.Cut(tt.orig.uri, "?")
			if req["method"] != tt.orig.method || req["path"] != path || req["host"] != tt.orig.host || req["scheme"] != tt.orig.scheme {
				t.Errorf("input.request = %v %v %v %v, want the original %s %s %s %s",
					req["method"], req["scheme"], req["host"], req["path"], tt.orig.method, tt.orig.scheme, tt.orig.host, path)
			}
			if got := viaHTTP["source"].(map[string]any)["address"]; got != tt.orig.clientIP {
				t.Errorf("input.source.address = %v, want %s", got, tt.orig.clientIP)
			}

			same := func(name string, get func(map[string]any) any) {
				t.Helper()
				g, h := get(viaGRPC), get(viaHTTP)
				if !reflect.DeepEqual(g, h) {
					gj, _ := json.MarshalIndent(g, "", "  ")
					hj, _ := json.MarshalIndent(h, "", "  ")
					t.Errorf("%s differs\nvia gRPC: %s\nvia HTTP: %s", name, gj, hj)
				}
			}
			same("input.request", func(m map[string]any) any { return m["request"] })
			same("input.source.address", func(m map[string]any) any { return m["source"].(map[string]any)["address"] })
			same("input.parsed_path", func(m map[string]any) any { return m["parsed_path"] })
			same("input.parsed_query", func(m map[string]any) any { return m["parsed_query"] })
			same("input.token", func(m map[string]any) any { return m["token"] })
			same("input.attributes.request.http", func(m map[string]any) any {
				return m["attributes"].(map[string]any)["request"].(map[string]any)["http"]
			})
		})
	}
}
