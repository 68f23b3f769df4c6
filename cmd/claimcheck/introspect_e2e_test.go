package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

// opaqueResource is the example provider's resource with opaque tokens.
const opaqueResource = "urn:orders-api:opaque"

// revoke revokes tok at the provider (RFC 7009), as its client.
func revoke(t *testing.T, issuer, clientID, secret, tok string) {
	t.Helper()
	req, err := http.NewRequest("POST", issuer+"/token/revocation", strings.NewReader(url.Values{"token": {tok}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revocation: %s", resp.Status)
	}
}

// introspectionConfig is examples/oidc-provider/claimcheck-opaque.yaml for
// the provider at issuer, with only addresses and paths changed — plus
// cache_ttl 0s, so a revocation counts at once, and the introspection
// endpoint when endpoint names one (else it comes from discovery).
func introspectionConfig(t *testing.T, issuer, endpoint string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(providerDir, "claimcheck-opaque.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	secret, err := filepath.Abs(filepath.Join(providerDir, "introspection.secret"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	for _, r := range [][2]string{
		{"listen:\n  grpc: \"127.0.0.1:9191\"", `listen: {grpc: "{{LISTEN}}"}`},
		{"http://127.0.0.1:9400", issuer},
		{"client_secret_file: introspection.secret", "client_secret_file: " + secret},
		{"paths: [../quickstart/policy]", "paths: [" + quickstartPolicy(t) + "]"},
		{"cache_ttl: 30s", "cache_ttl: 0s"},
	} {
		if !strings.Contains(cfg, r[0]) {
			t.Fatalf("claimcheck-opaque.yaml no longer holds %q", r[0])
		}
		cfg = strings.Replace(cfg, r[0], r[1], 1)
	}
	if endpoint != "" {
		// With its endpoint given, an issuer needs discovery said for its
		// keys; without, it would be key-less (opaque tokens only).
		cfg = strings.Replace(cfg, "client_id: claimcheck", "client_id: claimcheck\n      endpoint: "+endpoint, 1)
		cfg = strings.Replace(cfg, "    introspection:", "    discovery: openid\n    introspection:", 1)
	}
	return cfg
}

// TestRealProviderOpaqueTokens runs the real binary against a real OpenID
// provider issuing opaque access tokens for the client-credentials grant:
// they are introspected (endpoint by discovery, client_secret_basic),
// checked and decided by the quickstart's client_id policy, while the
// provider's JWTs are still verified locally.
func TestRealProviderOpaqueTokens(t *testing.T) {
	issuer := startOIDCProvider(t)
	s := startServer(t, introspectionConfig(t, issuer, ""), freeAddr(t))
	s.waitHealth(t, healthpb.HealthCheckResponse_SERVING)

	allowed := clientCredentialsToken(t, issuer, "service-client-id", "service-secret", true, opaqueResource)
	refused := clientCredentialsToken(t, issuer, "some-other-client", "other-secret", false, opaqueResource)
	revoked := clientCredentialsToken(t, issuer, "service-client-id", "service-secret", true, opaqueResource)
	jwt := clientCredentialsToken(t, issuer, "service-client-id", "service-secret", true)
	if strings.Count(allowed, ".") == 2 || strings.Count(jwt, ".") != 2 {
		t.Fatalf("the provider gave %q for the opaque resource and %q for the JWT one", allowed, jwt)
	}
	if resp := s.check(t, request("GET", "/orders/7", bearer(revoked))); reason(resp) != "allowed" {
		t.Fatalf("before revocation: %q", reason(resp))
	}
	revoke(t, issuer, "service-client-id", "service-secret", revoked)

	tests := []struct {
		name   string
		tok    string
		code   codes.Code
		reason string
	}{
		{"the allowed service's opaque token", allowed, codes.OK, "allowed"},
		{"another service's opaque token", refused, codes.PermissionDenied, "policy_denied"},
		{"a revoked opaque token", revoked, codes.Unauthenticated, "token_inactive"},
		{"an opaque token the provider never issued", "Xq3pYl0b7kWzR2vT9mNcA4sDfGhJkLqWeRtYuIoP1zc", codes.Unauthenticated, "token_inactive"},
		{"the provider's JWT, verified locally", jwt, codes.OK, "allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expectAnswer(t, s, request("GET", "/orders/7", bearer(tt.tok)), tt.code, tt.reason)
		})
	}
	if code := s.stop(t); code != 0 {
		t.Errorf("exit code = %d", code)
	}

	t.Run("the policy input of an opaque token", func(t *testing.T) {
		cfg := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(cfg, []byte(strings.ReplaceAll(introspectionConfig(t, issuer, ""), "{{LISTEN}}", freeAddr(t))), 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := runCLI(t, "", "check", "--config", cfg, "--path", "/orders/7", "--token", allowed)
		if code != 0 {
			t.Fatalf("check: exit %d %s %s", code, out, errOut)
		}
		var got struct {
			Input struct {
				Token struct {
					Kind   string         `json:"kind"`
					Issuer string         `json:"issuer"`
					Claims map[string]any `json:"claims"`
					Scopes []string       `json:"scopes"`
				} `json:"token"`
			} `json:"input"`
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatal(err)
		}
		tok := got.Input.Token
		if tok.Kind != "opaque" || tok.Issuer != issuer || tok.Claims["client_id"] != "service-client-id" ||
			tok.Claims["aud"] != "orders-api" || strings.Join(tok.Scopes, " ") != "orders:read" {
			t.Errorf("input.token = %+v", tok)
		}
	})
}

// TestIntrospectionOutageIsUnavailable runs the real binary with an
// introspection endpoint nobody listens on: an opaque token is answered
// UNAVAILABLE (503), never allowed, while the issuer's JWTs still work.
func TestIntrospectionOutageIsUnavailable(t *testing.T) {
	issuer := startOIDCProvider(t)
	s := startServer(t, introspectionConfig(t, issuer, "http://"+freeAddr(t)+"/introspect"), freeAddr(t))
	s.waitHealth(t, healthpb.HealthCheckResponse_SERVING)
	opaque := clientCredentialsToken(t, issuer, "service-client-id", "service-secret", true, opaqueResource)
	jwt := clientCredentialsToken(t, issuer, "service-client-id", "service-secret", true)
	expectAnswer(t, s, request("GET", "/orders/7", bearer(jwt)), codes.OK, "allowed")
	expectAnswer(t, s, request("GET", "/orders/7", bearer(opaque)), codes.Unavailable, "introspection_unavailable")
	if resp := s.check(t, request("GET", "/orders/7", bearer(opaque))); resp.GetDeniedResponse().GetStatus().GetCode() != 503 {
		t.Errorf("HTTP status %v, want 503", resp.GetDeniedResponse().GetStatus().GetCode())
	}
}

// TestIntrospectAlwaysAndUserinfoThroughTheBinary runs the real binary with
// an issuer whose every JWT is introspected too (introspect: always,
// client_secret_post) and whose userinfo, found by discovery, a policy
// reads.
func TestIntrospectAlwaysAndUserinfoThroughTheBinary(t *testing.T) {
	key := tokentest.NewECKey(t, "ec-1")
	idp := tokentest.NewJWKSServer(t, key)
	endpoints := tokentest.NewIntrospectionServer(t, "claimcheck", "s3cret")
	idp.SetMetadata("userinfo_endpoint", endpoints.UserinfoEndpoint())
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	policyFile := filepath.Join(dir, "userinfo.rego")
	for path, body := range map[string]string{
		secret: "s3cret\n",
		policyFile: `package claimcheck.authz

default allow := false

allow if endswith(input.token.userinfo.email, "@example.com")
`,
	} {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := startServer(t, fmt.Sprintf(`
listen: {grpc: "{{LISTEN}}"}
issuers:
  - issuer: %s
    audiences: [orders-api]
    discovery: openid
    introspect: always
    introspection: {endpoint: %s, client_id: claimcheck, client_secret_file: %s, auth: client_secret_post}
    userinfo: {}
policy: {paths: [%s]}
`, idp.URL, endpoints.IntrospectionEndpoint(), secret, policyFile), freeAddr(t))
	s.waitHealth(t, healthpb.HealthCheckResponse_SERVING)

	mint := func(email string, active bool) string {
		tok := tokentest.Mint(t, key, tokentest.Claims(idp.URL, "orders-api", time.Hour))
		if active {
			endpoints.SetActive(tok, map[string]any{"iss": idp.URL})
		}
		if email != "" {
			endpoints.SetUserinfo(tok, map[string]any{"sub": "tokentest-subject", "email": email})
		}
		return tok
	}
	tests := []struct {
		name   string
		tok    string
		code   codes.Code
		reason string
	}{
		{"an active token whose userinfo the policy likes", mint("svc@example.com", true), codes.OK, "allowed"},
		{"an active token whose userinfo the policy refuses", mint("svc@elsewhere.example", true), codes.PermissionDenied, "policy_denied"},
		{"a signed JWT the issuer no longer calls active", mint("svc@example.com", false), codes.Unauthenticated, "token_inactive"},
		{"an active token the userinfo endpoint refuses", mint("", true), codes.Unauthenticated, "userinfo_rejected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := s.check(t, request("GET", "/orders/7", bearer(tt.tok)))
			if got := codes.Code(resp.GetStatus().GetCode()); got != tt.code || reason(resp) != tt.reason {
				t.Fatalf("got %v %q, want %v %q (body %q)", got, reason(resp), tt.code, tt.reason, resp.GetDeniedResponse().GetBody())
			}
		})
	}
	if auth := endpoints.LastAuth(); auth.Method != "client_secret_post" || auth.Secret != "s3cret" {
		t.Errorf("introspection authenticated as %+v", auth)
	}
}
