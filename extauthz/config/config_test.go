package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/claimcheck/claimcheck/extauthz"
	"github.com/claimcheck/claimcheck/extauthz/keys"
	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/policy"
)

// validYAML is a minimal valid config; tests replace parts of it.
const validYAML = `
listen: {grpc: "127.0.0.1:9191"}
issuers:
  - issuer: https://id.example.com
    audiences: [orders-api]
    jwks_file: jwks.json
    clock_skew: 30s
policy:
  paths: [policy]
`

// dirWithFiles returns a directory holding the files validYAML names.
func dirWithFiles(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "jwks.json"), []byte(`{"keys":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "policy"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestParseAppliesDefaultsAndResolvesPaths(t *testing.T) {
	dir := dirWithFiles(t)
	c, err := Parse([]byte(validYAML), dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Token.Sources; len(got) != 1 || got[0].Header != "authorization" || got[0].Prefix != "Bearer " {
		t.Errorf("default sources = %+v", got)
	}
	if c.Token.MaxSize != token.DefaultMaxSize || c.Token.Realm != extauthz.DefaultRealm || c.Policy.Decision != DefaultDecision {
		t.Errorf("defaults not applied: %+v %+v", c.Token, c.Policy)
	}
	if !c.TokenRequired() {
		t.Error("token should be required by default")
	}
	if want := filepath.Join(dir, "policy"); c.Policy.Paths[0] != want {
		t.Errorf("policy path = %q, want %q", c.Policy.Paths[0], want)
	}
	if want := filepath.Join(dir, "jwks.json"); c.Issuers[0].JWKSFile != want {
		t.Errorf("jwks_file = %q, want %q", c.Issuers[0].JWKSFile, want)
	}
	if time.Duration(c.Issuers[0].ClockSkew) != 30*time.Second {
		t.Errorf("clock_skew = %v", time.Duration(c.Issuers[0].ClockSkew))
	}
}

func TestParseAcceptsFullContract(t *testing.T) {
	dir := dirWithFiles(t)
	yml := `
listen: {grpc: "unix:///run/claimcheck.sock"}
issuers:
  - issuer: https://id.example.com
    audiences: [orders-api]
    jwks_uri: https://id.example.com/jwks.json
    algorithms: [RS256, ES256]
    clock_skew: 30s
    require_typ: at+jwt
  - issuer: https://other.example.com
    audiences: [a, b]
token:
  sources: [{header: Authorization, prefix: "Bearer "}, {query: access_token}, {cookie: at}]
  required: false
policy:
  paths: [policy]
  decision: claimcheck/authz/allow
forward:
  claims: {client_id: X-Client-Id, sub: x-subject}
  strip_token: true
log: {level: debug, format: text}
`
	c, err := Parse([]byte(yml), dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.TokenRequired() {
		t.Error("required: false was ignored")
	}
	if c.Issuers[0].RequireTyp != "at+jwt" || c.Issuers[1].RequireTyp != "" {
		t.Errorf("require_typ = %q, %q", c.Issuers[0].RequireTyp, c.Issuers[1].RequireTyp)
	}
	if c.Token.Sources[0].Header != "authorization" || c.Forward.Claims["client_id"] != "x-client-id" {
		t.Error("header names are not lower-cased")
	}
}

func TestParseRejectsWithFieldAndExpectation(t *testing.T) {
	tests := []struct {
		name    string
		replace [2]string // old, new within validYAML
		append  string
		want    []string // every substring must appear in the error
	}{
		{name: "unknown top-level field", append: "listn: {}\n", want: []string{`unknown field "listn"`, "top level", "line"}},
		{name: "a second YAML document", append: "---\nlisten: {grpc: \"0.0.0.0:1\"}\n", want: []string{"more than one YAML document"}},
		{name: "unknown issuer field", replace: [2]string{"clock_skew: 30s", "clock_skew: 30s\n    audience: x"}, want: []string{`unknown field "audience"`, "issuers[]"}},
		{name: "unknown field in a token source", append: "token: {sources: [{header: x, prefx: y}]}\n", want: []string{`unknown field "prefx"`, "token.sources[]"}},
		{name: "bad duration", replace: [2]string{"30s", "thirty"}, want: []string{"duration", `"thirty"`}},
		{name: "wrong type", replace: [2]string{"audiences: [orders-api]", "audiences: {a: b}"}, want: []string{"expected a list"}},
		{name: "missing listen", replace: [2]string{`listen: {grpc: "127.0.0.1:9191"}`, ""}, want: []string{"listen: expected grpc or http"}},
		{name: "bad http listen", replace: [2]string{`listen: {grpc: "127.0.0.1:9191"}`, `listen: {http: "localhost"}`}, want: []string{"listen.http", "host:port"}},
		{name: "same address twice", replace: [2]string{`listen: {grpc: "127.0.0.1:9191"}`, `listen: {grpc: "127.0.0.1:9191", admin: "127.0.0.1:9191"}`}, want: []string{"listen.admin", "also listen.grpc"}},
		{name: "bad trusted proxy", append: "http: {trusted_proxies: [10.0.0.0/33]}\n", want: []string{"http.trusted_proxies[0]", "CIDR"}},
		{name: "bad path prefix", append: "http: {path_prefix: authz}\n", want: []string{"http.path_prefix", "/authz"}},
		{name: "bad listen port", replace: [2]string{"9191", "99999"}, want: []string{"listen.grpc", "port"}},
		{name: "relative unix socket", replace: [2]string{"127.0.0.1:9191", "unix://run.sock"}, want: []string{"listen.grpc", "absolute"}},
		{name: "no issuers", replace: [2]string{"  - issuer: https://id.example.com\n    audiences: [orders-api]\n    jwks_file: jwks.json\n    clock_skew: 30s\n", ""}, want: []string{"issuers: expected at least one issuer"}},
		{name: "no audiences", replace: [2]string{"audiences: [orders-api]", "audiences: []"}, want: []string{"issuers[0].audiences", "at least one"}},
		{name: "both jwks sources", replace: [2]string{"jwks_file: jwks.json", "jwks_file: jwks.json\n    jwks_uri: https://x/j"}, want: []string{"issuers[0]", "set one key source, not jwks_uri and jwks_file"}},
		{name: "missing jwks file", replace: [2]string{"jwks_file: jwks.json", "jwks_file: nope.json"}, want: []string{"issuers[0].jwks_file", "nope.json"}},
		{name: "http jwks uri to a remote host", replace: [2]string{"jwks_file: jwks.json", "jwks_uri: http://id.example.com/jwks"}, want: []string{"issuers[0].jwks_uri", "allow_insecure_http"}},
		{name: "discovery needs a URL issuer", replace: [2]string{"https://id.example.com\n    audiences: [orders-api]\n    jwks_file: jwks.json", "my-issuer\n    audiences: [orders-api]"}, want: []string{"issuers[0].issuer", "https URL"}},
		{name: "symmetric algorithm", replace: [2]string{"clock_skew: 30s", "clock_skew: 30s\n    algorithms: [HS256]"}, want: []string{"issuers[0].algorithms[0]", "HS256 needs hmac_secret_file"}},
		{name: "asymmetric algorithm with an HMAC secret", replace: [2]string{"jwks_file: jwks.json", "hmac_secret_file: jwks.json\n    algorithms: [RS256]"}, want: []string{"issuers[0].algorithms[0]", "with hmac_secret_file expected HS256"}},
		{name: "unknown discovery kind", replace: [2]string{"    jwks_file: jwks.json\n", "    discovery: saml\n"}, want: []string{"issuers[0].discovery", "openid or oauth"}},
		{name: "discovery with a key file", replace: [2]string{"jwks_file: jwks.json", "jwks_file: jwks.json\n    discovery: oauth"}, want: []string{"issuers[0].discovery", "applies only"}},
		{name: "refresh setting on a static key", replace: [2]string{"jwks_file: jwks.json", "jwks_file: jwks.json\n    min_refresh: 1m"}, want: []string{"issuers[0].min_refresh", "applies only to keys fetched over HTTP"}},
		{name: "max_refresh below min_refresh", replace: [2]string{"jwks_file: jwks.json", "jwks_uri: https://id.example.com/jwks\n    min_refresh: 10m\n    max_refresh: 1m"}, want: []string{"issuers[0].max_refresh", "between min_refresh (10m0s)"}},
		{name: "min_refresh too short", replace: [2]string{"jwks_file: jwks.json", "jwks_uri: https://id.example.com/jwks\n    min_refresh: 10ms"}, want: []string{"issuers[0].min_refresh", "between 1s and 24h0m0s"}},
		{name: "fetch_timeout too long", replace: [2]string{"jwks_file: jwks.json", "jwks_uri: https://id.example.com/jwks\n    fetch_timeout: 5m"}, want: []string{"issuers[0].fetch_timeout", "at most 1m0s"}},
		{name: "missing ca_file", replace: [2]string{"jwks_file: jwks.json", "jwks_uri: https://id.example.com/jwks\n    ca_file: ca.pem"}, want: []string{"issuers[0].ca_file", "ca.pem"}},
		{name: "missing public key file", replace: [2]string{"jwks_file: jwks.json", "public_key_file: key.pem"}, want: []string{"issuers[0].public_key_file", "key.pem"}},
		{name: "none algorithm", replace: [2]string{"clock_skew: 30s", "clock_skew: 30s\n    algorithms: [none]"}, want: []string{"issuers[0].algorithms[0]"}},
		{name: "skew too large", replace: [2]string{"30s", "1h"}, want: []string{"issuers[0].clock_skew", "between 0s and 10m0s"}},
		{name: "require_typ with a space", replace: [2]string{"clock_skew: 30s", "clock_skew: 30s\n    require_typ: at jwt"}, want: []string{"issuers[0].require_typ", "media type", `"at jwt"`}},
		{name: "require_typ with two slashes", replace: [2]string{"clock_skew: 30s", "clock_skew: 30s\n    require_typ: application/at/jwt"}, want: []string{"issuers[0].require_typ"}},
		{name: "require_typ with parameters", replace: [2]string{"clock_skew: 30s", "clock_skew: 30s\n    require_typ: 'at+jwt; q=1'"}, want: []string{"issuers[0].require_typ"}},
		{name: "require_typ not a string", replace: [2]string{"clock_skew: 30s", "clock_skew: 30s\n    require_typ: [at+jwt]"}, want: []string{"line 8", "expected a string"}},
		{name: "duplicate issuer", replace: [2]string{"    clock_skew: 30s\n", "    clock_skew: 30s\n  - issuer: https://id.example.com\n    audiences: [x]\n    jwks_file: jwks.json\n"}, want: []string{"issuers[1].issuer", "twice"}},
		{name: "source with two places", append: "token: {sources: [{header: x, query: y}]}\n", want: []string{"token.sources[0]", "exactly one of header, query or cookie"}},
		{name: "prefix on a query source", append: "token: {sources: [{query: t, prefix: 'Bearer '}]}\n", want: []string{"token.sources[0].prefix"}},
		{name: "max size out of range", append: "token: {max_size: 10}\n", want: []string{"token.max_size", "between 1024 and 1048576"}},
		{name: "no policy paths", replace: [2]string{"paths: [policy]", "paths: []"}, want: []string{"policy.paths", "at least one"}},
		{name: "missing policy path", replace: [2]string{"paths: [policy]", "paths: [nowhere]"}, want: []string{"policy.paths[0]", "nowhere"}},
		{name: "bad decision path", replace: [2]string{"paths: [policy]", "paths: [policy]\n  decision: data.x.allow"}, want: []string{"policy.decision", "claimcheck/authz/allow"}},
		{name: "forward to a reserved header", append: "forward: {claims: {sub: authorization}}\n", want: []string{"forward.claims.sub", "cannot be set"}},
		{name: "forward to an invalid header", append: "forward: {claims: {sub: 'x y'}}\n", want: []string{"forward.claims.sub", "header name"}},
		{name: "bad log level", append: "log: {level: loud}\n", want: []string{"log.level", `"loud"`}},
		{name: "paths and bundle", replace: [2]string{"paths: [policy]", "paths: [policy]\n  bundle: {url: https://b.example.com, resource: authz.tar.gz}"}, want: []string{"policy: set paths or bundle, not both"}},
		{name: "bundle without resource", replace: [2]string{"paths: [policy]", "bundle: {url: https://b.example.com}"}, want: []string{"policy.bundle.resource"}},
		{name: "bundle over plain http", replace: [2]string{"paths: [policy]", "bundle: {url: http://b.example.com, resource: x}"}, want: []string{"policy.bundle.url", "http is allowed only for loopback"}},
		{name: "bundle with watch", replace: [2]string{"paths: [policy]", "bundle: {url: https://b.example.com, resource: x}\n  watch: false"}, want: []string{"policy.watch", "applies only to policy.paths"}},
		{name: "bundle key id without key", replace: [2]string{"paths: [policy]", "bundle: {url: https://b.example.com, resource: x, key_id: k}"}, want: []string{"policy.bundle.key_id"}},
		{name: "bundle delays reversed", replace: [2]string{"paths: [policy]", "bundle: {url: https://b.example.com, resource: x, min_delay: 10s, max_delay: 1s}"}, want: []string{"policy.bundle", "min_delay <= max_delay"}},
		{name: "unknown bundle field", replace: [2]string{"paths: [policy]", "bundle: {url: https://b.example.com, resource: x, polling: 1}"}, want: []string{`unknown field "polling" in policy.bundle`}},
		{name: "policy timeout too long", replace: [2]string{"paths: [policy]", "paths: [policy]\n  timeout: 1m"}, want: []string{"policy.timeout", "at most 10s"}},
		{name: "socket mode not octal", replace: [2]string{`grpc: "127.0.0.1:9191"`, `grpc: "unix:///run/cc.sock", socket_mode: "0880"`}, want: []string{"listen.socket_mode", `octal permission such as "0660", got "0880"`}},
		{name: "socket mode unquoted", replace: [2]string{`grpc: "127.0.0.1:9191"`, `grpc: "unix:///run/cc.sock", socket_mode: 0660`}, want: []string{"listen.socket_mode", "octal mode in quotes"}},
		{name: "socket mode without a socket", replace: [2]string{`grpc: "127.0.0.1:9191"`, `grpc: "127.0.0.1:9191", socket_mode: "0600"`}, want: []string{"listen.socket_mode", "applies only to unix:// listeners"}},
		{name: "tls without key", replace: [2]string{`grpc: "127.0.0.1:9191"`, `grpc: "127.0.0.1:9191", tls: {cert_file: jwks.json}`}, want: []string{"listen.tls.key_file", "expected the PEM private key file"}},
		{name: "tls with a missing file", replace: [2]string{`grpc: "127.0.0.1:9191"`, `grpc: "127.0.0.1:9191", tls: {cert_file: jwks.json, key_file: jwks.json, client_ca_file: ca.pem}`}, want: []string{"listen.tls.client_ca_file", "ca.pem"}},
		{name: "tls min version", replace: [2]string{`grpc: "127.0.0.1:9191"`, `grpc: "127.0.0.1:9191", tls: {cert_file: jwks.json, key_file: jwks.json, min_version: "1.1"}`}, want: []string{"listen.tls.min_version", `"1.2" or "1.3", got "1.1"`}},
		{name: "tls for the admin listener", replace: [2]string{`grpc: "127.0.0.1:9191"`, `grpc: "127.0.0.1:9191", tls: {cert_file: jwks.json, key_file: jwks.json, listeners: [admin]}`}, want: []string{"listen.tls.listeners[0]", "admin listener is always plain"}},
		{name: "tls for an unconfigured listener", replace: [2]string{`grpc: "127.0.0.1:9191"`, `grpc: "127.0.0.1:9191", tls: {cert_file: jwks.json, key_file: jwks.json, listeners: [grpc, http]}`}, want: []string{"listen.tls.listeners[1]", "listen.http is not configured"}},
		{name: "unknown tls field", replace: [2]string{`grpc: "127.0.0.1:9191"`, `grpc: "127.0.0.1:9191", tls: {cert: x}`}, want: []string{`unknown field "cert" in listen.tls`}},
		{name: "grpc message size too small", append: "limits: {grpc_max_receive_bytes: 1000}\n", want: []string{"limits.grpc_max_receive_bytes", "65536 to 67108864"}},
		{name: "no concurrent streams", append: "limits: {grpc_max_concurrent_streams: -1}\n", want: []string{"limits.grpc_max_concurrent_streams"}},
		{name: "too few headers", append: "limits: {max_headers: 3}\n", want: []string{"limits.max_headers", "16 to 10000"}},
		{name: "header bytes too large", append: "limits: {max_header_bytes: 100000000}\n", want: []string{"limits.max_header_bytes"}},
		{name: "header bytes below the token size", append: "token: {max_size: 65536}\nlimits: {max_header_bytes: 32768}\n", want: []string{"limits.max_header_bytes", "cannot carry a token of token.max_size (65536 bytes)"}},
		{name: "body larger than a gRPC message", append: "limits: {request_body: {max_bytes: 8388608}}\n", want: []string{"limits.request_body.max_bytes", "does not fit in limits.grpc_max_receive_bytes (4194304)"}},
		{name: "negative body size", append: "limits: {request_body: {max_bytes: -5}}\n", want: []string{"limits.request_body.max_bytes", "1 to 16777216"}},
		{name: "check timeout too short", append: "limits: {check_timeout: 1ms}\n", want: []string{"limits.check_timeout", "10ms to 1m"}},
		{name: "unknown limits field", append: "limits: {max_body: 1}\n", want: []string{`unknown field "max_body" in limits`}},
		{name: "sample rate zero", append: "decision_log: {output: stdout, sample_rate: 0}\n", want: []string{"decision_log.sample_rate"}},
		{name: "sample rate above one", append: "decision_log: {sample_rate: 1.5}\n", want: []string{"decision_log.sample_rate"}},
		{name: "upload without url", append: "decision_log: {upload: {resource: /logs}}\n", want: []string{"decision_log.upload.url"}},
		{name: "cache without entries", append: "token: {cache: {max_entries: -1}}\n", want: []string{"token.cache.max_entries"}},
		{name: "cache too small", append: "token: {cache: {max_bytes: 100}}\n", want: []string{"token.cache.max_bytes"}},
		{name: "negative ttl too long", append: "token: {cache: {negative_ttl: 1h}}\n", want: []string{"token.cache.negative_ttl"}},
		{name: "unknown cache field", append: "token: {cache: {size: 1}}\n", want: []string{`unknown field "size" in token.cache`}},
		{name: "unknown routes field", append: "routes: {allow_everything: true}\n", want: []string{`unknown field "allow_everything" in routes`}},
		{name: "pprof without admin", replace: [2]string{`listen: {grpc: "127.0.0.1:9191"}`, `listen: {grpc: "127.0.0.1:9191", admin: "off", pprof: true}`}, want: []string{"listen.pprof", "listen.admin"}},
		{name: "tracing endpoint not a URL", append: "tracing: {otlp_endpoint: 'collector:4317'}\n", want: []string{"tracing.otlp_endpoint", "http://127.0.0.1:4317"}},
		{name: "tracing endpoint with credentials", append: "tracing: {otlp_endpoint: 'https://u:p@collector:4317'}\n", want: []string{"tracing.otlp_endpoint", "OTEL_EXPORTER_OTLP_HEADERS"}},
		{name: "tracing grpc endpoint with a path", append: "tracing: {otlp_endpoint: 'http://collector:4317/v1/traces'}\n", want: []string{"tracing.otlp_endpoint", "no path"}},
		{name: "tracing protocol unknown", append: "tracing: {otlp_endpoint: 'http://collector:4317', protocol: thrift}\n", want: []string{"tracing.protocol", "grpc or http"}},
		{name: "tracing sample ratio above one", append: "tracing: {otlp_endpoint: 'http://collector:4317', sample_ratio: 2}\n", want: []string{"tracing.sample_ratio", "from 0 to 1"}},
		{name: "tracing ca_file over plain http", append: "tracing: {otlp_endpoint: 'http://collector:4317', ca_file: jwks.json}\n", want: []string{"tracing.ca_file", "https"}},
		{name: "tracing settings without an endpoint", append: "tracing: {sample_ratio: 0.5}\n", want: []string{"tracing.sample_ratio", "applies only with tracing.otlp_endpoint"}},
		{name: "unknown tracing field", append: "tracing: {endpoint: x}\n", want: []string{`unknown field "endpoint" in tracing`}},
		{name: "empty file", replace: [2]string{validYAML, ""}, want: []string{"empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yml := validYAML
			if tt.replace[0] != "" {
				if !strings.Contains(yml, tt.replace[0]) {
					t.Fatalf("test bug: %q not in validYAML", tt.replace[0])
				}
				yml = strings.Replace(yml, tt.replace[0], tt.replace[1], 1)
			}
			yml += tt.append
			_, err := Parse([]byte(yml), dirWithFiles(t))
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

func TestParseMaxKidlessKeys(t *testing.T) {
	tests := []struct {
		value string // "" leaves the field out
		want  int    // with no error
		err   []string
	}{
		{value: "", want: 4},
		{value: "1", want: 1},
		{value: "4", want: 4},
		{value: "300", want: 300},
		{value: "~", want: 4}, // null is left out, as for every optional field
		{value: "0", err: []string{"issuers[0].max_kidless_keys", "expected a positive whole number", "got 0"}},
		{value: "-1", err: []string{"issuers[0].max_kidless_keys", "got -1"}},
		{value: "-9223372036854775808", err: []string{"issuers[0].max_kidless_keys"}},
		{value: "99999999999999999999", err: []string{"line 8", "issuers[].max_kidless_keys", "expected a positive whole number"}},
		{value: "4.5", err: []string{"line 8", "issuers[].max_kidless_keys", `got "4.5"`}},
		{value: "4.0", err: []string{"issuers[].max_kidless_keys", `got "4.0"`}},
		{value: "1e3", err: []string{"issuers[].max_kidless_keys", `got "1e3"`}},
		{value: `"4"`, err: []string{"issuers[].max_kidless_keys", `got "4"`}},
		{value: "four", err: []string{"issuers[].max_kidless_keys", `got "four"`}},
		{value: "true", err: []string{"issuers[].max_kidless_keys", `got "true"`}},
		{value: ".inf", err: []string{"issuers[].max_kidless_keys"}},
		{value: "[4]", err: []string{"issuers[].max_kidless_keys", "got a list or mapping"}},
		{value: "{n: 4}", err: []string{"issuers[].max_kidless_keys", "got a list or mapping"}},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			yml := validYAML
			if tt.value != "" {
				yml = strings.Replace(yml, "clock_skew: 30s", "clock_skew: 30s\n    max_kidless_keys: "+tt.value, 1)
			}
			c, err := Parse([]byte(yml), dirWithFiles(t))
			if tt.err == nil {
				if err != nil {
					t.Fatal(err)
				}
				if got := c.Issuers[0].KidlessKeys(); got != tt.want {
					t.Errorf("KidlessKeys() = %d, want %d", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, KidlessKeys() = %d", c.Issuers[0].KidlessKeys())
			}
			for _, w := range tt.err {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseKeySourceDefaults(t *testing.T) {
	dir := dirWithFiles(t)
	tests := []struct {
		name, source string
		check        func(t *testing.T, is Issuer)
	}{
		{name: "discovery gets openid and refresh defaults", source: "", check: func(t *testing.T, is Issuer) {
			if !is.Remote() || is.Discovery != "openid" || time.Duration(is.MinRefresh) != keys.DefaultMinRefresh ||
				time.Duration(is.MaxRefresh) != keys.DefaultMaxRefresh || time.Duration(is.FetchTimeout) != keys.DefaultHTTPTimeout {
				t.Errorf("issuer = %+v", is)
			}
		}},
		{name: "jwks_uri has no discovery", source: "jwks_uri: https://id.example.com/jwks", check: func(t *testing.T, is Issuer) {
			if !is.Remote() || is.Discovery != "" {
				t.Errorf("issuer = %+v", is)
			}
		}},
		{name: "hmac secret defaults to HS256", source: "hmac_secret_file: jwks.json", check: func(t *testing.T, is Issuer) {
			if is.Remote() || len(is.Algorithms) != 1 || is.Algorithms[0] != "HS256" || is.HMACMinLength() != 32 {
				t.Errorf("issuer = %+v", is)
			}
			if is.HMACSecretFile != filepath.Join(dir, "jwks.json") {
				t.Errorf("hmac_secret_file not resolved: %q", is.HMACSecretFile)
			}
		}},
		{name: "hmac minimum length follows the strongest algorithm", source: "hmac_secret_file: jwks.json\n    algorithms: [HS256, HS512]", check: func(t *testing.T, is Issuer) {
			if is.HMACMinLength() != 64 {
				t.Errorf("HMACMinLength = %d", is.HMACMinLength())
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yml := strings.Replace(validYAML, "jwks_file: jwks.json", tt.source, 1)
			c, err := Parse([]byte(yml), dir)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c.Issuers[0])
		})
	}
}

func TestPolicyAndDecisionLogDefaults(t *testing.T) {
	dir := dirWithFiles(t)
	c, err := Parse([]byte(validYAML+"decision_log: {output: decisions.log, upload: {url: https://logs.example.com}}\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	if !c.WatchPolicy() || time.Duration(c.Policy.Timeout) != policy.DefaultEvalTimeout || c.Policy.DryRun {
		t.Errorf("policy defaults = %+v", c.Policy)
	}
	if c.DecisionLog.Rate() != 1 || c.DecisionLog.Output != filepath.Join(dir, "decisions.log") || c.DecisionLog.Upload.Resource != "/logs" {
		t.Errorf("decision_log = %+v %+v", c.DecisionLog, c.DecisionLog.Upload)
	}
	c, err = Parse([]byte(validYAML+"decision_log: {output: stdout}\n"), dir)
	if err != nil || c.DecisionLog.Output != "stdout" {
		t.Errorf("stdout output = %q, %v", c.DecisionLog.Output, err)
	}
}

func TestListenersAndTrustedProxies(t *testing.T) {
	dir := dirWithFiles(t)
	c, err := Parse([]byte(validYAML), dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen.Admin != DefaultAdmin {
		t.Errorf("admin = %q", c.Listen.Admin)
	}
	if got := c.HTTP.Prefixes(); len(got) != 2 || got[0].String() != "127.0.0.0/8" || got[1].String() != "::1/128" {
		t.Errorf("default trusted proxies = %v", got)
	}
	yml := strings.Replace(validYAML, `listen: {grpc: "127.0.0.1:9191"}`, `listen: {http: "unix:///run/cc-http.sock", admin: "off"}`, 1) +
		"http: {trusted_proxies: [10.1.2.3, 10.0.0.0/8, \"fd00::/8\"], path_prefix: /authz}\n"
	if c, err = Parse([]byte(yml), dir); err != nil {
		t.Fatal(err)
	}
	want := []string{"10.1.2.3/32", "10.0.0.0/8", "fd00::/8"}
	for i, p := range c.HTTP.Prefixes() {
		if p.String() != want[i] {
			t.Errorf("trusted proxy %d = %v, want %s", i, p, want[i])
		}
	}
	if c.Listen.Admin != AdminOff || c.Listen.GRPC != "" {
		t.Errorf("listen = %+v", c.Listen)
	}
}

func TestTokenCacheDefaults(t *testing.T) {
	dir := dirWithFiles(t)
	c, err := Parse([]byte(validYAML), dir)
	if err != nil {
		t.Fatal(err)
	}
	tc := c.Token.Cache
	if !tc.On() || tc.MaxEntries != token.DefaultCacheMaxEntries || tc.MaxBytes != token.DefaultCacheMaxBytes ||
		time.Duration(tc.MaxTTL) != token.DefaultCacheMaxTTL || tc.Negative() != token.DefaultCacheNegativeTTL {
		t.Errorf("cache defaults = %+v", tc)
	}
	c, err = Parse([]byte(validYAML+"token: {cache: {negative_ttl: 0s}}\n"), dir)
	if err != nil || c.Token.Cache.Negative() != 0 {
		t.Errorf("negative_ttl: 0s = %v, %v", c.Token.Cache.Negative(), err)
	}
	c, err = Parse([]byte(validYAML+"token: {cache: {enabled: false, max_entries: -5}}\n"), dir)
	if err != nil || c.Token.Cache.On() {
		t.Errorf("a disabled cache: %+v, %v", c.Token.Cache, err)
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	dir := dirWithFiles(t)
	p := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(p, []byte(validYAML+"bogus: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), `unknown field "bogus"`) {
		t.Fatalf("Load error = %v", err)
	}
}

func TestShippedQuickstartConfigIsValid(t *testing.T) {
	if _, err := Load("../../examples/quickstart/config.yaml"); err != nil {
		t.Fatal(err)
	}
}

// TestParsedIssuersRefuseForgeries runs FuzzParse's verifier check on
// configurations with each kind of issuer.
func TestParsedIssuersRefuseForgeries(t *testing.T) {
	dir := dirWithFiles(t)
	writeFuzzFiles(t, dir)
	keys := newForgeryKeys(t)
	for _, yml := range []string{validYAML, hmacAndPEMYAML} {
		c, err := Parse([]byte(yml), dir)
		if err != nil {
			t.Fatal(err)
		}
		refusesForgeries(t, c, keys)
	}
}

const hmacAndPEMYAML = "listen: {http: \"127.0.0.1:1\"}\nissuers: [{issuer: a, audiences: [b], hmac_secret_file: hmac.secret, algorithms: [HS512]}, {issuer: c, audiences: [d], public_key_file: key.pem, require_typ: AT+JWT, algorithms: [ES256]}]\npolicy: {paths: [policy]}\n"

// writeFuzzFiles adds the key files hmacAndPEMYAML names to dir.
func writeFuzzFiles(tb testing.TB, dir string) {
	tb.Helper()
	for name, content := range map[string]string{"hmac.secret": strings.Repeat("s", 64), "key.pem": "not read by Parse"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(validYAML))
	f.Add([]byte("listen: {grpc: \"unix:///x.sock\"}\nissuers: [{issuer: https://a, audiences: [b]}]\npolicy: {paths: [policy]}\n"))
	f.Add([]byte("token: {sources: [{header: a, query: b}], max_size: -1}\n"))
	f.Add([]byte("issuers: [{clock_skew: 1h}]\nforward: {claims: {'': ':path'}}\n"))
	f.Add([]byte("{{{"))
	f.Add([]byte(hmacAndPEMYAML))
	dir := dirWithFiles(f)
	writeFuzzFiles(f, dir)
	keys := newForgeryKeys(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b, dir)
		if err != nil {
			return
		}
		// Whatever parses must satisfy what serve relies on.
		if (c.Listen.GRPC == "" && c.Listen.HTTP == "") || len(c.Issuers) == 0 || (len(c.Policy.Paths) == 0 && c.Policy.Bundle == nil) || len(c.Token.Sources) == 0 {
			t.Fatalf("accepted an incomplete config: %+v", c)
		}
		for _, is := range c.Issuers {
			if len(is.Audiences) == 0 {
				t.Fatalf("accepted an issuer without audiences: %+v", is)
			}
		}
		refusesForgeries(t, c, keys)
	})
}

func TestTracingDefaults(t *testing.T) {
	dir := dirWithFiles(t)
	c, err := Parse([]byte(validYAML), dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Tracing.On() || c.Listen.Pprof {
		t.Errorf("tracing on = %v, pprof = %v; want both off by default", c.Tracing.On(), c.Listen.Pprof)
	}
	c, err = Parse([]byte(validYAML+"tracing: {otlp_endpoint: 'https://collector.example.com:4318', protocol: http, ca_file: jwks.json}\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	tr := c.Tracing
	if !tr.On() || tr.Protocol != "http" || tr.Ratio() != 1 || tr.ServiceName != "claimcheck" || tr.CAFile != filepath.Join(dir, "jwks.json") {
		t.Errorf("tracing = %+v (ratio %v), want on, http, ratio 1, service claimcheck, ca_file resolved", tr, tr.Ratio())
	}
	c, err = Parse([]byte(validYAML+"tracing: {otlp_endpoint: 'http://127.0.0.1:4317', sample_ratio: 0}\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Tracing.Protocol != "grpc" || c.Tracing.Ratio() != 0 {
		t.Errorf("tracing = %+v, want grpc with ratio 0", c.Tracing)
	}
}

func TestParseListenAndLimitsDefaults(t *testing.T) {
	dir := dirWithFiles(t)
	c, err := Parse([]byte(validYAML), dir)
	if err != nil {
		t.Fatal(err)
	}
	want := Limits{
		GRPCMaxReceiveBytes: DefaultGRPCMaxReceiveBytes, GRPCMaxConcurrentStreams: DefaultGRPCMaxStreams,
		MaxHeaders: DefaultMaxHeaders, MaxHeaderBytes: DefaultMaxHeaderBytes, CheckTimeout: Duration(DefaultCheckTimeout),
	}
	if c.Limits != want {
		t.Errorf("limits = %+v, want %+v", c.Limits, want)
	}
	if c.Listen.TLS != nil || c.Listen.TLSFor("grpc") != nil || c.Listen.SocketPerm() != 0o660 {
		t.Errorf("listen defaults: tls %+v, socket mode %v", c.Listen.TLS, c.Listen.SocketPerm())
	}

	yml := strings.Replace(validYAML, `listen: {grpc: "127.0.0.1:9191"}`,
		`listen: {grpc: "unix:///run/cc.sock", http: "127.0.0.1:9192", socket_mode: "0600", tls: {cert_file: jwks.json, key_file: jwks.json}}`, 1) +
		"limits: {request_body: {}}\n"
	c, err = Parse([]byte(yml), dir)
	if err != nil {
		t.Fatal(err)
	}
	tls := c.Listen.TLS
	if tls.CertFile != filepath.Join(dir, "jwks.json") || tls.MinVersion != "1.2" || !slices.Equal(tls.Listeners, []string{"grpc", "http"}) {
		t.Errorf("tls defaults = %+v", tls)
	}
	if c.Listen.TLSFor("http") != tls || c.Listen.SocketPerm() != 0o600 {
		t.Errorf("TLSFor(http) = %v, socket mode %v", c.Listen.TLSFor("http"), c.Listen.SocketPerm())
	}
	if c.Limits.RequestBody.MaxBytes != DefaultRequestBodyBytes {
		t.Errorf("request body max = %d", c.Limits.RequestBody.MaxBytes)
	}

	big, err := Parse([]byte(validYAML+"token: {max_size: 1048576}\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := big.Limits.MaxHeaderBytes; got != 1048576+8192 {
		t.Errorf("max_header_bytes with a 1 MiB token.max_size = %d, want room for the token", got)
	}

	yml = strings.Replace(yml, "key_file: jwks.json}", `key_file: jwks.json, listeners: [http], min_version: "1.3"}`, 1)
	if c, err = Parse([]byte(yml), dir); err != nil {
		t.Fatal(err)
	}
	if c.Listen.TLSFor("grpc") != nil || c.Listen.TLSFor("http") == nil || c.Listen.TLS.Version() != 0x0304 {
		t.Errorf("listeners: [http], 1.3 gave %+v", c.Listen.TLS)
	}
}
