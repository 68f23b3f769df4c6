package extauthz

import (
	"context"
	"fmt"
	"net/http"
	"runtime/debug"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/claimcheck/claimcheck/extauthz/reason"
	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/policy"
)

// Every answer that is not an allow is built here, from the one table of
// reason codes (package reason), and goes through finish: a decision ID, a
// log line, a metric, the reason in the dynamic metadata. Adapters that
// refuse a request themselves use Refuse and Panicked, so their denies look
// and count like the core's.

// Refuse is the deny of a request the core did not evaluate — one an
// adapter could not map (reason.BadRequest, reason.HeadersTooLarge,
// reason.ForwardedUntrusted), or a decision it could not send
// (reason.Internal) — answered and recorded as Check answers and records
// its own. req may be nil or partial; what it has (method, host, path, id)
// goes into the logs. A code that is not in the table is refused as
// reason.Internal.
func (a *Authorizer) Refuse(ctx context.Context, req *authv3.CheckRequest, code, desc string) Decision {
	d := a.denial(code, desc)
	a.finishOnce(ctx, req, &d)
	return d
}

// Panicked is the deny of a request whose answer panicked with p, for an
// adapter's deferred recover: an internal_error deny, logged with the stack
// and recorded as every other decision is.
//
//	defer func() {
//		if p := recover(); p != nil {
//			resp = send(a.Panicked(ctx, req, p))
//		}
//	}()
func (a *Authorizer) Panicked(ctx context.Context, req *authv3.CheckRequest, p any) Decision {
	a.log.Error("panicked; denying", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	d := a.denial(reason.Internal, "internal error")
	a.finishOnce(ctx, req, &d)
	return d
}

// recoverInto, deferred by decide, turns a panic in the decision path into
// an internal_error deny in *d.
func (a *Authorizer) recoverInto(d *Decision) {
	if p := recover(); p != nil {
		a.log.Error("check panicked; denying", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		*d = a.denial(reason.Internal, "internal error")
	}
}

// finishOnce finishes d for Refuse and Panicked; a panic there (a broken
// logger or observer) leaves d as built rather than escaping a second time.
func (a *Authorizer) finishOnce(ctx context.Context, req *authv3.CheckRequest, d *Decision) {
	defer func() {
		if p := recover(); p != nil {
			a.log.Error("finishing a refusal panicked", "panic", fmt.Sprint(p))
		}
	}()
	a.finish(ctx, req, d, time.Now())
}

// denial builds the deny of code: its status and OAuth error from the
// table, a JSON body {"error", "error_description"}, and for a 401 the
// RFC 6750 challenge.
func (a *Authorizer) denial(code, desc string) Decision {
	info, ok := reason.Lookup(code)
	if !ok || code == reason.Allowed {
		a.log.Error("deny with a code outside the reason table; answering internal_error", "reason", code)
		code, desc, info = reason.Internal, "internal error", reason.Of(reason.Internal)
	}
	d := Decision{
		Status:          info.Status,
		Reason:          code,
		Description:     desc,
		DenyHeaders:     []policy.Header{{Key: "content-type", Value: "application/json"}},
		Body:            errorBody(info.OAuthError, desc),
		DynamicMetadata: metadata(nil, code),
	}
	switch {
	case code == reason.MissingToken:
		d.DenyHeaders = append(d.DenyHeaders, policy.Header{Key: "www-authenticate", Value: fmt.Sprintf("Bearer realm=%q", a.cfg.Realm)})
	case info.Status == http.StatusUnauthorized:
		d.DenyHeaders = append(d.DenyHeaders, policy.Header{Key: "www-authenticate", Value: fmt.Sprintf(
			`Bearer realm=%q, error=%q, error_description="%s"`, a.cfg.Realm, info.OAuthError, challengeText(desc))})
	}
	return d
}

func (a *Authorizer) missingToken() Decision {
	return a.denial(reason.MissingToken, "a bearer token is required")
}

func (a *Authorizer) tokenRejected(err error) Decision {
	code := token.Reason(err)
	if code == reason.Internal {
		a.log.Error("token verification failed; denying", "err", err)
		return a.denial(code, "token verification failed")
	}
	return a.denial(code, err.Error())
}

func (a *Authorizer) policyDenied(res policy.Result, noToken bool) Decision {
	if noToken && res.HTTPStatus == 0 {
		// A request without credentials that the policy refuses is asked for
		// them (RFC 6750 §3), not told it is forbidden.
		d := a.missingToken()
		d.DynamicMetadata = metadata(res.DynamicMetadata, d.Reason)
		return d
	}
	d := a.denial(reason.PolicyDenied, "denied by policy")
	d.DynamicMetadata = metadata(res.DynamicMetadata, d.Reason)
	if res.HTTPStatus != 0 {
		d.Status = res.HTTPStatus // sanitize keeps it in range
	}
	if res.Body != "" || len(res.Headers) > 0 {
		d.Body = res.Body
		d.DenyHeaders = res.Headers
	}
	return d
}

// sanitize is the one check every answer passes before it is sent: a code
// outside the reason table (a bug) is an internal_error deny, so metrics
// stay bounded and nothing unknown is let through; a deny status that would
// read as success (below 300) or is not an HTTP status (above 599) is sent
// as 403, over gRPC and HTTP alike.
func (a *Authorizer) sanitize(d *Decision) {
	if _, ok := reason.Lookup(d.Reason); !ok {
		a.log.Error("decision with a code outside the reason table; denying", "reason", d.Reason)
		d.replaceAnswer(a.denial(reason.Internal, "internal error"))
	}
	if !d.Allowed && (d.Status < 300 || d.Status > 599) {
		a.log.Warn("a deny cannot be sent with this status; sending 403", "status", d.Status, "reason", d.Reason)
		d.Status = http.StatusForbidden
	}
}

// metadata returns the policy's dynamic metadata plus claimcheck's own key.
func metadata(fromPolicy map[string]any, code string) map[string]any {
	m := make(map[string]any, len(fromPolicy)+1)
	for k, v := range fromPolicy {
		m[k] = v
	}
	m["claimcheck"] = map[string]any{"reason": code}
	return m
}

// replaceAnswer makes d the deny n, keeping what d says about the request
// and its token.
func (d *Decision) replaceAnswer(n Decision) {
	d.Allowed, d.DryRun = false, false
	d.Status, d.Reason, d.Description = n.Status, n.Reason, n.Description
	d.UpstreamHeaders, d.RemoveHeaders, d.ResponseHeaders, d.RemoveQueryParameters = nil, nil, nil, nil
	d.DenyHeaders, d.Body, d.DynamicMetadata = n.DenyHeaders, n.Body, n.DynamicMetadata
}

// dryRunnable reports whether dry-run may let a deny with code through: a
// token's rejection (401) or the policy's no.
func dryRunnable(code string) bool {
	return code == reason.PolicyDenied || code == reason.PolicyUndefined || reason.Of(code).Status == http.StatusUnauthorized
}
