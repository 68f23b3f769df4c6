package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// introspectingYAML is validYAML's issuer with introspection and userinfo.
var introspectingYAML = strings.Replace(validYAML, "    clock_skew: 30s\n", `    introspection:
      endpoint: https://id.example.com/introspect
      client_id: claimcheck
      client_secret_file: secret
    userinfo:
      endpoint: https://id.example.com/userinfo
`, 1)

// dirWithSecret is dirWithFiles plus the client secret file.
func dirWithSecret(t *testing.T) string {
	t.Helper()
	dir := dirWithFiles(t)
	if err := os.WriteFile(filepath.Join(dir, "secret"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestParseIntrospectionDefaults(t *testing.T) {
	dir := dirWithSecret(t)
	c, err := Parse([]byte(introspectingYAML), dir)
	if err != nil {
		t.Fatal(err)
	}
	is := c.Issuers[0]
	in, ui := is.Introspection, is.Userinfo
	if is.Introspect != "opaque" || !is.TakesOpaque() || in.Auth != "client_secret_basic" ||
		in.ClientSecretFile != filepath.Join(dir, "secret") {
		t.Errorf("introspection = %+v, introspect %q", in, is.Introspect)
	}
	if time.Duration(*in.CacheTTL) != time.Minute || time.Duration(*in.InactiveTTL) != 10*time.Second ||
		time.Duration(in.Timeout) != 5*time.Second {
		t.Errorf("cache_ttl %v, inactive_ttl %v, timeout %v", *in.CacheTTL, *in.InactiveTTL, in.Timeout)
	}
	if ui.OnError != "deny" || time.Duration(*ui.CacheTTL) != time.Minute || time.Duration(ui.Timeout) != 5*time.Second {
		t.Errorf("userinfo = %+v", ui)
	}
}

func TestParseIntrospectionAccepts(t *testing.T) {
	tests := []struct {
		name    string
		replace [2]string
		check   func(t *testing.T, is Issuer)
	}{
		{"the endpoint from discovery", [2]string{
			"    jwks_file: jwks.json\n    introspection:\n      endpoint: https://id.example.com/introspect\n", "    introspection:\n"},
			func(t *testing.T, is Issuer) {
				if is.Discovery != "openid" || is.Introspection.Endpoint != "" {
					t.Errorf("issuer = %+v", is)
				}
			}},
		{"zero TTLs turn caching off", [2]string{
			"client_secret_file: secret", "client_secret_file: secret\n      cache_ttl: 0s\n      inactive_ttl: 0s"},
			func(t *testing.T, is Issuer) {
				if *is.Introspection.CacheTTL != 0 || *is.Introspection.InactiveTTL != 0 {
					t.Errorf("ttls = %v %v", *is.Introspection.CacheTTL, *is.Introspection.InactiveTTL)
				}
			}},
		{"always with client_secret_post", [2]string{
			"client_secret_file: secret", "client_secret_file: secret\n      auth: client_secret_post\n    introspect: always"},
			func(t *testing.T, is Issuer) {
				if is.Introspect != "always" || is.Introspection.Auth != "client_secret_post" {
					t.Errorf("issuer = %+v", is)
				}
			}},
		{"ca_file with static keys, for the endpoints", [2]string{
			"jwks_file: jwks.json", "jwks_file: jwks.json\n    ca_file: jwks.json"}, nil},
		{"a second issuer introspecting only its JWTs", [2]string{"policy:", `  - issuer: https://other.example.com
    audiences: [orders-api]
    jwks_file: jwks.json
    introspect: jwt
    introspection: {endpoint: https://other.example.com/introspect, client_id: c, client_secret_file: secret}
policy:`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(strings.Replace(introspectingYAML, tt.replace[0], tt.replace[1], 1)), dirWithSecret(t))
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, c.Issuers[0])
			}
		})
	}
}

func TestParseIntrospectionRejects(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string // validYAML when empty
		replace [2]string
		want    []string
	}{
		{name: "introspect without introspection", yaml: validYAML,
			replace: [2]string{"clock_skew: 30s", "clock_skew: 30s\n    introspect: always"},
			want:    []string{"issuers[0].introspect", "applies only with introspection"}},
		{name: "unknown introspect value", replace: [2]string{"    userinfo:", "    introspect: sometimes\n    userinfo:"},
			want: []string{"issuers[0].introspect", "opaque, always, jwt", `"sometimes"`}},
		{name: "unknown introspection field", replace: [2]string{"client_id: claimcheck", "client_id: claimcheck\n      client_secret: x"},
			want: []string{`unknown field "client_secret" in issuers[].introspection`}},
		{name: "unknown userinfo field", replace: [2]string{"userinfo\n", "userinfo\n      fail: open\n"},
			want: []string{`unknown field "fail" in issuers[].userinfo`}},
		{name: "no client_id", replace: [2]string{"      client_id: claimcheck\n", ""},
			want: []string{"issuers[0].introspection.client_id"}},
		{name: "no secret file", replace: [2]string{"      client_secret_file: secret\n", ""},
			want: []string{"issuers[0].introspection.client_secret_file", "expected the file"}},
		{name: "missing secret file", replace: [2]string{"client_secret_file: secret", "client_secret_file: nope"},
			want: []string{"issuers[0].introspection.client_secret_file", "nope"}},
		{name: "unknown auth", replace: [2]string{"client_secret_file: secret", "client_secret_file: secret\n      auth: private_key_jwt"},
			want: []string{"issuers[0].introspection.auth", "client_secret_basic or client_secret_post"}},
		{name: "cache_ttl too long", replace: [2]string{"client_secret_file: secret", "client_secret_file: secret\n      cache_ttl: 48h"},
			want: []string{"issuers[0].introspection.cache_ttl", "from 0s to 24h"}},
		{name: "inactive_ttl too long", replace: [2]string{"client_secret_file: secret", "client_secret_file: secret\n      inactive_ttl: 5m"},
			want: []string{"issuers[0].introspection.inactive_ttl", "from 0s to 1m"}},
		{name: "negative timeout", replace: [2]string{"client_secret_file: secret", "client_secret_file: secret\n      timeout: -1s"},
			want: []string{"issuers[0].introspection.timeout", "above 0s"}},
		{name: "plain http to a remote endpoint", replace: [2]string{"https://id.example.com/introspect", "http://id.example.com/introspect"},
			want: []string{"issuers[0].introspection.endpoint", "allow_insecure_http"}},
		{name: "not a URL", replace: [2]string{"https://id.example.com/introspect", "/introspect"},
			want: []string{"issuers[0].introspection.endpoint", "absolute https URL for the endpoint"}},
		{name: "no endpoint without discovery", replace: [2]string{"      endpoint: https://id.example.com/introspect\n", ""},
			want: []string{"issuers[0].introspection.endpoint", "only when the issuer's keys come from discovery", "introspection_endpoint"}},
		{name: "no userinfo endpoint without discovery", replace: [2]string{"userinfo:\n      endpoint: https://id.example.com/userinfo\n", "userinfo: {}\n"},
			want: []string{"issuers[0].userinfo.endpoint", "userinfo_endpoint"}},
		{name: "unknown on_error", replace: [2]string{"id.example.com/userinfo", "id.example.com/userinfo\n      on_error: allow"},
			want: []string{"issuers[0].userinfo.on_error", "deny or continue", `"allow"`}},
		{name: "two issuers take opaque tokens", replace: [2]string{"policy:", `  - issuer: https://other.example.com
    audiences: [orders-api]
    jwks_file: jwks.json
    introspection: {endpoint: https://other.example.com/introspect, client_id: c, client_secret_file: secret}
policy:`}, want: []string{"issuers[1].introspect", "issuers[0] (https://id.example.com) already takes opaque tokens", "introspect: jwt"}},
		{name: "ca_file with static keys and no endpoints", yaml: validYAML,
			replace: [2]string{"jwks_file: jwks.json", "jwks_file: jwks.json\n    ca_file: jwks.json"},
			want:    []string{"issuers[0].ca_file", "applies only"}},
		{name: "neither keys nor introspection, and no URL to discover keys at",
			yaml:    strings.Replace(validYAML, "    jwks_file: jwks.json\n", "", 1),
			replace: [2]string{"issuer: https://id.example.com", "issuer: opaque-idp"},
			want:    []string{"issuers[0].issuer", "to fetch keys from", "introspection.endpoint", `"opaque-idp"`}},
		{name: "key-less issuer: introspect always", yaml: keylessYAML, replace: [2]string{"    userinfo:", "    introspect: always\n    userinfo:"},
			want: []string{"issuers[0].introspect", "expected opaque", "no key source"}},
		{name: "key-less issuer: introspect jwt", yaml: keylessYAML, replace: [2]string{"    userinfo:", "    introspect: jwt\n    userinfo:"},
			want: []string{"issuers[0].introspect", "expected opaque", "add one to verify its JWTs"}},
		{name: "key-less issuer: algorithms", yaml: keylessYAML, replace: [2]string{"    userinfo:", "    algorithms: [ES256]\n    userinfo:"},
			want: []string{"issuers[0].algorithms", "applies only to JWTs", "no key source"}},
		{name: "key-less issuer: require_typ", yaml: keylessYAML, replace: [2]string{"    userinfo:", "    require_typ: at+jwt\n    userinfo:"},
			want: []string{"issuers[0].require_typ", "applies only to JWTs"}},
		{name: "key-less issuer: max_kidless_keys", yaml: keylessYAML, replace: [2]string{"    userinfo:", "    max_kidless_keys: 2\n    userinfo:"},
			want: []string{"issuers[0].max_kidless_keys", "applies only to JWTs"}},
		{name: "key-less issuer: key refresh settings", yaml: keylessYAML, replace: [2]string{"    userinfo:", "    min_refresh: 1m\n    userinfo:"},
			want: []string{"issuers[0].min_refresh", "applies only to keys fetched over HTTP"}},
		{name: "key-less issuer: userinfo endpoint from discovery", yaml: keylessYAML, replace: [2]string{"userinfo:\n      endpoint: https://id.example.com/userinfo\n", "userinfo: {}\n"},
			want: []string{"issuers[0].userinfo.endpoint", "userinfo_endpoint"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yml := tt.yaml
			if yml == "" {
				yml = introspectingYAML
			}
			if !strings.Contains(yml, tt.replace[0]) {
				t.Fatalf("test bug: %q not in the YAML", tt.replace[0])
			}
			_, err := Parse([]byte(strings.Replace(yml, tt.replace[0], tt.replace[1], 1)), dirWithSecret(t))
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
