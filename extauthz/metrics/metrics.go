// Package metrics exposes claimcheck's Prometheus metrics: decisions by
// result, reason and issuer, Check latency by stage, key fetches, policy
// reloads, the verified-token cache, and the Go runtime and process. It
// keeps its own registry; nothing is registered globally.
//
// Label values come only from fixed sets — the reason codes
// (reason.All) and the configured issuers — so the number of series
// stays bounded whatever the requests hold.
package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/claimcheck/claimcheck/extauthz"
	"github.com/claimcheck/claimcheck/extauthz/keys"
	"github.com/claimcheck/claimcheck/extauthz/reason"
	"github.com/claimcheck/claimcheck/extauthz/token"
)

// Values of the result label of claimcheck_checks_total.
const (
	ResultAllowed = "allowed"
	ResultDenied  = "denied"
	// ResultDryRun: allowed only because of dry-run; the reason label is
	// the real decision's.
	ResultDryRun = "dry_run"
)

// Values of the outcome label of claimcheck_policy_reloads_total.
const (
	ReloadSuccess = "success"
	ReloadFailure = "failure"
)

// LatencyBuckets are the buckets, in seconds, of the Check latency
// histograms: from 10 µs (a verified-token cache hit) to 1 s.
var LatencyBuckets = []float64{
	.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1,
}

var results = []string{ResultAllowed, ResultDenied, ResultDryRun}

// Metrics holds claimcheck's metrics. Its ObserveDecision makes it an
// extauthz.Observer. It is safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	checks   *prometheus.CounterVec
	duration prometheus.Histogram
	token    prometheus.Observer // claimcheck_check_stage_duration_seconds{stage="token"}
	policy   prometheus.Observer // … {stage="policy"}

	// Children of checks by (result, reason, issuer) index, made on first
	// use so that only combinations that occur are exported, and then
	// reused without building label values again.
	reasons map[string]int
	issuers map[string]int
	counter []atomic.Pointer[counter]
	names   struct{ reasons, issuers []string }

	jwks    *prometheus.CounterVec
	reloads *prometheus.CounterVec

	state *state
}

type counter struct{ prometheus.Counter }

// Config names the label values Metrics may use.
type Config struct {
	// Issuers are the configured issuers, the only values of the issuer
	// label besides "" (no token, or one from an unknown issuer).
	Issuers []string
	// Version is claimcheck's version, for claimcheck_build_info.
	Version string
}

// New returns claimcheck's metrics with the Go runtime and process
// collectors, in a registry of their own.
func New(cfg Config) *Metrics {
	m := &Metrics{
		reg:     prometheus.NewRegistry(),
		reasons: map[string]int{},
		issuers: map[string]int{"": 0},
		state:   &state{},
	}
	m.names.reasons = reason.All()
	for i, r := range m.names.reasons {
		m.reasons[r] = i
	}
	m.names.issuers = []string{""}
	for _, is := range cfg.Issuers {
		if _, dup := m.issuers[is]; !dup {
			m.issuers[is] = len(m.names.issuers)
			m.names.issuers = append(m.names.issuers, is)
		}
	}
	m.counter = make([]atomic.Pointer[counter], len(results)*len(m.names.reasons)*len(m.names.issuers))

	m.checks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "claimcheck_checks_total",
		Help: "Checks decided, by result (allowed, denied, dry_run), reason code and issuer (empty without a token of a configured issuer).",
	}, []string{"result", "reason", "issuer"})
	m.duration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "claimcheck_check_duration_seconds",
		Help:    "Time to decide a Check, from request to decision.",
		Buckets: LatencyBuckets,
	})
	stages := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "claimcheck_check_stage_duration_seconds",
		Help:    "Time spent in a stage of a Check: token (verification, cache included) or policy (input and evaluation).",
		Buckets: LatencyBuckets,
	}, []string{"stage"})
	m.token = stages.WithLabelValues("token")
	m.policy = stages.WithLabelValues("policy")
	m.jwks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "claimcheck_jwks_fetches_total",
		Help: "Fetches of an issuer's keys over HTTP (discovery included), by outcome: success, not_modified or error.",
	}, []string{"issuer", "outcome"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "claimcheck_policy_reloads_total",
		Help: "Policy reloads (changed files or a new bundle), by outcome: success or failure (the current policy is kept).",
	}, []string{"outcome"})
	for _, o := range []string{ReloadSuccess, ReloadFailure} {
		m.reloads.WithLabelValues(o)
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "claimcheck_build_info",
		Help:        "Always 1; the labels say which claimcheck is running.",
		ConstLabels: prometheus.Labels{"version": cfg.Version, "goversion": runtime.Version()},
	})
	build.Set(1)

	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.checks, m.duration, stages, m.jwks, m.reloads, build, m.state,
	)
	return m
}

// Registry returns the registry, to add collectors or gather in tests.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text and OpenMetrics
// formats. Errors while gathering are logged to log (nil discards them).
func (m *Metrics) Handler(log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:          errorLog{log},
		Registry:          m.reg,
		EnableOpenMetrics: true,
	})
}

// errorLog adapts slog to promhttp.Logger.
type errorLog struct{ log *slog.Logger }

func (l errorLog) Println(v ...any) { l.log.Warn("metrics", "err", fmt.Sprint(v...)) }

// ObserveDecision counts d and records its latencies. It allocates only the
// first time a (result, reason, issuer) combination occurs.
func (m *Metrics) ObserveDecision(d *extauthz.Decision) {
	result := 0 // ResultAllowed
	switch {
	case d.DryRun:
		result = 2
	case !d.Allowed:
		result = 1
	}
	code, ok := m.reasons[d.Reason]
	if !ok {
		code = m.reasons[reason.Internal] // not a reason code: a bug, counted as one
	}
	issuer := m.issuers[d.Issuer] // an issuer not configured counts as none
	i := (result*len(m.names.reasons)+code)*len(m.names.issuers) + issuer
	c := m.counter[i].Load()
	if c == nil {
		c = &counter{m.checks.WithLabelValues(results[result], m.names.reasons[code], m.names.issuers[issuer])}
		m.counter[i].Store(c)
	}
	c.Inc()
	m.duration.Observe(d.Latency.Seconds())
	if d.TokenLatency > 0 {
		m.token.Observe(d.TokenLatency.Seconds())
	}
	if d.PolicyLatency > 0 {
		m.policy.Observe(d.PolicyLatency.Seconds())
	}
}

// JWKSObserver returns the function to set as keys.RemoteConfig.OnRefresh
// for issuer: it counts each fetch by outcome.
func (m *Metrics) JWKSObserver(issuer string) func(outcome string) {
	byOutcome := map[string]prometheus.Counter{}
	for _, o := range []string{keys.RefreshSuccess, keys.RefreshNotModified, keys.RefreshError} {
		byOutcome[o] = m.jwks.WithLabelValues(issuer, o)
	}
	return func(outcome string) {
		c, ok := byOutcome[outcome]
		if !ok {
			c = byOutcome[keys.RefreshError]
		}
		c.Inc()
	}
}

// PolicyReloaded counts a reload; it has the signature of policy.OnReload's
// argument.
func (m *Metrics) PolicyReloaded(_ string, err error) {
	if err != nil {
		m.reloads.WithLabelValues(ReloadFailure).Inc()
		return
	}
	m.reloads.WithLabelValues(ReloadSuccess).Inc()
}

// AddIssuer exports the number of keys src holds for issuer
// (claimcheck_issuer_keys) and, when src is a *keys.Remote, when its keys
// were last fetched (claimcheck_jwks_last_success_timestamp_seconds).
func (m *Metrics) AddIssuer(issuer string, src token.KeySource) {
	m.state.mu.Lock()
	defer m.state.mu.Unlock()
	m.state.issuers = append(m.state.issuers, issuerKeys{issuer, src})
}

// SetPolicy exports the revision of the policy in force, read at each
// scrape from revision ("" while none is loaded), as
// claimcheck_policy_revision_info.
func (m *Metrics) SetPolicy(revision func() string) {
	m.state.mu.Lock()
	defer m.state.mu.Unlock()
	m.state.revision = revision
}

// SetTokenCache exports c's counters and size.
func (m *Metrics) SetTokenCache(c *token.Cache) {
	m.state.mu.Lock()
	defer m.state.mu.Unlock()
	m.state.cache = c
}

// state is read at scrape time: key sets, the policy revision and the
// token cache keep their own numbers, so the hot path does nothing for
// them.
type state struct {
	mu       sync.Mutex
	issuers  []issuerKeys
	revision func() string
	cache    *token.Cache
}

type issuerKeys struct {
	issuer string
	src    token.KeySource
}

// remoteStatus is implemented by *keys.Remote.
type remoteStatus interface{ Status() keys.Status }

var (
	descKeys = prometheus.NewDesc("claimcheck_issuer_keys",
		"Keys in the issuer's current key set (0 until they first load).", []string{"issuer"}, nil)
	descLastSuccess = prometheus.NewDesc("claimcheck_jwks_last_success_timestamp_seconds",
		"When the issuer's keys were last fetched successfully (a 304 Not Modified included), in Unix seconds; absent until then.", []string{"issuer"}, nil)
	descRevision = prometheus.NewDesc("claimcheck_policy_revision_info",
		"Always 1; revision is the policy in force (absent until a policy has loaded).", []string{"revision"}, nil)
	descCacheHits = prometheus.NewDesc("claimcheck_token_cache_hits_total",
		"Tokens answered from the verified-token cache.", nil, nil)
	descCacheNegativeHits = prometheus.NewDesc("claimcheck_token_cache_negative_hits_total",
		"Tokens rejected from the cache of recently rejected tokens.", nil, nil)
	descCacheMisses = prometheus.NewDesc("claimcheck_token_cache_misses_total",
		"Tokens not in the cache, verified afresh.", nil, nil)
	descCacheEvictions = prometheus.NewDesc("claimcheck_token_cache_evictions_total",
		"Entries dropped to keep the cache within its bounds.", nil, nil)
	descCacheEntries = prometheus.NewDesc("claimcheck_token_cache_entries",
		"Entries in the token cache.", nil, nil)
	descCacheBytes = prometheus.NewDesc("claimcheck_token_cache_bytes",
		"Estimated memory held by the token cache's entries.", nil, nil)
)

func (s *state) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descKeys, descLastSuccess, descRevision, descCacheHits,
		descCacheNegativeHits, descCacheMisses, descCacheEvictions, descCacheEntries, descCacheBytes} {
		ch <- d
	}
}

func (s *state) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	issuers, revision, cache := s.issuers, s.revision, s.cache
	s.mu.Unlock()

	for _, ik := range issuers {
		n := 0
		if set, err := ik.src.Keys(context.Background()); err == nil && set != nil {
			n = set.Len()
		}
		ch <- prometheus.MustNewConstMetric(descKeys, prometheus.GaugeValue, float64(n), ik.issuer)
		if r, ok := ik.src.(remoteStatus); ok {
			if t := r.Status().LastSuccess; !t.IsZero() {
				ch <- prometheus.MustNewConstMetric(descLastSuccess, prometheus.GaugeValue,
					float64(t.UnixNano())/1e9, ik.issuer)
			}
		}
	}
	if revision != nil {
		if rev := revision(); rev != "" {
			ch <- prometheus.MustNewConstMetric(descRevision, prometheus.GaugeValue, 1, rev)
		}
	}
	if cache != nil {
		st := cache.Stats()
		for _, c := range []struct {
			d *prometheus.Desc
			t prometheus.ValueType
			v float64
		}{
			{descCacheHits, prometheus.CounterValue, float64(st.Hits)},
			{descCacheNegativeHits, prometheus.CounterValue, float64(st.NegativeHits)},
			{descCacheMisses, prometheus.CounterValue, float64(st.Misses)},
			{descCacheEvictions, prometheus.CounterValue, float64(st.Evictions)},
			{descCacheEntries, prometheus.GaugeValue, float64(st.Entries)},
			{descCacheBytes, prometheus.GaugeValue, float64(st.Bytes)},
		} {
			ch <- prometheus.MustNewConstMetric(c.d, c.t, c.v)
		}
	}
}
