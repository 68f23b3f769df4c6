package config

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLogValueIsTheEffectiveConfigWithoutSecrets(t *testing.T) {
	dir := dirWithFiles(t)
	if err := os.WriteFile(filepath.Join(dir, "hmac.secret"), []byte("hmac-secret-contents-0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	yml := strings.Replace(validYAML, "    clock_skew: 30s\n", `    clock_skew: 30s
  - issuer: https://remote.example.com
    audiences: [api]
    jwks_uri: https://jwks-user:jwks-password@keys.example.com/jwks.json?api_key=query-secret
  - issuer: shared
    audiences: [api]
    hmac_secret_file: hmac.secret
`, 1)
	c, err := Parse([]byte(yml), dir)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("claimcheck serving", "config", c)
	line := buf.String()
	for _, secret := range []string{"jwks-user", "jwks-password", "query-secret", "hmac-secret-contents"} {
		if strings.Contains(line, secret) {
			t.Errorf("the log line holds %q: %s", secret, line)
		}
	}
	var got struct {
		Config struct {
			Listen  map[string]any   `json:"listen"`
			Issuers []map[string]any `json:"issuers"`
			Token   struct {
				Required bool           `json:"required"`
				Cache    map[string]any `json:"cache"`
			} `json:"token"`
			Policy map[string]any `json:"policy"`
			Log    map[string]any `json:"log"`
		} `json:"config"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, line)
	}
	cfg := got.Config
	checks := []struct {
		what      string
		got, want any
	}{
		{"listen.admin default", cfg.Listen["admin"], DefaultAdmin},
		{"token.required default", cfg.Token.Required, true},
		{"token.cache.enabled default", cfg.Token.Cache["enabled"], true},
		{"token.cache.negative_ttl default", cfg.Token.Cache["negative_ttl"], "10s"},
		{"policy.timeout default", cfg.Policy["timeout"], "100ms"},
		{"policy.watch default", cfg.Policy["watch"], true},
		{"log.level default", cfg.Log["level"], "info"},
		{"issuers[0].clock_skew", cfg.Issuers[0]["clock_skew"], "30s"},
		{"issuers[1].jwks_uri, credentials hidden", cfg.Issuers[1]["jwks_uri"], "https://xxxxx@keys.example.com/jwks.json?api_key=xxxxx"},
		{"issuers[2].hmac_secret_file, the path", cfg.Issuers[2]["hmac_secret_file"], filepath.Join(dir, "hmac.secret")},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %v, want %v", ck.what, ck.got, ck.want)
		}
	}
	if _, ok := cfg.Issuers[0]["jwks_uri"]; ok {
		t.Errorf("unset issuers[0].jwks_uri is in the line: %v", cfg.Issuers[0])
	}
}
