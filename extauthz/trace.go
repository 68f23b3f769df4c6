package extauthz

import (
	"context"
	"errors"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"go.opentelemetry.io/contrib/propagators/b3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	grpcmd "google.golang.org/grpc/metadata"

	"github.com/claimcheck/claimcheck/extauthz/reason"
	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/policy"
)

// Span names: one SpanCheck per Check, with a SpanToken child while the
// token is verified and a SpanPolicy child while the policy decides.
const (
	SpanCheck  = "claimcheck.check"
	SpanToken  = "claimcheck.token"
	SpanPolicy = "claimcheck.policy"
)

// TracerName is the instrumentation scope of claimcheck's spans.
const TracerName = "github.com/claimcheck/claimcheck/extauthz"

// Propagator reads the trace context Envoy forwards in the request headers:
// W3C traceparent/tracestate, and B3 in its single-header ("b3") and
// multi-header (X-B3-TraceId, …) forms. When both are present, traceparent
// wins.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(b3.New(), propagation.TraceContext{})
}

// tracing starts claimcheck's spans. A nil *tracing starts none: every
// method checks for nil, which is all tracing costs when it is off.
type tracing struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
}

func newTracing(tp trace.TracerProvider) *tracing {
	if tp == nil {
		return nil
	}
	return &tracing{tracer: tp.Tracer(TracerName), prop: Propagator()}
}

// startCheck starts the Check's span. Its parent is, first, the trace
// context in the gRPC call's metadata: Envoy with tracing on sends its
// ext_authz span's there, which is the closest parent. Otherwise it is the
// one in req's headers, where both transports put the original request's
// headers (over HTTP, Envoy's http_service puts its ext_authz span's there).
func (t *tracing) startCheck(ctx context.Context, req *authv3.CheckRequest) (context.Context, trace.Span) {
	if md, ok := grpcmd.FromIncomingContext(ctx); ok {
		ctx = t.prop.Extract(ctx, metadataCarrier(md))
	}
	if h := req.GetAttributes().GetRequest().GetHttp().GetHeaders(); len(h) > 0 && !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = t.prop.Extract(ctx, propagation.MapCarrier(h))
	}
	return t.tracer.Start(ctx, SpanCheck, trace.WithSpanKind(trace.SpanKindServer))
}

// metadataCarrier reads gRPC metadata (lower-case keys) as a
// propagation.TextMapCarrier.
type metadataCarrier grpcmd.MD

func (c metadataCarrier) Get(key string) string {
	if vs := grpcmd.MD(c).Get(key); len(vs) > 0 {
		return vs[0]
	}
	return ""
}

func (c metadataCarrier) Set(key, value string) { grpcmd.MD(c).Set(key, value) }

func (c metadataCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// start starts a child span; with t nil it returns ctx and a nil span.
func (t *tracing) start(ctx context.Context, name string) (context.Context, trace.Span) {
	if t == nil {
		return ctx, nil
	}
	return t.tracer.Start(ctx, name)
}

// endCheck records the decision on the Check's span and ends it. The span
// carries no token, claim values, headers or query string: only what the
// decision log holds about the request, minus the subject.
func endCheck(span trace.Span, d *Decision) {
	attrs := []attribute.KeyValue{
		attribute.Bool("claimcheck.allowed", d.Allowed),
		attribute.String("claimcheck.reason", d.Reason),
		attribute.Int("http.response.status_code", d.Status),
		attribute.String("claimcheck.decision_id", d.ID),
		attribute.String("http.request.method", d.Method),
		attribute.String("url.path", d.Path),
	}
	if d.Issuer != "" {
		attrs = append(attrs, attribute.String("claimcheck.issuer", d.Issuer))
	}
	if d.Revision != "" {
		attrs = append(attrs, attribute.String("claimcheck.policy.revision", d.Revision))
	}
	if d.Rule != "" {
		attrs = append(attrs, attribute.String("claimcheck.policy.rule", d.Rule))
	}
	if d.DryRun {
		attrs = append(attrs, attribute.Bool("claimcheck.dry_run", true))
	}
	span.SetAttributes(attrs...)
	if d.Status >= 500 {
		span.SetStatus(codes.Error, d.Reason)
	}
	span.End()
}

// verify verifies raw, in a SpanToken child span when tracing.
func (a *Authorizer) verify(ctx context.Context, raw string) (*token.Token, error) {
	if a.tracing == nil {
		return a.verifier.Verify(ctx, raw)
	}
	ctx, span := a.tracing.start(ctx, SpanToken)
	tok, err := a.verifier.Verify(ctx, raw)
	switch {
	case err == nil:
		span.SetAttributes(attribute.String("claimcheck.issuer", tok.Issuer))
		span.End()
	case errors.Is(err, token.ErrKeysUnavailable) || token.Reason(err) == reason.Internal:
		endStage(span, token.Reason(err), err)
	default: // a rejected token is an answer, not a failure
		span.SetAttributes(attribute.String("claimcheck.reason", token.Reason(err)))
		span.End()
	}
	return tok, err
}

// endPolicy records the evaluation's outcome on a SpanPolicy span and ends
// it.
func endPolicy(span trace.Span, rule, revision string, res policy.Result, err error) {
	span.SetAttributes(attribute.String("claimcheck.policy.revision", revision))
	if rule != "" {
		span.SetAttributes(attribute.String("claimcheck.policy.rule", rule))
	}
	switch {
	case errors.Is(err, policy.ErrUndefined):
		span.SetAttributes(attribute.String("claimcheck.reason", reason.PolicyUndefined))
		span.End()
	case err != nil:
		endStage(span, reason.PolicyError, err)
	default:
		span.SetAttributes(attribute.Bool("claimcheck.allowed", res.Allowed))
		span.End()
	}
}

// endStage ends a child span that failed; span may be nil.
func endStage(span trace.Span, reason string, err error) {
	if span == nil {
		return
	}
	span.SetAttributes(attribute.String("claimcheck.reason", reason))
	span.RecordError(err)
	span.SetStatus(codes.Error, reason)
	span.End()
}
