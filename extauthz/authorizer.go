// Package extauthz is claimcheck's decision path, shared by every transport:
// a CheckRequest goes in, its bearer token is verified, the policy decides,
// and a transport-neutral Decision comes out. It never fails open: any error
// or panic on the way ends in a deny.
package extauthz

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/open-policy-agent/opa/v1/ast"
	"go.opentelemetry.io/otel/trace"

	"github.com/claimcheck/claimcheck/extauthz/reason"
	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/extauthz/urlpath"
	"github.com/claimcheck/claimcheck/policy"
)

// Envoy per-route context_extensions keys claimcheck reads.
const (
	// ExtDecision names the decision rule for the route, e.g. "orders/allow".
	ExtDecision = "claimcheck_decision"
	// ExtPublic set to "true" makes the token optional on the route; honoured
	// only with Config.AllowPublicRoutes.
	ExtPublic = "claimcheck_public"
	// ExtDryRun set to "true" puts the route in dry-run; honoured only with
	// Config.AllowDryRunRoutes.
	ExtDryRun = "claimcheck_dry_run"
)

// Verifier verifies a raw bearer token.
type Verifier interface {
	Verify(ctx context.Context, raw string) (*token.Token, error)
}

// Policy decides on an input document with its default decision rule or
// another named rule; *policy.Engine is one.
type Policy interface {
	Eval(ctx context.Context, input ast.Value) (policy.Result, error)
	EvalRule(ctx context.Context, rule string, input ast.Value) (policy.Result, error)
	Revision() string
	// UsesInput reports whether the policy may read input at path (one or
	// two keys, e.g. "attributes" or "request", "headers").
	UsesInput(path ...string) bool
}

// PolicySource gives the policy in force, which may change between Checks
// (hot reload, bundles). Policy returns nil while none has loaded.
type PolicySource interface {
	Policy() Policy
}

// StaticPolicy is a PolicySource that always gives p.
func StaticPolicy(p Policy) PolicySource { return staticPolicy{p} }

type staticPolicy struct{ p Policy }

func (s staticPolicy) Policy() Policy { return s.p }

// UserinfoFetcher gives the OpenID Connect userinfo of a verified token,
// for input.token.userinfo; *introspect.Userinfos is one.
type UserinfoFetcher interface {
	// Userinfo returns tok's userinfo, fetched with raw; nil, nil when tok's
	// issuer has none or its failure policy says to go on without it. An
	// error wraps a token package sentinel.
	Userinfo(ctx context.Context, tok *token.Token, raw string) (map[string]any, error)
}

// DecisionLogger records decisions; it must not block the Check for long.
type DecisionLogger interface {
	LogDecision(ctx context.Context, d *Decision)
}

// InputNeeder is implemented by a DecisionLogger that can say whether it
// reads Decision.Input. The policy sees the input as an ast.Value;
// Decision.Input, the same document as Go values, costs a conversion per
// decision and is built only for Explain and for a DecisionLogger that needs
// it: one that does not implement InputNeeder, or whose NeedsInput reports
// true.
type InputNeeder interface {
	NeedsInput() bool
}

// Config is the decision path's configuration.
type Config struct {
	Sources       []TokenSource
	TokenRequired bool   // deny requests without a token before policy
	Realm         string // WWW-Authenticate realm
	// ForwardClaims maps a claim name to the upstream header that receives it
	// on allow. A header whose claim is absent is removed, so a client cannot
	// supply it itself.
	ForwardClaims map[string]string
	// DryRun allows every request, after evaluating and logging the real
	// decision.
	DryRun bool
	// AllowPublicRoutes honours ExtPublic; AllowDryRunRoutes honours ExtDryRun.
	AllowPublicRoutes bool
	AllowDryRunRoutes bool
	// DecisionLog receives every decision; nil logs none.
	DecisionLog DecisionLogger
	// DefaultRule names the policy's configured decision rule in decisions.
	DefaultRule string
	// Userinfo fetches input.token.userinfo, only for policies that can
	// read it; nil fetches none.
	Userinfo UserinfoFetcher
	// Observer is told about every decision (metrics); nil observes none.
	Observer Observer
	// TracerProvider, when set, traces every Check (see trace.go); nil
	// traces nothing and costs nothing.
	TracerProvider trace.TracerProvider

	// MaxHeaders and MaxHeaderBytes bound the request headers; a request
	// over either is denied (431). Zero means no bound.
	MaxHeaders, MaxHeaderBytes int
	// MaxBodyBytes, when above zero, puts the request body Envoy sends into
	// the input (parsed_body, truncated_body) and denies a larger one (413);
	// zero leaves the body out of the input.
	MaxBodyBytes int
	// CheckTimeout bounds a Check when the caller's deadline is later or
	// absent; zero means no bound but the caller's.
	CheckTimeout time.Duration
	// PathNormalization says what to do with a request path that has dot
	// or empty segments; the zero value, urlpath.Reject, denies it (400).
	PathNormalization urlpath.Mode
}

// Authorizer makes decisions. It is safe for concurrent use.
type Authorizer struct {
	cfg      Config
	verifier Verifier
	policy   PolicySource
	log      *slog.Logger
	forward  []forwardRule // sorted by claim for deterministic output
	// logInput: the DecisionLogger reads Decision.Input (see InputNeeder).
	logInput bool
	parts    atomic.Pointer[policyParts] // input parts of the last policy seen
	tracing  *tracing                    // nil when not tracing
}

type forwardRule struct{ claim, header string }

// New returns an Authorizer. A nil logger discards logs.
func New(cfg Config, v Verifier, p PolicySource, log *slog.Logger) (*Authorizer, error) {
	if v == nil || p == nil {
		return nil, errors.New("extauthz: a verifier and a policy are required")
	}
	if cfg.Realm == "" {
		cfg.Realm = DefaultRealm
	}
	if len(cfg.Sources) == 0 {
		cfg.Sources = DefaultSources()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Authorizer{cfg: cfg, verifier: v, policy: p, log: log, tracing: newTracing(cfg.TracerProvider)}
	if cfg.DecisionLog != nil {
		n, ok := cfg.DecisionLog.(InputNeeder)
		a.logInput = !ok || n.NeedsInput()
	}
	for c, h := range cfg.ForwardClaims {
		a.forward = append(a.forward, forwardRule{claim: c, header: h})
	}
	sort.Slice(a.forward, func(i, j int) bool { return a.forward[i].claim < a.forward[j].claim })
	return a, nil
}

// Decision is the outcome of one Check, independent of the transport.
type Decision struct {
	Allowed bool
	// Status is the HTTP status sent to the client on a deny; 200 on allow.
	Status int
	// Reason is a stable reason code (see README "Reason codes").
	Reason string
	// Description is a human-readable explanation, safe to show the client.
	Description string

	// On allow: headers set on, and removed from, the upstream request, and
	// headers added to the response to the client.
	UpstreamHeaders []policy.Header
	RemoveHeaders   []string
	ResponseHeaders []policy.Header
	// RemoveQueryParameters are removed from the upstream request's query
	// on allow (names as sent; over gRPC only: see TokenSource.Strip).
	RemoveQueryParameters []string

	// On deny: headers and body sent to the client.
	DenyHeaders []policy.Header
	Body        string

	// DynamicMetadata is emitted to Envoy (and so to its access logs); it
	// always holds "claimcheck": {"reason": …} plus whatever the policy set.
	DynamicMetadata map[string]any

	// DryRun is set when the request was allowed only because of dry-run;
	// Reason and Status then say what the real decision was.
	DryRun bool
	// Rule is the decision rule evaluated, Revision the policy's revision;
	// both empty when the request was decided before the policy.
	Rule, Revision string

	// ID identifies the decision in logs and in the dynamic metadata.
	ID string
	// Request is what was asked: method, host and path (no query).
	Method, Host, Path string
	// Latency is the time the decision took.
	Latency time.Duration
	// TokenLatency is the time spent verifying the token, PolicyLatency
	// the time spent building the input and evaluating the policy; each is
	// zero when its stage did not run.
	TokenLatency, PolicyLatency time.Duration
	// Issuer is the configured issuer the token named: the verified
	// token's, or for a rejected token the one its unverified iss claim
	// named (token.IssuerOf). Empty without a token of a configured issuer.
	Issuer string

	// Token is the verified token, when there was one.
	Token *token.Token
	// Input is the policy input document, when the request got that far.
	// It is set only by Explain and for a DecisionLogger that needs it (see
	// InputNeeder); Check leaves it nil otherwise.
	Input map[string]any
}

// Check decides one request.
func (a *Authorizer) Check(ctx context.Context, req *authv3.CheckRequest) Decision {
	return a.decide(ctx, req, false)
}

// Explain decides like Check and also sets Decision.Input for requests
// denied before the policy ran (without input.token), for tools that show
// what a policy would see.
func (a *Authorizer) Explain(ctx context.Context, req *authv3.CheckRequest) Decision {
	return a.decide(ctx, req, true)
}

func (a *Authorizer) decide(ctx context.Context, req *authv3.CheckRequest, explain bool) (d Decision) {
	start := time.Now()
	ctx, cancel := a.withCheckTimeout(ctx)
	defer cancel()
	var span trace.Span
	if a.tracing != nil {
		ctx, span = a.tracing.startCheck(ctx, req)
	}
	defer func() {
		a.finish(ctx, req, &d, start)
		if span != nil {
			endCheck(span, &d)
		}
	}()
	defer a.recoverInto(&d) // before finish: a panic is logged and counted as the deny it becomes
	d = a.check(ctx, req, explain || a.logInput)
	if explain && d.Input == nil {
		if r, err := parseRequest(req, a.cfg.PathNormalization); err == nil {
			if req, body, _, ok := a.requestBody(req, r); ok {
				parts := allParts
				parts.body = body
				if v, err := buildInput(req, r, nil, nil, parts); err == nil {
					d.Input = inputMap(v)
				}
			}
		}
	}
	return d
}

// finish applies dry-run, fills in what logs need and logs the decision.
func (a *Authorizer) finish(ctx context.Context, req *authv3.CheckRequest, d *Decision, start time.Time) {
	h := req.GetAttributes().GetRequest().GetHttp()
	d.Method, d.Host = h.GetMethod(), h.GetHost()
	d.Path, _, _ = strings.Cut(h.GetPath(), "?")
	d.ID = h.GetId()
	if d.ID == "" {
		d.ID = newDecisionID()
	}
	ext := req.GetAttributes().GetContextExtensions()
	// Dry-run lets token and policy denials through; never a request that
	// could not be read as the upstream would (a bad path, bad headers, a
	// limit, untrusted forwarding headers) nor a Check that could not be
	// decided (an error, panic, outage or timeout).
	if !d.Allowed && dryRunnable(d.Reason) &&
		(a.cfg.DryRun || (a.cfg.AllowDryRunRoutes && ext[ExtDryRun] == "true")) {
		// The real decision stays in Reason, Status and the logs.
		d.Allowed, d.DryRun = true, true
		d.DenyHeaders, d.Body, d.ResponseHeaders = nil, "", nil
		// Forwarded-claim headers still come only from a verified token,
		// and credentials are still stripped.
		d.UpstreamHeaders, d.RemoveHeaders = a.forwardHeaders(d.Token)
		if r, err := parseRequest(req, a.cfg.PathNormalization); err == nil {
			a.strip(d, r)
		}
	}
	a.pastDeadline(ctx, d)
	a.sanitize(d)
	if meta, ok := d.DynamicMetadata["claimcheck"].(map[string]any); ok {
		meta["decision_id"] = d.ID
		if d.DryRun {
			meta["dry_run"] = true
		}
	}
	d.Latency = time.Since(start)
	if a.log.Enabled(ctx, slog.LevelDebug) { // spares the hot path the argument boxing
		a.log.Debug("decision", "id", d.ID, "allowed", d.Allowed, "status", d.Status, "reason", d.Reason, "dry_run", d.DryRun)
	}
	if a.cfg.DecisionLog != nil {
		a.logDecision(ctx, d)
	}
	if a.cfg.Observer != nil {
		a.observe(d)
	}
}

// logDecision hands d to the decision logger; a panic there is logged and
// leaves the decision as it is, rather than escaping the Check.
func (a *Authorizer) logDecision(ctx context.Context, d *Decision) {
	defer func() {
		if p := recover(); p != nil {
			a.log.Error("decision logger panicked", "panic", fmt.Sprint(p), "id", d.ID)
		}
	}()
	a.cfg.DecisionLog.LogDecision(ctx, d)
}

// newDecisionID returns a random 128-bit identifier in hex.
func newDecisionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// check decides req; wantInput sets Decision.Input.
func (a *Authorizer) check(ctx context.Context, req *authv3.CheckRequest, wantInput bool) Decision {
	if ctx.Err() != nil { // the caller gave up while the request queued
		return a.denial(reason.Deadline, "the deadline passed before the check started")
	}
	r, err := parseRequest(req, a.cfg.PathNormalization)
	if errors.Is(err, urlpath.ErrInvalid) {
		return a.denial(reason.PathInvalid, err.Error())
	}
	if err != nil {
		return a.denial(reason.BadRequest, err.Error())
	}
	if d, ok := a.headerLimit(r); !ok {
		return d
	}
	req, body, d, ok := a.requestBody(req, r)
	if !ok {
		return d
	}

	ext := req.GetAttributes().GetContextExtensions()
	required := a.cfg.TokenRequired && !(a.cfg.AllowPublicRoutes && ext[ExtPublic] == "true")
	f, ok := extractToken(a.cfg.Sources, r.headers, r.query)
	var tok *token.Token
	var tokenTime time.Duration
	switch {
	case ok:
		t0 := time.Now()
		tok, err = a.verify(ctx, f.raw)
		tokenTime = time.Since(t0)
		if err != nil {
			d := a.tokenRejected(err)
			d.TokenLatency, d.Issuer = tokenTime, token.IssuerOf(err)
			return d
		}
		if tok == nil {
			// A verifier bug; going on would hand the policy a request
			// that carried a token as if it had none.
			a.log.Error("verifier returned neither a token nor an error; denying")
			return a.denial(reason.Internal, "internal error")
		}
	case required:
		return a.missingToken()
	}

	p := a.policy.Policy()
	if p == nil {
		return a.denial(reason.NoPolicy, "the policy has not loaded yet")
	}

	// Build only the parts of the input the policy can read: input.attributes
	// (opa-envoy-plugin's shape) alone is over a third of a Check.
	need := a.partsFor(p)
	parts := need
	if wantInput {
		parts = allParts
	}
	var info map[string]any
	if tok != nil && a.cfg.Userinfo != nil && need.userinfo {
		t0 := time.Now()
		info, err = a.cfg.Userinfo.Userinfo(ctx, tok, f.raw)
		tokenTime += time.Since(t0)
		if err != nil {
			d := a.tokenRejected(err)
			d.TokenLatency, d.Issuer = tokenTime, tok.Issuer
			return d
		}
	}
	parts.body = body
	t0 := time.Now()
	pctx, pspan := a.tracing.start(ctx, SpanPolicy)
	v, err := buildInput(req, r, tok, info, parts)
	if err != nil {
		endStage(pspan, reason.Internal, err)
		return a.denial(reason.Internal, err.Error())
	}

	var res policy.Result
	rule := ext[ExtDecision]
	if rule != "" {
		res, err = p.EvalRule(pctx, rule, v)
	} else {
		res, err = p.Eval(pctx, v)
	}
	policyTime := time.Since(t0)
	if pspan != nil {
		endPolicy(pspan, rule, p.Revision(), res, err)
	}
	switch {
	case errors.Is(err, policy.ErrUnknownRule):
		a.log.Error("route names an unknown decision rule; denying", "rule", rule, "err", err)
		d = a.denial(reason.RuleUnknown, fmt.Sprintf("decision rule %q is not defined in the policy", rule))
	case errors.Is(err, policy.ErrUndefined):
		d = a.denial(reason.PolicyUndefined, "the policy gave no decision")
	case err != nil:
		a.log.Error("policy evaluation failed; denying", "err", err)
		d = a.denial(reason.PolicyError, "the policy could not be evaluated")
	case !res.Allowed:
		d = a.policyDenied(res, tok == nil)
	default:
		d = a.allow(res, tok, r)
	}
	d.Token, d.TokenLatency, d.PolicyLatency = tok, tokenTime, policyTime
	if tok != nil {
		d.Issuer = tok.Issuer
	}
	if wantInput {
		d.Input = inputMap(v)
	}
	d.Rule, d.Revision = rule, p.Revision()
	if rule == "" {
		d.Rule = a.cfg.DefaultRule
	}
	if tok != nil {
		meta := d.DynamicMetadata["claimcheck"].(map[string]any)
		meta["issuer"] = tok.Issuer
		for _, c := range []string{"sub", "client_id"} {
			if s, ok := tok.Claims[c].(string); ok {
				meta[c] = s
			}
		}
	}
	return d
}

func (a *Authorizer) allow(res policy.Result, tok *token.Token, r *request) Decision {
	d := Decision{
		Allowed:         true,
		Status:          http.StatusOK,
		Reason:          reason.Allowed,
		ResponseHeaders: res.ResponseHeadersToAdd,
		RemoveHeaders:   append([]string(nil), res.RequestHeadersToRemove...),
		DynamicMetadata: metadata(res.DynamicMetadata, reason.Allowed),
	}
	set, remove := a.forwardHeaders(tok)
	d.UpstreamHeaders = append(set, res.Headers...)
	d.RemoveHeaders = append(d.RemoveHeaders, remove...)
	a.strip(&d, r)
	return d
}

// forwardHeaders returns the forwarded-claim headers to set from tok, and
// those to remove because tok (or its claim) is absent.
func (a *Authorizer) forwardHeaders(tok *token.Token) (set []policy.Header, remove []string) {
	for _, fr := range a.forward {
		v, ok := claimHeaderValue(tok, fr.claim)
		if !ok {
			remove = append(remove, fr.header)
			continue
		}
		set = append(set, policy.Header{Key: fr.header, Value: v})
	}
	return set, remove
}
