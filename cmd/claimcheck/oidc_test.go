package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

const providerDir = "../../examples/oidc-provider"

// startOIDCProvider runs examples/oidc-provider (panva's oidc-provider on
// Node) on a free loopback port and returns its issuer URL. Outside CI it
// skips when node or the npm packages are missing; in CI it fails, since
// .ci/run installs them.
func startOIDCProvider(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(providerDir, "node_modules", "oidc-provider"))
	}
	if err != nil {
		msg := fmt.Sprintf("the OpenID provider is not installed (%v): run npm ci --prefix examples/oidc-provider", err)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	_, port, _ := net.SplitHostPort(freeAddr(t))
	cmd := exec.Command(node, "server.mjs")
	cmd.Dir = providerDir
	cmd.Env = append(os.Environ(), "PORT="+port)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if iss, ok := strings.CutPrefix(sc.Text(), "ready "); ok {
				ready <- iss
			}
		}
	}()
	select {
	case iss := <-ready:
		return iss
	case <-time.After(30 * time.Second):
		t.Fatalf("oidc-provider did not start:\n%s", stderr.String())
	}
	return ""
}

// clientCredentialsToken gets an access token with the client-credentials
// grant, as a calling service would, optionally for an RFC 8707 resource.
func clientCredentialsToken(t *testing.T, issuer, clientID, secret string, basic bool, resource ...string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"orders:read"}, "resource": resource}
	if !basic {
		form.Set("client_id", clientID)
		form.Set("client_secret", secret)
	}
	req, err := http.NewRequest("POST", issuer+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(clientID, secret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error_description"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
		t.Fatalf("token endpoint: %d %v %q", resp.StatusCode, err, body.Error)
	}
	return body.AccessToken
}

// TestRealOpenIDProvider runs claimcheck against a real OpenID provider:
// keys by OIDC discovery, RFC 9068 access tokens from the client-credentials
// grant, the quickstart's client_id policy.
func TestRealOpenIDProvider(t *testing.T) {
	issuer := startOIDCProvider(t)
	s := startServer(t, discoveryConfig(t, issuer, "{client_id: x-client-id}"), freeAddr(t))
	s.waitHealth(t, healthpb.HealthCheckResponse_SERVING)

	allowed := clientCredentialsToken(t, issuer, "service-client-id", "service-secret", true)
	refused := clientCredentialsToken(t, issuer, "some-other-client", "other-secret", false)
	tests := []struct {
		name   string
		req    *authv3.CheckRequest
		code   codes.Code
		reason string
	}{
		{"the allowed service", request("GET", "/orders/7", bearer(allowed)), codes.OK, "allowed"},
		{"another service", request("GET", "/orders/7", bearer(refused)), codes.PermissionDenied, "policy_denied"},
		{"no token", request("GET", "/orders/7", nil), codes.Unauthenticated, "missing_token"},
		{"a token cut short", request("GET", "/orders/7", bearer(allowed[:len(allowed)-10])), codes.Unauthenticated, "signature_invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { expectAnswer(t, s, tt.req, tt.code, tt.reason) })
	}
	if code := s.stop(t); code != 0 {
		t.Errorf("exit code = %d", code)
	}
}

// expectAnswer asks s about req and fails unless the answer has code and
// reason; an allow must forward x-client-id: service-client-id.
func expectAnswer(t *testing.T, s *server, req *authv3.CheckRequest, code codes.Code, wantReason string) {
	t.Helper()
	resp := s.check(t, req)
	if got := codes.Code(resp.GetStatus().GetCode()); got != code || reason(resp) != wantReason {
		t.Fatalf("got %v %q, want %v %q (body %q)", got, reason(resp), code, wantReason, resp.GetDeniedResponse().GetBody())
	}
	if code == codes.OK && headerValue(resp, false, "x-client-id") != "service-client-id" {
		t.Errorf("x-client-id = %q", headerValue(resp, false, "x-client-id"))
	}
}
