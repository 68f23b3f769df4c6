package main

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

// TestAttackSuite sends every token of tokentest.Attacks, and a few
// attacks on the request itself, to the real binary over gRPC and over
// HTTP forward-auth. Each must be denied with 401, its reason code and an
// RFC 6750 invalid_token challenge; the attacker's server must never be
// fetched; and afterwards the server must still be healthy and allow a
// genuine token on both transports.
func TestAttackSuite(t *testing.T) {
	target := tokentest.Target{
		Audience:   "orders-api",
		RSA:        tokentest.NewRSAKey(t, "rsa-1"),
		RequireTyp: "at+jwt",
		Other:      tokentest.NewRSAKey(t, "other-1"),
		Now:        time.Now(),
	}
	for _, alg := range []string{"ES256", "ES384", "ES512"} {
		target.EC = append(target.EC, tokentest.NewECKeyFor(t, "ec-"+alg, alg))
	}
	idp := tokentest.NewJWKSServer(t, append([]*tokentest.Key{target.RSA}, target.EC...)...)
	target.Issuer = idp.URL
	attacker := tokentest.NewJWKSServer(t, tokentest.NewRSAKey(t, "attacker-1"))
	target.AttackerURL = attacker.URL

	dir := t.TempDir()
	const otherIssuer, pemIssuer = "https://other.example.com", "https://pem.example.com"
	pemKey := tokentest.NewRSAKey(t, "pem-1")
	pemFile := filepath.Join(dir, "issuer.pem")
	writeFile(t, pemFile, string(tokentest.PublicKeyPEM(t, pemKey)))
	policyFile := filepath.Join(dir, "attack.rego")
	writeFile(t, policyFile, "package attack\n\ndefault allow := false\n\nallow if input.token.issuer != \"\"\n")
	httpAddr := freeAddr(t)
	s := startServer(t, fmt.Sprintf(`
listen: {grpc: "{{LISTEN}}", http: %q}
issuers:
  - issuer: %s
    audiences: [orders-api]
    jwks_uri: %s
    require_typ: at+jwt
  - issuer: %s
    audiences: [orders-api]
    jwks_file: %s
  - issuer: %s
    audiences: [orders-api]
    public_key_file: %s
policy: {paths: [%s], decision: attack/allow}
`, httpAddr, idp.URL, idp.JWKSURI(), otherIssuer, tokentest.WriteJWKSFile(t, dir, target.Other), pemIssuer, pemFile, policyFile), freeAddr(t))
	s.waitHealth(t, healthpb.HealthCheckResponse_SERVING)
	fa := &forwardAuthClient{url: "http://" + httpAddr, client: &http.Client{Timeout: 10 * time.Second}}

	genuine := func(iss string, k *tokentest.Key, typ string) string {
		c := tokentest.Claims(iss, "orders-api", time.Hour)
		return tokentest.Mint(t, k, c, tokentest.WithHeader("typ", typ))
	}
	// The setup works: genuine tokens of each issuer are allowed, in every
	// accepted spelling of the required typ.
	for _, tok := range []string{
		genuine(idp.URL, target.RSA, "at+jwt"), genuine(idp.URL, target.EC[2], "AT+JWT"),
		genuine(idp.URL, target.EC[0], "application/at+jwt"),
		genuine(otherIssuer, target.Other, "JWT"), genuine(pemIssuer, pemKey, "JWT"),
	} {
		expectAllowed(t, s, fa, tok)
	}

	attacks := tokentest.Attacks(t, target)
	attacks = append(attacks, tokentest.KeyConfusion(t, pemIssuer, "orders-api", pemKey, target.Now)...)
	for _, a := range attacks {
		t.Run("grpc/"+a.Name, func(t *testing.T) {
			expectRejectedGRPC(t, s, request("GET", "/orders", bearer(a.Token)), a.Reason)
		})
		t.Run("http/"+a.Name, func(t *testing.T) {
			expectRejectedHTTP(t, fa.send(t, a.Token, nil), a.Reason)
		})
	}

	forged := tokentest.Mint(t, tokentest.NewRSAKey(t, "rsa-1"), tokentest.Claims(idp.URL, "orders-api", time.Hour), tokentest.WithHeader("typ", "at+jwt"))
	// Past limits.max_headers (200) and limits.max_header_bytes (64 KiB) a
	// request is refused whole, before its token is looked at.
	t.Run("grpc/1000 request headers", func(t *testing.T) {
		h := bearer(forged)
		for i := range 1000 {
			h[fmt.Sprintf("x-attack-%d", i)] = strings.Repeat("v", 20)
		}
		expectHeadersTooLargeGRPC(t, s, request("GET", "/orders", h))
	})
	t.Run("http/1000 request headers", func(t *testing.T) {
		h := http.Header{}
		for i := range 1000 {
			h.Set(fmt.Sprintf("X-Attack-%d", i), strings.Repeat("v", 20))
		}
		a := fa.send(t, forged, h)
		if a.status != http.StatusRequestHeaderFieldsTooLarge || a.header.Get("X-Claimcheck-Reason") != "headers_too_large" {
			t.Errorf("status %d reason %q, want 431 headers_too_large", a.status, a.header.Get("X-Claimcheck-Reason"))
		}
	})
	t.Run("grpc/token of 1 MiB", func(t *testing.T) {
		expectHeadersTooLargeGRPC(t, s, request("GET", "/orders", bearer(strings.Repeat("A", 1<<20))))
	})
	t.Run("http/token of 100 KiB, past the header limit", func(t *testing.T) {
		resp := fa.send(t, strings.Repeat("A", 100<<10), nil)
		if resp.status != http.StatusRequestHeaderFieldsTooLarge || resp.header.Get("X-Claimcheck-Reason") != "headers_too_large" {
			t.Errorf("status %d reason %q, want 431 headers_too_large", resp.status, resp.header.Get("X-Claimcheck-Reason"))
		}
	})

	t.Run("genuine token with a claim nested 4000 deep", func(t *testing.T) {
		// Not an attack the issuer's signature lets through, but the
		// decision path must survive what an issuer may sign.
		payload := tokentest.MustJSON(t, tokentest.Claims(idp.URL, "orders-api", time.Hour))
		payload = append([]byte(`{"deep":`+strings.Repeat("[", 4000)+strings.Repeat("]", 4000)+","), payload[1:]...)
		header := tokentest.MustJSON(t, map[string]string{"alg": "RS256", "kid": "rsa-1", "typ": "at+jwt"})
		expectAllowed(t, s, fa, tokentest.MintRaw(t, target.RSA, header, payload))
	})

	// Still up, still deciding: the attacks neither crashed nor wedged it.
	select {
	case err := <-s.done:
		t.Fatalf("claimcheck exited during the attacks: %v", err)
	default:
	}
	s.waitHealth(t, healthpb.HealthCheckResponse_SERVING)
	expectAllowed(t, s, fa, genuine(idp.URL, target.RSA, "at+jwt"))
	if n := attacker.AllRequests(); n != 0 {
		t.Errorf("the attacker's server (jku, x5u) got %d requests, want 0", n)
	}
	if code := s.stop(t); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
	log := s.stderr.String()
	for _, bad := range []string{"panic", "eyJ"} {
		if strings.Contains(log, bad) {
			t.Errorf("the log contains %q", bad)
		}
	}
	t.Logf("%d attack tokens denied over gRPC and HTTP", len(attacks))
}

// forwardAuthClient asks claimcheck's listen.http directly, as Envoy's
// http_service does: the forward-auth request is the original request.
type forwardAuthClient struct {
	url    string
	client *http.Client
}

type httpAnswer struct {
	status int
	header http.Header
	body   string
}

func (c *forwardAuthClient) send(t *testing.T, token string, extra http.Header) httpAnswer {
	t.Helper()
	req, err := http.NewRequest("GET", c.url+"/orders", nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range extra {
		req.Header[k] = vs
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return httpAnswer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func expectAllowed(t *testing.T, s *server, fa *forwardAuthClient, tok string) {
	t.Helper()
	if resp := s.check(t, request("GET", "/orders", bearer(tok))); codes.Code(resp.GetStatus().GetCode()) != codes.OK {
		t.Fatalf("gRPC: genuine token denied: %q %s", reason(resp), resp.GetDeniedResponse().GetBody())
	}
	if a := fa.send(t, tok, nil); a.status != http.StatusOK {
		t.Fatalf("HTTP: genuine token denied: %d %s", a.status, a.body)
	}
}

func expectRejectedGRPC(t *testing.T, s *server, req *authv3.CheckRequest, want string) {
	t.Helper()
	resp := s.check(t, req)
	if got := codes.Code(resp.GetStatus().GetCode()); got != codes.Unauthenticated {
		t.Fatalf("status %v, want Unauthenticated (reason %q)", got, reason(resp))
	}
	if got := resp.GetDeniedResponse().GetStatus().GetCode(); got != 401 {
		t.Errorf("HTTP status %d, want 401", got)
	}
	if got := reason(resp); got != want {
		t.Errorf("reason %q, want %q (%s)", got, want, resp.GetDeniedResponse().GetBody())
	}
	if wa := headerValue(resp, true, "www-authenticate"); !strings.HasPrefix(wa, `Bearer realm="claimcheck", error="invalid_token"`) {
		t.Errorf("WWW-Authenticate = %q", wa)
	}
}

func expectHeadersTooLargeGRPC(t *testing.T, s *server, req *authv3.CheckRequest) {
	t.Helper()
	resp := s.check(t, req)
	if code, status := codes.Code(resp.GetStatus().GetCode()), resp.GetDeniedResponse().GetStatus().GetCode(); code == codes.OK || status != 431 || reason(resp) != "headers_too_large" {
		t.Errorf("answer %v %d %q, want a 431 headers_too_large deny", code, status, reason(resp))
	}
}

func expectRejectedHTTP(t *testing.T, a httpAnswer, want string) {
	t.Helper()
	if a.status != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401 (reason %q)", a.status, a.header.Get("X-Claimcheck-Reason"))
	}
	if got := a.header.Get("X-Claimcheck-Reason"); got != want {
		t.Errorf("reason %q, want %q (%s)", got, want, a.body)
	}
	if wa := a.header.Get("WWW-Authenticate"); !strings.HasPrefix(wa, `Bearer realm="claimcheck", error="invalid_token"`) {
		t.Errorf("WWW-Authenticate = %q", wa)
	}
	if !strings.Contains(a.body, `"error":"invalid_token"`) {
		t.Errorf("body %q", a.body)
	}
}
