package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/claimcheck/claimcheck/extauthz/config"
	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

const quickstartConfig = "../../examples/quickstart/config.yaml"

// runCLI runs claimcheck in-process and returns its exit code and output.
func runCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// mintQuickstart mints a token with the quickstart's development key.
func mintQuickstart(t *testing.T, claims string) string {
	t.Helper()
	code, out, errOut := runCLI(t, "", "token", "mint", "--key", "../../examples/quickstart/dev-signing-key.json", "--claims", claims)
	if code != 0 {
		t.Fatalf("token mint: exit %d: %s", code, errOut)
	}
	return strings.TrimSpace(out)
}

func quickstartClaims(clientID string) string {
	return `{"iss":"https://id.quickstart.example","aud":"orders-api","sub":"` + clientID + `","client_id":"` + clientID + `","scope":"orders:read orders:write"}`
}

func TestCheckCommand(t *testing.T) {
	good := mintQuickstart(t, quickstartClaims("service-client-id"))
	other := mintQuickstart(t, quickstartClaims("some-other-client"))
	tests := []struct {
		name    string
		stdin   string
		args    []string
		code    int
		status  int
		reason  string
		noInput bool
	}{
		{name: "allowed client exits 0", args: []string{"--token", good, "--path", "/orders/1"}, code: 0, status: 200, reason: "allowed"},
		{name: "token from stdin", stdin: good + "\n", args: []string{"--token", "-", "--path", "/orders/1"}, code: 0, status: 200, reason: "allowed"},
		{name: "refused client exits 1", args: []string{"--token", other, "--path", "/orders/1"}, code: 1, status: 403, reason: "policy_denied"},
		{name: "no token exits 1 with 401", args: []string{"--path", "/orders/1"}, code: 1, status: 401, reason: "missing_token"},
		{name: "garbage token", args: []string{"--token", "not-a-jwt"}, code: 1, status: 401, reason: "token_malformed"},
		{name: "token in a header flag", args: []string{"--header", "Authorization=Bearer " + good, "--path", "/orders"}, code: 0, status: 200, reason: "allowed"},
		// The same canonical path as serve judges, over either adapter; a
		// refused path never gets as far as an input document.
		{name: "dot segment exits 1 with 400", args: []string{"--token", good, "--path", "/orders/../admin"}, code: 1, status: 400, reason: "path_invalid", noInput: true},
		{name: "backslash exits 1 with 400", args: []string{"--token", good, "--path", `/orders/..\admin`}, code: 1, status: 400, reason: "path_invalid", noInput: true},
		{name: "escaped unreserved characters are decoded", args: []string{"--token", good, "--path", "/%6frders/1"}, code: 0, status: 200, reason: "allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tt.stdin, append([]string{"check", "--config", quickstartConfig}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tt.code, errOut)
			}
			var got checkOutput
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, out)
			}
			if got.Decision.Status != tt.status || got.Decision.Reason != tt.reason {
				t.Errorf("decision = %+v", got.Decision)
			}
			if _, ok := got.Input["request"]; ok == tt.noInput {
				t.Errorf("input document printed: %v, want %v", ok, !tt.noInput)
			}
		})
	}
}

func TestCheckCommandUsageErrorsExit2(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("listen: {grpc: x}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"no config":                  {"check"},
		"config and server":          {"check", "--config", quickstartConfig, "--server", "127.0.0.1:1"},
		"invalid config":             {"check", "--config", bad},
		"bad header flag":            {"check", "--config", quickstartConfig, "--header", "novalue"},
		"unknown flag":               {"check", "--config", quickstartConfig, "--nope"},
		"unknown command":            {"frobnicate"},
		"validate bad config":        {"validate", "--config", bad},
		"tls flags without a server": {"check", "--config", quickstartConfig, "--tls-ca", bad},
		"tls ca that is not PEM":     {"check", "--server", "127.0.0.1:1", "--tls-ca", bad},
	} {
		t.Run(name, func(t *testing.T) {
			if code, _, _ := runCLI(t, "", args...); code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
		})
	}
}

func TestValidateCommand(t *testing.T) {
	for _, cfg := range []string{quickstartConfig, "../../examples/oidc-provider/claimcheck.yaml", "../../examples/oidc-provider/claimcheck-opaque.yaml"} {
		code, out, errOut := runCLI(t, "", "validate", "--config", cfg)
		if code != 0 || !strings.Contains(out, "OK") {
			t.Fatalf("validate %s: exit %d: %s %s", cfg, code, out, errOut)
		}
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("listen: {grpc: \"127.0.0.1:1\"}\nissuers: [{issuer: https://a.example, audiences: []}]\npolicy: {paths: [nowhere]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "", "validate", "--config", bad)
	if code != exitUsage {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"issuers[0].audiences", "policy.paths[0]"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr does not name %s:\n%s", want, errOut)
		}
	}
}

// TestKeygenMintCheckRoundTrip makes a new key pair, mints a token with it
// and has check accept it against a config using the generated JWKS.
func TestKeygenMintCheckRoundTrip(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256", "ES384", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			dir := t.TempDir()
			priv, jwks := filepath.Join(dir, "key.json"), filepath.Join(dir, "jwks.json")
			if code, _, errOut := runCLI(t, "", "token", "keygen", "--alg", alg, "--kid", "k-"+alg, "--private", priv, "--jwks", jwks); code != 0 {
				t.Fatalf("keygen: %s", errOut)
			}
			if fi, err := os.Stat(priv); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("private key mode = %v, %v", fi.Mode(), err)
			}
			jwksText, _ := os.ReadFile(jwks)
			if strings.Contains(string(jwksText), `"d"`) {
				t.Fatal("the JWKS contains private key material")
			}
			policyDir, _ := filepath.Abs("../../examples/quickstart/policy")
			cfg := filepath.Join(dir, "config.yaml")
			if err := os.WriteFile(cfg, []byte(`listen: {grpc: "127.0.0.1:0"}
issuers: [{issuer: https://id.example.com, audiences: [orders-api], jwks_file: jwks.json}]
policy: {paths: [`+policyDir+`]}
`), 0o644); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runCLI(t, "", "token", "mint", "--key", priv, "--claims", `{"iss":"https://id.example.com","aud":"orders-api","client_id":"service-client-id"}`)
			if code != 0 {
				t.Fatalf("mint: %s", errOut)
			}
			code, out, errOut = runCLI(t, "", "check", "--config", cfg, "--brief", "--path", "/orders", "--token", strings.TrimSpace(out))
			if code != 0 || !strings.HasPrefix(out, "allowed 200") {
				t.Fatalf("check: exit %d: %s %s", code, out, errOut)
			}
		})
	}
}

// TestMaxKidlessKeysReachesTheVerifier: issuers[].max_kidless_keys is the
// number of keys check tries for a token without a kid.
func TestMaxKidlessKeysReachesTheVerifier(t *testing.T) {
	first, second := tokentest.NewECKey(t, "k1"), tokentest.NewECKey(t, "k2")
	raw := tokentest.Mint(t, second, tokentest.Claims("https://id.example.com", "orders-api", time.Hour), tokentest.WithoutKID())
	policyDir, _ := filepath.Abs("../../examples/quickstart/policy")
	for _, tt := range []struct{ name, setting, want string }{
		// Past the signature, the quickstart policy denies: the token's client is not one it knows.
		{"the default tries both keys", "", "denied 403 policy_denied"},
		{"max_kidless_keys 2 tries both", ", max_kidless_keys: 2", "denied 403 policy_denied"},
		{"max_kidless_keys 1 tries only the first", ", max_kidless_keys: 1", "denied 401 key_unknown"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			jwks := tokentest.WriteJWKSFile(t, dir, first, second)
			cfg := filepath.Join(dir, "config.yaml")
			if err := os.WriteFile(cfg, []byte(`listen: {grpc: "127.0.0.1:0"}
issuers: [{issuer: https://id.example.com, audiences: [orders-api], jwks_file: `+filepath.Base(jwks)+tt.setting+`}]
policy: {paths: [`+policyDir+`]}
`), 0o644); err != nil {
				t.Fatal(err)
			}
			_, out, errOut := runCLI(t, "", "check", "--config", cfg, "--brief", "--path", "/orders", "--token", raw)
			if !strings.HasPrefix(out, tt.want) {
				t.Fatalf("check: %s %s, want %s", out, errOut, tt.want)
			}
		})
	}
}

func TestMintRejectsPublicKeysAndBadClaims(t *testing.T) {
	if code, _, errOut := runCLI(t, "", "token", "mint", "--key", "../../examples/quickstart/jwks.json"); code != exitUsage || errOut == "" {
		t.Errorf("minting with a JWKS: exit %d %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, "", "token", "mint", "--key", "../../examples/quickstart/dev-signing-key.json", "--claims", "[1]"); code != exitUsage || !strings.Contains(errOut, "--claims") {
		t.Errorf("minting with bad claims: exit %d %q", code, errOut)
	}
}

// TestQuickstartInputExampleIsCurrent keeps examples/quickstart/input.json,
// the documented example of the policy input, in the shape check produces.
func TestQuickstartInputExampleIsCurrent(t *testing.T) {
	code, out, errOut := runCLI(t, "", "check", "--config", quickstartConfig, "--path", "/orders/42?verbose=true",
		"--token", mintQuickstart(t, quickstartClaims("service-client-id")))
	if code != 0 {
		t.Fatalf("check: %s", errOut)
	}
	var got checkOutput
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("../../examples/quickstart/input.json")
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	gotKeys, wantKeys := keyPaths("", got.Input), keyPaths("", want)
	if strings.Join(gotKeys, "\n") != strings.Join(wantKeys, "\n") {
		t.Errorf("examples/quickstart/input.json is out of date; regenerate it with\n"+
			"  claimcheck check --config examples/quickstart/config.yaml --path '/orders/42?verbose=true' --token $(claimcheck token mint ...)\n"+
			"got keys:\n%s\nfile keys:\n%s", strings.Join(gotKeys, "\n"), strings.Join(wantKeys, "\n"))
	}
}

// keyPaths lists the object key paths of a JSON document, sorted.
func keyPaths(prefix string, v any) []string {
	var out []string
	if m, ok := v.(map[string]any); ok {
		for k, e := range m {
			p := prefix + "." + k
			out = append(out, p)
			out = append(out, keyPaths(p, e)...)
		}
	}
	sort.Strings(out)
	return out
}

// TestStaticKeySources decides with keys from a PEM public key file and an
// HMAC secret file, the static sources API gateways hand out.
func TestStaticKeySources(t *testing.T) {
	dir := t.TempDir()
	policyDir, _ := filepath.Abs("../../examples/quickstart/policy")

	rsaKey := tokentest.NewRSAKey(t, "gw-1")
	var pub any
	if err := jwk.Export(rsaKey.Public, &pub); err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pemPath := filepath.Join(dir, "gateway.pem")
	if err := os.WriteFile(pemPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}

	secret := []byte("0123456789abcdef0123456789abcdef") // 32 bytes: enough for HS256
	secretPath := filepath.Join(dir, "hmac.secret")
	if err := os.WriteFile(secretPath, append(secret, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	hmacKey := tokentest.NewKeyFrom(t, secret, "", "HS256")

	claims := tokentest.Claims("https://gw.example.com", "orders-api", time.Hour)
	claims["client_id"] = "service-client-id"
	tests := []struct {
		name, source, token, want string
	}{
		{"PEM public key, token with a kid", "public_key_file: " + pemPath, tokentest.Mint(t, rsaKey, claims), "allowed 200"},
		{"PEM public key, token without kid", "public_key_file: " + pemPath, tokentest.Mint(t, rsaKey, claims, tokentest.WithoutKID()), "allowed 200"},
		{"PEM public key, token from another key", "public_key_file: " + pemPath, tokentest.Mint(t, tokentest.NewRSAKey(t, "gw-1"), claims), "denied 401 signature_invalid"},
		{"HMAC secret", "hmac_secret_file: " + secretPath, tokentest.Mint(t, hmacKey, claims, tokentest.WithoutKID()), "allowed 200"},
		{"HMAC secret, RS256 token", "hmac_secret_file: " + secretPath, tokentest.Mint(t, rsaKey, claims), "denied 401 algorithm_not_allowed"},
		{"public key, HS256 token made with the key as secret", "public_key_file: " + pemPath,
			tokentest.Mint(t, tokentest.NewKeyFrom(t, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), "", "HS256"), claims, tokentest.WithoutKID()),
			"denied 401 algorithm_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(cfg, []byte(`listen: {grpc: "127.0.0.1:0"}
issuers: [{issuer: https://gw.example.com, audiences: [orders-api], `+tt.source+`}]
policy: {paths: [`+policyDir+`]}
`), 0o644); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runCLI(t, "", "check", "--config", cfg, "--brief", "--path", "/orders", "--token", tt.token)
			if !strings.HasPrefix(out, tt.want) {
				t.Fatalf("exit %d: %q %s, want %q", code, out, errOut, tt.want)
			}
		})
	}
}

func TestShortHMACSecretIsAConfigError(t *testing.T) {
	dir := t.TempDir()
	secretPath := filepath.Join(dir, "hmac.secret")
	if err := os.WriteFile(secretPath, []byte("too-short"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	policyDir, _ := filepath.Abs("../../examples/quickstart/policy")
	if err := os.WriteFile(cfg, []byte(`listen: {grpc: "127.0.0.1:0"}
issuers: [{issuer: https://gw.example.com, audiences: [orders-api], hmac_secret_file: hmac.secret, algorithms: [HS512]}]
policy: {paths: [`+policyDir+`]}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "", "validate", "--config", cfg)
	if code != exitUsage || !strings.Contains(errOut, "64") {
		t.Fatalf("exit %d, stderr %q: want exit 2 naming the 64-byte minimum", code, errOut)
	}
}

func TestPolicyTestCommand(t *testing.T) {
	failing := t.TempDir()
	if err := os.WriteFile(filepath.Join(failing, "p.rego"), []byte("package p\n\nallow if input.x == 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(failing, "p_test.rego"), []byte("package p_test\n\nimport data.p\n\ntest_allow if p.allow with input as {\"x\": 2}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	partial := t.TempDir()
	if err := os.WriteFile(filepath.Join(partial, "p.rego"), []byte("package p\n\nallow if input.x == 1\n\nother if input.y == 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(partial, "p_test.rego"), []byte("package p_test\n\nimport data.p\n\ntest_allow if p.allow with input as {\"x\": 1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	broken := t.TempDir()
	if err := os.WriteFile(filepath.Join(broken, "b.rego"), []byte("package b\n\nallow if {{\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"the quickstart's tests pass", []string{"policy", "test", "../../examples/quickstart/policy"}, 0, "PASS: 8/8"},
		{"verbose names each test", []string{"policy", "test", "-v", "../../examples/quickstart/policy"}, 0, "test_other_client_is_refused: PASS"},
		{"run filter", []string{"policy", "test", "--run", "delete", "../../examples/quickstart/policy"}, 0, "PASS: 1/1"},
		{"coverage as JSON", []string{"policy", "test", "--coverage", "../../examples/quickstart/policy"}, 0, `"coverage":`},
		{"json format", []string{"policy", "test", "--format", "json", "../../examples/quickstart/policy"}, 0, `"package": "data.claimcheck.authz_test"`},
		{"a failing test exits 2", []string{"policy", "test", failing}, 2, "FAIL: 1/1"},
		{"coverage below the threshold exits 2", []string{"policy", "test", "--threshold", "100", partial}, 2, ""},
		{"coverage above the threshold passes", []string{"policy", "test", "--threshold", "50", partial}, 0, `"coverage":`},
		{"a parse error exits 1", []string{"policy", "test", broken}, 1, ""},
		{"no paths is a usage error", []string{"policy", "test"}, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, "", tt.args...)
			if code != tt.code || !strings.Contains(out, tt.want) {
				t.Fatalf("exit %d (want %d), output does not contain %q:\n%s\n%s", code, tt.code, tt.want, out, errOut)
			}
		})
	}
}

func TestCheckExplainAndRouteRule(t *testing.T) {
	other := mintQuickstart(t, quickstartClaims("some-other-client"))
	code, out, errOut := runCLI(t, "", "check", "--config", quickstartConfig, "--brief", "--explain=fails", "--path", "/orders/1", "--token", other)
	// The trace points at the policy line that failed: the client_id check.
	rego := exampleFile(t, "quickstart/policy/authz.rego")
	line := 1 + strings.Count(rego[:strings.Index(rego, "input.token.claims.client_id in")], "\n")
	if code != 1 || !strings.Contains(out, fmt.Sprintf("authz.rego:%d", line)) || !strings.Contains(out, "Fail") {
		t.Fatalf("exit %d:\n%s\n%s", code, out, errOut)
	}
	code, out, _ = runCLI(t, "", "check", "--config", quickstartConfig, "--brief", "--context", "claimcheck_decision=claimcheck/authz/nope", "--path", "/orders/1", "--token", other)
	if code != 1 || !strings.HasPrefix(out, "denied 503 decision_rule_unknown") {
		t.Fatalf("unknown route rule: exit %d: %s", code, out)
	}
	code, out, _ = runCLI(t, "", "check", "--config", quickstartConfig, "--explain", "--path", "/orders/1", "--token", other)
	if code != 1 || !strings.Contains(out, `"explain": [`) {
		t.Errorf("plain --explain: exit %d: %s", code, out)
	}
	if code, _, _ := runCLI(t, "", "check", "--config", quickstartConfig, "--explain=everything", "--token", other); code != exitUsage {
		t.Errorf("a bad explain mode: exit %d", code)
	}
}

// TestValidateFetchesNothing: validate checks remote issuers and bundles
// without a single request to them.
func TestValidateFetchesNothing(t *testing.T) {
	idp := tokentest.NewJWKSServer(t, tokentest.NewECKey(t, "k1"))
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(`listen: {grpc: "127.0.0.1:0"}
issuers:
  - {issuer: `+idp.URL+`, audiences: [a]}
  - {issuer: https://other.example.com, audiences: [a], jwks_uri: `+idp.JWKSURI()+`, allow_insecure_http: true}
policy: {bundle: {url: `+idp.URL+`, resource: bundles/authz.tar.gz}}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "", "validate", "--config", cfg)
	if code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	time.Sleep(200 * time.Millisecond) // time for a stray background fetch to show
	if n := idp.Requests() + idp.DiscoveryRequests(); n != 0 {
		t.Errorf("validate made %d requests", n)
	}
}

// TestReadinessEndsWhenShutdownStarts: /readyz answers from readiness, which
// turns false with a reason as soon as serve starts shutting down.
func TestReadinessEndsWhenShutdownStarts(t *testing.T) {
	cfg, err := config.Load(quickstartConfig)
	if err != nil {
		t.Fatal(err)
	}
	a, err := build(context.Background(), cfg, slog.New(slog.DiscardHandler), buildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	if ok, why := a.readiness(); !ok {
		t.Fatalf("not ready with file keys and policy: %s", why)
	}
	a.stopping.Store(true)
	if ok, why := a.readiness(); ok || why != "shutting down" {
		t.Errorf("readiness after shutdown started = %v %q", ok, why)
	}
}
