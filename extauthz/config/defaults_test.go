package config

import (
	"crypto/tls"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/claimcheck/claimcheck/extauthz"
	"github.com/claimcheck/claimcheck/extauthz/decisionlog"
	"github.com/claimcheck/claimcheck/extauthz/introspect"
	"github.com/claimcheck/claimcheck/extauthz/keys"
	"github.com/claimcheck/claimcheck/extauthz/servertls"
	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/extauthz/tracing"
	"github.com/claimcheck/claimcheck/policy"
)

// defaultsYAML sets only what is required, and turns on every block whose
// fields have defaults.
const defaultsYAML = `
listen:
  grpc: "127.0.0.1:9191"
  http: "127.0.0.1:9192"
  tls: {cert_file: jwks.json, key_file: jwks.json}
issuers:
  - issuer: https://id.example.com
    audiences: [orders-api]
    introspection: {client_id: claimcheck, client_secret_file: jwks.json}
    userinfo: {}
policy:
  paths: [policy]
decision_log:
  upload: {url: https://logs.example.com}
tracing:
  otlp_endpoint: http://127.0.0.1:4317
limits:
  request_body: {}
`

// defaultRow is one default: the field as the README's reference writes
// it, the value Parse gives it, and the default it must be.
type defaultRow struct {
	field     string
	got, want any
}

// effectiveDefaults parses defaultsYAML and pairs each effective value
// with its default, taken from the package that owns it.
func effectiveDefaults(t *testing.T) []defaultRow {
	t.Helper()
	c, err := Parse([]byte(defaultsYAML), dirWithFiles(t))
	if err != nil {
		t.Fatal(err)
	}
	is, tc, l := c.Issuers[0], c.Token.Cache, c.Limits
	sources := make([]extauthz.TokenSource, len(c.Token.Sources))
	for i, s := range c.Token.Sources {
		sources[i] = extauthz.TokenSource{Header: s.Header, Prefix: s.Prefix, Query: s.Query, Cookie: s.Cookie}
	}
	d := func(v Duration) time.Duration { return time.Duration(v) }
	return []defaultRow{
		// Owned by the packages that apply them.
		{"token.sources", sources, extauthz.DefaultSources()},
		{"token.realm", c.Token.Realm, extauthz.DefaultRealm},
		{"token.max_size", c.Token.MaxSize, token.DefaultMaxSize},
		{"token.cache.max_entries", tc.MaxEntries, token.DefaultCacheMaxEntries},
		{"token.cache.max_bytes", tc.MaxBytes, int64(token.DefaultCacheMaxBytes)},
		{"token.cache.max_ttl", d(tc.MaxTTL), token.DefaultCacheMaxTTL},
		{"token.cache.negative_ttl", tc.Negative(), token.DefaultCacheNegativeTTL},
		{"issuers[0].max_kidless_keys", is.KidlessKeys(), token.DefaultMaxKidlessKeys},
		{"issuers[0].discovery", is.Discovery, keys.DiscoveryOpenID},
		{"issuers[0].min_refresh", d(is.MinRefresh), keys.DefaultMinRefresh},
		{"issuers[0].max_refresh", d(is.MaxRefresh), keys.DefaultMaxRefresh},
		{"issuers[0].fetch_timeout", d(is.FetchTimeout), keys.DefaultHTTPTimeout},
		{"issuers[0].introspect", is.Introspect, introspect.DefaultMode},
		{"issuers[0].introspection.auth", is.Introspection.Auth, introspect.DefaultAuth},
		{"issuers[0].introspection.timeout", d(is.Introspection.Timeout), introspect.DefaultTimeout},
		{"issuers[0].userinfo.on_error", is.Userinfo.OnError, introspect.DefaultOnError},
		{"issuers[0].userinfo.timeout", d(is.Userinfo.Timeout), introspect.DefaultTimeout},
		{"policy.timeout", d(c.Policy.Timeout), policy.DefaultEvalTimeout},
		{"decision_log.upload.resource", c.DecisionLog.Upload.Resource, decisionlog.DefaultUploadResource},
		{"tracing.protocol", c.Tracing.Protocol, tracing.ProtocolGRPC},
		{"listen.tls.min_version", c.Listen.TLS.Version(), servertls.DefaultMinVersion},
		// Applied by config alone.
		{"listen.admin", c.Listen.Admin, DefaultAdmin},
		{"http.trusted_proxies", c.HTTP.TrustedProxies, DefaultTrustedProxies},
		{"http.path_normalization", c.HTTP.PathNormalization, DefaultPathNormalization},
		{"policy.decision", c.Policy.Decision, DefaultDecision},
		{"issuers[0].introspection.cache_ttl", d(*is.Introspection.CacheTTL), DefaultIntrospectionTTL},
		{"issuers[0].introspection.inactive_ttl", d(*is.Introspection.InactiveTTL), DefaultInactiveTTL},
		{"issuers[0].userinfo.cache_ttl", d(*is.Userinfo.CacheTTL), DefaultUserinfoTTL},
		{"limits.grpc_max_receive_bytes", l.GRPCMaxReceiveBytes, DefaultGRPCMaxReceiveBytes},
		{"limits.grpc_max_concurrent_streams", l.GRPCMaxConcurrentStreams, DefaultGRPCMaxStreams},
		{"limits.max_headers", l.MaxHeaders, DefaultMaxHeaders},
		{"limits.max_header_bytes", l.MaxHeaderBytes, DefaultMaxHeaderBytes},
		{"limits.request_body.max_bytes", l.RequestBody.MaxBytes, DefaultRequestBodyBytes},
		{"limits.check_timeout", d(l.CheckTimeout), DefaultCheckTimeout},
	}
}

func TestParseGivesEachFieldItsOwnersDefault(t *testing.T) {
	for _, r := range effectiveDefaults(t) {
		if !reflect.DeepEqual(r.got, r.want) {
			t.Errorf("%s = %#v, want the default %#v", r.field, r.got, r.want)
		}
	}
}

// readmeStated are defaults the README's reference states in a comment
// rather than as the example's value.
var readmeStated = map[string]func(want any) string{
	"token.sources": func(want any) string {
		var b strings.Builder
		for i, s := range want.([]extauthz.TokenSource) {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "{header: %s, prefix: %q}", s.Header, s.Prefix)
		}
		return "default: [" + b.String() + "]"
	},
	"listen.tls.min_version": func(want any) string {
		return fmt.Sprintf("%q (default)", strings.TrimPrefix(tls.VersionName(want.(uint16)), "TLS "))
	},
	"decision_log.upload.resource":  func(want any) string { return "#   resource: " + want.(string) },
	"limits.request_body.max_bytes": func(want any) string { return fmt.Sprintf("(default %d)", want) },
}

func TestREADMEConfigurationStatesTheDefaults(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)\n## Configuration\n.*?```yaml\n(.*?)```").FindSubmatch(b)
	if block == nil {
		t.Fatal("README.md: no yaml block under ## Configuration")
	}
	var doc any
	if err := yaml.Unmarshal(block[1], &doc); err != nil {
		t.Fatalf("README.md: the configuration reference is not YAML: %v", err)
	}
	for _, r := range effectiveDefaults(t) {
		if stated, ok := readmeStated[r.field]; ok {
			if s := stated(r.want); !strings.Contains(string(block[1]), s) {
				t.Errorf("README.md: the reference does not say %q", s)
			}
			continue
		}
		got, ok := lookup(doc, r.field)
		if !ok {
			t.Errorf("README.md: the reference has no %s", r.field)
			continue
		}
		if want := readmeValue(r.want); fmt.Sprint(got) != want {
			t.Errorf("README.md: %s is %v, but the default is %s", r.field, got, want)
		}
	}
}

// lookup follows a path such as issuers[0].userinfo.timeout through a
// decoded YAML document.
func lookup(doc any, path string) (any, bool) {
	for _, part := range strings.Split(path, ".") {
		name, index, list := strings.Cut(strings.TrimSuffix(part, "]"), "[")
		m, ok := doc.(map[string]any)
		if !ok {
			return nil, false
		}
		if doc, ok = m[name]; !ok {
			return nil, false
		}
		if list {
			i, err := strconv.Atoi(index)
			l, ok := doc.([]any)
			if err != nil || !ok || i >= len(l) {
				return nil, false
			}
			doc = l[i]
		}
	}
	return doc, true
}

// readmeValue writes a default as the README does: durations without
// zero units ("1h", "5m", "100ms"), lists as fmt prints a decoded list.
func readmeValue(v any) string {
	d, ok := v.(time.Duration)
	if !ok {
		return fmt.Sprint(v)
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
