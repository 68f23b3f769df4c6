package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// validIssuerYAML is a minimal valid issuer config; tests replace parts of
// it. The hash is bcrypt (cost 4) of "s3cret".
const validIssuerYAML = `
issuer: https://id.example.com
audiences: [orders-api]
key_dir: keys
clients:
  - client_id: service-client-id
    client_secret_hash: $2a$04$i/yrJGTSc4fJDVh2dS8JZ.uGhYVpbDaxQsSJemZBMlgbgiVCDWiGm
    scopes: [orders:read, orders:write]
`

func TestParseIssuerServerAppliesDefaults(t *testing.T) {
	dir := t.TempDir()
	c, err := ParseIssuerServer([]byte(validIssuerYAML), dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != DefaultIssuerListen || c.Algorithm != "ES256" || time.Duration(c.TokenTTL) != DefaultTokenTTL {
		t.Errorf("defaults not applied: listen %q alg %q ttl %s", c.Listen, c.Algorithm, time.Duration(c.TokenTTL))
	}
	if want := filepath.Join(dir, "keys"); c.KeyDir != want {
		t.Errorf("key_dir = %q, want %q", c.KeyDir, want)
	}
	if c.RotationInterval() != DefaultRotationInterval || time.Duration(c.Rotation.Overlap) != DefaultTokenTTL {
		t.Errorf("rotation = %s / %s", c.RotationInterval(), time.Duration(c.Rotation.Overlap))
	}
	cl := c.Clients[0]
	if cl.TokenFormat != "jwt" || time.Duration(cl.TokenTTL) != DefaultTokenTTL || len(cl.Audiences) != 1 || cl.Audiences[0] != "orders-api" ||
		len(cl.GrantTypes) != 1 || cl.GrantTypes[0] != "client_credentials" || cl.Introspect {
		t.Errorf("client defaults = %+v", cl)
	}
	if c.FailedAuth.Burst != DefaultFailedAuthBurst || time.Duration(c.FailedAuth.Every) != DefaultFailedAuthEvery || c.MaxOpaqueTokens != DefaultMaxOpaqueTokens {
		t.Errorf("limits = %+v, %d", c.FailedAuth, c.MaxOpaqueTokens)
	}
}

func TestParseIssuerServerAcceptsFullContract(t *testing.T) {
	yml := `
listen: 127.0.0.1:9400
issuer: http://127.0.0.1:9400
audiences: [orders-api]
token_ttl: 5m
key_dir: /var/lib/claimcheck-issuer
algorithm: RS256
rotation: {interval: 0s, overlap: 1h}
max_opaque_tokens: 500
failed_auth: {burst: 3, every: 1m}
clients:
  - client_id: service-client-id
    client_secret_hash: $2a$04$i/yrJGTSc4fJDVh2dS8JZ.uGhYVpbDaxQsSJemZBMlgbgiVCDWiGm
    scopes: [orders:read]
    audiences: [orders-api, billing-api]
    token_format: opaque
    token_ttl: 1h
    claims: {tenant: acme, roles: [reader], limits: {rps: 10}}
  - client_id: claimcheck
    client_secret_hash: $2a$04$i/yrJGTSc4fJDVh2dS8JZ.uGhYVpbDaxQsSJemZBMlgbgiVCDWiGm
    introspect: true
    grant_types: []
log: {level: debug, format: text}
`
	c, err := ParseIssuerServer([]byte(yml), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if c.RotationInterval() != 0 || c.MaxTokenTTL() != time.Hour {
		t.Errorf("interval %s, max ttl %s", c.RotationInterval(), c.MaxTokenTTL())
	}
	if got := c.Clients[1].GrantTypes; got == nil || len(got) != 0 {
		t.Errorf("grant_types: [] = %#v, want empty", got)
	}
	if c.Clients[0].Claims["limits"].(map[string]any)["rps"] != 10 {
		t.Errorf("claims = %#v", c.Clients[0].Claims)
	}
}

func TestParseIssuerServerRejectsWithFieldAndExpectation(t *testing.T) {
	tests := []struct {
		name    string
		replace [2]string // old, new within validIssuerYAML
		append  string
		want    []string
	}{
		{name: "unknown top-level field", append: "audience: x\n", want: []string{`unknown field "audience"`, "top level"}},
		{name: "unknown client field", replace: [2]string{"scopes:", "scope:"}, want: []string{`unknown field "scope"`, "clients[]"}},
		{name: "unknown rotation field", append: "rotation: {every: 1h}\n", want: []string{`unknown field "every"`, "rotation"}},
		{name: "unknown failed_auth field", append: "failed_auth: {rate: 1}\n", want: []string{`unknown field "rate"`, "failed_auth"}},
		{name: "missing issuer", replace: [2]string{"issuer: https://id.example.com\n", ""}, want: []string{"issuer: expected the issuer URL"}},
		{name: "issuer not a URL", replace: [2]string{"https://id.example.com", "id.example.com"}, want: []string{"issuer:", "absolute https URL"}},
		{name: "issuer with trailing slash", replace: [2]string{"https://id.example.com", "https://id.example.com/"}, want: []string{"issuer:", "trailing slash"}},
		{name: "plain http to a remote host", replace: [2]string{"https://id.example.com", "http://id.example.com"}, want: []string{"issuer:", "allow_insecure_http"}},
		{name: "unix listen", append: "listen: unix:///run/i.sock\n", want: []string{"listen:", "host:port"}},
		{name: "bad listen", append: "listen: nowhere\n", want: []string{"listen:", "host:port"}},
		{name: "no key dir", replace: [2]string{"key_dir: keys\n", ""}, want: []string{"key_dir:", "directory"}},
		{name: "HMAC algorithm", append: "algorithm: HS256\n", want: []string{"algorithm:", "ES256", `"HS256"`}},
		{name: "ttl too long", append: "token_ttl: 48h\n", want: []string{"token_ttl:", "24h"}},
		{name: "overlap shorter than a token", append: "token_ttl: 1h\nrotation: {overlap: 10m}\n", want: []string{"rotation.overlap", "longest token_ttl (1h0m0s)"}},
		{name: "rotation too often", append: "rotation: {interval: 1s}\n", want: []string{"rotation.interval", "1m"}},
		{name: "failed_auth burst zero", append: "failed_auth: {burst: -1}\n", want: []string{"failed_auth.burst"}},
		{name: "no clients", replace: [2]string{validIssuerYAML[strings.Index(validIssuerYAML, "clients:"):], ""}, want: []string{"clients: expected at least one client"}},
		{name: "empty client_id", replace: [2]string{"client_id: service-client-id", "client_id: ''"}, want: []string{"clients[0].client_id", "printable ASCII"}},
		{name: "client_id with a newline", replace: [2]string{"client_id: service-client-id", `client_id: "a\nb"`}, want: []string{"clients[0].client_id"}},
		{name: "plain secret instead of hash", replace: [2]string{"$2a$04$i/yrJGTSc4fJDVh2dS8JZ.uGhYVpbDaxQsSJemZBMlgbgiVCDWiGm", "s3cret"}, want: []string{"clients[0].client_secret_hash", "bcrypt", "hash-secret"}},
		{name: "missing hash", replace: [2]string{"    client_secret_hash: $2a$04$i/yrJGTSc4fJDVh2dS8JZ.uGhYVpbDaxQsSJemZBMlgbgiVCDWiGm\n", ""}, want: []string{"clients[0].client_secret_hash", "hash-secret"}},
		{name: "scope with a space", replace: [2]string{"orders:read,", "'orders read',"}, want: []string{"clients[0].scopes[0]", "scope token"}},
		{name: "scope twice", replace: [2]string{"orders:write", "orders:read"}, want: []string{"clients[0].scopes[1]", "twice"}},
		{name: "no audience anywhere", replace: [2]string{"audiences: [orders-api]\n", ""}, want: []string{"clients[0].audiences", "at least one audience"}},
		{name: "unknown token format", append: "    token_format: paseto\n", want: []string{"clients[0].token_format", "jwt or opaque"}},
		{name: "registered claim", append: "    claims: {sub: admin}\n", want: []string{"clients[0].claims.sub", "cannot be overridden"}},
		{name: "claim with non-string keys", append: "    claims: {m: {1: x}}\n", want: []string{"clients[0].claims.m", "JSON"}},
		{name: "other grant type", append: "    grant_types: [password]\n", want: []string{"clients[0].grant_types[0]", "only client_credentials"}},
		{name: "client that can do nothing", append: "    grant_types: []\n", want: []string{"clients[0]", "introspect: true"}},
		{name: "duplicate client", append: "  - client_id: service-client-id\n    client_secret_hash: $2a$04$i/yrJGTSc4fJDVh2dS8JZ.uGhYVpbDaxQsSJemZBMlgbgiVCDWiGm\n", want: []string{"clients[1].client_id", "twice"}},
		{name: "bad duration", append: "token_ttl: soon\n", want: []string{"duration", `"soon"`}},
		{name: "empty file", replace: [2]string{validIssuerYAML, ""}, want: []string{"empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yml := validIssuerYAML
			if tt.replace[0] != "" {
				if !strings.Contains(yml, tt.replace[0]) {
					t.Fatalf("test bug: %q not in validIssuerYAML", tt.replace[0])
				}
				yml = strings.Replace(yml, tt.replace[0], tt.replace[1], 1)
			}
			yml += tt.append
			_, err := ParseIssuerServer([]byte(yml), t.TempDir())
			if err == nil {
				t.Fatal("expected an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadIssuerServerNamesTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "issuer.yaml")
	if err := os.WriteFile(p, []byte(validIssuerYAML+"bogus: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadIssuerServer(p)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), `unknown field "bogus"`) {
		t.Fatalf("LoadIssuerServer error = %v", err)
	}
}

func TestShippedIssuerExampleIsValid(t *testing.T) {
	c, err := LoadIssuerServer("../../examples/issuer/issuer.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The README's commands use the public development secrets.
	secrets := map[string]string{"service-client-id": "dev-secret-change-me", "some-other-client": "other-dev-secret",
		"opaque-service-id": "opaque-dev-secret", "claimcheck": "claimcheck-dev-secret"}
	for _, cl := range c.Clients {
		if bcrypt.CompareHashAndPassword([]byte(cl.ClientSecretHash), []byte(secrets[cl.ClientID])) != nil {
			t.Errorf("client %s: the hash is not of the documented secret", cl.ClientID)
		}
	}
	cc, err := Load("../../examples/issuer/claimcheck.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// claimcheck introspects as the issuer's claimcheck client.
	in := cc.Issuers[0].Introspection
	secret, err := os.ReadFile(in.ClientSecretFile)
	if err != nil || in.ClientID != "claimcheck" || strings.TrimSpace(string(secret)) != secrets["claimcheck"] {
		t.Errorf("introspection as %q with %q (%v)", in.ClientID, secret, err)
	}
}
