package metrics_test

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/claimcheck/claimcheck/extauthz"
	"github.com/claimcheck/claimcheck/extauthz/keys"
	"github.com/claimcheck/claimcheck/extauthz/metrics"
	"github.com/claimcheck/claimcheck/extauthz/reason"
	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

const issA, issB = "https://a.example.com", "https://b.example.com"

// series returns the series of the metric family name in g, by their
// labels written as `k="v",…` in label name order.
func series(t *testing.T, g prometheus.Gatherer, name string) map[string]*dto.Metric {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.Metric{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+`"`+l.GetValue()+`"`)
			}
			out[strings.Join(ls, ",")] = m
		}
	}
	return out
}

func TestChecksAreCountedByResultReasonAndIssuer(t *testing.T) {
	m := metrics.New(metrics.Config{Issuers: []string{issA, issB}})
	for _, d := range []extauthz.Decision{
		{Allowed: true, Reason: reason.Allowed, Issuer: issA},
		{Allowed: true, Reason: reason.Allowed, Issuer: issA},
		{Reason: "token_expired", Issuer: issB},
		{Reason: reason.MissingToken},
		{Allowed: true, DryRun: true, Reason: reason.PolicyDenied, Issuer: issA},
		{Reason: "issuer_unknown", Issuer: "https://not-configured.example.com"}, // counted under no issuer
		{Reason: "made_up_reason", Issuer: issA},                                 // counted as internal_error
	} {
		m.ObserveDecision(&d)
	}
	want := map[string]float64{
		`issuer="https://a.example.com",reason="allowed",result="allowed"`:       2,
		`issuer="https://b.example.com",reason="token_expired",result="denied"`:  1,
		`issuer="",reason="missing_token",result="denied"`:                       1,
		`issuer="https://a.example.com",reason="policy_denied",result="dry_run"`: 1,
		`issuer="",reason="issuer_unknown",result="denied"`:                      1,
		`issuer="https://a.example.com",reason="internal_error",result="denied"`: 1,
	}
	got := series(t, m.Registry(), "claimcheck_checks_total")
	for labels, v := range want {
		if g := got[labels].GetCounter().GetValue(); g != v {
			t.Errorf("claimcheck_checks_total{%s} = %v, want %v", labels, g, v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("claimcheck_checks_total has %d series, want only the %d that occurred: %v", len(got), len(want), got)
	}
}

func TestCheckLatencyIsRecordedPerStage(t *testing.T) {
	m := metrics.New(metrics.Config{Issuers: []string{issA}})
	m.ObserveDecision(&extauthz.Decision{Allowed: true, Reason: reason.Allowed, Issuer: issA,
		Latency: 3 * time.Millisecond, TokenLatency: 20 * time.Microsecond, PolicyLatency: 2 * time.Millisecond})
	m.ObserveDecision(&extauthz.Decision{Reason: reason.MissingToken, Latency: 40 * time.Microsecond})

	total := series(t, m.Registry(), "claimcheck_check_duration_seconds")[""].GetHistogram()
	if total.GetSampleCount() != 2 || !near(total.GetSampleSum(), 0.00304) {
		t.Errorf("check duration: count %d sum %v, want 2 and 0.00304", total.GetSampleCount(), total.GetSampleSum())
	}
	stages := series(t, m.Registry(), "claimcheck_check_stage_duration_seconds")
	for stage, sum := range map[string]float64{"token": 0.00002, "policy": 0.002} {
		h := stages[`stage="`+stage+`"`].GetHistogram()
		if h.GetSampleCount() != 1 || !near(h.GetSampleSum(), sum) {
			t.Errorf("stage %s: count %d sum %v, want 1 and %v (a stage that did not run is not observed)",
				stage, h.GetSampleCount(), h.GetSampleSum(), sum)
		}
	}
	// 20 µs lands in the 25 µs bucket, not the 10 µs one.
	for _, b := range stages[`stage="token"`].GetHistogram().GetBucket() {
		if want := uint64(0); b.GetUpperBound() == 0.00001 && b.GetCumulativeCount() != want {
			t.Errorf("token stage bucket le=10µs holds %d, want %d", b.GetCumulativeCount(), want)
		}
		if want := uint64(1); b.GetUpperBound() == 0.000025 && b.GetCumulativeCount() != want {
			t.Errorf("token stage bucket le=25µs holds %d, want %d", b.GetCumulativeCount(), want)
		}
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

// TestObserveDecisionDoesNotAllocate: once a combination of labels has
// occurred, counting it again costs no allocation.
func TestObserveDecisionDoesNotAllocate(t *testing.T) {
	m := metrics.New(metrics.Config{Issuers: []string{issA}})
	d := &extauthz.Decision{Allowed: true, Reason: reason.Allowed, Issuer: issA,
		Latency: time.Millisecond, TokenLatency: time.Microsecond, PolicyLatency: 500 * time.Microsecond}
	m.ObserveDecision(d)
	if n := testing.AllocsPerRun(100, func() { m.ObserveDecision(d) }); n != 0 {
		t.Errorf("ObserveDecision allocates %v times per call, want 0", n)
	}
}

func TestJWKSFetchesAreCountedByOutcome(t *testing.T) {
	m := metrics.New(metrics.Config{Issuers: []string{issA}})
	observe := m.JWKSObserver(issA)
	for _, o := range []string{keys.RefreshSuccess, keys.RefreshNotModified, keys.RefreshNotModified, keys.RefreshError, "unexpected"} {
		observe(o)
	}
	got := series(t, m.Registry(), "claimcheck_jwks_fetches_total")
	for outcome, want := range map[string]float64{"success": 1, "not_modified": 2, "error": 2} {
		if g := got[`issuer="`+issA+`",outcome="`+outcome+`"`].GetCounter().GetValue(); g != want {
			t.Errorf("fetches with outcome %s = %v, want %v", outcome, g, want)
		}
	}
}

func TestPolicyReloadsAreCountedByOutcome(t *testing.T) {
	m := metrics.New(metrics.Config{})
	m.PolicyReloaded("abc", nil)
	m.PolicyReloaded("abc", io.ErrUnexpectedEOF)
	m.PolicyReloaded("def", nil)
	got := series(t, m.Registry(), "claimcheck_policy_reloads_total")
	if s, f := got[`outcome="success"`].GetCounter().GetValue(), got[`outcome="failure"`].GetCounter().GetValue(); s != 2 || f != 1 {
		t.Errorf("reloads: success %v, failure %v; want 2 and 1", s, f)
	}
}

// fakeRemote is a key source with a Status, like *keys.Remote.
type fakeRemote struct {
	set    jwk.Set
	status keys.Status
}

func (f fakeRemote) Keys(context.Context) (jwk.Set, error) {
	if f.set == nil {
		return nil, token.ErrKeysUnavailable
	}
	return f.set, nil
}
func (f fakeRemote) Refresh(ctx context.Context) (jwk.Set, error) { return f.Keys(ctx) }
func (f fakeRemote) Status() keys.Status                          { return f.status }

func TestScrapeReadsKeysPolicyAndCache(t *testing.T) {
	m := metrics.New(metrics.Config{Issuers: []string{issA, issB}})
	k1, k2 := tokentest.NewECKey(t, "k1"), tokentest.NewECKey(t, "k2")
	set, err := keys.ParseSet(tokentest.JWKS(t, k1, k2), nil)
	if err != nil {
		t.Fatal(err)
	}
	fetched := time.Unix(1_800_000_000, 500_000_000)
	m.AddIssuer(issA, fakeRemote{set: set, status: keys.Status{LastSuccess: fetched}})
	m.AddIssuer(issB, fakeRemote{}) // never loaded
	revision := "rev-1"
	m.SetPolicy(func() string { return revision })

	src, err := keys.NewFile(tokentest.WriteJWKSFile(t, t.TempDir(), k1), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	v, err := token.NewVerifier([]token.Issuer{{Issuer: issA, Audiences: []string{"api"}, Keys: src}})
	if err != nil {
		t.Fatal(err)
	}
	cache := token.NewCache(v, token.DefaultCacheConfig())
	m.SetTokenCache(cache)
	raw := tokentest.Mint(t, k1, tokentest.Claims(issA, "api", time.Hour))
	for range 3 {
		if _, err := cache.Verify(t.Context(), raw); err != nil {
			t.Fatal(err)
		}
	}

	keysLoaded := series(t, m.Registry(), "claimcheck_issuer_keys")
	if a, b := keysLoaded[`issuer="`+issA+`"`].GetGauge().GetValue(), keysLoaded[`issuer="`+issB+`"`].GetGauge().GetValue(); a != 2 || b != 0 {
		t.Errorf("claimcheck_issuer_keys: %v and %v, want 2 and 0", a, b)
	}
	last := series(t, m.Registry(), "claimcheck_jwks_last_success_timestamp_seconds")
	if got := last[`issuer="`+issA+`"`].GetGauge().GetValue(); got != 1_800_000_000.5 || len(last) != 1 {
		t.Errorf("last success = %v (series %d), want 1800000000.5 for %s only", got, len(last), issA)
	}
	if rev := series(t, m.Registry(), "claimcheck_policy_revision_info"); rev[`revision="rev-1"`].GetGauge().GetValue() != 1 || len(rev) != 1 {
		t.Errorf("claimcheck_policy_revision_info = %v, want rev-1 only", rev)
	}
	revision = "" // e.g. a bundle not loaded yet
	if rev := series(t, m.Registry(), "claimcheck_policy_revision_info"); len(rev) != 0 {
		t.Errorf("claimcheck_policy_revision_info without a policy = %v, want none", rev)
	}
	for name, want := range map[string]float64{
		"claimcheck_token_cache_hits_total": 2, "claimcheck_token_cache_misses_total": 1,
		"claimcheck_token_cache_negative_hits_total": 0, "claimcheck_token_cache_entries": 1,
	} {
		s := series(t, m.Registry(), name)[""]
		if got := s.GetCounter().GetValue() + s.GetGauge().GetValue(); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if b := series(t, m.Registry(), "claimcheck_token_cache_bytes")[""].GetGauge().GetValue(); b <= 0 {
		t.Errorf("claimcheck_token_cache_bytes = %v, want > 0", b)
	}
}

func TestHandlerServesRuntimeProcessAndBuildMetrics(t *testing.T) {
	m := metrics.New(metrics.Config{Version: "v9.9.9"})
	rec := httptest.NewRecorder()
	m.Handler(nil).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, body)
	}
	for _, want := range []string{
		"go_goroutines ", "go_memstats_heap_alloc_bytes ", "go_gc_duration_seconds", "go_gc_gogc_percent ",
		"process_cpu_seconds_total ", "process_resident_memory_bytes ",
		`claimcheck_build_info{goversion="go`, `version="v9.9.9"} 1`,
		"claimcheck_policy_reloads_total{outcome=\"success\"} 0",
		"# TYPE claimcheck_check_duration_seconds histogram",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// BenchmarkObserveDecision is what metrics add to every Check.
func BenchmarkObserveDecision(b *testing.B) {
	m := metrics.New(metrics.Config{Issuers: []string{issA, issB}})
	d := &extauthz.Decision{Allowed: true, Reason: reason.Allowed, Issuer: issA,
		Latency: time.Millisecond, TokenLatency: time.Microsecond, PolicyLatency: 500 * time.Microsecond}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveDecision(d)
		}
	})
}
