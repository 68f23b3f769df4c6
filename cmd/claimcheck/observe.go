package main

import (
	"context"
	"log/slog"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/claimcheck/claimcheck/extauthz"
	"github.com/claimcheck/claimcheck/extauthz/config"
	"github.com/claimcheck/claimcheck/extauthz/httpserver"
	"github.com/claimcheck/claimcheck/extauthz/metrics"
	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/extauthz/tracing"
)

// newMetrics returns the metrics serve exports on the admin listener.
func newMetrics(cfg *config.Config) *metrics.Metrics {
	issuers := make([]string, len(cfg.Issuers))
	for i, ic := range cfg.Issuers {
		issuers[i] = ic.Issuer
	}
	return metrics.New(metrics.Config{Issuers: issuers, Version: version()})
}

// observer is the decision observer: the metrics, or none. (A nil
// *metrics.Metrics must not become a non-nil extauthz.Observer.)
func (a *app) observer() extauthz.Observer {
	if a.metrics == nil {
		return nil
	}
	return a.metrics
}

// observeKeys exports the number of keys of an issuer's key source.
func (a *app) observeKeys(issuer string, src token.KeySource) {
	if a.metrics != nil {
		a.metrics.AddIssuer(issuer, src)
	}
}

// jwksObserver counts an issuer's key fetches; nil without metrics.
func (a *app) jwksObserver(issuer string) func(string) {
	if a.metrics == nil {
		return nil
	}
	return a.metrics.JWKSObserver(issuer)
}

// observeCache exports the token cache's counters.
func (a *app) observeCache() {
	if a.metrics != nil {
		a.metrics.SetTokenCache(a.cache)
	}
}

// activeRevision is the revision of the policy in force, "" while none is.
func (a *app) activeRevision() string {
	if a.policy == nil {
		return ""
	}
	if p := a.policy.Policy(); p != nil {
		return p.Revision()
	}
	return ""
}

// adminOptions are the admin listener's endpoints besides health.
func adminOptions(cfg *config.Config, a *app, log *slog.Logger) []httpserver.AdminOption {
	var opts []httpserver.AdminOption
	if a.metrics != nil {
		opts = append(opts, httpserver.WithMetrics(a.metrics.Handler(log)))
	}
	if cfg.Listen.Pprof {
		opts = append(opts, httpserver.WithPprof())
	}
	return opts
}

// startTracing returns the tracer provider cfg asks for, nil when tracing
// is off.
func startTracing(ctx context.Context, cfg config.Tracing) (*sdktrace.TracerProvider, error) {
	if !cfg.On() {
		return nil, nil
	}
	return tracing.New(ctx, tracing.Config{
		Endpoint:       cfg.OTLPEndpoint,
		Protocol:       cfg.Protocol,
		SampleRatio:    cfg.Ratio(),
		ServiceName:    cfg.ServiceName,
		ServiceVersion: version(),
		CAFile:         cfg.CAFile,
	})
}

// tracingFlushTimeout bounds how long serve waits at exit to send the last
// spans.
const tracingFlushTimeout = 5 * time.Second

// stopTracing sends the spans still queued and stops tp.
func stopTracing(tp *sdktrace.TracerProvider, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), tracingFlushTimeout)
	defer cancel()
	if err := tp.Shutdown(ctx); err != nil {
		log.Warn("tracing: the last spans may be lost", "err", err)
	}
}
