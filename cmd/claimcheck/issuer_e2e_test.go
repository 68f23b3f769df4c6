package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/claimcheck/claimcheck/extauthz/issuer"
)

// issuerProc is a running `claimcheck issuer`.
type issuerProc struct {
	url     string
	keyDir  string
	cfgPath string
	cmd     *exec.Cmd
	stderr  *syncWriter
	done    chan error
}

// testHash is a cheap bcrypt hash of secret (tests only).
func testHash(t *testing.T, secret string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(secret), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// startIssuer runs `claimcheck issuer` on a free port with clients (YAML
// list items) and waits until it serves its metadata.
func startIssuer(t *testing.T, clients string) *issuerProc {
	t.Helper()
	addr := freeAddr(t)
	return startIssuerConfig(t, addr, fmt.Sprintf("listen: %q\nissuer: http://%s\naudiences: [orders-api]\nkey_dir: keys\nfailed_auth: {burst: 50}\nclients:\n%s", addr, addr, clients))
}

// startIssuerConfig runs `claimcheck issuer` with cfg, an issuer at
// http://addr with key_dir: keys, and waits until it serves its metadata.
func startIssuerConfig(t *testing.T, addr, cfg string) *issuerProc {
	t.Helper()
	dir := t.TempDir()
	p := &issuerProc{url: "http://" + addr, keyDir: filepath.Join(dir, "keys"), cfgPath: filepath.Join(dir, "issuer.yaml"), stderr: &syncWriter{w: &bytes.Buffer{}}}
	if err := os.WriteFile(p.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd != nil && p.cmd.Process != nil && p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("issuer stderr:\n%s", p.stderr)
		}
	})
	p.start(t)
	return p
}

// start runs the issuer on its config and waits until it serves its
// metadata: after stop, the same issuer on the same address and keys, with
// nothing else it had in memory.
func (p *issuerProc) start(t *testing.T) {
	t.Helper()
	p.done = make(chan error, 1)
	p.cmd = exec.Command(binary(t), "issuer", "--config", p.cfgPath)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(p.url + "/.well-known/openid-configuration")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case err := <-p.done:
			t.Fatalf("issuer exited: %v\n%s", err, p.stderr)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("issuer did not start:\n%s", p.stderr)
}

// stop sends SIGTERM and waits until the issuer has exited with code 0.
func (p *issuerProc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("issuer exit code after SIGTERM = %d", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("issuer did not stop on SIGTERM")
	}
}

// post sends a form to the issuer with optional Basic credentials.
func (p *issuerProc) post(t *testing.T, path string, form url.Values, basic ...string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if len(basic) == 2 {
		req.SetBasicAuth(url.QueryEscape(basic[0]), url.QueryEscape(basic[1]))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := map[string]any{}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("%s: %d, body not JSON: %v", path, resp.StatusCode, err)
	}
	return resp.StatusCode, resp.Header, body
}

// discoveryConfig is a claimcheck config for an ES256 issuer whose keys
// come by OIDC discovery, with the quickstart policy and forward claims.
func discoveryConfig(t *testing.T, issuer, forward string) string {
	return fmt.Sprintf(`
listen: {grpc: "{{LISTEN}}"}
issuers:
  - issuer: %s
    audiences: [orders-api]
    algorithms: [ES256]
policy: {paths: [%s]}
forward:
  claims: %s
`, issuer, quickstartPolicy(t), forward)
}

// TestIssuerToClaimcheckEndToEnd is the seeds' flow with real components:
// a service with golang.org/x/oauth2/clientcredentials gets a token from
// the `claimcheck issuer` binary, and the `claimcheck serve` binary, with
// the issuer's keys by OIDC discovery, allows or denies its calls.
func TestIssuerToClaimcheckEndToEnd(t *testing.T) {
	clients := fmt.Sprintf(`  - client_id: service-client-id
    client_secret_hash: %q
    scopes: [orders:read, orders:write]
    claims: {tenant: acme}
  - client_id: some-other-client
    client_secret_hash: %q
    scopes: [orders:read]
  - client_id: resource-server
    client_secret_hash: %q
    introspect: true
    grant_types: []
`, testHash(t, "service-secret"), testHash(t, "other-secret"), testHash(t, "rs-secret"))
	iss := startIssuer(t, clients)
	s := startServer(t, discoveryConfig(t, iss.url, "{client_id: x-client-id, tenant: x-tenant}"), freeAddr(t))
	s.waitHealth(t, healthpb.HealthCheckResponse_SERVING)

	ctx := context.Background()
	source := func(id, secret string, style oauth2.AuthStyle, scopes ...string) oauth2.TokenSource {
		return (&clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: iss.url + "/token", AuthStyle: style, Scopes: scopes}).TokenSource(ctx)
	}
	tests := []struct {
		name   string
		ts     oauth2.TokenSource
		code   codes.Code
		reason string
	}{
		{"allowed client, client_secret_basic", source("service-client-id", "service-secret", oauth2.AuthStyleInHeader), codes.OK, "allowed"},
		{"allowed client, client_secret_post, one scope", source("service-client-id", "service-secret", oauth2.AuthStyleInParams, "orders:read"), codes.OK, "allowed"},
		{"client not on the allowlist", source("some-other-client", "other-secret", oauth2.AuthStyleAutoDetect), codes.PermissionDenied, "policy_denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := tt.ts.Token()
			if err != nil {
				t.Fatal(err)
			}
			again, err := tt.ts.Token()
			if err != nil || again.AccessToken != tok.AccessToken {
				t.Errorf("the token source fetched a new token while the first was valid (%v)", err)
			}
			resp := s.check(t, request("GET", "/orders/42", bearer(tok.AccessToken)))
			if got := codes.Code(resp.GetStatus().GetCode()); got != tt.code || reason(resp) != tt.reason {
				t.Fatalf("got %v %q, want %v %q", got, reason(resp), tt.code, tt.reason)
			}
			if tt.code == codes.OK && (headerValue(resp, false, "x-client-id") != "service-client-id" || headerValue(resp, false, "x-tenant") != "acme") {
				t.Errorf("forwarded claims: x-client-id %q, x-tenant %q", headerValue(resp, false, "x-client-id"), headerValue(resp, false, "x-tenant"))
			}
		})
	}
	t.Run("a tampered token is refused", func(t *testing.T) {
		tok, _ := source("service-client-id", "service-secret", oauth2.AuthStyleInHeader).Token()
		resp := s.check(t, request("GET", "/orders/42", bearer(tok.AccessToken[:len(tok.AccessToken)-6]+"AAAAAA")))
		if codes.Code(resp.GetStatus().GetCode()) != codes.Unauthenticated {
			t.Fatalf("got %v %q", resp.GetStatus(), reason(resp))
		}
	})

	// Errors as x/oauth2 sees them, and the raw RFC 6749 answers.
	oauthErrors := []struct {
		name   string
		ts     oauth2.TokenSource
		status int
		code   string
	}{
		{"wrong secret", source("service-client-id", "nope", oauth2.AuthStyleInHeader), 401, "invalid_client"},
		{"unknown client", source("nobody", "service-secret", oauth2.AuthStyleInParams), 401, "invalid_client"},
		{"disallowed scope", source("some-other-client", "other-secret", oauth2.AuthStyleInHeader, "orders:write"), 400, "invalid_scope"},
		{"client without the grant", source("resource-server", "rs-secret", oauth2.AuthStyleInHeader), 400, "unauthorized_client"},
	}
	for _, tt := range oauthErrors {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.ts.Token()
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.Response.StatusCode != tt.status || re.ErrorCode != tt.code {
				t.Fatalf("got %v, want %d %s", err, tt.status, tt.code)
			}
		})
	}
	grant := url.Values{"grant_type": {"client_credentials"}}
	raw := []struct {
		name      string
		form      url.Values
		basic     []string
		status    int
		code      string
		challenge bool
	}{
		{name: "wrong grant type", form: url.Values{"grant_type": {"password"}}, basic: []string{"service-client-id", "service-secret"}, status: 400, code: "unsupported_grant_type"},
		{name: "missing client authentication", form: grant, status: 401, code: "invalid_client", challenge: true},
		{name: "basic and post at once", form: url.Values{"grant_type": {"client_credentials"}, "client_id": {"service-client-id"}, "client_secret": {"service-secret"}},
			basic: []string{"service-client-id", "service-secret"}, status: 400, code: "invalid_request"},
	}
	for _, tt := range raw {
		t.Run(tt.name, func(t *testing.T) {
			status, h, body := iss.post(t, "/token", tt.form, tt.basic...)
			if status != tt.status || body["error"] != tt.code || h.Get("Cache-Control") != "no-store" {
				t.Fatalf("got %d %v %v", status, body, h)
			}
			if (h.Get("WWW-Authenticate") != "") != tt.challenge {
				t.Errorf("WWW-Authenticate = %q", h.Get("WWW-Authenticate"))
			}
		})
	}

	t.Run("introspection", func(t *testing.T) {
		tok, _ := source("service-client-id", "service-secret", oauth2.AuthStyleInHeader).Token()
		form := url.Values{"token": {tok.AccessToken}}
		if status, _, body := iss.post(t, "/introspect", form, "resource-server", "rs-secret"); status != 200 || body["active"] != true || body["client_id"] != "service-client-id" {
			t.Errorf("resource server: %d %v", status, body)
		}
		if status, _, body := iss.post(t, "/introspect", form, "service-client-id", "service-secret"); status != 403 || body["error"] != "unauthorized_client" {
			t.Errorf("client not allowed to introspect: %d %v", status, body)
		}
	})

	fi, err := os.Stat(filepath.Join(iss.keyDir, issuer.KeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, mode %v", err, fi.Mode())
	}
	if strings.Contains(iss.stderr.String(), "service-secret") || strings.Contains(iss.stderr.String(), "eyJ") {
		t.Error("the issuer logged a secret or a token")
	}
	iss.stop(t)
}

func TestIssuerCommandUsage(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("issuer: https://id.example.com\nkey_dir: k\nclients: [{client_id: a, client_secret_hash: plain}]\naudience: x\n"), 0o600)
	tests := []struct {
		name  string
		stdin string
		args  []string
		code  int
		out   string // in stdout
		err   string // in stderr
	}{
		{name: "no config", args: []string{"issuer"}, code: exitUsage, err: "usage: claimcheck issuer --config FILE"},
		{name: "unknown field", args: []string{"issuer", "--config", bad}, code: exitUsage, err: `unknown field "audience"`},
		{name: "missing file", args: []string{"issuer", "--config", filepath.Join(dir, "nope.yaml")}, code: exitUsage, err: "nope.yaml"},
		{name: "hash-secret without a secret", args: []string{"issuer", "hash-secret"}, code: exitUsage, err: "expected the secret on standard input"},
		{name: "hash-secret of a too long secret", stdin: strings.Repeat("x", 73), args: []string{"issuer", "hash-secret"}, code: exitUsage, err: "72"},
		{name: "hash-secret with a bad cost", stdin: "s", args: []string{"issuer", "hash-secret", "--cost", "99"}, code: exitUsage, err: "--cost"},
		{name: "hash-secret", stdin: "s3cret\n", args: []string{"issuer", "hash-secret", "--cost", "4"}, code: exitOK, out: "$2a$04$"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tt.stdin, tt.args...)
			if code != tt.code || !strings.Contains(out, tt.out) || !strings.Contains(errOut, tt.err) {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
			}
			if tt.code == exitOK && bcrypt.CompareHashAndPassword([]byte(strings.TrimSpace(out)), []byte("s3cret")) != nil {
				t.Errorf("%q is not a hash of the secret without its newline", out)
			}
		})
	}
}

// TestDemoRun is the README's first command, as CI runs it: the binary,
// and in-process under the race detector.
func TestDemoRun(t *testing.T) {
	runs := map[string]func() (string, error){
		"binary": func() (string, error) {
			out, err := exec.Command(binary(t), "demo", "--run").CombinedOutput()
			return string(out), err
		},
		"in-process": func() (string, error) {
			code, out, errOut := runCLI(t, "", "demo", "--run")
			if code != 0 {
				return out + errOut, fmt.Errorf("exit %d", code)
			}
			return out, nil
		},
	}
	for name, demo := range runs {
		t.Run(name, func(t *testing.T) {
			out, err := demo()
			if err != nil {
				t.Fatalf("claimcheck demo --run: %v\n%s", err, out)
			}
			for _, want := range []string{"401 missing_token", "401 token_malformed", "401 token_inactive", "every step as expected"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			// Each client's token, a JWT or an opaque one, over HTTP and gRPC.
			for _, c := range demoClients() {
				want := "200 allowed (want 200 allowed)"
				if !c.allowed {
					want = "403 policy_denied (want 403 policy_denied)"
				}
				for _, step := range []string{"GET /orders/42 as " + c.id, "gRPC Check as " + c.id} {
					if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(step) + ` +` + regexp.QuoteMeta(want) + ` +ok$`).MatchString(out) {
						t.Errorf("output lacks %q with %q:\n%s", step, want, out)
					}
				}
			}
		})
	}
}

// TestDemoRunFailsOnAnUnexpectedStatus: when the demo's idea of the
// allowlist and the policy disagree, --run reports it and fails.
func TestDemoRunFailsOnAnUnexpectedStatus(t *testing.T) {
	clients := demoClients()
	clients[1].allowed = true // the policy refuses it
	d, err := startDemo(context.Background(), clients, slog.New(slog.DiscardHandler))
	if d != nil {
		defer d.stop()
	}
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if d.selftest(context.Background(), &out) {
		t.Fatalf("selftest passed:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "403 policy_denied (want 200 allowed)") || !strings.Contains(out.String(), "UNEXPECTED") {
		t.Errorf("output:\n%s", out.String())
	}
}

// TestDemoWritesItsSecretsPrivately: the demo's configs and claimcheck's
// introspection secret are readable only by their owner, claimcheck
// introspects at the demo issuer, and stop removes them all.
func TestDemoWritesItsSecretsPrivately(t *testing.T) {
	d, err := startDemo(context.Background(), demoClients(), slog.New(slog.DiscardHandler))
	stopped := false
	if d != nil {
		defer func() {
			if !stopped {
				d.stop()
			}
		}()
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"issuer.yaml", "claimcheck.yaml", "introspection.secret"} {
		fi, err := os.Stat(filepath.Join(d.dir, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v", name, err, fi.Mode())
		}
	}
	secret, _ := os.ReadFile(filepath.Join(d.dir, "introspection.secret"))
	if string(secret) != d.introSecret+"\n" || d.introSecret == "" {
		t.Errorf("introspection.secret = %q", secret)
	}
	status, _, body := (&issuerProc{url: d.issuerURL}).post(t, "/introspect", url.Values{"token": {"x"}}, demoIntrospector, d.introSecret)
	if status != 200 || body["active"] != false {
		t.Errorf("claimcheck's client at the issuer: %d %v", status, body)
	}
	d.stop()
	stopped = true
	if _, err := os.Stat(d.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after stop, %s: %v", d.dir, err)
	}
}

// TestDemoGuideAndExampleClient starts `claimcheck demo`, takes the
// endpoints and secrets from the guide it prints, runs examples/client
// against them, and stops the demo with SIGINT.
func TestDemoGuideAndExampleClient(t *testing.T) {
	demo := exec.Command(binary(t), "demo")
	stdout, err := demo.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncWriter{w: &bytes.Buffer{}}
	demo.Stderr = stderr
	if err := demo.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- demo.Wait() }()
	t.Cleanup(func() {
		if demo.ProcessState == nil {
			demo.Process.Kill()
			<-done
		}
	})
	guide := make(chan string, 1)
	var rest strings.Builder
	go func() {
		var b strings.Builder
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			b.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), "Waiting;") {
				guide <- b.String()
				b.Reset()
			}
		}
		rest.WriteString(b.String())
		close(guide)
	}()
	var g string
	select {
	case g = <-guide:
	case err := <-done:
		t.Fatalf("demo exited: %v\n%s", err, stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("no guide from the demo:\n%s", stderr.String())
	}
	issuerURL := regexp.MustCompile(`issuer\s+(http://\S+)`).FindStringSubmatch(g)
	apiURL := regexp.MustCompile(`API\s+(http://\S+)`).FindStringSubmatch(g)
	secret := regexp.MustCompile(`-u service-client-id:(\S+) `).FindStringSubmatch(g)
	other := regexp.MustCompile(`-u some-other-client:(\S+) `).FindStringSubmatch(g)
	opaque := regexp.MustCompile(`-u opaque-service-id:(\S+) `).FindStringSubmatch(g)
	if issuerURL == nil || apiURL == nil || secret == nil || other == nil || opaque == nil {
		t.Fatalf("guide lacks the issuer, the API or the secrets:\n%s", g)
	}
	for _, want := range []string{"# 200 allowed", "# 403 policy_denied", "# 401 missing_token", "# 401 token_inactive", "check --server",
		`--token "$OPAQUE_SERVICE_TOKEN"`, `-d "token=$OPAQUE_SERVICE_TOKEN" ` + issuerURL[1] + "/introspect"} {
		if !strings.Contains(g, want) {
			t.Errorf("guide lacks %q", want)
		}
	}

	client := func(id, secret string, n int) (int, string) {
		cmd := exec.Command("go", "run", "../../examples/client", "-token-url", issuerURL[1]+"/token", "-client-id", id,
			"-url", apiURL[1]+"/orders/42", "-n", fmt.Sprint(n))
		cmd.Env = append(os.Environ(), "CLIENT_SECRET="+secret)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("examples/client: %v\n%s", err, out)
		}
		return cmd.ProcessState.ExitCode(), string(out)
	}
	if code, out := client("service-client-id", secret[1], 3); code != 0 || strings.Count(out, ": 200 ") != 3 || !strings.Contains(out, "1 token(s) fetched") {
		t.Errorf("allowed client: exit %d\n%s", code, out)
	}
	if code, out := client("opaque-service-id", opaque[1], 3); code != 0 || strings.Count(out, ": 200 ") != 3 || !strings.Contains(out, "1 token(s) fetched") {
		t.Errorf("allowed client with opaque tokens: exit %d\n%s", code, out)
	}
	if code, out := client("some-other-client", other[1], 1); code != 1 || !strings.Contains(out, ": 403 ") {
		t.Errorf("refused client: exit %d\n%s", code, out)
	}
	if code, out := client("some-other-client", "wrong", 1); code != 1 || !strings.Contains(out, "invalid_client") {
		t.Errorf("wrong secret: exit %d\n%s", code, out)
	}

	if err := demo.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("demo after Ctrl-C: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the demo did not stop on SIGINT")
	}
	for range guide {
	}
	if !strings.Contains(rest.String(), "demo: stopping") {
		t.Errorf("no stop message: %q", rest.String())
	}
}
