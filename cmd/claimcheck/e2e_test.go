package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

// binaryBuild is cmd/claimcheck built once per test run with some go build flags.
type binaryBuild struct {
	flags []string
	once  sync.Once
	path  string
	err   error
}

var plainBuild, raceBuild = &binaryBuild{}, &binaryBuild{flags: []string{"-race"}}

func (b *binaryBuild) binary(t *testing.T) string {
	t.Helper()
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "claimcheck-e2e")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, "claimcheck")
		args := append(append([]string{"build"}, b.flags...), "-o", b.path, ".")
		if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// binary builds cmd/claimcheck once per test run.
func binary(t *testing.T) string { return plainBuild.binary(t) }

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// server is a running claimcheck process.
type server struct {
	cmd    *exec.Cmd
	stderr *syncWriter
	conn   *grpc.ClientConn
	done   chan error
}

// startServer writes config (with {{LISTEN}} replaced by listen) and starts
// `claimcheck serve` on it.
func startServer(t *testing.T, config, listen string) *server {
	t.Helper()
	return startBinary(t, binary(t), config, listen)
}

// startBinary is startServer with the claimcheck binary at bin.
func startBinary(t *testing.T, bin, config, listen string) *server {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	if !strings.Contains(config, "admin:") {
		// Each server gets its own admin port rather than the default.
		config = strings.Replace(config, `grpc: "{{LISTEN}}"`, fmt.Sprintf(`grpc: "{{LISTEN}}", admin: %q`, freeAddr(t)), 1)
	}
	if err := os.WriteFile(cfgPath, []byte(strings.ReplaceAll(config, "{{LISTEN}}", listen)), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &server{stderr: &syncWriter{w: &bytes.Buffer{}}, done: make(chan error, 1)}
	s.cmd = exec.Command(bin, "serve", "--config", cfgPath)
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			s.cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			t.Logf("claimcheck stderr:\n%s", tail(s.stderr.String(), 300))
		}
	})
	target := listen
	if !strings.HasPrefix(listen, "unix://") {
		target = "passthrough:///" + listen
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	s.conn = conn
	return s
}

// tail returns the last n lines of log, saying how many it left out.
func tail(log string, n int) string {
	lines := strings.SplitAfter(log, "\n")
	if len(lines) <= n {
		return log
	}
	return fmt.Sprintf("[%d earlier lines left out]\n", len(lines)-n) + strings.Join(lines[len(lines)-n:], "")
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// String returns what was written so far.
func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.String()
}

// health returns the server's health status, or an error while it is not up.
func (s *server) health(ctx context.Context, service string) (healthpb.HealthCheckResponse_ServingStatus, error) {
	resp, err := healthpb.NewHealthClient(s.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	return resp.GetStatus(), err
}

// waitHealth waits until health reports want, failing after 30 s.
func (s *server) waitHealth(t *testing.T, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last healthpb.HealthCheckResponse_ServingStatus
	var lastErr error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		last, lastErr = s.health(ctx, "")
		cancel()
		if lastErr == nil && last == want {
			return
		}
		select {
		case err := <-s.done:
			t.Fatalf("claimcheck exited: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("health never became %v (last %v, %v)", want, last, lastErr)
}

func (s *server) check(t *testing.T, req *authv3.CheckRequest) *authv3.CheckResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := authv3.NewAuthorizationClient(s.conn).Check(ctx, req)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return resp
}

// stop sends SIGTERM and returns the exit code.
func (s *server) stop(t *testing.T) int {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Fatal("claimcheck did not exit after SIGTERM")
	}
	return s.cmd.ProcessState.ExitCode()
}

func quickstartPolicy(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("../../examples/quickstart/policy")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func request(method, path string, headers map[string]string) *authv3.CheckRequest {
	return checkRequest(method, path, "orders.internal", headers)
}

func bearer(tok string) map[string]string { return map[string]string{"authorization": "Bearer " + tok} }

func headerValue(resp *authv3.CheckResponse, deny bool, key string) string {
	opts := resp.GetOkResponse().GetHeaders()
	if deny {
		opts = resp.GetDeniedResponse().GetHeaders()
	}
	for _, o := range opts {
		if o.GetHeader().GetKey() == key {
			return o.GetHeader().GetValue()
		}
	}
	return ""
}

func reason(resp *authv3.CheckResponse) string {
	cc, _ := resp.GetDynamicMetadata().AsMap()["claimcheck"].(map[string]any)
	s, _ := cc["reason"].(string)
	return s
}

// TestServeEndToEnd starts the real binary, with keys from an in-test JWKS
// server (one issuer by jwks_uri, one by OIDC discovery) and the quickstart
// policy, and calls it with a real gRPC client.
func TestServeEndToEnd(t *testing.T) {
	key := tokentest.NewRSAKey(t, "rsa-1")
	idp := tokentest.NewJWKSServer(t, key)
	discKey := tokentest.NewECKey(t, "ec-1")
	discIdP := tokentest.NewJWKSServer(t, discKey)
	config := fmt.Sprintf(`
listen: {grpc: "{{LISTEN}}"}
issuers:
  - issuer: %s
    audiences: [orders-api]
    jwks_uri: %s
    algorithms: [RS256]
  - issuer: %s
    audiences: [orders-api]
policy:
  paths: [%s]
  decision: claimcheck/authz/allow
forward:
  claims: {client_id: x-client-id}
  strip_token: true
log: {level: debug}
`, idp.URL, idp.JWKSURI(), discIdP.URL, quickstartPolicy(t))
	s := startServer(t, config, freeAddr(t))
	s.waitHealth(t, healthpb.HealthCheckResponse_SERVING)
	if st, err := s.health(context.Background(), "envoy.service.auth.v3.Authorization"); err != nil || st != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("service health = %v, %v", st, err)
	}

	claims := func(iss, clientID string) map[string]any {
		c := tokentest.Claims(iss, "orders-api", time.Hour)
		c["client_id"] = clientID
		return c
	}
	expired := claims(idp.URL, "service-client-id")
	expired["exp"] = time.Now().Add(-time.Hour).Unix()
	stranger := tokentest.NewRSAKey(t, "rsa-1")

	tests := []struct {
		name     string
		req      *authv3.CheckRequest
		code     codes.Code
		status   int32
		reason   string
		clientID string // x-client-id sent upstream on allow
	}{
		{name: "no token", req: request("GET", "/orders", nil), code: codes.Unauthenticated, status: 401, reason: "missing_token"},
		{name: "allowed client", req: request("GET", "/orders/1", bearer(tokentest.Mint(t, key, claims(idp.URL, "service-client-id")))),
			code: codes.OK, reason: "allowed", clientID: "service-client-id"},
		{name: "allowed client of the discovered issuer", req: request("POST", "/orders", bearer(tokentest.Mint(t, discKey, claims(discIdP.URL, "service-client-id")))),
			code: codes.OK, reason: "allowed", clientID: "service-client-id"},
		{name: "client the policy refuses", req: request("GET", "/orders", bearer(tokentest.Mint(t, key, claims(idp.URL, "some-other-client")))),
			code: codes.PermissionDenied, status: 403, reason: "policy_denied"},
		{name: "expired token", req: request("GET", "/orders", bearer(tokentest.Mint(t, key, expired))),
			code: codes.Unauthenticated, status: 401, reason: "token_expired"},
		{name: "token signed by a stranger's key with a known kid", req: request("GET", "/orders", bearer(tokentest.Mint(t, stranger, claims(idp.URL, "service-client-id")))),
			code: codes.Unauthenticated, status: 401, reason: "signature_invalid"},
		{name: "wrong audience", req: request("GET", "/orders", bearer(tokentest.Mint(t, key, tokentest.Claims(idp.URL, "billing-api", time.Hour)))),
			code: codes.Unauthenticated, status: 401, reason: "audience_mismatch"},
		{name: "alg outside the issuer's allowlist", req: request("GET", "/orders", bearer(tokentest.Mint(t, discKey, claims(idp.URL, "service-client-id")))),
			code: codes.Unauthenticated, status: 401, reason: "algorithm_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := s.check(t, tt.req)
			if got := codes.Code(resp.GetStatus().GetCode()); got != tt.code {
				t.Fatalf("status code = %v, want %v (reason %q, body %q)", got, tt.code, reason(resp), resp.GetDeniedResponse().GetBody())
			}
			if got := reason(resp); got != tt.reason {
				t.Errorf("reason = %q, want %q", got, tt.reason)
			}
			if tt.code == codes.OK {
				if got := headerValue(resp, false, "x-client-id"); got != tt.clientID {
					t.Errorf("x-client-id = %q, want %q", got, tt.clientID)
				}
				if rm := resp.GetOkResponse().GetHeadersToRemove(); len(rm) != 1 || rm[0] != "authorization" {
					t.Errorf("headers to remove = %v", rm)
				}
				return
			}
			if got := resp.GetDeniedResponse().GetStatus().GetCode(); int32(got) != tt.status {
				t.Errorf("HTTP status = %d, want %d", got, tt.status)
			}
			if tt.status == 401 && !strings.HasPrefix(headerValue(resp, true, "www-authenticate"), `Bearer realm="claimcheck"`) {
				t.Errorf("WWW-Authenticate = %q", headerValue(resp, true, "www-authenticate"))
			}
			if !strings.Contains(resp.GetDeniedResponse().GetBody(), `"error_description"`) {
				t.Errorf("deny body = %q", resp.GetDeniedResponse().GetBody())
			}
		})
	}

	if code := s.stop(t); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
	// Every JWT starts with "eyJ" (base64 of `{"`): none may reach the log.
	if strings.Contains(s.stderr.String(), "eyJ") {
		t.Error("a token was written to the log")
	}
}

// TestNotServingUntilKeysLoad proves health stays NOT_SERVING, and the
// issuer's tokens get 503, while its JWKS cannot be fetched.
func TestNotServingUntilKeysLoad(t *testing.T) {
	key := tokentest.NewECKey(t, "k1")
	idp := tokentest.NewJWKSServer(t, key)
	idp.Fail(true)
	config := fmt.Sprintf(`
listen: {grpc: "{{LISTEN}}"}
issuers:
  - issuer: %s
    audiences: [orders-api]
    jwks_uri: %s
policy: {paths: [%s]}
`, idp.URL, idp.JWKSURI(), quickstartPolicy(t))
	s := startServer(t, config, freeAddr(t))
	s.waitHealth(t, healthpb.HealthCheckResponse_NOT_SERVING)

	c := tokentest.Claims(idp.URL, "orders-api", time.Hour)
	c["client_id"] = "service-client-id"
	req := request("GET", "/orders", bearer(tokentest.Mint(t, key, c)))
	resp := s.check(t, req)
	if got := resp.GetDeniedResponse().GetStatus().GetCode(); got != 503 || reason(resp) != "issuer_keys_unavailable" {
		t.Fatalf("before keys load: status %d reason %q, want 503 issuer_keys_unavailable", got, reason(resp))
	}

	idp.Fail(false)
	s.waitHealth(t, healthpb.HealthCheckResponse_SERVING)
	if resp := s.check(t, req); resp.GetStatus().GetCode() != int32(codes.OK) {
		t.Fatalf("after keys load: %v %q", codes.Code(resp.GetStatus().GetCode()), reason(resp))
	}
	if code := s.stop(t); code != 0 {
		t.Errorf("exit code = %d", code)
	}
}

// TestUnixSocketAndGracefulStop serves on a unix socket and sends SIGTERM
// while a slow Check is in flight: the Check is answered and the process
// exits 0.
func TestUnixSocketAndGracefulStop(t *testing.T) {
	key := tokentest.NewECKey(t, "k1")
	dir := t.TempDir()
	jwks := tokentest.WriteJWKSFile(t, dir, key)
	// The policy calls a server that holds its answer until SIGTERM has been
	// sent, so the Check is in flight during shutdown however slow the
	// machine is.
	arrived, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	hold := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(arrived) })
		select {
		case <-release:
		case <-r.Context().Done():
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok": true}`)
	}))
	defer hold.Close()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	policyFile := filepath.Join(dir, "slow.rego")
	rego := fmt.Sprintf("package slow\n\nallow if http.send({\"method\": \"GET\", \"url\": %q}).body.ok\n", hold.URL)
	if err := os.WriteFile(policyFile, []byte(rego), 0o644); err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`
listen: {grpc: "{{LISTEN}}"}
issuers:
  - issuer: https://id.example.com
    audiences: [orders-api]
    jwks_file: %s
policy: {paths: [%s], decision: slow/allow, timeout: 10s, allow_network: true}
`, jwks, policyFile)
	sock := filepath.Join(dir, "claimcheck.sock")
	s := startServer(t, config, "unix://"+sock)
	s.waitHealth(t, healthpb.HealthCheckResponse_SERVING)

	tok := tokentest.Mint(t, key, tokentest.Claims("https://id.example.com", "orders-api", time.Hour))
	type result struct {
		resp *authv3.CheckResponse
		err  error
	}
	res := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		resp, err := authv3.NewAuthorizationClient(s.conn).Check(ctx, request("GET", "/", bearer(tok)))
		res <- result{resp, err}
	}()
	select {
	case <-arrived:
	case <-time.After(time.Minute):
		t.Fatal("the Check never reached the policy's http.send")
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // let the server start draining
	close(release)
	select {
	case <-s.done:
	case <-time.After(time.Minute):
		t.Fatal("claimcheck did not exit after SIGTERM")
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
	r := <-res
	if r.err != nil {
		t.Fatalf("in-flight Check failed during shutdown: %v", r.err)
	}
	if r.resp.GetStatus().GetCode() != int32(codes.OK) {
		t.Errorf("in-flight Check = %v %q", codes.Code(r.resp.GetStatus().GetCode()), reason(r.resp))
	}
	if _, err := os.Stat(sock); err == nil {
		t.Error("unix socket file left behind after stop")
	}
}

func TestServeRefusesABadConfig(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(p, []byte("listen: {grpc: \"127.0.0.1:0\"}\nissuers: []\npolicy: {paths: [x]}\nextra: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary(t), "serve", "--config", p)
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != exitUsage {
		t.Fatalf("exit = %v, want %d\n%s", err, exitUsage, out)
	}
	if !strings.Contains(string(out), `unknown field "extra"`) {
		t.Errorf("output does not name the field:\n%s", out)
	}
}

// TestRequireKeysAtStart: an issuer whose keys cannot be fetched stops
// serve from starting, with an error naming it, instead of serving 503s.
func TestRequireKeysAtStart(t *testing.T) {
	idp := tokentest.NewJWKSServer(t, tokentest.NewECKey(t, "k1"))
	idp.Fail(true)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
listen: {grpc: %q}
issuers:
  - issuer: %s
    audiences: [orders-api]
    jwks_uri: %s
    fetch_timeout: 200ms
    require_keys_at_start: true
policy: {paths: [%s]}
`, freeAddr(t), idp.URL, idp.JWKSURI(), quickstartPolicy(t))), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary(t), "serve", "--config", cfg)
	out, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != exitDeny {
		t.Fatalf("exit %d, want %d:\n%s", code, exitDeny, out)
	}
	for _, want := range []string{idp.URL, "require_keys_at_start", "500"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("log does not mention %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "claimcheck serving") {
		t.Error("serve started listening although the keys were required")
	}
}

// TestPolicyLifecycle runs the binary with a watched policy directory, a
// per-route rule, a dry-run route and a decision log file: a policy edit
// changes decisions without a restart, a broken edit changes nothing, and
// every decision is one JSON line without the token.
func TestPolicyLifecycle(t *testing.T) {
	key := tokentest.NewECKey(t, "k1")
	dir := t.TempDir()
	jwks := tokentest.WriteJWKSFile(t, dir, key)
	policyDir := filepath.Join(dir, "policy")
	if err := os.Mkdir(policyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writePolicy := func(client string) {
		t.Helper()
		rego := fmt.Sprintf("package lc\n\ndefault allow := false\n\nallow if input.token.claims.client_id == %q\n\nreports if input.request.path == \"/reports\"\n", client)
		tmp := filepath.Join(dir, "next.rego")
		if err := os.WriteFile(tmp, []byte(rego), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(policyDir, "lc.rego")); err != nil {
			t.Fatal(err)
		}
	}
	writePolicy("alpha")
	decisions := filepath.Join(dir, "decisions.log")
	config := fmt.Sprintf(`
listen: {grpc: "{{LISTEN}}"}
issuers:
  - issuer: https://id.example.com
    audiences: [orders-api]
    jwks_file: %s
policy: {paths: [%s], decision: lc/allow}
routes: {allow_dry_run: true}
decision_log: {output: %s}
`, jwks, policyDir, decisions)
	s := startServer(t, config, freeAddr(t))
	s.waitHealth(t, healthpb.HealthCheckResponse_SERVING)

	tokenFor := func(client string) string {
		c := tokentest.Claims("https://id.example.com", "orders-api", time.Hour)
		c["client_id"] = client
		return tokentest.Mint(t, key, c)
	}
	code := func(req *authv3.CheckRequest) codes.Code { return codes.Code(s.check(t, req).GetStatus().GetCode()) }
	waitFor := func(want codes.Code, req *authv3.CheckRequest) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for code(req) != want {
			if time.Now().After(deadline) {
				t.Fatalf("decision never became %v", want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	alpha, beta := request("GET", "/orders", bearer(tokenFor("alpha"))), request("GET", "/orders", bearer(tokenFor("beta")))
	if code(alpha) != codes.OK || code(beta) != codes.PermissionDenied {
		t.Fatal("initial policy not in force")
	}

	writePolicy("beta")
	waitFor(codes.OK, beta)
	if code(alpha) != codes.PermissionDenied {
		t.Error("old policy still allows alpha after the reload")
	}

	if err := os.WriteFile(filepath.Join(policyDir, "lc.rego"), []byte("package lc\n\nallow if {{{\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(s.stderr.String(), "lc.rego:4: rego_parse_error") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(s.stderr.String(), "lc.rego:4: rego_parse_error") {
		t.Error("the broken policy's file:line was not logged")
	}
	if code(beta) != codes.OK || code(alpha) != codes.PermissionDenied {
		t.Error("a broken edit changed decisions")
	}

	perRoute := request("GET", "/reports", bearer(tokenFor("gamma")))
	perRoute.Attributes.ContextExtensions = map[string]string{"claimcheck_decision": "lc/reports"}
	if code(perRoute) != codes.OK {
		t.Error("the per-route rule was not used")
	}
	unknown := request("GET", "/reports", bearer(tokenFor("beta")))
	unknown.Attributes.ContextExtensions = map[string]string{"claimcheck_decision": "lc/nope"}
	if resp := s.check(t, unknown); codes.Code(resp.GetStatus().GetCode()) == codes.OK || reason(resp) != "decision_rule_unknown" {
		t.Errorf("unknown rule: %v %q", codes.Code(resp.GetStatus().GetCode()), reason(resp))
	}
	dry := request("GET", "/orders", bearer(tokenFor("gamma")))
	dry.Attributes.ContextExtensions = map[string]string{"claimcheck_dry_run": "true"}
	if resp := s.check(t, dry); codes.Code(resp.GetStatus().GetCode()) != codes.OK || reason(resp) != "policy_denied" {
		t.Errorf("dry-run route: %v %q", codes.Code(resp.GetStatus().GetCode()), reason(resp))
	}

	if code := s.stop(t); code != 0 {
		t.Errorf("exit code = %d", code)
	}
	b, err := os.ReadFile(decisions)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "eyJ") {
		t.Error("a token reached the decision log")
	}
	var sawDryRun bool
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var rec struct {
			DecisionID string `json:"decision_id"`
			Reason     string `json:"reason"`
			DryRun     bool   `json:"dry_run"`
			Revision   string `json:"policy_revision"`
			ClientID   string `json:"client_id"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("decision log line %q: %v", line, err)
		}
		if rec.DecisionID == "" || rec.Reason == "" || rec.Revision == "" || rec.ClientID == "" {
			t.Errorf("incomplete decision log line: %s", line)
		}
		sawDryRun = sawDryRun || (rec.DryRun && rec.Reason == "policy_denied")
	}
	if !sawDryRun {
		t.Error("the dry-run decision was not logged with its real reason")
	}
}
