package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

// opaqueIssuerClients are the built-in issuer's clients for the opaque
// token tests; allowlistPolicy allows service-client-id (opaque tokens) and
// jwt-client-id (JWTs).
func opaqueIssuerClients(t *testing.T) string {
	return fmt.Sprintf(`  - client_id: service-client-id
    client_secret_hash: %q
    token_format: opaque
    scopes: [orders:read]
    claims: {tenant: acme}
  - client_id: some-other-client
    client_secret_hash: %q
    token_format: opaque
  - client_id: short-lived-client
    client_secret_hash: %q
    token_format: opaque
    token_ttl: 1s
  - client_id: jwt-client-id
    client_secret_hash: %q
  - client_id: claimcheck
    client_secret_hash: %q
    introspect: true
    grant_types: []
`, testHash(t, "service-secret"), testHash(t, "other-secret"), testHash(t, "short-secret"), testHash(t, "jwt-secret"), testHash(t, "claimcheck-secret"))
}

// allowlistPolicy is the quickstart policy with service-client-id and
// jwt-client-id on its allowlist.
func allowlistPolicy(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	rego, err := os.ReadFile(filepath.Join(quickstartPolicy(t), "authz.rego"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "authz.rego"), string(rego))
	writeFile(t, filepath.Join(dir, "data.json"), `{"quickstart": {"allowed_clients": ["service-client-id", "jwt-client-id"]}}`)
	return dir
}

// introspectingServer starts `claimcheck serve` for iss, its keys by
// discovery and its tokens introspected in mode (endpoint by discovery, as
// its client "claimcheck"), answers reused for at most cacheTTL, with a
// gRPC and a forward-auth listener.
func introspectingServer(t *testing.T, iss *issuerProc, mode, cacheTTL string) (*server, *forwardAuthClient) {
	t.Helper()
	secret := filepath.Join(t.TempDir(), "introspection.secret")
	if err := os.WriteFile(secret, []byte("claimcheck-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	httpAddr := freeAddr(t)
	cfg := discoveryConfig(t, iss.url, "{client_id: x-client-id}")
	for _, r := range [][2]string{
		{`listen: {grpc: "{{LISTEN}}"}`, fmt.Sprintf(`listen: {grpc: "{{LISTEN}}", http: %q}`, httpAddr)},
		{quickstartPolicy(t), allowlistPolicy(t)},
		{"    algorithms: [ES256]\n", fmt.Sprintf("    algorithms: [ES256]\n    introspect: %s\n    introspection: {client_id: claimcheck, client_secret_file: %s, cache_ttl: %s}\n", mode, secret, cacheTTL)},
	} {
		cfg = mustReplace(t, cfg, r[0], r[1])
	}
	s := startServer(t, cfg, freeAddr(t))
	s.waitHealth(t, healthpb.HealthCheckResponse_SERVING)
	return s, &forwardAuthClient{url: "http://" + httpAddr, client: &http.Client{Timeout: 10 * time.Second}}
}

// expectBoth asks s over gRPC and fa over HTTP about tok and fails unless
// both answer status (an HTTP status) with reason, and an allow forwards
// the token's client_id.
func expectBoth(t *testing.T, s *server, fa *forwardAuthClient, tok string, status int, wantReason string) {
	t.Helper()
	resp := s.check(t, request("GET", "/orders", bearer(tok)))
	got := 200
	if codes.Code(resp.GetStatus().GetCode()) != codes.OK {
		got = int(resp.GetDeniedResponse().GetStatus().GetCode())
	}
	if got != status || reason(resp) != wantReason {
		t.Fatalf("gRPC: %v %d %q, want %d %q (%s)", codes.Code(resp.GetStatus().GetCode()), got, reason(resp), status, wantReason, resp.GetDeniedResponse().GetBody())
	}
	grpcClient := headerValue(resp, false, "x-client-id")
	a := fa.send(t, tok, nil)
	if a.status != status || a.header.Get("X-Claimcheck-Reason") != wantReason {
		t.Fatalf("HTTP: %d %q, want %d %q (%s)", a.status, a.header.Get("X-Claimcheck-Reason"), status, wantReason, a.body)
	}
	if status == 200 && (grpcClient == "" || a.header.Get("X-Client-Id") != grpcClient) {
		t.Errorf("forwarded client_id: gRPC %q, HTTP %q", grpcClient, a.header.Get("X-Client-Id"))
	}
}

// TestIssuerOpaqueTokensEndToEnd is the opaque-token path of the seeds'
// flow with real components: services with x/oauth2 clientcredentials get
// opaque tokens from the `claimcheck issuer` binary, and `claimcheck serve`
// binaries introspect them there (endpoint by discovery) and decide over
// gRPC and forward-auth. One introspects opaque tokens only (answers reused
// up to a minute), the other every token (introspect: always, for a second).
func TestIssuerOpaqueTokensEndToEnd(t *testing.T) {
	iss := startIssuer(t, opaqueIssuerClients(t))
	opaque, opaqueHTTP := introspectingServer(t, iss, "opaque", "1m")
	always, alwaysHTTP := introspectingServer(t, iss, "always", "1s")

	ctx := context.Background()
	get := func(id, secret string) *oauth2.Token {
		t.Helper()
		tok, err := (&clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: iss.url + "/token", AuthStyle: oauth2.AuthStyleInHeader}).Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	allowed := get("service-client-id", "service-secret")
	refused := get("some-other-client", "other-secret")
	shortLived := get("short-lived-client", "short-secret")
	jwt := get("jwt-client-id", "jwt-secret")
	if strings.Count(allowed.AccessToken, ".") == 2 || strings.Count(jwt.AccessToken, ".") != 2 {
		t.Fatalf("the issuer gave %q to the opaque client and %q to the JWT one", allowed.AccessToken, jwt.AccessToken)
	}

	for _, srv := range []struct {
		name string
		s    *server
		fa   *forwardAuthClient
	}{{"introspect opaque", opaque, opaqueHTTP}, {"introspect always", always, alwaysHTTP}} {
		t.Run(srv.name, func(t *testing.T) {
			tests := []struct {
				name   string
				tok    string
				status int
				reason string
			}{
				{"the allowlisted client's opaque token", allowed.AccessToken, 200, "allowed"},
				{"another client's opaque token", refused.AccessToken, 403, "policy_denied"},
				{"an opaque token the issuer never issued", "Xq3pYl0b7kWzR2vT9mNcA4sDfGhJkLqWeRtYuIoP1zc", 401, "token_inactive"},
				{"the issuer's JWT", jwt.AccessToken, 200, "allowed"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) { expectBoth(t, srv.s, srv.fa, tt.tok, tt.status, tt.reason) })
			}
		})
	}
	resp := opaque.check(t, request("GET", "/orders", bearer(allowed.AccessToken)))
	if headerValue(resp, false, "x-client-id") != "service-client-id" {
		t.Errorf("forwarded x-client-id = %q", headerValue(resp, false, "x-client-id"))
	}

	t.Run("an expired opaque token", func(t *testing.T) {
		// Active until its exp, and only then re-introspected, though the
		// server reuses answers for a minute.
		expectBoth(t, opaque, opaqueHTTP, shortLived.AccessToken, 403, "policy_denied")
		time.Sleep(time.Until(shortLived.Expiry) + time.Second)
		expectBoth(t, opaque, opaqueHTTP, shortLived.AccessToken, 401, "token_inactive")
	})

	t.Run("an issuer restart forgets its opaque tokens", func(t *testing.T) {
		expectBoth(t, always, alwaysHTTP, allowed.AccessToken, 200, "allowed")
		iss.stop(t)
		iss.start(t)
		// The always server reuses the answer for at most its cache_ttl.
		deadline := time.Now().Add(15 * time.Second)
		for {
			resp := always.check(t, request("GET", "/orders", bearer(allowed.AccessToken)))
			if r := reason(resp); r == "token_inactive" {
				break
			} else if r != "allowed" || time.Now().After(deadline) {
				t.Fatalf("after the restart: %q", r)
			}
			time.Sleep(100 * time.Millisecond)
		}
		expectBoth(t, always, alwaysHTTP, allowed.AccessToken, 401, "token_inactive")
		// Its JWTs outlive it: the signing keys are on disk.
		expectBoth(t, always, alwaysHTTP, jwt.AccessToken, 200, "allowed")
		// What cache_ttl trades: the other server keeps its answer a minute.
		expectBoth(t, opaque, opaqueHTTP, allowed.AccessToken, 200, "allowed")
	})

	t.Run("an issuer outage is 503, never allow", func(t *testing.T) {
		fresh := get("service-client-id", "service-secret")
		iss.stop(t)
		expectBoth(t, opaque, opaqueHTTP, fresh.AccessToken, 503, "introspection_unavailable")
		expectBoth(t, always, alwaysHTTP, fresh.AccessToken, 503, "introspection_unavailable")
		time.Sleep(1100 * time.Millisecond) // past the always server's cache_ttl
		expectBoth(t, always, alwaysHTTP, jwt.AccessToken, 503, "introspection_unavailable")
		// The opaque server verifies JWTs with the keys it has.
		expectBoth(t, opaque, opaqueHTTP, jwt.AccessToken, 200, "allowed")
	})
}

// TestKeylessIssuerEndToEnd runs the binary with issuers that publish no
// keys (no jwks_uri, key file or discovery; only an introspection
// endpoint): it becomes ready without fetching anything, introspects their
// opaque tokens and refuses every JWT naming them with key_unknown — even
// the built-in issuer's genuine ones, whose keys it is not told to fetch.
func TestKeylessIssuerEndToEnd(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "introspection.secret")
	if err := os.WriteFile(secret, []byte("claimcheck-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keylessConfig := func(issuer, endpoint string) string {
		return fmt.Sprintf(`
listen: {grpc: "{{LISTEN}}"}
issuers:
  - issuer: %s
    audiences: [orders-api]
    introspection: {endpoint: %s, client_id: claimcheck, client_secret_file: %s}
policy: {paths: [%s]}
forward:
  claims: {client_id: x-client-id}
`, issuer, endpoint, secret, quickstartPolicy(t))
	}

	t.Run("an identity provider of opaque tokens only", func(t *testing.T) {
		idp := tokentest.NewIntrospectionServer(t, "claimcheck", "claimcheck-secret")
		adminAddr := freeAddr(t)
		cfg := mustReplace(t, keylessConfig("opaque-idp", idp.IntrospectionEndpoint()), `grpc: "{{LISTEN}}"`, fmt.Sprintf(`grpc: "{{LISTEN}}", admin: %q`, adminAddr))
		s := startServer(t, cfg, freeAddr(t))
		s.waitHealth(t, healthpb.HealthCheckResponse_SERVING)
		resp, err := http.Get("http://" + adminAddr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("/readyz: %s", resp.Status)
		}
		if !strings.Contains(s.stderr.String(), "no key source") {
			t.Errorf("no log line about the key-less issuer:\n%s", s.stderr)
		}
		idp.SetActive("opaque-allowed", map[string]any{"iss": "opaque-idp", "aud": "orders-api", "client_id": "service-client-id",
			"exp": time.Now().Add(time.Hour).Unix()})
		key := tokentest.NewECKey(t, "k")
		jwt := tokentest.Mint(t, key, tokentest.Claims("opaque-idp", "orders-api", time.Hour))
		idp.SetActive(jwt, map[string]any{"iss": "opaque-idp", "aud": "orders-api", "client_id": "service-client-id"})
		expectAnswer(t, s, request("GET", "/orders", bearer("opaque-allowed")), codes.OK, "allowed")
		expectAnswer(t, s, request("GET", "/orders", bearer("opaque-unknown")), codes.Unauthenticated, "token_inactive")
		expectRejectedGRPC(t, s, request("GET", "/orders", bearer(jwt)), "key_unknown")
		if n := idp.Requests(); n != 2 {
			t.Errorf("%d introspection requests, want 2 (the JWT is not sent)", n)
		}
	})

	t.Run("the built-in issuer, asked only by introspection", func(t *testing.T) {
		iss := startIssuer(t, opaqueIssuerClients(t))
		s := startServer(t, keylessConfig(iss.url, iss.url+"/introspect"), freeAddr(t))
		s.waitHealth(t, healthpb.HealthCheckResponse_SERVING)
		for _, tt := range []struct {
			id, secret string
			code       codes.Code
			reason     string
		}{
			{"service-client-id", "service-secret", codes.OK, "allowed"},
			{"some-other-client", "other-secret", codes.PermissionDenied, "policy_denied"},
			{"jwt-client-id", "jwt-secret", codes.Unauthenticated, "key_unknown"},
		} {
			tok, err := (&clientcredentials.Config{ClientID: tt.id, ClientSecret: tt.secret, TokenURL: iss.url + "/token"}).Token(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			expectAnswer(t, s, request("GET", "/orders", bearer(tok.AccessToken)), tt.code, tt.reason)
		}
	})
}

// TestShippedIssuerExample runs the README's "Built-in issuer" commands:
// examples/issuer/issuer.yaml and claimcheck.yaml, as shipped but for
// addresses, key directory and paths, with their public development
// secrets. A JWT and an opaque token of clients on the demo policy's
// allowlist are allowed over gRPC and forward-auth, another client's token
// is refused.
func TestShippedIssuerExample(t *testing.T) {
	addr := freeAddr(t)
	icfg := exampleFile(t, "issuer/issuer.yaml")
	for _, r := range [][2]string{
		{`listen: "127.0.0.1:9300"`, fmt.Sprintf("listen: %q", addr)},
		{"http://127.0.0.1:9300", "http://" + addr},
		{"key_dir: /tmp/claimcheck-example-issuer-keys", "key_dir: keys"},
	} {
		icfg = mustReplace(t, icfg, r[0], r[1])
	}
	iss := startIssuerConfig(t, addr, icfg)

	abs := func(rel string) string {
		p, err := filepath.Abs(filepath.Join("../../examples/issuer", rel))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	httpAddr := freeAddr(t)
	cfg := exampleFile(t, "issuer/claimcheck.yaml")
	for _, r := range [][2]string{
		{"  grpc: \"127.0.0.1:9191\"\n  http: \"127.0.0.1:9192\"", fmt.Sprintf("  grpc: \"{{LISTEN}}\"\n  http: %q\n  admin: %q", httpAddr, freeAddr(t))},
		{"http://127.0.0.1:9300", iss.url},
		{"client_secret_file: introspection.secret", "client_secret_file: " + abs("introspection.secret")},
		{"paths: [../demo/policy]", "paths: [" + abs("../demo/policy") + "]"},
	} {
		cfg = mustReplace(t, cfg, r[0], r[1])
	}
	s := startServer(t, cfg, freeAddr(t))
	s.waitHealth(t, healthpb.HealthCheckResponse_SERVING)
	fa := &forwardAuthClient{url: "http://" + httpAddr, client: &http.Client{Timeout: 10 * time.Second}}

	for _, tt := range []struct {
		id, secret string
		opaque     bool
		status     int
		reason     string
	}{
		{"service-client-id", "dev-secret-change-me", false, 200, "allowed"},
		{"opaque-service-id", "opaque-dev-secret", true, 200, "allowed"},
		{"some-other-client", "other-dev-secret", false, 403, "policy_denied"},
	} {
		t.Run(tt.id, func(t *testing.T) {
			tok, err := (&clientcredentials.Config{ClientID: tt.id, ClientSecret: tt.secret, TokenURL: iss.url + "/token", Scopes: []string{"orders:read"}}).Token(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if opaque := strings.Count(tok.AccessToken, ".") != 2; opaque != tt.opaque {
				t.Fatalf("opaque token: %v, want %v", opaque, tt.opaque)
			}
			expectBoth(t, s, fa, tok.AccessToken, tt.status, tt.reason)
		})
	}
}
