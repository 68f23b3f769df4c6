package tracing_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/claimcheck/claimcheck/extauthz/tracing"
	"github.com/claimcheck/claimcheck/extauthz/tracing/tracingtest"
)

// remoteParent is a sampled trace context as a proxy would forward it.
func remoteParent(t *testing.T) (context.Context, trace.SpanContext) {
	t.Helper()
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
	return trace.ContextWithRemoteSpanContext(context.Background(), sc), sc
}

func TestSpansReachTheCollector(t *testing.T) {
	httpsCollector, caFile := tracingtest.NewHTTPS(t)
	grpcCollector, httpCollector := tracingtest.NewGRPC(t), tracingtest.NewHTTP(t)
	tests := []struct {
		name      string
		collector *tracingtest.Collector
		cfg       tracing.Config
	}{
		{"grpc", grpcCollector, tracing.Config{Endpoint: grpcCollector.URL, Protocol: tracing.ProtocolGRPC}},
		{"http with the default path", httpCollector, tracing.Config{Endpoint: strings.TrimSuffix(httpCollector.URL, "/v1/traces"), Protocol: tracing.ProtocolHTTP}},
		{"https trusting a CA file", httpsCollector, tracing.Config{Endpoint: httpsCollector.URL, Protocol: tracing.ProtocolHTTP, CAFile: caFile}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.SampleRatio, cfg.ServiceName, cfg.ServiceVersion = 0, "claimcheck-test", "v1"
			tp, err := tracing.New(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			// Ratio 0 records no new trace, but a sampled parent is followed.
			_, root := tp.Tracer("test").Start(context.Background(), "unsampled-root")
			root.End()
			ctx, parent := remoteParent(t)
			_, span := tp.Tracer("test").Start(ctx, "child-of-forwarded")
			span.End()
			if err := tp.Shutdown(t.Context()); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			spans := tt.collector.WaitSpans(t, 1, 5*time.Second)
			if len(spans) != 1 {
				t.Fatalf("collector got %+v, want only the span with a sampled parent", spans)
			}
			s := spans[0]
			if s.Name != "child-of-forwarded" || s.TraceID != parent.TraceID().String() || s.ParentSpanID != parent.SpanID().String() || s.Service != "claimcheck-test" {
				t.Errorf("span = %+v, want child-of-forwarded in trace %s under %s from service claimcheck-test", s, parent.TraceID(), parent.SpanID())
			}
		})
	}
}

func TestNewRejectsBadSettings(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  tracing.Config
		want string
	}{
		{"not a URL", tracing.Config{Endpoint: "collector:4317"}, "http or https URL"},
		{"unknown protocol", tracing.Config{Endpoint: "http://127.0.0.1:4317", Protocol: "thrift"}, `protocol "thrift"`},
		{"CA file over plain http", tracing.Config{Endpoint: "http://127.0.0.1:4317", CAFile: notPEM}, "https"},
		{"CA file without certificates", tracing.Config{Endpoint: "https://127.0.0.1:4317", CAFile: notPEM}, "no PEM certificates"},
		{"missing CA file", tracing.Config{Endpoint: "https://127.0.0.1:4317", CAFile: notPEM + ".missing"}, "ca file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tracing.New(t.Context(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.cfg.Endpoint) {
				t.Errorf("error = %v, want one naming the endpoint and %q", err, tt.want)
			}
		})
	}
}
