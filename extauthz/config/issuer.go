package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// IssuerServer is the configuration file of `claimcheck issuer`, an OAuth
// 2.0 authorization server for the client-credentials grant.
type IssuerServer struct {
	// Listen is the host:port the issuer serves plain HTTP on.
	Listen string `yaml:"listen"`
	// Issuer is the issuer identifier: the tokens' iss and the base URL of
	// every endpoint. https, unless the host is loopback or
	// AllowInsecureHTTP is set (TLS then ends in a proxy in front).
	Issuer            string `yaml:"issuer"`
	AllowInsecureHTTP bool   `yaml:"allow_insecure_http"`
	// Audiences is the aud of tokens for clients that name none.
	Audiences []string `yaml:"audiences"`
	// TokenTTL is the lifetime of access tokens. Default 10m.
	TokenTTL Duration `yaml:"token_ttl"`
	// KeyDir holds the signing keys (created, mode 0700, with the keys at
	// mode 0600, on first start).
	KeyDir string `yaml:"key_dir"`
	// Algorithm signs the JWTs: RS256, PS256, ES256 (default), ES384, ES512
	// or EdDSA.
	Algorithm string         `yaml:"algorithm"`
	Rotation  IssuerRotation `yaml:"rotation"`
	// MaxOpaqueTokens bounds the opaque tokens kept in memory. Default 100000.
	MaxOpaqueTokens int `yaml:"max_opaque_tokens"`
	// FailedAuth limits failed client authentications.
	FailedAuth FailedAuth     `yaml:"failed_auth"`
	Clients    []IssuerClient `yaml:"clients"`
	Log        Log            `yaml:"log"`
}

// IssuerRotation says when the signing key is replaced.
type IssuerRotation struct {
	// Interval is the age at which the signing key is replaced; "0s" never
	// rotates. Default 720h (30 days).
	Interval *Duration `yaml:"interval"`
	// Overlap is how long a replaced key stays in the JWKS; at least the
	// longest token TTL, its default.
	Overlap Duration `yaml:"overlap"`
}

// FailedAuth is a token bucket of failed client authentications, one per
// client_id and one per remote address.
type FailedAuth struct {
	// Burst is how many failures in a row are answered normally. Default 10.
	Burst int `yaml:"burst"`
	// Every is how often one more failure is allowed. Default 6s.
	Every Duration `yaml:"every"`
}

// IssuerClient is one OAuth client of the issuer.
type IssuerClient struct {
	ClientID string `yaml:"client_id"`
	// ClientSecretHash is the bcrypt hash of the client secret, as
	// `claimcheck issuer hash-secret` prints it.
	ClientSecretHash string `yaml:"client_secret_hash"`
	// Scopes are the scopes the client may request; a request without a
	// scope gets all of them.
	Scopes []string `yaml:"scopes"`
	// Audiences overrides the issuer's audiences for this client.
	Audiences []string `yaml:"audiences"`
	// TokenFormat is jwt (default) or opaque.
	TokenFormat string `yaml:"token_format"`
	// TokenTTL overrides the issuer's token_ttl for this client.
	TokenTTL Duration `yaml:"token_ttl"`
	// Claims are extra claims in the client's tokens; registered ones are
	// refused.
	Claims map[string]any `yaml:"claims"`
	// Introspect lets the client call the introspection endpoint.
	Introspect bool `yaml:"introspect"`
	// GrantTypes are the grants the client may use: [client_credentials]
	// when absent; [] for a client that only introspects.
	GrantTypes []string `yaml:"grant_types"`
}

// Issuer server defaults and limits.
const (
	DefaultIssuerListen      = "127.0.0.1:9300"
	DefaultTokenTTL          = 10 * time.Minute
	DefaultRotationInterval  = 720 * time.Hour
	DefaultMaxOpaqueTokens   = 100_000
	DefaultFailedAuthBurst   = 10
	DefaultFailedAuthEvery   = 6 * time.Second
	DefaultIssuerAlgorithm   = "ES256"
	GrantClientCredentials   = "client_credentials"
	TokenFormatJWT           = "jwt"
	TokenFormatOpaque        = "opaque"
	minTokenTTL, maxTokenTTL = time.Second, 24 * time.Hour
)

// IssuerAlgorithms are the algorithms the issuer can sign with.
var IssuerAlgorithms = []string{"RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA"}

// RegisteredClaims are set by the issuer itself; a client's claims cannot
// name them.
var RegisteredClaims = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "client_id", "scope", "active", "token_type"}

// LoadIssuerServer reads, decodes and validates the issuer configuration at
// path.
func LoadIssuerServer(path string) (*IssuerServer, error) { return load(path, ParseIssuerServer) }

// ParseIssuerServer decodes and validates an issuer configuration; a
// relative key_dir is resolved against dir.
func ParseIssuerServer(b []byte, dir string) (*IssuerServer, error) {
	return parse[IssuerServer](b, dir)
}

// RotationInterval is the signing key's lifetime; 0 means never rotated.
func (c *IssuerServer) RotationInterval() time.Duration {
	if c.Rotation.Interval == nil {
		return DefaultRotationInterval
	}
	return time.Duration(*c.Rotation.Interval)
}

// MaxTokenTTL is the longest lifetime of any client's tokens.
func (c *IssuerServer) MaxTokenTTL() time.Duration {
	d := time.Duration(c.TokenTTL)
	for _, cl := range c.Clients {
		d = max(d, time.Duration(cl.TokenTTL))
	}
	return d
}

func (c *IssuerServer) setDefaults(dir string) {
	if c.Listen == "" {
		c.Listen = DefaultIssuerListen
	}
	if c.TokenTTL == 0 {
		c.TokenTTL = Duration(DefaultTokenTTL)
	}
	c.KeyDir = resolve(dir, c.KeyDir)
	if c.Algorithm == "" {
		c.Algorithm = DefaultIssuerAlgorithm
	}
	if c.MaxOpaqueTokens == 0 {
		c.MaxOpaqueTokens = DefaultMaxOpaqueTokens
	}
	if c.FailedAuth.Burst == 0 {
		c.FailedAuth.Burst = DefaultFailedAuthBurst
	}
	if c.FailedAuth.Every == 0 {
		c.FailedAuth.Every = Duration(DefaultFailedAuthEvery)
	}
	for i := range c.Clients {
		cl := &c.Clients[i]
		if cl.TokenFormat == "" {
			cl.TokenFormat = TokenFormatJWT
		}
		if cl.TokenTTL == 0 {
			cl.TokenTTL = c.TokenTTL
		}
		if cl.Audiences == nil {
			cl.Audiences = c.Audiences
		}
		if cl.GrantTypes == nil {
			cl.GrantTypes = []string{GrantClientCredentials}
		}
	}
	if c.Rotation.Overlap == 0 {
		c.Rotation.Overlap = Duration(c.MaxTokenTTL())
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
}

func (c *IssuerServer) validate() error {
	var p problems
	validateListen(&p, "listen", c.Listen)
	if strings.HasPrefix(c.Listen, "unix://") {
		p.add("listen", "expected host:port, got %q", c.Listen)
	}
	u, err := url.Parse(c.Issuer)
	switch {
	case c.Issuer == "":
		p.add("issuer", "expected the issuer URL, e.g. https://id.example.com")
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(u.Path, "/"):
		p.add("issuer", "expected an absolute https URL without query, fragment or trailing slash, got %q", c.Issuer)
	case u.Scheme == "http" && !c.AllowInsecureHTTP && !IsLoopback(u.Hostname()):
		p.add("issuer", "http is allowed only for loopback hosts or with allow_insecure_http: true, got %q", c.Issuer)
	}
	validateAudiences(&p, "audiences", c.Audiences)
	validateTokenTTL(&p, "token_ttl", c.TokenTTL)
	if c.KeyDir == "" {
		p.add("key_dir", "expected a directory for the signing keys, e.g. /var/lib/claimcheck-issuer")
	}
	if !slices.Contains(IssuerAlgorithms, c.Algorithm) {
		p.add("algorithm", "expected one of %s, got %q", strings.Join(IssuerAlgorithms, ", "), c.Algorithm)
	}
	if d := c.RotationInterval(); d != 0 && (d < time.Minute || d > 8760*time.Hour) {
		p.add("rotation.interval", "expected 0s (never) or a duration from 1m to 8760h, got %s", d)
	}
	if o, ttl := time.Duration(c.Rotation.Overlap), c.MaxTokenTTL(); o < ttl || o > 8760*time.Hour {
		p.add("rotation.overlap", "expected a duration from the longest token_ttl (%s) to 8760h, so replaced keys outlive their tokens; got %s", ttl, o)
	}
	if c.MaxOpaqueTokens < 1 || c.MaxOpaqueTokens > 10_000_000 {
		p.add("max_opaque_tokens", "expected 1 to 10000000, got %d", c.MaxOpaqueTokens)
	}
	if c.FailedAuth.Burst < 1 || c.FailedAuth.Burst > 10_000 {
		p.add("failed_auth.burst", "expected 1 to 10000, got %d", c.FailedAuth.Burst)
	}
	if d := time.Duration(c.FailedAuth.Every); d <= 0 || d > time.Hour {
		p.add("failed_auth.every", "expected a duration above 0s and at most 1h, got %s", d)
	}
	if len(c.Clients) == 0 {
		p.add("clients", "expected at least one client")
	}
	ids := map[string]bool{}
	for i, cl := range c.Clients {
		field := fmt.Sprintf("clients[%d]", i)
		cl.validate(&p, field)
		if ids[cl.ClientID] && cl.ClientID != "" {
			p.add(field+".client_id", "%q is configured twice", cl.ClientID)
		}
		ids[cl.ClientID] = true
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		p.add("log.level", "expected debug, info, warn or error, got %q", c.Log.Level)
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		p.add("log.format", "expected json or text, got %q", c.Log.Format)
	}
	return errors.Join(p...)
}

func (cl IssuerClient) validate(p *problems, field string) {
	if cl.ClientID == "" || len(cl.ClientID) > 256 || strings.IndexFunc(cl.ClientID, notVSChar) >= 0 {
		p.add(field+".client_id", "expected 1 to 256 printable ASCII characters, got %q", cl.ClientID)
	}
	if cl.ClientSecretHash == "" {
		p.add(field+".client_secret_hash", "expected a bcrypt hash; make one with: claimcheck issuer hash-secret")
	} else if _, err := bcrypt.Cost([]byte(cl.ClientSecretHash)); err != nil {
		p.add(field+".client_secret_hash", "expected a bcrypt hash ($2a$/$2b$…) as claimcheck issuer hash-secret prints it: %v", err)
	}
	seen := map[string]bool{}
	for j, s := range cl.Scopes {
		f := fmt.Sprintf("%s.scopes[%d]", field, j)
		if !ValidScopeToken(s) {
			p.add(f, "expected a scope token (printable ASCII without spaces, quotes or backslashes), got %q", s)
		}
		if seen[s] {
			p.add(f, "%q is listed twice", s)
		}
		seen[s] = true
	}
	if slices.Contains(cl.GrantTypes, GrantClientCredentials) && len(cl.Audiences) == 0 {
		p.add(field+".audiences", "expected at least one audience (here or in the top-level audiences)")
	}
	validateAudiences(p, field+".audiences", cl.Audiences)
	if cl.TokenFormat != TokenFormatJWT && cl.TokenFormat != TokenFormatOpaque {
		p.add(field+".token_format", "expected jwt or opaque, got %q", cl.TokenFormat)
	}
	validateTokenTTL(p, field+".token_ttl", cl.TokenTTL)
	for name, v := range cl.Claims {
		f := field + ".claims." + name
		if slices.Contains(RegisteredClaims, name) {
			p.add(f, "%q is set by the issuer and cannot be overridden", name)
		} else if name == "" {
			p.add(field+".claims", "a claim name is empty")
		} else if _, err := json.Marshal(v); err != nil {
			p.add(f, "expected a JSON value (mappings need string keys): %v", err)
		}
	}
	for j, g := range cl.GrantTypes {
		if g != GrantClientCredentials {
			p.add(fmt.Sprintf("%s.grant_types[%d]", field, j), "only client_credentials is supported, got %q", g)
		}
	}
	if len(cl.GrantTypes) == 0 && !cl.Introspect {
		p.add(field, "a client without grant types must have introspect: true, or it can do nothing")
	}
}

func validateAudiences(p *problems, field string, auds []string) {
	for j, a := range auds {
		if a == "" {
			p.add(fmt.Sprintf("%s[%d]", field, j), "expected a non-empty audience")
		}
	}
}

func validateTokenTTL(p *problems, field string, d Duration) {
	if t := time.Duration(d); t < minTokenTTL || t > maxTokenTTL {
		p.add(field, "expected a duration from %s to %s, got %s", minTokenTTL, maxTokenTTL, t)
	}
}

// ValidScopeToken reports whether s is an RFC 6749 §3.3 scope-token.
func ValidScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// notVSChar reports runes outside RFC 6749's VSCHAR (%x20-7E).
func notVSChar(r rune) bool { return r < 0x20 || r > 0x7e }

// issuerTypeNames maps the issuer configuration's Go types in yaml.v3
// errors to config paths.
var issuerTypeNames = map[string]string{
	"config.IssuerServer":   "the top level",
	"config.IssuerRotation": "rotation",
	"config.FailedAuth":     "failed_auth",
	"config.IssuerClient":   "clients[]",
}
