package config

import (
	"strings"
	"testing"
)

// keylessYAML is introspectingYAML's issuer without a key source: an
// identity provider of opaque tokens only.
var keylessYAML = strings.Replace(introspectingYAML, "    jwks_file: jwks.json\n", "", 1)

func TestParseKeylessIssuer(t *testing.T) {
	tests := []struct {
		name    string
		replace [2]string
	}{
		{"an https issuer", [2]string{}},
		{"an issuer that is no URL", [2]string{"issuer: https://id.example.com", "issuer: opaque-idp"}},
		{"introspect: opaque said explicitly", [2]string{"    userinfo:", "    introspect: opaque\n    userinfo:"}},
		{"a CA for the endpoints", [2]string{"    userinfo:", "    ca_file: jwks.json\n    userinfo:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(strings.Replace(keylessYAML, tt.replace[0], tt.replace[1], 1)), dirWithSecret(t))
			if err != nil {
				t.Fatal(err)
			}
			is := c.Issuers[0]
			if !is.Keyless() || is.Remote() || is.Discovery != "" || !is.TakesOpaque() {
				t.Errorf("keyless %v, remote %v, discovery %q, takes opaque %v", is.Keyless(), is.Remote(), is.Discovery, is.TakesOpaque())
			}
		})
	}
}

// TestParseIssuerKeysStillComeFromDiscovery: only an explicit
// introspection endpoint without any key source makes an issuer key-less.
func TestParseIssuerKeysStillComeFromDiscovery(t *testing.T) {
	tests := []struct {
		name string
		yaml string
	}{
		{"no introspection", strings.Replace(validYAML, "    jwks_file: jwks.json\n", "", 1)},
		{"the introspection endpoint from discovery", strings.Replace(keylessYAML, "      endpoint: https://id.example.com/introspect\n", "", 1)},
		{"discovery said explicitly", strings.Replace(keylessYAML, "    introspection:", "    discovery: openid\n    introspection:", 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml), dirWithSecret(t))
			if err != nil {
				t.Fatal(err)
			}
			if is := c.Issuers[0]; is.Keyless() || !is.Remote() || is.Discovery != "openid" {
				t.Errorf("keyless %v, remote %v, discovery %q", is.Keyless(), is.Remote(), is.Discovery)
			}
		})
	}
}
