package extauthz_test

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/claimcheck/claimcheck/extauthz"
	"github.com/claimcheck/claimcheck/extauthz/metrics"
)

// BenchmarkCheckObserved is BenchmarkCheck with the Prometheus metrics
// observing every decision, and with every Check traced (sampled, spans
// batched to an exporter that drops them): what each costs on the hot path.
func BenchmarkCheckObserved(b *testing.B) {
	b.Run("metrics", func(b *testing.B) {
		extauthz.BenchCheck(b, metrics.New(metrics.Config{Issuers: []string{"https://id.quickstart.example"}}), nil)
	})
	b.Run("tracing", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
		b.Cleanup(func() { tp.Shutdown(context.Background()) })
		extauthz.BenchCheck(b, nil, tp)
	})
}
