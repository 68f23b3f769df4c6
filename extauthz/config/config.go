// Package config loads and validates claimcheck's YAML configuration file.
//
// Loading is strict: an unknown field, a value of the wrong type or a value out
// of range is an error that names the field and says what was expected.
// Relative file paths in the configuration are resolved against the directory
// of the configuration file, so a config works from any working directory.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/claimcheck/claimcheck/extauthz"
	"github.com/claimcheck/claimcheck/extauthz/decisionlog"
	"github.com/claimcheck/claimcheck/extauthz/keys"
	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/extauthz/tracing"
	"github.com/claimcheck/claimcheck/extauthz/urlpath"
	"github.com/claimcheck/claimcheck/policy"
)

// Config is the whole configuration file.
type Config struct {
	Listen      Listen      `yaml:"listen"`
	Issuers     []Issuer    `yaml:"issuers"`
	Token       Token       `yaml:"token"`
	Policy      Policy      `yaml:"policy"`
	HTTP        HTTP        `yaml:"http"`
	Forward     Forward     `yaml:"forward"`
	Routes      Routes      `yaml:"routes"`
	DecisionLog DecisionLog `yaml:"decision_log"`
	Log         Log         `yaml:"log"`
	Limits      Limits      `yaml:"limits"`
	Tracing     Tracing     `yaml:"tracing"`
}

// Listen holds the addresses claimcheck serves on: "host:port" or
// "unix:///absolute/path.sock". At least one of GRPC and HTTP is required.
type Listen struct {
	// GRPC serves Envoy's ext_authz gRPC API and gRPC health.
	GRPC string `yaml:"grpc"`
	// HTTP serves forward-auth for Envoy's http_service, nginx, Caddy and
	// Traefik.
	HTTP string `yaml:"http"`
	// Admin serves /healthz, /readyz and /metrics. Default 127.0.0.1:9193;
	// "off" disables it.
	Admin string `yaml:"admin"`
	// Pprof also serves Go's profiler under /debug/pprof/ on Admin.
	Pprof bool `yaml:"pprof"`
	// TLS serves GRPC and HTTP over TLS; nil serves them plain.
	TLS *TLS `yaml:"tls"`
	// SocketMode is the permission of unix sockets. Default "0660".
	SocketMode SocketMode `yaml:"socket_mode"`
}

// HTTP configures the forward-auth listener.
type HTTP struct {
	// TrustedProxies are the peers (IPs or CIDRs) whose X-Original-* and
	// X-Forwarded-* headers describe the original request. Default loopback.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// PathPrefix is Envoy http_service's path_prefix, stripped from paths.
	PathPrefix string `yaml:"path_prefix"`
	// PathNormalization says what happens to a request path with dot or
	// empty segments, over gRPC and forward-auth alike: "reject" (default,
	// 400 path_invalid) or "resolve" (merge slashes, remove dot segments;
	// only behind a proxy that normalises the same way).
	PathNormalization string `yaml:"path_normalization"`
}

// DefaultPathNormalization is http.path_normalization's default.
const DefaultPathNormalization = "reject"

// PathMode is PathNormalization as a urlpath.Mode; Parse has validated it.
func (h HTTP) PathMode() urlpath.Mode { return urlpath.Modes[h.PathNormalization] }

// Prefixes parses TrustedProxies; Parse has validated them.
func (h HTTP) Prefixes() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(h.TrustedProxies))
	for _, s := range h.TrustedProxies {
		if p, err := parsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// parsePrefix reads a CIDR or a single address.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Issuer is one trusted token issuer.
type Issuer struct {
	Issuer    string   `yaml:"issuer"`
	Audiences []string `yaml:"audiences"`

	// Key sources: at most one of JWKSURI, JWKSFile, PublicKeyFile and
	// HMACSecretFile; with none, keys come from discovery, unless the issuer
	// is Keyless.
	JWKSURI        string `yaml:"jwks_uri"`
	JWKSFile       string `yaml:"jwks_file"`
	PublicKeyFile  string `yaml:"public_key_file"`
	HMACSecretFile string `yaml:"hmac_secret_file"`
	// Discovery is "openid" ({issuer}/.well-known/openid-configuration) or
	// "oauth" (RFC 8414 authorization server metadata).
	Discovery string `yaml:"discovery"`

	Algorithms []string `yaml:"algorithms"`
	ClockSkew  Duration `yaml:"clock_skew"`
	// RequireTyp is the media type the tokens' "typ" header must name
	// (e.g. at+jwt, RFC 9068); empty accepts any typ.
	RequireTyp string `yaml:"require_typ"`
	// MaxKidlessKeys bounds the keys tried for a token whose kid names
	// none (see token.Issuer.MaxKidlessKeys); nil: KidlessKeys's default.
	MaxKidlessKeys *KeyCount `yaml:"max_kidless_keys"`

	// Remote key sets (jwks_uri or discovery). Defaults keys.DefaultMinRefresh,
	// keys.DefaultMaxRefresh and keys.DefaultHTTPTimeout.
	MinRefresh         Duration `yaml:"min_refresh,omitempty"`
	MaxRefresh         Duration `yaml:"max_refresh,omitempty"`
	FetchTimeout       Duration `yaml:"fetch_timeout,omitempty"`
	CAFile             string   `yaml:"ca_file"`
	AllowInsecureHTTP  bool     `yaml:"allow_insecure_http"`
	RequireKeysAtStart bool     `yaml:"require_keys_at_start"`

	// Introspection asks the issuer about tokens (RFC 7662); Introspect
	// says which: opaque (default), always or jwt.
	Introspection *Introspection `yaml:"introspection"`
	Introspect    string         `yaml:"introspect"`
	// Userinfo adds the issuer's OpenID Connect userinfo to the policy input.
	Userinfo *Userinfo `yaml:"userinfo"`
}

// Remote reports whether the issuer's keys are fetched over HTTP.
func (is Issuer) Remote() bool {
	return is.JWKSFile == "" && is.PublicKeyFile == "" && is.HMACSecretFile == "" && !is.Keyless()
}

// HMACMinLength is the shortest secret the issuer's HMAC algorithms accept:
// the longest hash output among them.
func (is Issuer) HMACMinLength() int {
	n := 0
	for _, a := range is.Algorithms {
		if l := hmacAlgorithms[a]; l > n {
			n = l
		}
	}
	return n
}

// KidlessKeys is max_kidless_keys, or token.DefaultMaxKidlessKeys when it
// is not set.
func (is Issuer) KidlessKeys() int {
	if is.MaxKidlessKeys == nil {
		return token.DefaultMaxKidlessKeys
	}
	return int(*is.MaxKidlessKeys)
}

// KeyCount is a number of keys, written as a YAML integer: yaml.v3 would
// truncate 4.5, or read "4", into an int without a word.
type KeyCount int

// UnmarshalYAML accepts only an integer scalar.
func (k *KeyCount) UnmarshalYAML(n *yaml.Node) error {
	var v int
	if err := decodeScalar(n, "!!int", &v, "issuers[].max_kidless_keys",
		fmt.Sprintf("a positive whole number such as %d", token.DefaultMaxKidlessKeys)); err != nil {
		return err
	}
	*k = KeyCount(v)
	return nil
}

// decodeScalar decodes n into v when it is a scalar of the YAML type tag;
// otherwise the error names field and what was expected.
func decodeScalar(n *yaml.Node, tag string, v any, field, expected string) error {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == tag && n.Decode(v) == nil {
		return nil
	}
	got := fmt.Sprintf("%q", n.Value)
	if n.Kind != yaml.ScalarNode {
		got = "a list or mapping"
	}
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s: expected %s, got %s", n.Line, field, expected, got)}}
}

// Token says where bearer tokens are found and how big they may be.
type Token struct {
	// Sources are tried in order. Default extauthz.DefaultSources().
	Sources []Source `yaml:"sources"`
	// Required, when false, lets requests without a token reach the policy
	// (input.token is then absent). Default true.
	Required *bool `yaml:"required"`
	// Realm is the realm in WWW-Authenticate challenges. Default
	// extauthz.DefaultRealm.
	Realm string `yaml:"realm"`
	// MaxSize is the largest accepted token in bytes. Default
	// token.DefaultMaxSize.
	MaxSize int `yaml:"max_size"`
	// Cache remembers verified tokens (and, briefly, rejected ones).
	Cache Cache `yaml:"cache"`
}

// Cache bounds the verified-token cache; the defaults are token's
// DefaultCache* constants.
type Cache struct {
	Enabled     *bool     `yaml:"enabled"`      // default true
	MaxEntries  int       `yaml:"max_entries"`  // default token.DefaultCacheMaxEntries
	MaxBytes    int64     `yaml:"max_bytes"`    // default token.DefaultCacheMaxBytes
	MaxTTL      Duration  `yaml:"max_ttl"`      // default token.DefaultCacheMaxTTL; entries live until min(exp, max_ttl)
	NegativeTTL *Duration `yaml:"negative_ttl"` // default token.DefaultCacheNegativeTTL; 0s disables the negative cache
}

// Negative is the negative cache's TTL.
func (c Cache) Negative() time.Duration {
	if c.NegativeTTL == nil {
		return token.DefaultCacheNegativeTTL
	}
	return time.Duration(*c.NegativeTTL)
}

// On reports whether the cache is enabled.
func (c Cache) On() bool { return c.Enabled == nil || *c.Enabled }

// Source is one place a token may be: exactly one of Header, Query, Cookie.
type Source struct {
	Header string `yaml:"header"`
	Prefix string `yaml:"prefix"`
	Query  string `yaml:"query"`
	Cookie string `yaml:"cookie"`
	// Strip keeps what the source holds from the upstream of an allowed
	// request; unset, see Strips.
	Strip *StripFlag `yaml:"strip"`
}

// Strips reports whether s is stripped: as its strip field says, else
// always for a query or cookie source (a credential in a URL or a cookie
// is one the upstream has no business seeing, and cannot ask for) and, for
// a header source, as forward.strip_token says.
func (s Source) Strips(stripToken bool) bool {
	switch {
	case s.Strip != nil:
		return bool(*s.Strip)
	case s.Header != "":
		return stripToken
	}
	return true
}

// StripFlag is token.sources[].strip, a boolean written as YAML true or
// false only: yaml.v3 would also read yes, on and y as true, and a security
// setting should not depend on which YAML spelling of a word the reader
// knows.
type StripFlag bool

// UnmarshalYAML accepts only a boolean scalar.
func (f *StripFlag) UnmarshalYAML(n *yaml.Node) error {
	var v bool
	if err := decodeScalar(n, "!!bool", &v, "token.sources[].strip", "true or false"); err != nil {
		return err
	}
	*f = StripFlag(v)
	return nil
}

// Policy says where the Rego policy comes from and how it is evaluated.
type Policy struct {
	// Paths and Bundle are exclusive.
	Paths    []string `yaml:"paths"`
	Bundle   *Bundle  `yaml:"bundle"`
	Decision string   `yaml:"decision"`
	// Watch reloads Paths when files change. Default true.
	Watch *bool `yaml:"watch"`
	// DryRun allows every request after evaluating and logging the real
	// decision.
	DryRun bool `yaml:"dry_run"`
	// Timeout bounds one evaluation. Default policy.DefaultEvalTimeout.
	Timeout Duration `yaml:"timeout"`
	// AllowNetwork enables http.send and net.lookup_ip_addr.
	AllowNetwork bool `yaml:"allow_network"`
}

// Bundle pulls the policy from an OPA bundle server.
type Bundle struct {
	URL             string   `yaml:"url"`      // the bundle service, e.g. https://bundles.example.com
	Resource        string   `yaml:"resource"` // e.g. bundles/authz.tar.gz
	MinDelay        Duration `yaml:"min_delay"`
	MaxDelay        Duration `yaml:"max_delay"`
	PublicKeyFile   string   `yaml:"public_key_file"` // verify bundle signatures with this PEM key
	KeyID           string   `yaml:"key_id"`
	Algorithm       string   `yaml:"algorithm"` // signing algorithm; default from the key (RS256, ES256/384/512)
	BearerTokenFile string   `yaml:"bearer_token_file"`
}

// Routes says which Envoy per-route context_extensions may weaken checks.
type Routes struct {
	// AllowPublic honours claimcheck_public: "true" (token optional).
	AllowPublic bool `yaml:"allow_public"`
	// AllowDryRun honours claimcheck_dry_run: "true".
	AllowDryRun bool `yaml:"allow_dry_run"`
}

// DecisionLog says where decisions are recorded.
type DecisionLog struct {
	// Output is "stdout", "stderr", a file path, or empty for none.
	Output string `yaml:"output"`
	// SampleRate is the fraction of decisions logged, in (0, 1]. Default 1.
	SampleRate *float64 `yaml:"sample_rate"`
	// Upload sends decisions to an OPA-compatible decision log service.
	Upload *Upload `yaml:"upload"`
}

// Upload is an OPA-compatible decision log service.
type Upload struct {
	URL             string   `yaml:"url"`
	Resource        string   `yaml:"resource"` // default decisionlog.DefaultUploadResource
	BearerTokenFile string   `yaml:"bearer_token_file"`
	MinDelay        Duration `yaml:"min_delay"`
	MaxDelay        Duration `yaml:"max_delay"`
}

// WatchPolicy reports whether policy files are reloaded on change.
func (c *Config) WatchPolicy() bool { return c.Policy.Watch == nil || *c.Policy.Watch }

// Rate is the fraction of decisions logged.
func (d DecisionLog) Rate() float64 {
	if d.SampleRate == nil {
		return 1
	}
	return *d.SampleRate
}

// Forward says what an allowed request carries upstream.
type Forward struct {
	// Claims maps a claim name to the upstream header that receives its value.
	Claims map[string]string `yaml:"claims"`
	// StripToken strips header token sources that do not say themselves
	// (Source.Strips).
	StripToken bool `yaml:"strip_token"`
}

// Log configures the process log.
type Log struct {
	Level  string `yaml:"level"`  // debug, info (default), warn, error
	Format string `yaml:"format"` // json (default) or text
}

// Tracing sends OpenTelemetry traces of Checks to an OTLP collector.
type Tracing struct {
	// OTLPEndpoint is the collector's URL, e.g. http://otel-collector:4317:
	// https uses TLS, http plaintext. Empty (the default) turns tracing off.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// Protocol is grpc (OTLP/gRPC, the default: tracing.ProtocolGRPC) or
	// http (OTLP/HTTP with protobuf; the URL's path defaults to
	// tracing.DefaultHTTPPath).
	Protocol string `yaml:"protocol"`
	// SampleRatio is the fraction of new traces recorded, in [0, 1];
	// default 1. A forwarded trace context's sampled flag is followed.
	SampleRatio *float64 `yaml:"sample_ratio"`
	// ServiceName is the service.name of the spans. Default "claimcheck".
	ServiceName string `yaml:"service_name"`
	// CAFile is the CAs to trust for an https endpoint (default: the
	// system's).
	CAFile string `yaml:"ca_file"`
}

// On reports whether tracing is configured.
func (t Tracing) On() bool { return t.OTLPEndpoint != "" }

// Ratio is the fraction of new traces sampled.
func (t Tracing) Ratio() float64 {
	if t.SampleRatio == nil {
		return 1
	}
	return *t.SampleRatio
}

// Duration is a time.Duration written as "30s", "1m".
type Duration time.Duration

// UnmarshalYAML reads a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: expected a duration such as \"30s\"", n.Line)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: expected a duration such as \"30s\", got %q", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// DefaultDecision is policy.decision's default. The defaults config
// applies on behalf of other packages are theirs: see setDefaults.
const DefaultDecision = "claimcheck/authz/allow"

const maxClockSkew = 10 * time.Minute

// AsymmetricAlgorithms are the JWS algorithms accepted when an issuer lists none.
var AsymmetricAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// hmacAlgorithms maps the HMAC algorithms, allowed only with
// hmac_secret_file, to their hash output length in bytes.
var hmacAlgorithms = map[string]int{"HS256": 32, "HS384": 48, "HS512": 64}

// Limits of the policy and of remote key sets.
const (
	maxPolicyTimeout  = 10 * time.Second
	minRefreshFloor   = time.Second
	maxRefreshCeiling = 24 * time.Hour
	maxFetchTimeout   = time.Minute
)

// Load reads, decodes and validates the file at path.
func Load(path string) (*Config, error) { return load(path, Parse) }

// Parse decodes and validates a configuration; relative paths are resolved
// against dir.
func Parse(b []byte, dir string) (*Config, error) { return parse[Config](b, dir) }

// parse decodes b strictly, applies the defaults (relative paths against
// dir) and validates.
func parse[T any, PT interface {
	*T
	setDefaults(dir string)
	validate() error
}](b []byte, dir string) (*T, error) {
	var c T
	if err := decodeStrict(b, &c); err != nil {
		return nil, err
	}
	PT(&c).setDefaults(dir)
	if err := PT(&c).validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// load reads the file at path and parses it with parse, relative paths
// against its directory.
func load[T any](path string, parse func([]byte, string) (*T, error)) (*T, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := parse(b, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// decodeStrict decodes the one YAML document in b into v: an unknown field,
// an empty file or a second document ("---") is an error.
func decodeStrict(b []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("the file is empty")
		}
		return friendlyYAMLError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("the file holds more than one YAML document (\"---\"): keep the configuration in one")
	}
	return nil
}

// TokenRequired reports whether requests without a token are denied before policy.
func (c *Config) TokenRequired() bool { return c.Token.Required == nil || *c.Token.Required }

// Defaults of the listeners.
const (
	DefaultAdmin = "127.0.0.1:9193"
	AdminOff     = "off"
)

// DefaultTrustedProxies are trusted when http.trusted_proxies is not set.
var DefaultTrustedProxies = []string{"127.0.0.0/8", "::1/128"}

func (c *Config) setDefaults(dir string) {
	if c.Listen.Admin == "" {
		c.Listen.Admin = DefaultAdmin
	}
	c.setListenDefaults(dir)
	if c.HTTP.PathNormalization == "" {
		c.HTTP.PathNormalization = DefaultPathNormalization
	}
	if c.HTTP.TrustedProxies == nil {
		c.HTTP.TrustedProxies = DefaultTrustedProxies
	}
	if len(c.Token.Sources) == 0 {
		for _, s := range extauthz.DefaultSources() {
			c.Token.Sources = append(c.Token.Sources, Source{Header: s.Header, Prefix: s.Prefix, Query: s.Query, Cookie: s.Cookie})
		}
	}
	for i := range c.Token.Sources {
		c.Token.Sources[i].Header = strings.ToLower(c.Token.Sources[i].Header)
	}
	if c.Token.Realm == "" {
		c.Token.Realm = extauthz.DefaultRealm
	}
	if c.Token.MaxSize == 0 {
		c.Token.MaxSize = token.DefaultMaxSize
	}
	if tc := &c.Token.Cache; tc.On() {
		if tc.MaxEntries == 0 {
			tc.MaxEntries = token.DefaultCacheMaxEntries
		}
		if tc.MaxBytes == 0 {
			tc.MaxBytes = token.DefaultCacheMaxBytes
		}
		if tc.MaxTTL == 0 {
			tc.MaxTTL = Duration(token.DefaultCacheMaxTTL)
		}
	}
	if c.Policy.Decision == "" {
		c.Policy.Decision = DefaultDecision
	}
	for i, p := range c.Policy.Paths {
		c.Policy.Paths[i] = resolve(dir, p)
	}
	if c.Policy.Timeout == 0 {
		c.Policy.Timeout = Duration(policy.DefaultEvalTimeout)
	}
	if b := c.Policy.Bundle; b != nil {
		b.PublicKeyFile = resolve(dir, b.PublicKeyFile)
		b.BearerTokenFile = resolve(dir, b.BearerTokenFile)
	}
	switch c.DecisionLog.Output {
	case "", "stdout", "stderr":
	default:
		c.DecisionLog.Output = resolve(dir, c.DecisionLog.Output)
	}
	if u := c.DecisionLog.Upload; u != nil {
		u.BearerTokenFile = resolve(dir, u.BearerTokenFile)
		if u.Resource == "" {
			u.Resource = decisionlog.DefaultUploadResource
		}
	}
	for i := range c.Issuers {
		is := &c.Issuers[i]
		is.JWKSFile = resolve(dir, is.JWKSFile)
		is.PublicKeyFile = resolve(dir, is.PublicKeyFile)
		is.HMACSecretFile = resolve(dir, is.HMACSecretFile)
		is.CAFile = resolve(dir, is.CAFile)
		if is.HMACSecretFile != "" && len(is.Algorithms) == 0 {
			is.Algorithms = []string{"HS256"}
		}
		is.setIntrospectionDefaults(dir)
		if is.Remote() {
			if is.Discovery == "" && is.JWKSURI == "" {
				is.Discovery = keys.DiscoveryOpenID
			}
			if is.MinRefresh == 0 {
				is.MinRefresh = Duration(keys.DefaultMinRefresh)
			}
			if is.MaxRefresh == 0 {
				is.MaxRefresh = Duration(keys.DefaultMaxRefresh)
			}
			if is.FetchTimeout == 0 {
				is.FetchTimeout = Duration(keys.DefaultHTTPTimeout)
			}
		}
	}
	for k, v := range c.Forward.Claims {
		c.Forward.Claims[k] = strings.ToLower(v)
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	if t := &c.Tracing; t.On() {
		t.CAFile = resolve(dir, t.CAFile)
		if t.Protocol == "" {
			t.Protocol = tracing.ProtocolGRPC
		}
		if t.ServiceName == "" {
			t.ServiceName = "claimcheck"
		}
	}
}

func resolve(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// problems collects validation errors so a user sees all of them at once.
type problems []error

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
}

func (c *Config) validate() error {
	var p problems
	if c.Listen.GRPC == "" && c.Listen.HTTP == "" {
		p.add("listen", "expected grpc or http (or both), e.g. grpc: 127.0.0.1:9191")
	}
	seen := map[string]string{}
	for _, l := range []struct{ field, addr string }{
		{"listen.grpc", c.Listen.GRPC}, {"listen.http", c.Listen.HTTP}, {"listen.admin", c.Listen.Admin},
	} {
		if l.addr == "" || l.addr == AdminOff && l.field == "listen.admin" {
			continue
		}
		validateListen(&p, l.field, l.addr)
		if other, dup := seen[l.addr]; dup && !strings.HasSuffix(l.addr, ":0") {
			p.add(l.field, "%q is also %s", l.addr, other)
		}
		seen[l.addr] = l.field
	}
	c.validateListenExtras(&p)
	for i, tp := range c.HTTP.TrustedProxies {
		if _, err := parsePrefix(tp); err != nil {
			p.add(fmt.Sprintf("http.trusted_proxies[%d]", i), "expected an IP address or CIDR such as 10.0.0.0/8, got %q", tp)
		}
	}
	if pp := c.HTTP.PathPrefix; pp != "" && (!strings.HasPrefix(pp, "/") || strings.ContainsAny(pp, "?# ")) {
		p.add("http.path_prefix", "expected a path such as /authz, got %q", pp)
	}
	if _, ok := urlpath.Modes[c.HTTP.PathNormalization]; !ok {
		p.add("http.path_normalization", "expected reject or resolve, got %q", c.HTTP.PathNormalization)
	}

	if len(c.Issuers) == 0 {
		p.add("issuers", "expected at least one issuer")
	}
	issuers := map[string]bool{}
	for i, is := range c.Issuers {
		field := fmt.Sprintf("issuers[%d]", i)
		is.validate(&p, field)
		if issuers[is.Issuer] && is.Issuer != "" {
			p.add(field+".issuer", "%q is configured twice", is.Issuer)
		}
		issuers[is.Issuer] = true
	}
	c.validateOpaqueIssuers(&p)

	for i, s := range c.Token.Sources {
		s.validate(&p, fmt.Sprintf("token.sources[%d]", i))
	}
	if c.Token.MaxSize < 1024 || c.Token.MaxSize > 1<<20 {
		p.add("token.max_size", "expected a size in bytes between 1024 and 1048576, got %d", c.Token.MaxSize)
	}
	if tc := c.Token.Cache; tc.On() {
		if tc.MaxEntries < 1 || tc.MaxEntries > 10_000_000 {
			p.add("token.cache.max_entries", "expected 1 to 10000000 entries, got %d", tc.MaxEntries)
		}
		if tc.MaxBytes < 1<<20 {
			p.add("token.cache.max_bytes", "expected at least 1048576 bytes, got %d", tc.MaxBytes)
		}
		if d := time.Duration(tc.MaxTTL); d <= 0 || d > 24*time.Hour {
			p.add("token.cache.max_ttl", "expected a duration above 0s and at most 24h, got %s", d)
		}
		if d := tc.Negative(); d < 0 || d > time.Minute {
			p.add("token.cache.negative_ttl", "expected a duration from 0s (off) to 1m, got %s", d)
		}
	}
	if strings.ContainsAny(c.Token.Realm, "\"\\\r\n") {
		p.add("token.realm", "must not contain quotes, backslashes or line breaks")
	}

	switch {
	case len(c.Policy.Paths) == 0 && c.Policy.Bundle == nil:
		p.add("policy.paths", "expected at least one .rego file or directory (or policy.bundle)")
	case len(c.Policy.Paths) > 0 && c.Policy.Bundle != nil:
		p.add("policy", "set paths or bundle, not both")
	}
	if b := c.Policy.Bundle; b != nil {
		b.validate(&p)
		if c.Policy.Watch != nil {
			p.add("policy.watch", "applies only to policy.paths; bundles are polled")
		}
	}
	if d := time.Duration(c.Policy.Timeout); d <= 0 || d > maxPolicyTimeout {
		p.add("policy.timeout", "expected a duration above 0s and at most %s, got %s", maxPolicyTimeout, d)
	}
	if r := c.DecisionLog.Rate(); !(r > 0 && r <= 1) {
		p.add("decision_log.sample_rate", "expected a fraction above 0 and at most 1, got %v", r)
	}
	if u := c.DecisionLog.Upload; u != nil {
		validateFetchURL(&p, "decision_log.upload.url", u.URL, false)
		validateDelays(&p, "decision_log.upload", u.MinDelay, u.MaxDelay)
		validateFile(&p, "decision_log.upload.bearer_token_file", u.BearerTokenFile)
	}
	for i, path := range c.Policy.Paths {
		if _, err := os.Stat(path); err != nil {
			p.add(fmt.Sprintf("policy.paths[%d]", i), "%v", err)
		}
	}
	if !decisionPattern.MatchString(strings.TrimPrefix(c.Policy.Decision, "/")) {
		p.add("policy.decision", "expected a rule path such as claimcheck/authz/allow, got %q", c.Policy.Decision)
	}

	for claim, header := range c.Forward.Claims {
		field := fmt.Sprintf("forward.claims.%s", claim)
		if claim == "" {
			p.add("forward.claims", "a claim name is empty")
		}
		if !headerName.MatchString(header) {
			p.add(field, "expected an HTTP header name, got %q", header)
		} else if reservedHeader(header) {
			p.add(field, "header %q cannot be set from a claim", header)
		}
	}

	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		p.add("log.level", "expected debug, info, warn or error, got %q", c.Log.Level)
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		p.add("log.format", "expected json or text, got %q", c.Log.Format)
	}
	if c.Listen.Pprof && c.Listen.Admin == AdminOff {
		p.add("listen.pprof", "is served on listen.admin, which is off")
	}
	c.Tracing.validate(&p)
	return errors.Join(p...)
}

func (is Issuer) validate(p *problems, field string) {
	if is.Issuer == "" {
		p.add(field+".issuer", "expected the issuer identifier (the tokens' iss value)")
	}
	if len(is.Audiences) == 0 {
		p.add(field+".audiences", "expected at least one audience")
	}
	for j, a := range is.Audiences {
		if a == "" {
			p.add(fmt.Sprintf("%s.audiences[%d]", field, j), "expected a non-empty audience")
		}
	}
	var sources []string
	for _, f := range []struct{ name, value string }{
		{"jwks_uri", is.JWKSURI}, {"jwks_file", is.JWKSFile},
		{"public_key_file", is.PublicKeyFile}, {"hmac_secret_file", is.HMACSecretFile},
	} {
		if f.value != "" {
			sources = append(sources, f.name)
		}
	}
	if len(sources) > 1 {
		p.add(field, "set one key source, not %s", strings.Join(sources, " and "))
	}
	for _, f := range []struct{ name, path string }{
		{"jwks_file", is.JWKSFile}, {"public_key_file", is.PublicKeyFile},
		{"hmac_secret_file", is.HMACSecretFile}, {"ca_file", is.CAFile},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			p.add(field+"."+f.name, "%v", err)
		}
	}
	switch {
	case is.JWKSURI != "":
		validateFetchURL(p, field+".jwks_uri", is.JWKSURI, is.AllowInsecureHTTP)
	case is.Remote():
		validateFetchURL(p, field+".issuer", is.Issuer, is.AllowInsecureHTTP)
	}
	if is.Discovery != "" && (is.JWKSURI != "" || !is.Remote()) {
		p.add(field+".discovery", "applies only when keys come from discovery (no jwks_uri or key file)")
	} else if is.Discovery != "" && is.Discovery != "openid" && is.Discovery != "oauth" {
		p.add(field+".discovery", "expected openid or oauth, got %q", is.Discovery)
	}
	is.validateRemote(p, field)
	is.validateIntrospection(p, field)

	hmac := is.HMACSecretFile != ""
	for j, a := range is.Algorithms {
		_, isHMAC := hmacAlgorithms[a]
		switch {
		case hmac && !isHMAC:
			p.add(fmt.Sprintf("%s.algorithms[%d]", field, j), "with hmac_secret_file expected HS256, HS384 or HS512, got %q", a)
		case !hmac && isHMAC:
			p.add(fmt.Sprintf("%s.algorithms[%d]", field, j), "%s needs hmac_secret_file; key sets and public keys take %s", a, strings.Join(AsymmetricAlgorithms, ", "))
		case !hmac && !slices.Contains(AsymmetricAlgorithms, a):
			p.add(fmt.Sprintf("%s.algorithms[%d]", field, j), "expected one of %s, got %q", strings.Join(AsymmetricAlgorithms, ", "), a)
		}
	}
	if d := time.Duration(is.ClockSkew); d < 0 || d > maxClockSkew {
		p.add(field+".clock_skew", "expected a duration between 0s and %s, got %s", maxClockSkew, d)
	}
	if is.RequireTyp != "" && !token.ValidTyp(is.RequireTyp) {
		p.add(field+".require_typ", "expected a media type such as at+jwt or application/at+jwt, got %q", is.RequireTyp)
	}
	if k := is.MaxKidlessKeys; k != nil && *k < 1 {
		p.add(field+".max_kidless_keys", "expected a positive whole number of keys (default %d), got %d", token.DefaultMaxKidlessKeys, *k)
	}
}

// validateRemote checks the settings of fetched key sets, and that they are
// not set where they would have no effect.
func (is Issuer) validateRemote(p *problems, field string) {
	if !is.Remote() {
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"min_refresh", is.MinRefresh != 0}, {"max_refresh", is.MaxRefresh != 0},
			{"fetch_timeout", is.FetchTimeout != 0}, {"ca_file", is.CAFile != "" && !is.asksIssuer()},
			{"allow_insecure_http", is.AllowInsecureHTTP && !is.asksIssuer()}, {"require_keys_at_start", is.RequireKeysAtStart},
		} {
			if f.set {
				p.add(field+"."+f.name, "applies only to keys fetched over HTTP (jwks_uri or discovery)")
			}
		}
		return
	}
	minR, maxR := time.Duration(is.MinRefresh), time.Duration(is.MaxRefresh)
	if minR < minRefreshFloor || minR > maxRefreshCeiling {
		p.add(field+".min_refresh", "expected a duration between %s and %s, got %s", minRefreshFloor, maxRefreshCeiling, minR)
	}
	if maxR < minR || maxR > maxRefreshCeiling {
		p.add(field+".max_refresh", "expected a duration between min_refresh (%s) and %s, got %s", minR, maxRefreshCeiling, maxR)
	}
	if d := time.Duration(is.FetchTimeout); d <= 0 || d > maxFetchTimeout {
		p.add(field+".fetch_timeout", "expected a duration above 0s and at most %s, got %s", maxFetchTimeout, d)
	}
}

func (t Tracing) validate(p *problems) {
	if !t.On() {
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"protocol", t.Protocol != ""}, {"sample_ratio", t.SampleRatio != nil},
			{"service_name", t.ServiceName != ""}, {"ca_file", t.CAFile != ""},
		} {
			if f.set {
				p.add("tracing."+f.name, "applies only with tracing.otlp_endpoint")
			}
		}
		return
	}
	u, err := url.Parse(t.OTLPEndpoint)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		p.add("tracing.otlp_endpoint", "expected the collector's URL, e.g. http://127.0.0.1:4317 (https for TLS), got %q", t.OTLPEndpoint)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		p.add("tracing.otlp_endpoint", "expected a URL without credentials, query or fragment (set headers with OTEL_EXPORTER_OTLP_HEADERS)")
	case t.Protocol == "grpc" && strings.Trim(u.Path, "/") != "":
		p.add("tracing.otlp_endpoint", "a grpc endpoint has no path, got %q", u.Path)
	case t.CAFile != "" && u.Scheme != "https":
		p.add("tracing.ca_file", "applies only to an https otlp_endpoint")
	}
	if t.Protocol != "grpc" && t.Protocol != "http" {
		p.add("tracing.protocol", "expected grpc or http, got %q", t.Protocol)
	}
	if r := t.Ratio(); !(r >= 0 && r <= 1) {
		p.add("tracing.sample_ratio", "expected a fraction from 0 to 1, got %v", r)
	}
	validateFile(p, "tracing.ca_file", t.CAFile)
}

func (b *Bundle) validate(p *problems) {
	validateFetchURL(p, "policy.bundle.url", b.URL, false)
	if b.Resource == "" {
		p.add("policy.bundle.resource", "expected the bundle's path on the service, e.g. bundles/authz.tar.gz")
	}
	validateDelays(p, "policy.bundle", b.MinDelay, b.MaxDelay)
	validateFile(p, "policy.bundle.public_key_file", b.PublicKeyFile)
	validateFile(p, "policy.bundle.bearer_token_file", b.BearerTokenFile)
	if b.KeyID != "" && b.PublicKeyFile == "" {
		p.add("policy.bundle.key_id", "applies only with public_key_file")
	}
	if b.Algorithm != "" && b.PublicKeyFile == "" {
		p.add("policy.bundle.algorithm", "applies only with public_key_file")
	} else if b.Algorithm != "" && !slices.Contains(AsymmetricAlgorithms, b.Algorithm) {
		p.add("policy.bundle.algorithm", "expected one of %s, got %q", strings.Join(AsymmetricAlgorithms, ", "), b.Algorithm)
	}
}

// validateDelays checks optional polling delays.
func validateDelays(p *problems, field string, minD, maxD Duration) {
	if minD < 0 || maxD < 0 || (minD > 0 && maxD > 0 && maxD < minD) {
		p.add(field, "expected 0 < min_delay <= max_delay, got %s and %s", time.Duration(minD), time.Duration(maxD))
	}
}

// validateFile checks that an optional file exists.
func validateFile(p *problems, field, path string) {
	if path == "" {
		return
	}
	if _, err := os.Stat(path); err != nil {
		p.add(field, "%v", err)
	}
}

func (s Source) validate(p *problems, field string) {
	n := 0
	for _, v := range []string{s.Header, s.Query, s.Cookie} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		p.add(field, "expected exactly one of header, query or cookie")
		return
	}
	if s.Prefix != "" && s.Header == "" {
		p.add(field+".prefix", "a prefix applies only to a header source")
	}
	if s.Header != "" && !headerName.MatchString(s.Header) {
		p.add(field+".header", "expected an HTTP header name, got %q", s.Header)
	}
}

// validateFetchURL checks a URL claimcheck fetches keys or discovery from.
func validateFetchURL(p *problems, field, raw string, allowHTTP bool) {
	validateURL(p, field, raw, allowHTTP, "to fetch keys from (or set jwks_uri or jwks_file; or, for an issuer of opaque tokens only, introspection.endpoint)")
}

// validateURL checks a URL claimcheck sends requests to; what says what
// the URL is for.
func validateURL(p *problems, field, raw string, allowHTTP bool, what string) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		p.add(field, "expected an absolute https URL %s, got %q", what, raw)
		return
	}
	if u.Scheme == "http" && !allowHTTP && !IsLoopback(u.Hostname()) {
		p.add(field, "http is allowed only for loopback hosts or with allow_insecure_http: true, got %q", raw)
	}
}

// IsLoopback reports whether host names this machine's loopback interface.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func validateListen(p *problems, field, addr string) {
	if addr == "" {
		p.add(field, "expected an address such as 127.0.0.1:9191 or unix:///run/claimcheck.sock")
		return
	}
	if path, ok := strings.CutPrefix(addr, "unix://"); ok {
		if !filepath.IsAbs(path) {
			p.add(field, "expected an absolute socket path after unix://, got %q", path)
		}
		return
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		p.add(field, "expected host:port or unix:///path, got %q", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.add(field, "expected a port number from 0 to 65535, got %q", port)
	}
}

var (
	decisionPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$`)
	headerName      = regexp.MustCompile("^[a-z0-9!#$%&'*+.^_`|~-]+$")
)

// reservedHeader reports headers a claim must never overwrite.
func reservedHeader(h string) bool {
	switch h {
	case "host", "content-length", "transfer-encoding", "connection", "te", "upgrade", "authorization", "cookie":
		return true
	}
	return strings.HasPrefix(h, ":")
}

// yamlTypeNames maps Go type names in yaml.v3 errors to config paths.
var yamlTypeNames = map[string]string{
	"config.Config":      "the top level",
	"config.Listen":      "listen",
	"config.HTTP":        "http",
	"config.Issuer":      "issuers[]",
	"config.Token":       "token",
	"config.Source":      "token.sources[]",
	"config.Cache":       "token.cache",
	"config.Policy":      "policy",
	"config.Forward":     "forward",
	"config.Bundle":      "policy.bundle",
	"config.Routes":      "routes",
	"config.DecisionLog": "decision_log",
	"config.Upload":      "decision_log.upload",
	"config.Log":         "log",
	"config.TLS":         "listen.tls",
	"config.Limits":      "limits",
	"config.RequestBody": "limits.request_body",

	"config.Introspection": "issuers[].introspection",
	"config.Userinfo":      "issuers[].userinfo",
	"config.Tracing":       "tracing",
}

var (
	unknownField = regexp.MustCompile(`field (\S+) not found in type (\S+)`)
	wrongType    = regexp.MustCompile("cannot unmarshal !!(\\w+)(?: `([^`]*)`)? into (\\S+)")
)

// friendlyYAMLError rewrites yaml.v3's messages in the config's own terms.
func friendlyYAMLError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return fmt.Errorf("not valid YAML: %w", err)
	}
	msgs := make([]error, 0, len(te.Errors))
	for _, m := range te.Errors {
		m = unknownField.ReplaceAllStringFunc(m, func(s string) string {
			sub := unknownField.FindStringSubmatch(s)
			return fmt.Sprintf("unknown field %q in %s", sub[1], typeName(sub[2]))
		})
		m = wrongType.ReplaceAllStringFunc(m, func(s string) string {
			sub := wrongType.FindStringSubmatch(s)
			if sub[2] == "" {
				return fmt.Sprintf("expected %s, got a %s", goTypeWord(sub[3]), sub[1])
			}
			return fmt.Sprintf("expected %s, got %s %q", goTypeWord(sub[3]), sub[1], sub[2])
		})
		msgs = append(msgs, errors.New(m))
	}
	return errors.Join(msgs...)
}

func typeName(t string) string {
	if n, ok := yamlTypeNames[t]; ok {
		return n
	}
	if n, ok := issuerTypeNames[t]; ok {
		return n
	}
	return t
}

func goTypeWord(t string) string {
	switch {
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["):
		return "a mapping"
	case t == "bool" || t == "*bool":
		return "true or false"
	case t == "int":
		return "a whole number"
	case t == "string":
		return "a string"
	case strings.HasPrefix(t, "config."):
		return "a mapping (" + typeName(t) + ")"
	}
	return t
}
