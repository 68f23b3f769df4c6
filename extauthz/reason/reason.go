// Package reason is the one table of claimcheck's reason codes: the stable
// snake_case code every Decision, response (x-claimcheck-reason, Envoy
// dynamic metadata), log line and metric carries, with the HTTP status and
// OAuth error each is answered with. Metrics label by code, so the set is
// fixed: a code outside the table is a bug, counted as Internal.
package reason

import (
	"net/http"
	"slices"
)

// The codes. README "Responses and reason codes" documents each; a test
// keeps the two in step.
const (
	Allowed = "allowed"

	// The request, before any token or policy.
	BadRequest         = "bad_request"
	PathInvalid        = "path_invalid"
	ForwardedUntrusted = "forwarded_headers_untrusted"
	HeadersTooLarge    = "headers_too_large"
	BodyTooLarge       = "body_too_large"

	// The token.
	MissingToken      = "missing_token"
	TokenTooLarge     = "token_too_large"
	TokenMalformed    = "token_malformed"
	IssuerUnknown     = "issuer_unknown"
	Algorithm         = "algorithm_not_allowed"
	HeaderUnsupported = "header_unsupported"
	KeyUnknown        = "key_unknown"
	Signature         = "signature_invalid"
	Typ               = "typ_mismatch"
	Expired           = "token_expired"
	NoExpiry          = "exp_missing"
	NotYetValid       = "token_not_yet_valid"
	IssuedInFuture    = "iat_in_future"
	Audience          = "audience_mismatch"
	Claims            = "claims_invalid"
	Inactive          = "token_inactive"
	UserinfoRejected  = "userinfo_rejected"

	// The policy.
	PolicyDenied    = "policy_denied"
	PolicyUndefined = "policy_undefined"

	// Could not decide: always a deny, never an allow.
	KeysUnavailable          = "issuer_keys_unavailable"
	IntrospectionUnavailable = "introspection_unavailable"
	UserinfoUnavailable      = "userinfo_unavailable"
	PolicyError              = "policy_error"
	RuleUnknown              = "decision_rule_unknown"
	NoPolicy                 = "policy_unavailable"
	Deadline                 = "deadline_exceeded"
	Internal                 = "internal_error"
)

// Info is how a code is answered.
type Info struct {
	// Status is the HTTP status of the answer (a policy deny may set its own).
	Status int
	// OAuthError is the "error" member of the JSON deny body (RFC 6749
	// §5.2, RFC 6750 §3.1).
	OAuthError string
}

// OAuth errors of deny bodies.
const (
	errInvalidRequest = "invalid_request"
	errInvalidToken   = "invalid_token"
	errUnauthorized   = "unauthorized"
	errAccessDenied   = "access_denied"
	errUnavailable    = "temporarily_unavailable"
)

var table = map[string]Info{
	Allowed: {http.StatusOK, ""},

	BadRequest:         {http.StatusBadRequest, errInvalidRequest},
	PathInvalid:        {http.StatusBadRequest, errInvalidRequest},
	ForwardedUntrusted: {http.StatusBadRequest, errInvalidRequest},
	HeadersTooLarge:    {http.StatusRequestHeaderFieldsTooLarge, errInvalidRequest},
	BodyTooLarge:       {http.StatusRequestEntityTooLarge, errInvalidRequest},

	MissingToken:      {http.StatusUnauthorized, errUnauthorized},
	TokenTooLarge:     {http.StatusUnauthorized, errInvalidToken},
	TokenMalformed:    {http.StatusUnauthorized, errInvalidToken},
	IssuerUnknown:     {http.StatusUnauthorized, errInvalidToken},
	Algorithm:         {http.StatusUnauthorized, errInvalidToken},
	HeaderUnsupported: {http.StatusUnauthorized, errInvalidToken},
	KeyUnknown:        {http.StatusUnauthorized, errInvalidToken},
	Signature:         {http.StatusUnauthorized, errInvalidToken},
	Typ:               {http.StatusUnauthorized, errInvalidToken},
	Expired:           {http.StatusUnauthorized, errInvalidToken},
	NoExpiry:          {http.StatusUnauthorized, errInvalidToken},
	NotYetValid:       {http.StatusUnauthorized, errInvalidToken},
	IssuedInFuture:    {http.StatusUnauthorized, errInvalidToken},
	Audience:          {http.StatusUnauthorized, errInvalidToken},
	Claims:            {http.StatusUnauthorized, errInvalidToken},
	Inactive:          {http.StatusUnauthorized, errInvalidToken},
	UserinfoRejected:  {http.StatusUnauthorized, errInvalidToken},

	PolicyDenied:    {http.StatusForbidden, errAccessDenied},
	PolicyUndefined: {http.StatusForbidden, errAccessDenied},

	KeysUnavailable:          {http.StatusServiceUnavailable, errUnavailable},
	IntrospectionUnavailable: {http.StatusServiceUnavailable, errUnavailable},
	UserinfoUnavailable:      {http.StatusServiceUnavailable, errUnavailable},
	PolicyError:              {http.StatusServiceUnavailable, errUnavailable},
	RuleUnknown:              {http.StatusServiceUnavailable, errUnavailable},
	NoPolicy:                 {http.StatusServiceUnavailable, errUnavailable},
	Deadline:                 {http.StatusServiceUnavailable, errUnavailable},
	Internal:                 {http.StatusServiceUnavailable, errUnavailable},
}

// Lookup returns how code is answered; ok is false for a code that is not
// in the table.
func Lookup(code string) (info Info, ok bool) {
	info, ok = table[code]
	return info, ok
}

// Of returns how code is answered, and Internal's answer for a code that is
// not in the table.
func Of(code string) Info {
	if info, ok := table[code]; ok {
		return info
	}
	return table[Internal]
}

// All returns every code, sorted.
func All() []string {
	out := make([]string, 0, len(table))
	for c := range table {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}
