package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/claimcheck/claimcheck/extauthz"
	"github.com/claimcheck/claimcheck/extauthz/tokentest"
	"github.com/claimcheck/claimcheck/extauthz/tracing/tracingtest"
)

// httpGet returns the status and body of GET url.
func httpGet(t *testing.T, url string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// scrape reads the metrics families from a claimcheck's admin listener.
func scrape(t *testing.T, admin string) map[string]*dto.MetricFamily {
	t.Helper()
	status, body := httpGet(t, "http://"+admin+"/metrics", nil)
	if status != http.StatusOK {
		t.Fatalf("/metrics: %d %s", status, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics is not the Prometheus text format: %v\n%s", err, body)
	}
	return mfs
}

// sample returns the value of the series of family name whose labels
// include labels, and whether there is one.
func sample(mfs map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	for _, m := range mfs[name].GetMetric() {
		match := 0
		for _, l := range m.GetLabel() {
			if v, ok := labels[l.GetName()]; ok && v == l.GetValue() {
				match++
			}
		}
		if match != len(labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// TestMetricsEndToEnd scrapes /metrics from the real binary after real
// Checks, a key fetch and policy reloads.
func TestMetricsEndToEnd(t *testing.T) {
	key := tokentest.NewECKey(t, "ec-1")
	idp := tokentest.NewJWKSServer(t, key)
	policyDir := t.TempDir()
	src, err := os.ReadFile(filepath.Join(quickstartPolicy(t), "authz.rego"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(quickstartPolicy(t), "data.json"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(policyDir, "authz.rego"), string(src))
	writeFile(t, filepath.Join(policyDir, "data.json"), string(data))
	admin := freeAddr(t)
	config := fmt.Sprintf(`
listen: {grpc: "{{LISTEN}}", admin: %q, pprof: true}
issuers:
  - issuer: %s
    audiences: [orders-api]
    jwks_uri: %s
policy: {paths: [%s], decision: claimcheck/authz/allow}
`, admin, idp.URL, idp.JWKSURI(), policyDir)
	s := startServer(t, config, freeAddr(t))
	s.waitHealth(t, healthpb.HealthCheckResponse_SERVING)

	claims := func(client string, ttl time.Duration) map[string]any {
		c := tokentest.Claims(idp.URL, "orders-api", ttl)
		c["client_id"] = client
		return c
	}
	good := bearer(tokentest.Mint(t, key, claims("service-client-id", time.Hour)))
	for _, c := range []struct {
		headers map[string]string
		want    codes.Code
	}{
		{good, codes.OK},
		{good, codes.OK}, // a token cache hit
		{bearer(tokentest.Mint(t, key, claims("some-other-client", time.Hour))), codes.PermissionDenied},
		{bearer(tokentest.Mint(t, key, claims("service-client-id", -time.Hour))), codes.Unauthenticated},
		{nil, codes.Unauthenticated},
	} {
		if got := codes.Code(s.check(t, request("GET", "/orders", c.headers)).GetStatus().GetCode()); got != c.want {
			t.Fatalf("Check = %v, want %v", got, c.want)
		}
	}

	mfs := scrape(t, admin)
	iss := idp.URL
	for _, want := range []struct {
		name   string
		labels map[string]string
		value  float64
	}{
		{"claimcheck_checks_total", map[string]string{"result": "allowed", "reason": "allowed", "issuer": iss}, 2},
		{"claimcheck_checks_total", map[string]string{"result": "denied", "reason": "policy_denied", "issuer": iss}, 1},
		{"claimcheck_checks_total", map[string]string{"result": "denied", "reason": "token_expired", "issuer": iss}, 1},
		{"claimcheck_checks_total", map[string]string{"result": "denied", "reason": "missing_token", "issuer": ""}, 1},
		{"claimcheck_check_duration_seconds", nil, 5},
		{"claimcheck_check_stage_duration_seconds", map[string]string{"stage": "token"}, 4},
		{"claimcheck_check_stage_duration_seconds", map[string]string{"stage": "policy"}, 3},
		{"claimcheck_jwks_fetches_total", map[string]string{"issuer": iss, "outcome": "success"}, 1},
		{"claimcheck_issuer_keys", map[string]string{"issuer": iss}, 1},
		{"claimcheck_token_cache_hits_total", nil, 1},
		{"claimcheck_token_cache_misses_total", nil, 3},
		{"claimcheck_token_cache_entries", nil, 3},
		{"claimcheck_policy_reloads_total", map[string]string{"outcome": "success"}, 0},
	} {
		if got, ok := sample(mfs, want.name, want.labels); !ok || got != want.value {
			t.Errorf("%s%v = %v (present %v), want %v", want.name, want.labels, got, ok, want.value)
		}
	}
	if got, _ := sample(mfs, "claimcheck_jwks_last_success_timestamp_seconds", map[string]string{"issuer": iss}); got < float64(time.Now().Add(-time.Minute).Unix()) || got > float64(time.Now().Unix()+1) {
		t.Errorf("claimcheck_jwks_last_success_timestamp_seconds = %v, want about now", got)
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_resident_memory_bytes", "claimcheck_build_info"} {
		if _, ok := mfs[name]; !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	revision := func(mfs map[string]*dto.MetricFamily) string {
		ms := mfs["claimcheck_policy_revision_info"].GetMetric()
		if len(ms) != 1 {
			t.Fatalf("claimcheck_policy_revision_info has %d series, want 1", len(ms))
		}
		return ms[0].GetLabel()[0].GetValue()
	}
	first := revision(mfs)

	// A changed policy counts a successful reload and a new revision; a
	// broken one a failure, with the revision kept.
	waitMetric := func(name string, labels map[string]string, want float64) map[string]*dto.MetricFamily {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			mfs := scrape(t, admin)
			if got, _ := sample(mfs, name, labels); got == want {
				return mfs
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s%v never reached %v", name, labels, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	writeFile(t, filepath.Join(policyDir, "authz.rego"), string(src)+"\n# a new revision\n")
	mfs = waitMetric("claimcheck_policy_reloads_total", map[string]string{"outcome": "success"}, 1)
	second := revision(mfs)
	if second == first {
		t.Errorf("revision after the reload = %s, want a new one", second)
	}
	writeFile(t, filepath.Join(policyDir, "authz.rego"), "package claimcheck.authz\n\nallow if {{{\n")
	mfs = waitMetric("claimcheck_policy_reloads_total", map[string]string{"outcome": "failure"}, 1)
	if got := revision(mfs); got != second {
		t.Errorf("revision after a failed reload = %s, want %s kept", got, second)
	}

	if status, body := httpGet(t, "http://"+admin+"/debug/pprof/heap?debug=1", nil); status != http.StatusOK || !strings.Contains(body, "heap profile") {
		t.Errorf("pprof heap: %d %.80q", status, body)
	}
}

// TestLogsNeverHoldCredentials runs every kind of request through both
// transports with debug logs, decision logs and a policy that prints its
// input, and looks for the credentials sent in everything logged.
func TestLogsNeverHoldCredentials(t *testing.T) {
	key := tokentest.NewECKey(t, "k1")
	dir := t.TempDir()
	jwks := tokentest.WriteJWKSFile(t, dir, key)
	const hmacSecret = "hmac-secret-contents-0123456789abcdef"
	hmacFile := filepath.Join(dir, "hmac.secret")
	if err := os.WriteFile(hmacFile, []byte(hmacSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	policyDir := filepath.Join(dir, "policy")
	if err := os.Mkdir(policyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(policyDir, "authz.rego"), `package authz

default allow := false

allow if {
	print("input", input)
	input.token.claims.client_id == "alpha"
}
`)
	httpAddr, admin := freeAddr(t), freeAddr(t)
	config := fmt.Sprintf(`
listen: {grpc: "{{LISTEN}}", http: %q, admin: %q}
http: {path_prefix: /authz}
issuers:
  - issuer: https://id.example.com
    audiences: [orders-api]
    jwks_file: %s
  - issuer: shared-secret
    audiences: [orders-api]
    hmac_secret_file: %s
token:
  sources: [{header: authorization, prefix: "Bearer "}, {query: access_token}, {cookie: at}]
policy: {paths: [%s], decision: authz/allow}
decision_log: {output: stderr}
log: {level: debug, format: json}
`, httpAddr, admin, jwks, hmacFile, policyDir)
	s := startServer(t, config, freeAddr(t))
	s.waitHealth(t, healthpb.HealthCheckResponse_SERVING)

	mint := func(client string, ttl time.Duration) string {
		c := tokentest.Claims("https://id.example.com", "orders-api", ttl)
		c["client_id"] = client
		return tokentest.Mint(t, key, c)
	}
	allowed, denied, expired := mint("alpha", time.Hour), mint("beta", time.Hour), mint("alpha", -time.Hour)
	badSig := allowed[:len(allowed)-6] + "AAAAAA"
	secrets := map[string]string{
		"allowed token": allowed, "policy-denied token": denied, "expired token": expired,
		"badly signed token": badSig, "a token's signature": allowed[strings.LastIndexByte(allowed, '.')+1:],
		"basic credentials": "dXNlcjpwYXNzd29yZA", "session cookie": "session-cookie-s3cr3t",
		"hmac secret": hmacSecret, "malformed token": "not-a-jwt-s3cr3t",
	}

	for _, h := range []map[string]string{
		bearer(allowed), bearer(denied), bearer(expired), bearer(badSig), bearer("not-a-jwt-s3cr3t"),
		{"authorization": "Basic dXNlcjpwYXNzd29yZA", "cookie": "session=session-cookie-s3cr3t"},
		{"cookie": "at=" + allowed + "; session=session-cookie-s3cr3t"},
	} {
		s.check(t, request("GET", "/orders", h))
	}
	s.check(t, request("GET", "/orders?access_token="+denied, nil))

	for _, r := range []struct {
		target string
		header map[string]string
	}{
		{"/authz/orders", map[string]string{"Authorization": "Bearer " + allowed}},
		{"/authz/orders", map[string]string{"Authorization": "Bearer " + badSig, "Cookie": "session=session-cookie-s3cr3t"}},
		{"/authz/orders?access_token=" + expired, nil},
		{"/authz/orders", map[string]string{"Cookie": "at=" + denied}},
		{"/elsewhere?access_token=" + allowed, nil}, // refused: outside the path prefix
		{"/authz/../orders?access_token=" + allowed, map[string]string{"Authorization": "Basic dXNlcjpwYXNzd29yZA"}},
	} {
		httpGet(t, "http://"+httpAddr+r.target, r.header)
	}
	if code := s.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}

	logs := s.stderr.String()
	for _, want := range []string{`"level":"DEBUG"`, `"msg":"decision"`, `"msg":"policy print"`, `"msg":"forward-auth request refused"`,
		`"decision_id"`, `"hmac_secret_file":"` + hmacFile + `"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the logs lack %s: the test no longer covers what it should\n%s", want, logs)
		}
	}
	for what, secret := range secrets {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs hold the %s", what)
		}
	}
}

// TestTracingEndToEnd: spans of Checks reach an OTLP collector, over gRPC
// and HTTP, continuing the trace context the proxy forwarded, in both
// transports.
func TestTracingEndToEnd(t *testing.T) {
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	key := tokentest.NewECKey(t, "k1")
	jwks := tokentest.WriteJWKSFile(t, t.TempDir(), key)
	c := tokentest.Claims("https://id.example.com", "orders-api", time.Hour)
	c["client_id"] = "service-client-id"
	raw := tokentest.Mint(t, key, c)

	tests := []struct {
		name      string
		protocol  string
		collector *tracingtest.Collector
		transport string            // grpc: a Check; http: a forward-auth request
		context   map[string]string // the forwarded trace context
	}{
		{"OTLP/gRPC, Envoy gRPC Check with traceparent", "grpc", tracingtest.NewGRPC(t), "grpc",
			map[string]string{"traceparent": "00-" + traceID + "-" + parentID + "-01"}},
		{"OTLP/HTTP, forward-auth with B3", "http", tracingtest.NewHTTP(t), "http",
			map[string]string{"X-B3-TraceId": traceID, "X-B3-SpanId": parentID, "X-B3-Sampled": "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			httpAddr := freeAddr(t)
			config := fmt.Sprintf(`
listen: {grpc: "{{LISTEN}}", http: %q}
issuers:
  - issuer: https://id.example.com
    audiences: [orders-api]
    jwks_file: %s
policy: {paths: [%s]}
tracing: {otlp_endpoint: %q, protocol: %s, sample_ratio: 0, service_name: claimcheck-e2e}
`, httpAddr, jwks, quickstartPolicy(t), tt.collector.URL, tt.protocol)
			s := startServer(t, config, freeAddr(t))
			s.waitHealth(t, healthpb.HealthCheckResponse_SERVING)
			// sample_ratio 0: this one, without a trace context, is not recorded.
			s.check(t, request("GET", "/orders", bearer(raw)))
			switch tt.transport {
			case "grpc":
				h := bearer(raw)
				for k, v := range tt.context {
					h[k] = v
				}
				if resp := s.check(t, request("GET", "/orders", h)); codes.Code(resp.GetStatus().GetCode()) != codes.OK {
					t.Fatalf("Check denied: %s", reason(resp))
				}
			case "http":
				h := map[string]string{"Authorization": "Bearer " + raw}
				for k, v := range tt.context {
					h[k] = v
				}
				if status, body := httpGet(t, "http://"+httpAddr+"/orders/1", h); status != http.StatusOK {
					t.Fatalf("forward-auth: %d %s", status, body)
				}
			}
			if code := s.stop(t); code != 0 { // flushes the spans
				t.Fatalf("exit %d", code)
			}

			spans := tt.collector.WaitSpans(t, 3, 10*time.Second)
			byName := map[string]tracingtest.Span{}
			for _, sp := range spans {
				byName[sp.Name] = sp
			}
			check, tok, pol := byName[extauthz.SpanCheck], byName[extauthz.SpanToken], byName[extauthz.SpanPolicy]
			if len(spans) != 3 || check.Name == "" || tok.Name == "" || pol.Name == "" {
				t.Fatalf("spans = %+v, want the check span and its two children only", spans)
			}
			if check.TraceID != traceID || check.ParentSpanID != parentID || check.Service != "claimcheck-e2e" {
				t.Errorf("check span = %+v, want trace %s, parent %s, service claimcheck-e2e", check, traceID, parentID)
			}
			for _, child := range []tracingtest.Span{tok, pol} {
				if child.TraceID != traceID || child.ParentSpanID != check.SpanID {
					t.Errorf("%s = %+v, want a child of the check span %s", child.Name, child, check.SpanID)
				}
			}
			if check.Attributes["claimcheck.reason"] != "allowed" || check.Attributes["claimcheck.issuer"] != "https://id.example.com" {
				t.Errorf("check span attributes = %v", check.Attributes)
			}
		})
	}
}
