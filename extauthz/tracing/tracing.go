// Package tracing sets up OpenTelemetry tracing to an OTLP collector, over
// gRPC or HTTP, for the spans extauthz starts (see extauthz.SpanCheck).
package tracing

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc/credentials"
)

// Protocols of the OTLP exporter.
const (
	ProtocolGRPC = "grpc"
	ProtocolHTTP = "http"
)

// DefaultHTTPPath is where OTLP/HTTP collectors take traces.
const DefaultHTTPPath = "/v1/traces"

// Config says where traces go.
type Config struct {
	// Endpoint is the collector's URL: https uses TLS, http plaintext.
	// With ProtocolHTTP a URL without a path gets DefaultHTTPPath.
	Endpoint string
	// Protocol is ProtocolGRPC (default) or ProtocolHTTP.
	Protocol string
	// SampleRatio is the fraction of new traces recorded; a forwarded
	// trace context's sampled flag is followed.
	SampleRatio float64
	// ServiceName and ServiceVersion describe claimcheck in the spans'
	// resource (OTEL_RESOURCE_ATTRIBUTES may add more).
	ServiceName, ServiceVersion string
	// CAFile holds the CAs to trust for an https Endpoint; empty trusts the
	// system's.
	CAFile string
}

// New returns a TracerProvider that batches spans to the collector in the
// background: a Check never waits for the collector, and spans are dropped
// when the queue is full. Headers for the collector (e.g. an API key) are
// taken from OTEL_EXPORTER_OTLP_HEADERS, as for any OTLP exporter. Call
// Shutdown to flush the last spans.
func New(ctx context.Context, cfg Config) (*sdktrace.TracerProvider, error) {
	exp, err := newExporter(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("tracing %s: %w", cfg.Endpoint, err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		attribute.String("service.name", cfg.ServiceName),
		attribute.String("service.version", cfg.ServiceVersion),
	))
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	return sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
	), nil
}

func newExporter(ctx context.Context, cfg Config) (sdktrace.SpanExporter, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, errors.New("expected an http or https URL")
	}
	var tlsConfig *tls.Config
	if cfg.CAFile != "" {
		if u.Scheme != "https" {
			return nil, errors.New("a CA file needs an https URL")
		}
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca file %s: no PEM certificates", cfg.CAFile)
		}
		tlsConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	switch cfg.Protocol {
	case ProtocolGRPC, "":
		opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpointURL(cfg.Endpoint)}
		if tlsConfig != nil {
			opts = append(opts, otlptracegrpc.WithTLSCredentials(credentials.NewTLS(tlsConfig)))
		}
		return otlptracegrpc.New(ctx, opts...)
	case ProtocolHTTP:
		if u.Path == "" || u.Path == "/" {
			u.Path = DefaultHTTPPath
		}
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(u.String())}
		if tlsConfig != nil {
			opts = append(opts, otlptracehttp.WithTLSClientConfig(tlsConfig))
		}
		return otlptracehttp.New(ctx, opts...)
	}
	return nil, fmt.Errorf("protocol %q: expected %s or %s", cfg.Protocol, ProtocolGRPC, ProtocolHTTP)
}
