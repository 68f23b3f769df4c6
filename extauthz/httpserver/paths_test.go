package httpserver_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/claimcheck/claimcheck/extauthz"
	"github.com/claimcheck/claimcheck/extauthz/grpcserver"
	"github.com/claimcheck/claimcheck/extauthz/httpserver"
	"github.com/claimcheck/claimcheck/extauthz/reason"
	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/extauthz/urlpath"
	"github.com/claimcheck/claimcheck/policy"
)

// pathRego has the two rule shapes an attacker tries to walk around: a
// prefix rule (client "orders" only under /orders/) and a denylist rule
// (client "most" anywhere but /admin). Both use a bare startswith, as
// policies in the wild do: the canonical path must make even that safe.
const pathRego = `package paths

default allow := false

allow if {
	input.token.claims.client_id == "orders"
	startswith(input.request.path, "/orders/")
}

allow if {
	input.token.claims.client_id == "most"
	not startswith(input.request.path, "/admin")
}
`

// twoClients verifies the tokens "orders" and "most" as those client_ids.
type twoClients struct{}

func (twoClients) Verify(_ context.Context, raw string) (*token.Token, error) {
	if raw != "orders" && raw != "most" {
		return nil, fmt.Errorf("%w: test", token.ErrSignature)
	}
	return &token.Token{Issuer: "https://id.example.com", Header: map[string]any{"alg": "ES256"},
		Claims: map[string]any{"iss": "https://id.example.com", "client_id": raw}, Scopes: []string{}}, nil
}

// hostilePaths are request paths that an upstream may serve as another
// path than the one they spell: each either is refused (reject: 400
// path_invalid by default) or canonicalises to /admin, which both rules
// deny (403).
var hostilePaths = []struct {
	path   string
	reject bool // refused in reject mode, rather than judged as /admin
}{
	// Walking out of /orders/.
	{"/orders/../admin", true},
	{"/orders/%2e%2e/admin", true},
	{"/orders/%2E%2E/admin", true},
	{"/orders/%2e%2E/admin", true},
	{"/orders/.%2e/admin", true},
	{"/orders/%2e./admin", true},
	{"/orders/..;/admin", true},
	{"/orders/..;x=1/admin", true},
	{"/orders/..%3B/admin", true},
	{"/orders/..%3b/admin", true},
	{`/orders/..\admin`, true},
	{`/orders\..\admin`, true},
	{"/orders/..%5Cadmin", true},
	{"/orders/..%5cadmin", true},
	{"/orders/%2F..%2Fadmin", true},
	{"/orders/%2f..%2fadmin", true},
	{"/orders%2F..%2Fadmin", true},
	{"/orders/%2e%2e%2fadmin", true},
	{"/orders/./../admin", true},
	{"/orders/%2e/../admin", true},
	{"/orders/x/../../admin", true},
	{"/orders/..", true},
	{"/orders/.", true},
	{"/orders//../admin", true},
	// Double encoding and overlong UTF-8, for upstreams that decode twice or leniently.
	{"/orders/%252e%252e/admin", true},
	{"/orders/%252E%252E%252Fadmin", true},
	{"/orders/%25%32%65%25%32%65/admin", true},
	{"/%2561dmin", true},
	{"/orders/%c0%ae%c0%ae/admin", true},
	{"/orders/%C0%AE./admin", true},
	{"/orders/%e0%80%ae%e0%80%ae/admin", true},
	{"/orders/..%c0%afadmin", true},
	// NUL, control bytes and tabs.
	{"/orders/%00/../admin", true},
	{"/admin%00", true},
	{"/orders/%00", true},
	{"/orders/%09/admin", true},
	{"/orders/\t/../admin", true},
	{"/orders/%0d%0aX-Injected:%201", true},
	{"/orders/%7f", true},
	// Path parameters on any segment.
	{"/admin;x", true},
	{"/admin;jsessionid=1", true},
	{"/orders;/../admin", true},
	{"/;/admin", true},
	{"/orders/x;y/../../admin", true},
	// Past the denylist rule.
	{"/%61dmin", false},
	{"/%61%64%6d%69%6e", false},
	{"/%61dmin/users", false},
	{"//admin", true},
	{"///admin", true},
	{"/./admin", true},
	{"/x/../admin", true},
	{"/%2Fadmin", true},
	{"/%2fadmin", true},
	{"/.%2e/admin", true},
	{"/admin/.", true},
	{"/admin/..", true},
	// A fragment, a raw byte beyond ASCII, a broken escape, no leading slash.
	{"/orders/#/../admin", true},
	{"/orders/é/../admin", true},
	{"/orders/%zz/../admin", true},
	{"/orders/%2", true},
	{`\orders\..\admin`, true},
	{"orders/../admin", true},
	// Long paths: the walk out of /orders/ hides far from the start.
	{"/orders/" + strings.Repeat("a/", 4000) + strings.Repeat("../", 4001) + "admin", true},
	{"/orders/" + strings.Repeat("%2e", 3000) + "/" + strings.Repeat("%2e%2e/", 2) + "admin", true},
	{"/orders/" + strings.Repeat("x", 16<<10) + "/..%2fadmin", true},
}

// lookAlikes are paths that only look hostile: client "orders" is allowed.
var lookAlikes = []struct{ target, canonical string }{
	{"/orders/v1.2", "/orders/v1.2"},
	{"/orders/a%20b", "/orders/a%20b"},
	{"/orders/42?next=../x", "/orders/42"},
	{"/orders/42?next=%2e%2e%2fadmin", "/orders/42"},
	{"/orders/..foo", "/orders/..foo"},
	{"/orders/...", "/orders/..."},
	{"/orders/.well-known", "/orders/.well-known"},
	{"/orders/%7Euser", "/orders/~user"},
	{"/orders/%6f", "/orders/o"},
	{"/orders/caf%c3%a9", "/orders/caf%C3%A9"},
	{"/orders/42/", "/orders/42/"},
	{"/orders/a%2b%40b", "/orders/a%2B%40b"},
	{"/orders/" + strings.Repeat("x", 16<<10), "/orders/" + strings.Repeat("x", 16<<10)},
}

// outcome is what one adapter answered.
type outcome struct {
	status int
	reason string
}

// pathRig is an Authorizer with pathRego, served by the real gRPC server
// (over loopback, to a real client) and the real forward-auth handler
// (over loopback, the request bytes written as a proxy sends them).
type pathRig struct {
	grpc authv3.AuthorizationClient
	http string // host:port of the forward-auth listener
}

// regoEngine is a policy engine for one Rego module and its decision rule.
func regoEngine(t testing.TB, module, decision string) *policy.Engine {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "policy.rego"), []byte(module), 0o644); err != nil {
		t.Fatal(err)
	}
	engine, err := policy.New(context.Background(), policy.Config{Paths: []string{dir}, Decision: decision})
	if err != nil {
		t.Fatal(err)
	}
	return engine
}

// pathAuthorizer is an Authorizer with pathRego.
func pathAuthorizer(t testing.TB, mode urlpath.Mode) *extauthz.Authorizer {
	t.Helper()
	engine := regoEngine(t, pathRego, "paths/allow")
	a, err := extauthz.New(extauthz.Config{TokenRequired: true, PathNormalization: mode}, twoClients{}, extauthz.StaticPolicy(engine), nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func newPathRig(t *testing.T, mode urlpath.Mode) *pathRig {
	t.Helper()
	return serveAdapters(t, pathAuthorizer(t, mode))
}

// serveAdapters serves a over gRPC and forward-auth on loopback.
func serveAdapters(t *testing.T, a *extauthz.Authorizer) *pathRig {
	t.Helper()
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpcserver.New(a, nil)
	go func() { _ = gs.Serve(gl) }()
	t.Cleanup(func() { gs.Stop(context.Background()) })
	conn, err := grpc.NewClient("passthrough:///"+gl.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })

	hs := httptest.NewServer(httpserver.NewForwardAuth(a, httpserver.Config{TrustedProxies: trusted}, nil))
	t.Cleanup(hs.Close)
	return &pathRig{grpc: authv3.NewAuthorizationClient(conn), http: hs.Listener.Addr().String()}
}

// viaGRPC asks as Envoy's gRPC filter does for GET target with token.
func (r *pathRig) viaGRPC(t *testing.T, target, tok string) outcome {
	t.Helper()
	req := envoyCheckRequest(original{method: "GET", uri: target, host: "api.example.com", scheme: "https",
		headers: []hdr{{"Authorization", "Bearer " + tok}}, clientIP: "203.0.113.7", clientPort: 40000}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := r.grpc.Check(ctx, req)
	if err != nil {
		t.Fatalf("gRPC Check %q: %v", target, err)
	}
	reason, _ := resp.GetDynamicMetadata().AsMap()["claimcheck"].(map[string]any)["reason"].(string)
	if resp.GetOkResponse() != nil {
		return outcome{http.StatusOK, reason}
	}
	return outcome{int(resp.GetDeniedResponse().GetStatus().GetCode()), reason}
}

// viaHTTP asks as Caddy and Traefik do (X-Forwarded-Uri), as nginx does
// (X-Original-URI), or as Envoy http_service does (the request target
// itself), writing the request bytes on a new connection. ok is false when
// Go's HTTP server refused the bytes before claimcheck saw them (a 400 of
// its own, never an allow).
func (r *pathRig) viaHTTP(t *testing.T, style, target, tok string) (o outcome, ok bool) {
	t.Helper()
	var b strings.Builder
	switch style {
	case "forwarded":
		fmt.Fprintf(&b, "GET / HTTP/1.1\r\nHost: api.example.com\r\nX-Forwarded-Method: GET\r\nX-Forwarded-Uri: %s\r\n", target)
	case "nginx":
		fmt.Fprintf(&b, "GET /_claimcheck HTTP/1.1\r\nHost: api.example.com\r\nX-Original-Method: GET\r\nX-Original-URI: %s\r\n", target)
	case "envoy":
		fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: api.example.com\r\n", target)
	}
	fmt.Fprintf(&b, "Authorization: Bearer %s\r\nConnection: close\r\n\r\n", tok)
	c, err := net.DialTimeout("tcp", r.http, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s %q: %v", style, target, err)
	}
	resp.Body.Close()
	reason := resp.Header.Get(httpserver.HeaderReason)
	if reason == "" && resp.StatusCode == http.StatusBadRequest {
		return outcome{resp.StatusCode, ""}, false
	}
	return outcome{resp.StatusCode, reason}, true
}

// TestHostilePathsAreNeverAllowed sends every hostile path through both
// adapters (gRPC; forward-auth as Caddy, nginx and Envoy http_service
// send it) with a token the prefix rule allows under /orders/ and one the
// denylist rule allows anywhere but /admin. By default each is refused
// with 400 path_invalid or judged as /admin (403), the same over every
// adapter; with resolve, a path is judged as the resolved one and never
// reaches /admin.
func TestHostilePathsAreNeverAllowed(t *testing.T) {
	if len(hostilePaths) < 40 {
		t.Fatalf("%d hostile paths; the table promises at least 40", len(hostilePaths))
	}
	for _, mode := range []urlpath.Mode{urlpath.Reject, urlpath.Resolve} {
		rig := newPathRig(t, mode)
		for _, hp := range hostilePaths {
			for _, tok := range []string{"orders", "most"} {
				name := fmt.Sprintf("%s/%s/%.60q", mode, tok, hp.path)
				t.Run(name, func(t *testing.T) {
					g := rig.viaGRPC(t, hp.path, tok)
					want := outcome{http.StatusForbidden, reason.PolicyDenied}
					if mode == urlpath.Reject && hp.reject {
						want = outcome{http.StatusBadRequest, reason.PathInvalid}
					}
					if mode == urlpath.Resolve {
						want = resolvedOutcome(hp.path, tok)
					}
					if g != want {
						t.Errorf("gRPC: %+v, want %+v", g, want)
					}
					if g.status == http.StatusOK && mode == urlpath.Reject {
						t.Errorf("gRPC allowed %q", hp.path)
					}
					for _, style := range []string{"forwarded", "nginx", "envoy"} {
						h, ok := rig.viaHTTP(t, style, hp.path, tok)
						if !ok {
							continue // refused by net/http itself
						}
						if h != g {
							t.Errorf("%s: %+v, but gRPC %+v", style, h, g)
						}
					}
				})
			}
		}
	}
}

// resolvedOutcome is what the rules say about p resolved, for tok: a path
// that cannot be resolved is still refused.
func resolvedOutcome(p, tok string) outcome {
	c, err := urlpath.Canonical(p, urlpath.Resolve)
	if err != nil {
		return outcome{http.StatusBadRequest, reason.PathInvalid}
	}
	if strings.HasPrefix(c.Path, "/admin") {
		return outcome{http.StatusForbidden, reason.PolicyDenied}
	}
	if tok == "orders" && !strings.HasPrefix(c.Path, "/orders/") {
		return outcome{http.StatusForbidden, reason.PolicyDenied}
	}
	return outcome{http.StatusOK, reason.Allowed}
}

// TestLookAlikePathsStillPass: what only looks hostile is allowed, the same
// over every adapter, and the policy judges the canonical path.
func TestLookAlikePathsStillPass(t *testing.T) {
	rig := newPathRig(t, urlpath.Reject)
	for _, la := range lookAlikes {
		t.Run(fmt.Sprintf("%.60q", la.target), func(t *testing.T) {
			c, err := urlpath.Canonical(la.target, urlpath.Reject)
			if err != nil || c.Path != la.canonical {
				t.Fatalf("canonical %q, %v; want %q", c.Path, err, la.canonical)
			}
			want := outcome{http.StatusOK, reason.Allowed}
			if g := rig.viaGRPC(t, la.target, "orders"); g != want {
				t.Errorf("gRPC: %+v, want %+v", g, want)
			}
			for _, style := range []string{"forwarded", "nginx", "envoy"} {
				if h, ok := rig.viaHTTP(t, style, la.target, "orders"); h != want || !ok {
					t.Errorf("%s: %+v (reached claimcheck: %v), want %+v", style, h, ok, want)
				}
			}
		})
	}
}

// FuzzPathAgreement: for any forwarded URI, the gRPC adapter and the
// forward-auth adapter give the same status and reason, and a path that
// is allowed is one the rules allow once canonicalised.
func FuzzPathAgreement(f *testing.F) {
	for _, hp := range hostilePaths[:20] {
		f.Add(hp.path, "orders", false)
	}
	for _, la := range lookAlikes[:5] {
		f.Add(la.target, "most", true)
	}
	adapters := map[urlpath.Mode]struct {
		grpc *grpcserver.Server
		http http.Handler
	}{}
	for _, m := range []urlpath.Mode{urlpath.Reject, urlpath.Resolve} {
		a := pathAuthorizer(f, m)
		adapters[m] = struct {
			grpc *grpcserver.Server
			http http.Handler
		}{grpcserver.New(a, nil), httpserver.NewForwardAuth(a, httpserver.Config{TrustedProxies: trusted}, nil)}
	}
	f.Fuzz(func(t *testing.T, target, tok string, resolve bool) {
		if strings.ContainsAny(target, "\r\n\x00") || !utf8.ValidString(target) || (tok != "orders" && tok != "most") {
			return // no proxy sends these in a header; protobuf strings are UTF-8
		}
		mode := urlpath.Reject
		if resolve {
			mode = urlpath.Resolve
		}
		ad := adapters[mode]
		req := envoyCheckRequest(original{method: "GET", uri: target, host: "api.example.com", scheme: "https",
			headers: []hdr{{"Authorization", "Bearer " + tok}}, clientIP: "203.0.113.7", clientPort: 40000}, nil)
		resp, err := ad.grpc.Check(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		g := outcome{http.StatusOK, ""}
		if d := resp.GetDeniedResponse(); d != nil {
			g.status = int(d.GetStatus().GetCode())
		}
		g.reason, _ = resp.GetDynamicMetadata().AsMap()["claimcheck"].(map[string]any)["reason"].(string)

		hr := httptest.NewRequest("GET", "/", nil)
		hr.RemoteAddr = "127.0.0.1:4000"
		hr.Header.Set("X-Forwarded-Method", "GET")
		hr.Header.Set("X-Forwarded-Uri", target)
		hr.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		ad.http.ServeHTTP(w, hr)
		h := outcome{w.Code, w.Header().Get(httpserver.HeaderReason)}
		if h != g {
			t.Fatalf("%s %q: forward-auth %+v, gRPC %+v", mode, target, h, g)
		}
		if g.status == http.StatusOK && resolvedOutcome(target, tok) != g && mode == urlpath.Resolve {
			t.Fatalf("resolve %q allowed, but the rules deny the resolved path", target)
		}
		if g.status == http.StatusOK && mode == urlpath.Reject {
			c, err := urlpath.Canonical(target, urlpath.Reject)
			if err != nil || strings.HasPrefix(c.Path, "/admin") || (tok == "orders" && !strings.HasPrefix(c.Path, "/orders/")) {
				t.Fatalf("reject %q allowed as %q, %v", target, c.Path, err)
			}
		}
	})
}
