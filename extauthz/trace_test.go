package extauthz

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	grpcmd "google.golang.org/grpc/metadata"

	"github.com/claimcheck/claimcheck/extauthz/reason"
	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/policy"
)

// tracedAuthorizer returns an Authorizer that records its spans in memory.
func tracedAuthorizer(t *testing.T, fn func(map[string]any) (policy.Result, error)) (*Authorizer, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	v := fakeVerifier{tokens: map[string]*token.Token{tracedToken: goodToken}}
	return newAuthorizer(t, Config{TokenRequired: true, TracerProvider: tp}, v, &fakePolicy{fn: fn}), exp
}

const (
	tracedToken   = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzdmMifQ.c2VjcmV0LXNpZ25hdHVyZQ"
	parentTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	parentSpanID  = "00f067aa0ba902b7"
)

// spansByName indexes the exported spans; it fails on a repeated name.
func spansByName(t *testing.T, exp *tracetest.InMemoryExporter) map[string]tracetest.SpanStub {
	t.Helper()
	out := map[string]tracetest.SpanStub{}
	for _, s := range exp.GetSpans() {
		if _, dup := out[s.Name]; dup {
			t.Fatalf("two spans named %s", s.Name)
		}
		out[s.Name] = s
	}
	return out
}

func attr(s tracetest.SpanStub, key string) (attribute.Value, bool) {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

func TestCheckSpanContinuesTheForwardedTrace(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string]string
	}{
		{"W3C traceparent", map[string]string{"traceparent": "00-" + parentTraceID + "-" + parentSpanID + "-01"}},
		{"B3 single header", map[string]string{"b3": parentTraceID + "-" + parentSpanID + "-1"}},
		{"B3 multiple headers", map[string]string{"x-b3-traceid": parentTraceID, "x-b3-spanid": parentSpanID, "x-b3-sampled": "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, exp := tracedAuthorizer(t, allowAll)
			h := bearer(tracedToken)
			maps.Copy(h, tt.headers)
			if d := a.Check(context.Background(), httpRequest("GET", "/orders?access_token=x", h)); !d.Allowed {
				t.Fatalf("denied: %s", d.Reason)
			}
			spans := spansByName(t, exp)
			check, tok, pol := spans[SpanCheck], spans[SpanToken], spans[SpanPolicy]
			if len(spans) != 3 || check.Name == "" || tok.Name == "" || pol.Name == "" {
				t.Fatalf("spans = %v, want %s, %s and %s", spanNames(spans), SpanCheck, SpanToken, SpanPolicy)
			}
			if got := check.SpanContext.TraceID().String(); got != parentTraceID {
				t.Errorf("trace id = %s, want the forwarded %s", got, parentTraceID)
			}
			if got := check.Parent.SpanID().String(); got != parentSpanID || !check.Parent.IsRemote() {
				t.Errorf("check span's parent = %s (remote %v), want the forwarded span %s", got, check.Parent.IsRemote(), parentSpanID)
			}
			for _, child := range []tracetest.SpanStub{tok, pol} {
				if child.Parent.SpanID() != check.SpanContext.SpanID() || child.SpanContext.TraceID() != check.SpanContext.TraceID() {
					t.Errorf("%s is not a child of the check span", child.Name)
				}
			}
			for key, want := range map[string]string{
				"claimcheck.reason": reason.Allowed, "claimcheck.issuer": goodToken.Issuer, "url.path": "/orders",
				"http.request.method": "GET", "claimcheck.policy.revision": "rev-1",
			} {
				if got, _ := attr(check, key); got.Emit() != want {
					t.Errorf("check span %s = %q, want %q", key, got.Emit(), want)
				}
			}
			if got, _ := attr(pol, "claimcheck.allowed"); !got.AsBool() {
				t.Errorf("policy span claimcheck.allowed = %v, want true", got.Emit())
			}
		})
	}
}

func TestCheckWithoutTraceContextStartsATrace(t *testing.T) {
	a, exp := tracedAuthorizer(t, allowAll)
	a.Check(context.Background(), httpRequest("GET", "/orders", bearer(tracedToken)))
	check := spansByName(t, exp)[SpanCheck]
	if check.Parent.IsValid() || !check.SpanContext.IsValid() {
		t.Errorf("check span parent = %v, span = %v; want a new root span", check.Parent, check.SpanContext)
	}
}

func TestSpansRecordDeniesAndFailures(t *testing.T) {
	failing := func(map[string]any) (policy.Result, error) { return policy.Result{}, errors.New("eval blew up") }
	tests := []struct {
		name        string
		policy      func(map[string]any) (policy.Result, error)
		token       string
		spans       []string
		checkStatus codes.Code
		failed      string // span with an error status
	}{
		{"rejected token: no policy span, no error", allowAll, "not-a-known-token", []string{SpanCheck, SpanToken}, codes.Unset, ""},
		{"missing token: check span only", allowAll, "", []string{SpanCheck}, codes.Unset, ""},
		{"policy error: 503, an error on the check and policy spans", failing, tracedToken, []string{SpanCheck, SpanToken, SpanPolicy}, codes.Error, SpanPolicy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, exp := tracedAuthorizer(t, tt.policy)
			var h map[string]string
			if tt.token != "" {
				h = bearer(tt.token)
			}
			a.Check(context.Background(), httpRequest("GET", "/orders", h))
			spans := spansByName(t, exp)
			if got := spanNames(spans); !slices.Equal(got, slices.Sorted(slices.Values(tt.spans))) {
				t.Fatalf("spans = %v, want %v", got, tt.spans)
			}
			if got := spans[SpanCheck].Status.Code; got != tt.checkStatus {
				t.Errorf("check span status = %v, want %v", got, tt.checkStatus)
			}
			if tt.failed != "" && spans[tt.failed].Status.Code != codes.Error {
				t.Errorf("%s status = %v, want Error", tt.failed, spans[tt.failed].Status.Code)
			}
		})
	}
}

// TestSpansHoldNoCredentials: neither the token nor header values reach a
// span, nor does the query string.
func TestSpansHoldNoCredentials(t *testing.T) {
	a, exp := tracedAuthorizer(t, allowAll)
	h := bearer(tracedToken)
	h["cookie"] = "session=cookie-secret-value"
	a.Check(context.Background(), httpRequest("GET", "/orders?api_key=query-secret", h))
	a.Check(context.Background(), httpRequest("GET", "/orders?api_key=query-secret", bearer(tracedToken+"x")))
	for _, s := range exp.GetSpans() {
		for _, kv := range s.Attributes {
			for _, secret := range []string{tracedToken, "cookie-secret-value", "query-secret", "eyJ"} {
				if strings.Contains(kv.Value.Emit(), secret) {
					t.Errorf("span %s attribute %s = %q holds %q", s.Name, kv.Key, kv.Value.Emit(), secret)
				}
			}
		}
	}
}

func spanNames(m map[string]tracetest.SpanStub) []string { return slices.Sorted(maps.Keys(m)) }

// TestGRPCMetadataTraceContextIsTheCloserParent: Envoy with tracing on sends
// its ext_authz span in the call's metadata, while the request headers hold
// the client's context; the span's parent is Envoy's.
func TestGRPCMetadataTraceContextIsTheCloserParent(t *testing.T) {
	const envoySpan = "b7ad6b7169203331"
	a, exp := tracedAuthorizer(t, allowAll)
	h := bearer(tracedToken)
	h["traceparent"] = "00-" + parentTraceID + "-" + parentSpanID + "-01"
	ctx := grpcmd.NewIncomingContext(context.Background(), grpcmd.Pairs("traceparent", "00-"+parentTraceID+"-"+envoySpan+"-01"))
	a.Check(ctx, httpRequest("GET", "/orders", h))
	check := spansByName(t, exp)[SpanCheck]
	if got := check.Parent.SpanID().String(); got != envoySpan || check.SpanContext.TraceID().String() != parentTraceID {
		t.Errorf("check span parent = %s in trace %s, want Envoy's %s in %s", got, check.SpanContext.TraceID(), envoySpan, parentTraceID)
	}

	// Metadata without a trace context leaves the headers' one.
	a, exp = tracedAuthorizer(t, allowAll)
	a.Check(grpcmd.NewIncomingContext(context.Background(), grpcmd.Pairs("user-agent", "grpc-go")), httpRequest("GET", "/orders", h))
	if got := spansByName(t, exp)[SpanCheck].Parent.SpanID().String(); got != parentSpanID {
		t.Errorf("check span parent = %s, want the headers' %s", got, parentSpanID)
	}
}
