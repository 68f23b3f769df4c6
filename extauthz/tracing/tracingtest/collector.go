// Package tracingtest is test support only: an OTLP trace collector, over
// gRPC or HTTP, that records the spans it receives.
package tracingtest

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// Span is a received span, its IDs in lower-case hex.
type Span struct {
	Name                          string
	TraceID, SpanID, ParentSpanID string
	Attributes                    map[string]string // values as text
	Service                       string            // the resource's service.name
	StatusCode                    int32             // 0 unset, 1 ok, 2 error
}

// Collector records the spans exported to it.
type Collector struct {
	// URL is the endpoint to configure: http://127.0.0.1:PORT, with the
	// path /v1/traces for OTLP/HTTP.
	URL string

	mu    sync.Mutex
	spans []Span
}

// NewHTTP starts an OTLP/HTTP (protobuf) collector, stopped at the end of
// the test.
func NewHTTP(tb testing.TB) *Collector {
	tb.Helper()
	c, srv := newHTTP(tb, false)
	c.URL = srv.URL + "/v1/traces"
	return c
}

// NewHTTPS is NewHTTP over TLS; CAFile is the PEM file of its certificate.
func NewHTTPS(tb testing.TB) (c *Collector, caFile string) {
	tb.Helper()
	c, srv := newHTTP(tb, true)
	c.URL = srv.URL + "/v1/traces"
	caFile = filepath.Join(tb.TempDir(), "collector-ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, b, 0o600); err != nil {
		tb.Fatal(err)
	}
	return c, caFile
}

func newHTTP(tb testing.TB, useTLS bool) (*Collector, *httptest.Server) {
	c := &Collector{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
			http.Error(w, "want POST /v1/traces", http.StatusNotFound)
			return
		}
		body := io.Reader(r.Body)
		if r.Header.Get("Content-Encoding") == "gzip" {
			gz, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = gz
		}
		b, err := io.ReadAll(body)
		var req collectorpb.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(b, &req)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.record(&req)
		out, _ := proto.Marshal(&collectorpb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	if useTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	tb.Cleanup(srv.Close)
	return c, srv
}

// NewGRPC starts an OTLP/gRPC collector, stopped at the end of the test.
func NewGRPC(tb testing.TB) *Collector {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	c := &Collector{URL: "http://" + l.Addr().String()}
	s := grpc.NewServer()
	collectorpb.RegisterTraceServiceServer(s, grpcService{c: c})
	go s.Serve(l)
	tb.Cleanup(s.Stop)
	return c
}

type grpcService struct {
	collectorpb.UnimplementedTraceServiceServer
	c *Collector
}

func (g grpcService) Export(_ context.Context, req *collectorpb.ExportTraceServiceRequest) (*collectorpb.ExportTraceServiceResponse, error) {
	g.c.record(req)
	return &collectorpb.ExportTraceServiceResponse{}, nil
}

func (c *Collector) record(req *collectorpb.ExportTraceServiceRequest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		service := attributes(rs.GetResource().GetAttributes())["service.name"]
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.spans = append(c.spans, Span{
					Name:         s.GetName(),
					TraceID:      hex.EncodeToString(s.GetTraceId()),
					SpanID:       hex.EncodeToString(s.GetSpanId()),
					ParentSpanID: hex.EncodeToString(s.GetParentSpanId()),
					Attributes:   attributes(s.GetAttributes()),
					Service:      service,
					StatusCode:   int32(s.GetStatus().GetCode()),
				})
			}
		}
	}
}

func attributes(kvs []*commonpb.KeyValue) map[string]string {
	out := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		switch v := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			out[kv.GetKey()] = v.StringValue
		case *commonpb.AnyValue_BoolValue:
			out[kv.GetKey()] = strconv.FormatBool(v.BoolValue)
		case *commonpb.AnyValue_IntValue:
			out[kv.GetKey()] = strconv.FormatInt(v.IntValue, 10)
		default:
			out[kv.GetKey()] = kv.GetValue().String()
		}
	}
	return out
}

// Spans returns the spans received so far.
func (c *Collector) Spans() []Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Span(nil), c.spans...)
}

// WaitSpans waits up to timeout until at least n spans have arrived and
// returns them; it fails the test if they do not.
func (c *Collector) WaitSpans(tb testing.TB, n int, timeout time.Duration) []Span {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		spans := c.Spans()
		if len(spans) >= n {
			return spans
		}
		if time.Now().After(deadline) {
			tb.Fatalf("collector received %d spans in %s, want %d: %+v", len(spans), timeout, n, spans)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
