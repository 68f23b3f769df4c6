package issuer

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/claimcheck/claimcheck/extauthz/keys"
	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

const testIssuer = "https://id.test.example"

func newClock() *tokentest.Clock { return tokentest.NewClock(time.Now().Truncate(time.Second)) }

// hash is a cheap bcrypt hash of secret (tests only: cost 4).
func hash(t testing.TB, secret string) string {
	t.Helper()
	b, err := bcrypt.GenerateFromPassword([]byte(secret), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// testClients: a JWT client, an opaque one, an introspecting resource
// server and one that may only introspect.
func testClients(t testing.TB) []Client {
	return []Client{
		{ID: "service-client-id", SecretHash: hash(t, "s3cret"), Scopes: []string{"orders:read", "orders:write"},
			Audiences: []string{"orders-api"}, TTL: 10 * time.Minute, ClientCredentials: true,
			Claims: map[string]any{"tenant": "acme", "sub": "not-me", "roles": []any{"reader"}}},
		{ID: "opaque-client", SecretHash: hash(t, "opaque-secret"), Scopes: []string{"orders:read"},
			Audiences: []string{"orders-api", "billing-api"}, TTL: 5 * time.Minute, Opaque: true, ClientCredentials: true},
		{ID: "resource-server", SecretHash: hash(t, "rs-secret"), Introspect: true},
	}
}

func testConfig(t testing.TB) Config {
	return Config{
		Issuer: testIssuer, KeyDir: filepath.Join(t.TempDir(), "keys"), Algorithm: "ES256",
		RotationInterval: time.Hour, RotationOverlap: 10 * time.Minute,
		MaxOpaqueTokens: 100, FailedAuthBurst: 3, FailedAuthEvery: time.Minute,
		Clients: testClients(t),
	}
}

func newServer(t testing.TB, cfg Config, c *tokentest.Clock) *Server {
	t.Helper()
	s, err := New(cfg, WithClock(c.Now))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// call is one request to the issuer.
type call struct {
	method string // default POST
	path   string
	form   url.Values
	basic  [2]string // id, secret: sent as RFC 6749 §2.3.1 Basic credentials
	header map[string]string
	remote string // default 192.0.2.1:1234
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func (a answer) str(k string) string { s, _ := a.body[k].(string); return s }

func do(t testing.TB, s *Server, c call) answer {
	t.Helper()
	if c.method == "" {
		c.method = http.MethodPost
	}
	r := httptest.NewRequest(c.method, c.path, strings.NewReader(c.form.Encode()))
	if c.form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c.basic[0] != "" {
		r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString(
			[]byte(url.QueryEscape(c.basic[0])+":"+url.QueryEscape(c.basic[1]))))
	}
	for k, v := range c.header {
		r.Header.Set(k, v)
	}
	r.RemoteAddr = "192.0.2.1:1234"
	if c.remote != "" {
		r.RemoteAddr = c.remote
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	a := answer{status: w.Code, header: w.Header(), body: map[string]any{}}
	if strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(w.Body.Bytes(), &a.body); err != nil {
			t.Fatalf("%s %s: body %q: %v", c.method, c.path, w.Body, err)
		}
	}
	return a
}

func grant(extra ...string) url.Values {
	v := url.Values{"grant_type": {"client_credentials"}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return v
}

// endpoint is the request path of an endpoint of s.
func endpoint(s *Server, p string) string {
	u, _ := url.Parse(s.issuer)
	return u.Path + p
}

func getToken(t testing.TB, s *Server, id, secret string, extra ...string) string {
	t.Helper()
	a := do(t, s, call{path: endpoint(s, TokenPath), form: grant(extra...), basic: [2]string{id, secret}})
	if a.status != http.StatusOK || a.str("access_token") == "" {
		t.Fatalf("token for %s: %d %v", id, a.status, a.body)
	}
	return a.str("access_token")
}

func TestTokenErrorsFollowRFC6749(t *testing.T) {
	s := newServer(t, testConfig(t), newClock())
	good := [2]string{"service-client-id", "s3cret"}
	tests := []struct {
		name      string
		call      call
		status    int
		code      string
		challenge bool
	}{
		{name: "wrong secret, basic", call: call{form: grant(), basic: [2]string{"service-client-id", "wrong"}}, status: 401, code: "invalid_client", challenge: true},
		{name: "wrong secret, post", call: call{form: grant("client_id", "service-client-id", "client_secret", "wrong")}, status: 401, code: "invalid_client"},
		{name: "unknown client", call: call{form: grant(), basic: [2]string{"nobody", "s3cret"}}, status: 401, code: "invalid_client", challenge: true},
		{name: "missing client authentication", call: call{form: grant()}, status: 401, code: "invalid_client", challenge: true},
		{name: "client_id without a secret", call: call{form: grant("client_id", "service-client-id")}, status: 401, code: "invalid_client", challenge: true},
		{name: "bearer instead of basic", call: call{form: grant(), header: map[string]string{"Authorization": "Bearer x"}}, status: 401, code: "invalid_client", challenge: true},
		{name: "basic and post at once", call: call{form: grant("client_id", "service-client-id", "client_secret", "s3cret"), basic: good}, status: 400, code: "invalid_request"},
		{name: "basic and another client_id in the body", call: call{form: grant("client_id", "opaque-client"), basic: good}, status: 400, code: "invalid_request"},
		{name: "wrong grant type", call: call{form: url.Values{"grant_type": {"password"}}, basic: good}, status: 400, code: "unsupported_grant_type"},
		{name: "missing grant type", call: call{form: url.Values{"scope": {"orders:read"}}, basic: good}, status: 400, code: "invalid_request"},
		{name: "disallowed scope", call: call{form: grant("scope", "orders:read admin"), basic: good}, status: 400, code: "invalid_scope"},
		{name: "client that may only introspect", call: call{form: grant(), basic: [2]string{"resource-server", "rs-secret"}}, status: 400, code: "unauthorized_client"},
		{name: "secret in the URL", call: call{path: "/token?client_id=service-client-id&client_secret=s3cret", form: grant()}, status: 400, code: "invalid_request"},
		{name: "repeated parameter", call: call{form: url.Values{"grant_type": {"client_credentials", "client_credentials"}}, basic: good}, status: 400, code: "invalid_request"},
		{name: "not a form", call: call{basic: good, header: map[string]string{"Content-Type": "application/json"}}, status: 400, code: "invalid_request"},
		{name: "GET", call: call{method: http.MethodGet, basic: good}, status: 405, code: "invalid_request"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.call
			if c.path == "" {
				c.path = "/token"
			}
			c.remote = fmt.Sprintf("192.0.2.%d:1", i+1) // one failure budget per case
			a := do(t, s, c)
			if a.status != tt.status || a.str("error") != tt.code || a.str("error_description") == "" {
				t.Fatalf("got %d %v, want %d %s with a description", a.status, a.body, tt.status, tt.code)
			}
			if got := a.header.Get("WWW-Authenticate"); (got != "") != tt.challenge || (tt.challenge && !strings.HasPrefix(got, "Basic ")) {
				t.Errorf("WWW-Authenticate = %q, challenge wanted: %v", got, tt.challenge)
			}
			if a.header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control = %q", a.header.Get("Cache-Control"))
			}
			if _, leaked := a.body["access_token"]; leaked {
				t.Error("an error answer carries a token")
			}
		})
	}
}

func TestTokenResponseAndScopes(t *testing.T) {
	s := newServer(t, testConfig(t), newClock())
	tests := []struct {
		name      string
		call      call
		wantScope string
	}{
		{name: "basic, no scope gets all allowed", call: call{form: grant(), basic: [2]string{"service-client-id", "s3cret"}}, wantScope: "orders:read orders:write"},
		{name: "post, one scope", call: call{form: grant("scope", "orders:write", "client_id", "service-client-id", "client_secret", "s3cret")}, wantScope: "orders:write"},
		{name: "repeated and extra spaces collapse", call: call{form: grant("scope", "orders:read  orders:read"), basic: [2]string{"service-client-id", "s3cret"}}, wantScope: "orders:read"},
		{name: "basic with client_id repeated in the body", call: call{form: grant("client_id", "service-client-id"), basic: [2]string{"service-client-id", "s3cret"}}, wantScope: "orders:read orders:write"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.call.path = "/token"
			a := do(t, s, tt.call)
			if a.status != 200 || a.str("token_type") != "Bearer" || a.str("access_token") == "" || a.body["expires_in"] != float64(600) {
				t.Fatalf("got %d %v", a.status, a.body)
			}
			if a.str("scope") != tt.wantScope {
				t.Errorf("scope = %q, want %q", a.str("scope"), tt.wantScope)
			}
			if a.header.Get("Cache-Control") != "no-store" || a.header.Get("Pragma") != "no-cache" {
				t.Errorf("caching headers = %v", a.header)
			}
		})
	}
}

func TestSecretsWithReservedCharactersUseFormEncodedBasic(t *testing.T) {
	cfg := testConfig(t)
	secret := "p@ss:w rd+%/é"
	cfg.Clients = append(cfg.Clients, Client{ID: "svc:with space", SecretHash: hash(t, secret), Audiences: []string{"a"}, TTL: time.Minute, ClientCredentials: true})
	s := newServer(t, cfg, newClock())
	getToken(t, s, "svc:with space", secret)
	// The raw (not form-encoded) form of a secret with "+" is a different secret.
	r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(grant().Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth(url.QueryEscape("svc:with space"), secret)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized {
		t.Errorf("unencoded Basic credentials: %d, want 401", w.Code)
	}
}

// serveHTTP starts s on a real loopback server; the issuer is its URL
// followed by path.
func serveHTTP(t *testing.T, cfg Config, c *tokentest.Clock, path string) (*Server, string) {
	t.Helper()
	hs := httptest.NewUnstartedServer(nil)
	cfg.Issuer = "http://" + hs.Listener.Addr().String() + path
	s := newServer(t, cfg, c)
	hs.Config.Handler = s
	hs.Start()
	t.Cleanup(hs.Close)
	return s, cfg.Issuer
}

// TestTokensPassClaimcheckVerifierViaDiscovery is the contract with
// claimcheck: its own verifier, with keys found by OIDC or RFC 8414
// discovery, accepts the issuer's JWTs, whatever the algorithm, also for
// an issuer URL with a path.
func TestTokensPassClaimcheckVerifierViaDiscovery(t *testing.T) {
	for _, alg := range []string{"ES256", "RS256", "PS256", "ES384", "ES512", "EdDSA"} {
		for _, path := range []string{"", "/tenant-1"} {
			t.Run(alg+path, func(t *testing.T) {
				cfg := testConfig(t)
				cfg.Algorithm = alg
				s, iss := serveHTTP(t, cfg, newClock(), path)
				for _, disc := range []string{keys.DiscoveryOpenID, keys.DiscoveryOAuth} {
					v := remoteVerifier(t, iss, disc)
					tok := getToken(t, s, "service-client-id", "s3cret", "scope", "orders:read")
					got, err := v.Verify(context.Background(), tok)
					if err != nil {
						t.Fatalf("%s discovery: claimcheck's verifier rejected the token: %v", disc, err)
					}
					c := got.Claims
					if got.Header["typ"] != "at+jwt" || got.Header["alg"] != alg || got.KeyID == "" || got.Header["kid"] != got.KeyID {
						t.Errorf("header = %v", got.Header)
					}
					if c["iss"] != iss || c["aud"] != "orders-api" || c["sub"] != "service-client-id" || c["client_id"] != "service-client-id" ||
						c["scope"] != "orders:read" || c["jti"] == "" || c["iat"] == nil || c["exp"] == nil {
						t.Errorf("claims = %v", c)
					}
					if c["tenant"] != "acme" || c["roles"].([]any)[0] != "reader" {
						t.Errorf("extra claims missing: %v", c)
					}
				}
			})
		}
	}
}

func remoteVerifier(t *testing.T, issuer, discovery string) *token.Verifier {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	r, err := keys.NewRemote(ctx, keys.RemoteConfig{Issuer: issuer, Discovery: discovery})
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := r.WaitReady(wctx); err != nil {
		t.Fatalf("keys by %s discovery: %v", discovery, err)
	}
	v, err := token.NewVerifier([]token.Issuer{{Issuer: issuer, Audiences: []string{"orders-api"}, Keys: r}})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestExtraClaimsCannotOverrideRegisteredOnes(t *testing.T) {
	s := newServer(t, testConfig(t), newClock())
	tok := getToken(t, s, "service-client-id", "s3cret")
	a := introspect(t, s, tok)
	if a.body["sub"] != "service-client-id" || a.body["tenant"] != "acme" {
		t.Errorf("claims = %v", a.body)
	}
}

func TestMetadataDocuments(t *testing.T) {
	cfg := testConfig(t)
	cfg.Issuer = "https://id.test.example/tenant-1"
	s := newServer(t, cfg, newClock())
	for _, path := range []string{"/tenant-1/.well-known/openid-configuration", "/.well-known/oauth-authorization-server/tenant-1"} {
		a := do(t, s, call{method: http.MethodGet, path: path})
		if a.status != 200 {
			t.Fatalf("%s: %d", path, a.status)
		}
		b := a.body
		if b["issuer"] != cfg.Issuer || b["token_endpoint"] != cfg.Issuer+"/token" || b["jwks_uri"] != cfg.Issuer+"/jwks.json" ||
			b["introspection_endpoint"] != cfg.Issuer+"/introspect" {
			t.Errorf("%s: %v", path, b)
		}
		if g := b["grant_types_supported"].([]any); len(g) != 1 || g[0] != "client_credentials" {
			t.Errorf("grant_types_supported = %v", g)
		}
		if m := b["token_endpoint_auth_methods_supported"].([]any); len(m) != 2 || m[0] != "client_secret_basic" || m[1] != "client_secret_post" {
			t.Errorf("auth methods = %v", m)
		}
		if sc := b["scopes_supported"].([]any); len(sc) != 2 {
			t.Errorf("scopes_supported = %v", sc)
		}
	}
	if a := do(t, s, call{method: http.MethodGet, path: "/tenant-1/jwks.json"}); a.status != 200 || !strings.Contains(a.header.Get("Cache-Control"), "max-age") {
		t.Errorf("jwks: %d %v", a.status, a.header)
	}
	if a := do(t, s, call{method: http.MethodGet, path: "/token"}); a.status != 404 {
		t.Errorf("endpoint outside the issuer path: %d", a.status)
	}
}

func introspect(t testing.TB, s *Server, tok string) answer {
	t.Helper()
	return do(t, s, call{path: endpoint(s, IntrospectPath), form: url.Values{"token": {tok}}, basic: [2]string{"resource-server", "rs-secret"}})
}

func TestIntrospection(t *testing.T) {
	c := newClock()
	s := newServer(t, testConfig(t), c)
	jwt := getToken(t, s, "service-client-id", "s3cret", "scope", "orders:read")
	opaque := getToken(t, s, "opaque-client", "opaque-secret")
	if strings.Contains(opaque, ".") || len(opaque) < 40 {
		t.Fatalf("opaque token %q looks like a JWT or is short", opaque)
	}
	other := tokentest.NewECKey(t, "other")
	foreign := tokentest.Mint(t, other, tokentest.Claims(testIssuer, "orders-api", time.Hour))

	t.Run("active JWT", func(t *testing.T) {
		a := introspect(t, s, jwt)
		if a.status != 200 || a.body["active"] != true || a.str("client_id") != "service-client-id" || a.str("scope") != "orders:read" ||
			a.str("iss") != testIssuer || a.str("token_type") != "Bearer" || a.body["exp"] == nil || a.str("tenant") != "acme" {
			t.Fatalf("got %d %v", a.status, a.body)
		}
		if a.header.Get("Cache-Control") != "no-store" {
			t.Error("introspection answer may be cached")
		}
	})
	t.Run("active opaque", func(t *testing.T) {
		a := introspect(t, s, opaque)
		aud, _ := a.body["aud"].([]any)
		if a.body["active"] != true || a.str("client_id") != "opaque-client" || a.str("sub") != "opaque-client" || len(aud) != 2 || a.str("scope") != "orders:read" {
			t.Fatalf("got %d %v", a.status, a.body)
		}
	})
	for name, tok := range map[string]string{
		"unknown opaque": "bm90LWEtdG9rZW4tYnV0LWxvbmctZW5vdWdoLXRvLWxvb2stbGlrZS1vbmU",
		"foreign JWT":    foreign,
		"tampered JWT":   jwt[:len(jwt)-4] + "AAAA",
		"garbage":        "a.b.c",
	} {
		t.Run(name+" is inactive", func(t *testing.T) {
			a := introspect(t, s, tok)
			if a.status != 200 || len(a.body) != 1 || a.body["active"] != false {
				t.Fatalf("got %d %v, want only active: false", a.status, a.body)
			}
		})
	}
	t.Run("expired tokens are inactive", func(t *testing.T) {
		c.Advance(10*time.Minute + time.Second)
		for _, tok := range []string{jwt, opaque} {
			if a := introspect(t, s, tok); a.body["active"] != false || len(a.body) != 1 {
				t.Errorf("expired token: %v", a.body)
			}
		}
	})

	errs := []struct {
		name   string
		call   call
		status int
		code   string
	}{
		{name: "client not allowed to introspect", call: call{form: url.Values{"token": {jwt}}, basic: [2]string{"service-client-id", "s3cret"}}, status: 403, code: "unauthorized_client"},
		{name: "no client authentication", call: call{form: url.Values{"token": {jwt}}}, status: 401, code: "invalid_client"},
		{name: "wrong secret", call: call{form: url.Values{"token": {jwt}}, basic: [2]string{"resource-server", "nope"}}, status: 401, code: "invalid_client"},
		{name: "no token", call: call{form: url.Values{"token_type_hint": {"access_token"}}, basic: [2]string{"resource-server", "rs-secret"}}, status: 400, code: "invalid_request"},
		{name: "GET", call: call{method: http.MethodGet, basic: [2]string{"resource-server", "rs-secret"}}, status: 405, code: "invalid_request"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			tt.call.path = "/introspect"
			tt.call.remote = "198.51.100.7:1" // failures here must not lock out the cases above
			a := do(t, s, tt.call)
			if a.status != tt.status || a.str("error") != tt.code {
				t.Fatalf("got %d %v, want %d %s", a.status, a.body, tt.status, tt.code)
			}
			if _, leaked := a.body["active"]; leaked {
				t.Error("an error answer says whether the token is active")
			}
		})
	}
}

// jwksKIDs returns the kids of the published JWKS.
func jwksKIDs(t testing.TB, s *Server) []string {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/jwks.json", nil)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
			D   string `json:"d"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		if k.D != "" {
			t.Fatal("the JWKS publishes a private key")
		}
		kids = append(kids, k.KID)
	}
	return kids
}

func kidOf(t testing.TB, jwt string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(jwt, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		KID string `json:"kid"`
	}
	json.Unmarshal(b, &h)
	return h.KID
}

// TestKeyRotationWithOverlap: after the interval a new key signs; the old
// one stays in the JWKS, and its tokens stay valid, until the overlap has
// passed; the keys survive a restart.
func TestKeyRotationWithOverlap(t *testing.T) {
	c := newClock()
	cfg := testConfig(t) // interval 1h, overlap 10m, TTL 10m
	s := newServer(t, cfg, c)
	first := getToken(t, s, "service-client-id", "s3cret")
	kid1 := kidOf(t, first)
	if kids := jwksKIDs(t, s); len(kids) != 1 || kids[0] != kid1 {
		t.Fatalf("JWKS = %v, want [%s]", kids, kid1)
	}

	c.Advance(time.Hour - 5*time.Minute)
	late := getToken(t, s, "service-client-id", "s3cret") // the old key's last token, valid 10m more
	if kidOf(t, late) != kid1 {
		t.Fatal("rotated before the interval")
	}
	c.Advance(5 * time.Minute)
	second := getToken(t, s, "service-client-id", "s3cret")
	kid2 := kidOf(t, second)
	if kid2 == kid1 {
		t.Fatal("no new signing key after the interval")
	}
	if kids := jwksKIDs(t, s); len(kids) != 2 {
		t.Fatalf("JWKS during the overlap = %v, want both keys", kids)
	}
	c.Advance(4 * time.Minute)
	if a := introspect(t, s, late); a.body["active"] != true {
		t.Fatalf("a token of the replaced key is inactive during the overlap: %v", a.body)
	}

	// Restart on the same key dir: the same keys, no rotation.
	s2 := newServer(t, cfg, c)
	if kids := jwksKIDs(t, s2); len(kids) != 2 || kids[1] != kid2 {
		t.Fatalf("after restart JWKS = %v", kids)
	}
	third := getToken(t, s2, "service-client-id", "s3cret")
	if kidOf(t, third) != kid2 {
		t.Fatal("restart changed the signing key")
	}

	c.Advance(6 * time.Minute) // past the overlap: the old key's tokens have all expired
	if kids := jwksKIDs(t, s2); len(kids) != 1 || kids[0] != kid2 {
		t.Fatalf("JWKS after the overlap = %v, want [%s]", kids, kid2)
	}
	if a := introspect(t, s2, third); a.body["active"] != true {
		t.Fatalf("current key's token: %v", a.body)
	}
}

func TestChangedAlgorithmRotatesAtStart(t *testing.T) {
	c := newClock()
	cfg := testConfig(t)
	s := newServer(t, cfg, c)
	old := getToken(t, s, "service-client-id", "s3cret")
	cfg.Algorithm = "EdDSA"
	s2 := newServer(t, cfg, c)
	tok := getToken(t, s2, "service-client-id", "s3cret")
	if kidOf(t, tok) == kidOf(t, old) || len(jwksKIDs(t, s2)) != 2 {
		t.Fatalf("a new algorithm did not bring a new key: %v", jwksKIDs(t, s2))
	}
	if a := introspect(t, s2, old); a.body["active"] != true {
		t.Errorf("the ES256 token died with the algorithm change: %v", a.body)
	}
}

func TestKeyFileIsPrivate(t *testing.T) {
	cfg := testConfig(t)
	newServer(t, cfg, newClock())
	path := filepath.Join(cfg.KeyDir, KeyFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %04o, want 0600", fi.Mode().Perm())
	}
	if di, _ := os.Stat(cfg.KeyDir); di.Mode().Perm() != 0o700 {
		t.Errorf("key dir mode = %04o, want 0700", di.Mode().Perm())
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = New(cfg)
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("New with a readable key file: %v", err)
	}
	if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("New with a corrupt key file: %v", err)
	}
}

// TestFailedAuthenticationsAreRateLimited: a client_id, and a remote
// address, get FailedAuthBurst failures; then 429 with Retry-After, even
// for the right secret, until the bucket refills.
func TestFailedAuthenticationsAreRateLimited(t *testing.T) {
	c := newClock()
	s := newServer(t, testConfig(t), c) // burst 3, one per minute
	try := func(id, secret, remote string) answer {
		return do(t, s, call{path: "/token", form: grant(), basic: [2]string{id, secret}, remote: remote})
	}
	for i := range 3 {
		if a := try("service-client-id", "wrong", "203.0.113.1:1"); a.status != 401 {
			t.Fatalf("failure %d: %d", i+1, a.status)
		}
	}
	a := try("service-client-id", "s3cret", "203.0.113.2:1") // another address, same client
	if a.status != http.StatusTooManyRequests || a.str("error") != "invalid_client" || a.header.Get("Retry-After") != "60" {
		t.Fatalf("after the burst, per client: %d %v %v", a.status, a.body, a.header)
	}
	if a := try("opaque-client", "opaque-secret", "203.0.113.1:1"); a.status != http.StatusTooManyRequests {
		t.Fatalf("after the burst, per address: %d", a.status)
	}
	if a := try("opaque-client", "opaque-secret", "203.0.113.3:1"); a.status != 200 {
		t.Fatalf("another client from another address: %d %v", a.status, a.body)
	}
	for i := range 3 { // unknown client_ids share one bucket
		try("nobody-"+string(rune('a'+i)), "x", "203.0.113.10:1")
	}
	if a := try("nobody-else", "x", "203.0.113.11:1"); a.status != http.StatusTooManyRequests {
		t.Fatalf("unknown client ids: %d", a.status)
	}
	c.Advance(time.Minute)
	if a := try("service-client-id", "s3cret", "203.0.113.2:1"); a.status != 200 {
		t.Fatalf("after refill: %d %v", a.status, a.body)
	}
}

func TestFailureLimiterStaysBounded(t *testing.T) {
	f := newFailureLimiter(time.Minute, 1, 4)
	now := time.Now()
	for i := range 10 {
		f.fail(now, "ip:"+string(rune('a'+i)))
	}
	if len(f.buckets) > 5 {
		t.Fatalf("%d buckets, bound 4 and the shared one", len(f.buckets))
	}
	if _, blocked := f.blocked(now, "ip:zz"); !blocked {
		t.Error("a new key while the map is full is not in the shared overflow bucket")
	}
	later := now.Add(time.Minute)
	f.fail(later, "ip:new")
	if _, ok := f.buckets["ip:new"]; !ok {
		t.Error("refilled buckets were not dropped to make room")
	}
}

func TestOpaqueStoreIsBounded(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxOpaqueTokens = 2
	c := newClock()
	s := newServer(t, cfg, c)
	toks := []string{getToken(t, s, "opaque-client", "opaque-secret"), getToken(t, s, "opaque-client", "opaque-secret"), getToken(t, s, "opaque-client", "opaque-secret")}
	if n := s.opaque.len(); n != 2 {
		t.Fatalf("store holds %d, bound 2", n)
	}
	want := []bool{false, true, true}
	for i, tok := range toks {
		if got := introspect(t, s, tok).body["active"] == true; got != want[i] {
			t.Errorf("token %d active = %v, want %v", i, got, want[i])
		}
	}
	c.Advance(10 * time.Minute)
	getToken(t, s, "opaque-client", "opaque-secret")
	if n := s.opaque.len(); n != 1 {
		t.Errorf("expired tokens kept: %d", n)
	}
}

func TestNewRejectsUnsafeConfigs(t *testing.T) {
	tests := map[string]func(*Config){
		"overlap shorter than a token": func(c *Config) { c.RotationOverlap = time.Minute },
		"plain-text secret":            func(c *Config) { c.Clients[0].SecretHash = "s3cret" },
		"duplicate client":             func(c *Config) { c.Clients[1].ID = c.Clients[0].ID },
		"issuer with a trailing slash": func(c *Config) { c.Issuer += "/" },
		"unknown algorithm":            func(c *Config) { c.Algorithm = "HS256" },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t)
			mutate(&cfg)
			if _, err := New(cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestKeyDirThatCannotBeCreated(t *testing.T) {
	cfg := testConfig(t)
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	cfg.KeyDir = filepath.Join(file, "keys")
	_, err := New(cfg)
	if err == nil || !strings.Contains(err.Error(), "key dir") {
		t.Fatalf("New: %v", err)
	}
}
