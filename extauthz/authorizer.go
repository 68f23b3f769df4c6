// Package extauthz is claimcheck's decision path, shared by every transport:
// a CheckRequest goes in, its bearer token is verified, the policy decides,
// and a transport-neutral Decision comes out. It never fails open: any error
// or panic on the way ends in a deny.
package extauthz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sort"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/policy"
)

// Reason codes of decisions that are not about the token itself; token
// rejections use token.Reason codes.
const (
	ReasonAllowed         = "allowed"
	ReasonMissingToken    = "missing_token"
	ReasonBadRequest      = "bad_request"
	ReasonPolicyDenied    = "policy_denied"
	ReasonPolicyUndefined = "policy_undefined"
	ReasonPolicyError     = "policy_error"
	ReasonInternal        = "internal_error"
)

// Verifier verifies a raw bearer token.
type Verifier interface {
	Verify(ctx context.Context, raw string) (*token.Token, error)
}

// Policy decides on an input document.
type Policy interface {
	Eval(ctx context.Context, input ast.Value) (policy.Result, error)
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
	// StripToken removes the header that carried the token on allow.
	StripToken bool
}

// Authorizer makes decisions. It is safe for concurrent use.
type Authorizer struct {
	cfg      Config
	verifier Verifier
	policy   Policy
	log      *slog.Logger
	forward  []forwardRule // sorted by claim for deterministic output
}

type forwardRule struct{ claim, header string }

// New returns an Authorizer. A nil logger discards logs.
func New(cfg Config, v Verifier, p Policy, log *slog.Logger) (*Authorizer, error) {
	if v == nil || p == nil {
		return nil, errors.New("extauthz: a verifier and a policy are required")
	}
	if cfg.Realm == "" {
		cfg.Realm = "claimcheck"
	}
	if len(cfg.Sources) == 0 {
		cfg.Sources = []TokenSource{{Header: "authorization", Prefix: "Bearer "}}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Authorizer{cfg: cfg, verifier: v, policy: p, log: log}
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

	// On deny: headers and body sent to the client.
	DenyHeaders []policy.Header
	Body        string

	// DynamicMetadata is emitted to Envoy (and so to its access logs); it
	// always holds "claimcheck": {"reason": …} plus whatever the policy set.
	DynamicMetadata map[string]any

	// Token is the verified token, when there was one.
	Token *token.Token
	// Input is the policy input document, when the request got that far.
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
	defer func() {
		if p := recover(); p != nil {
			a.log.Error("check panicked; denying", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			d = a.unavailable(ReasonInternal, "internal error")
		}
	}()
	d = a.check(ctx, req)
	if explain && d.Input == nil {
		if r, err := parseRequest(req); err == nil {
			d.Input, _ = buildInput(req, r, nil)
		}
	}
	a.log.Debug("decision", "allowed", d.Allowed, "status", d.Status, "reason", d.Reason)
	return d
}

func (a *Authorizer) check(ctx context.Context, req *authv3.CheckRequest) Decision {
	r, err := parseRequest(req)
	if err != nil {
		return a.deny(http.StatusBadRequest, ReasonBadRequest, "invalid_request", err.Error(), nil)
	}

	f, ok := extractToken(a.cfg.Sources, r.headers, r.query)
	var tok *token.Token
	switch {
	case ok:
		tok, err = a.verifier.Verify(ctx, f.raw)
		if err != nil {
			return a.tokenRejected(err)
		}
	case a.cfg.TokenRequired:
		return a.missingToken()
	}

	input, err := buildInput(req, r, tok)
	if err != nil {
		return a.unavailable(ReasonInternal, err.Error())
	}
	v, err := ast.InterfaceToValue(input)
	if err != nil {
		return a.unavailable(ReasonInternal, fmt.Sprintf("policy input: %v", err))
	}

	res, err := a.policy.Eval(ctx, v)
	var d Decision
	switch {
	case errors.Is(err, policy.ErrUndefined):
		d = a.deny(http.StatusForbidden, ReasonPolicyUndefined, "access_denied", "the policy gave no decision", nil)
	case err != nil:
		a.log.Error("policy evaluation failed; denying", "err", err)
		d = a.unavailable(ReasonPolicyError, "the policy could not be evaluated")
	case !res.Allowed:
		d = a.policyDenied(res, tok == nil)
	default:
		d = a.allow(res, tok, f)
	}
	d.Token, d.Input = tok, input
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

func (a *Authorizer) allow(res policy.Result, tok *token.Token, f found) Decision {
	d := Decision{
		Allowed:         true,
		Status:          http.StatusOK,
		Reason:          ReasonAllowed,
		ResponseHeaders: res.ResponseHeadersToAdd,
		RemoveHeaders:   append([]string(nil), res.RequestHeadersToRemove...),
		DynamicMetadata: metadata(res.DynamicMetadata, ReasonAllowed),
	}
	for _, fr := range a.forward {
		v, ok := claimHeaderValue(tok, fr.claim)
		if !ok {
			d.RemoveHeaders = append(d.RemoveHeaders, fr.header)
			continue
		}
		d.UpstreamHeaders = append(d.UpstreamHeaders, policy.Header{Key: fr.header, Value: v})
	}
	d.UpstreamHeaders = append(d.UpstreamHeaders, res.Headers...)
	if a.cfg.StripToken && f.header != "" {
		d.RemoveHeaders = append(d.RemoveHeaders, f.header)
	}
	return d
}

func (a *Authorizer) policyDenied(res policy.Result, noToken bool) Decision {
	if noToken && res.HTTPStatus == 0 {
		// A request without credentials that the policy refuses is asked for
		// them (RFC 6750 §3), not told it is forbidden.
		d := a.missingToken()
		d.DynamicMetadata = metadata(res.DynamicMetadata, ReasonMissingToken)
		return d
	}
	status := res.HTTPStatus
	if status == 0 {
		status = http.StatusForbidden
	}
	d := a.deny(status, ReasonPolicyDenied, "access_denied", "denied by policy", res.DynamicMetadata)
	if res.Body != "" || len(res.Headers) > 0 {
		d.Body = res.Body
		d.DenyHeaders = res.Headers
	}
	return d
}

func (a *Authorizer) missingToken() Decision {
	d := a.deny(http.StatusUnauthorized, ReasonMissingToken, "unauthorized", "a bearer token is required", nil)
	d.DenyHeaders = append(d.DenyHeaders, policy.Header{Key: "www-authenticate", Value: fmt.Sprintf("Bearer realm=%q", a.cfg.Realm)})
	return d
}

func (a *Authorizer) tokenRejected(err error) Decision {
	reason := token.Reason(err)
	desc := err.Error()
	if errors.Is(err, token.ErrKeysUnavailable) {
		return a.unavailable(reason, desc)
	}
	if reason == ReasonInternal {
		a.log.Error("token verification failed; denying", "err", err)
		return a.unavailable(reason, "token verification failed")
	}
	d := a.deny(http.StatusUnauthorized, reason, "invalid_token", desc, nil)
	d.DenyHeaders = append(d.DenyHeaders, policy.Header{Key: "www-authenticate", Value: fmt.Sprintf(
		`Bearer realm=%q, error="invalid_token", error_description="%s"`, a.cfg.Realm, challengeText(desc))})
	return d
}

func (a *Authorizer) unavailable(reason, desc string) Decision {
	return a.deny(http.StatusServiceUnavailable, reason, "temporarily_unavailable", desc, nil)
}

// deny builds a deny with a JSON body {"error", "error_description"}.
func (a *Authorizer) deny(status int, reason, oauthErr, desc string, meta map[string]any) Decision {
	return Decision{
		Status:          status,
		Reason:          reason,
		Description:     desc,
		DenyHeaders:     []policy.Header{{Key: "content-type", Value: "application/json"}},
		Body:            errorBody(oauthErr, desc),
		DynamicMetadata: metadata(meta, reason),
	}
}

// metadata returns the policy's dynamic metadata plus claimcheck's own key.
func metadata(fromPolicy map[string]any, reason string) map[string]any {
	m := make(map[string]any, len(fromPolicy)+1)
	for k, v := range fromPolicy {
		m[k] = v
	}
	m["claimcheck"] = map[string]any{"reason": reason}
	return m
}
