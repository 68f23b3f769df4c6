package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
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
		name   string
		stdin  string
		args   []string
		code   int
		status int
		reason string
	}{
		{name: "allowed client exits 0", args: []string{"--token", good, "--path", "/orders/1"}, code: 0, status: 200, reason: "allowed"},
		{name: "token from stdin", stdin: good + "\n", args: []string{"--token", "-", "--path", "/orders/1"}, code: 0, status: 200, reason: "allowed"},
		{name: "refused client exits 1", args: []string{"--token", other, "--path", "/orders/1"}, code: 1, status: 403, reason: "policy_denied"},
		{name: "no token exits 1 with 401", args: []string{"--path", "/orders/1"}, code: 1, status: 401, reason: "missing_token"},
		{name: "garbage token", args: []string{"--token", "not-a-jwt"}, code: 1, status: 401, reason: "token_malformed"},
		{name: "token in a header flag", args: []string{"--header", "Authorization=Bearer " + good, "--path", "/orders"}, code: 0, status: 200, reason: "allowed"},
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
			if _, ok := got.Input["request"]; !ok {
				t.Error("the input document is not printed")
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
		"no config":           {"check"},
		"config and server":   {"check", "--config", quickstartConfig, "--server", "127.0.0.1:1"},
		"invalid config":      {"check", "--config", bad},
		"bad header flag":     {"check", "--config", quickstartConfig, "--header", "novalue"},
		"unknown flag":        {"check", "--config", quickstartConfig, "--nope"},
		"unknown command":     {"frobnicate"},
		"validate bad config": {"validate", "--config", bad},
	} {
		t.Run(name, func(t *testing.T) {
			if code, _, _ := runCLI(t, "", args...); code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
		})
	}
}

func TestValidateCommand(t *testing.T) {
	for _, cfg := range []string{quickstartConfig, "../../examples/oidc-provider/claimcheck.yaml"} {
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
