package token

import (
	"errors"
	"fmt"

	"github.com/claimcheck/claimcheck/extauthz/reason"
)

// Sentinel errors. Every rejection from Verify wraps exactly one of them;
// test with errors.Is, or map to a reason code with Reason.
var (
	// ErrTooLarge: the raw token exceeds the size limit.
	ErrTooLarge = errors.New("token too large")
	// ErrMalformed: the token is not a well-formed compact JWS with JSON
	// object header and payload.
	ErrMalformed = errors.New("token malformed")
	// ErrIssuerUnknown: iss is missing, not a string, or not configured.
	ErrIssuerUnknown = errors.New("issuer unknown")
	// ErrAlgorithm: alg is "none", not allowed for the issuer, or does not
	// fit the selected key.
	ErrAlgorithm = errors.New("algorithm not allowed")
	// ErrUnsupportedHeader: the header uses an extension ("crit", "b64").
	ErrUnsupportedHeader = errors.New("header unsupported")
	// ErrKeyUnknown: no usable key in the issuer's set matches the token.
	ErrKeyUnknown = errors.New("key unknown")
	// ErrSignature: the signature does not verify.
	ErrSignature = errors.New("signature invalid")
	// ErrExpired: the token is past exp, allowing for clock skew.
	ErrExpired = errors.New("token expired")
	// ErrNoExpiry: the token has no exp claim.
	ErrNoExpiry = errors.New("exp missing")
	// ErrNotYetValid: the token is before nbf, allowing for clock skew.
	ErrNotYetValid = errors.New("token not yet valid")
	// ErrIssuedInFuture: iat is in the future, allowing for clock skew.
	ErrIssuedInFuture = errors.New("iat in future")
	// ErrTyp: the "typ" header is not the issuer's required type (a
	// signed token of another kind, such as an ID token).
	ErrTyp = errors.New("typ mismatch")
	// ErrAudience: aud names none of the issuer's configured audiences.
	ErrAudience = errors.New("audience mismatch")
	// ErrClaims: a registered claim has the wrong JSON type.
	ErrClaims = errors.New("claims invalid")
	// ErrKeysUnavailable: the issuer's keys have never been loaded. Unlike
	// the other errors it describes the verifier, not the token, so callers
	// answer 503 rather than 401.
	ErrKeysUnavailable = errors.New("issuer keys unavailable")
	// ErrInactive: the issuer's introspection endpoint says the token is
	// not active (RFC 7662 "active": false).
	ErrInactive = errors.New("token inactive")
	// ErrIntrospectionUnavailable: the introspection endpoint could not be
	// asked or gave no usable answer. Like ErrKeysUnavailable it describes
	// the issuer, not the token: callers answer 503, never allow.
	ErrIntrospectionUnavailable = errors.New("introspection unavailable")
	// ErrUserinfoRejected: the issuer's userinfo endpoint refused the token
	// (401 or 403).
	ErrUserinfoRejected = errors.New("userinfo rejected the token")
	// ErrUserinfoUnavailable: the userinfo endpoint could not be asked or
	// gave no usable answer; callers answer 503.
	ErrUserinfoUnavailable = errors.New("userinfo unavailable")
)

// reasons maps each sentinel to its reason code.
var reasons = []struct {
	err  error
	code string
}{
	{ErrTooLarge, reason.TokenTooLarge},
	{ErrMalformed, reason.TokenMalformed},
	{ErrIssuerUnknown, reason.IssuerUnknown},
	{ErrAlgorithm, reason.Algorithm},
	{ErrUnsupportedHeader, reason.HeaderUnsupported},
	{ErrKeyUnknown, reason.KeyUnknown},
	{ErrSignature, reason.Signature},
	{ErrExpired, reason.Expired},
	{ErrNoExpiry, reason.NoExpiry},
	{ErrNotYetValid, reason.NotYetValid},
	{ErrIssuedInFuture, reason.IssuedInFuture},
	{ErrTyp, reason.Typ},
	{ErrAudience, reason.Audience},
	{ErrClaims, reason.Claims},
	{ErrKeysUnavailable, reason.KeysUnavailable},
	{ErrInactive, reason.Inactive},
	{ErrIntrospectionUnavailable, reason.IntrospectionUnavailable},
	{ErrUserinfoRejected, reason.UserinfoRejected},
	{ErrUserinfoUnavailable, reason.UserinfoUnavailable},
}

// Reason returns a stable snake_case code for err, suitable for metrics
// and logs: the code of the sentinel err wraps, or reason.Internal.
func Reason(err error) string {
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.code
		}
	}
	return reason.Internal
}

// Reasons returns every code Reason can return.
func Reasons() []string {
	out := make([]string, 0, len(reasons)+1)
	for _, r := range reasons {
		out = append(out, r.code)
	}
	return append(out, reason.Internal)
}

// Unavailable reports whether err says the issuer could not be consulted
// (its keys, introspection or userinfo endpoint) rather than that the token
// is bad: a 503, not a 401.
func Unavailable(err error) bool {
	return errors.Is(err, ErrKeysUnavailable) || errors.Is(err, ErrIntrospectionUnavailable) ||
		errors.Is(err, ErrUserinfoUnavailable)
}

// Reject returns an error wrapping the sentinel kind with a message of its
// own, for validators outside this package (introspection); errors.Is(err,
// kind) holds and Reason gives kind's code.
func Reject(kind error, format string, args ...any) error {
	return reject(kind, format, args...)
}

// rejection is a Verify error: a message for humans that wraps the sentinel
// saying why, without repeating the sentinel's own text.
type rejection struct {
	kind error
	msg  string
}

func (e *rejection) Error() string { return e.msg }
func (e *rejection) Unwrap() error { return e.kind }

func reject(kind error, format string, args ...any) error {
	return &rejection{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// issuerError is a rejection of a token whose iss named a configured
// issuer, so that metrics can count rejections by issuer.
type issuerError struct {
	issuer string
	err    error
}

func (e *issuerError) Error() string { return e.err.Error() }
func (e *issuerError) Unwrap() error { return e.err }

func (is *issuer) rejected(err error) error { return &issuerError{issuer: is.name, err: err} }

// IssuerOf returns the configured issuer that a token rejected by Verify
// named in its (unverified) iss claim, or "" when the token was rejected
// before one was found. It follows err's Unwrap chain (not errors.As, whose
// target would cost an allocation per denied Check).
func IssuerOf(err error) string {
	for err != nil {
		if ie, ok := err.(*issuerError); ok {
			return ie.issuer
		}
		err = errors.Unwrap(err)
	}
	return ""
}

// maxEcho caps how much of an attacker-controlled string goes into an error.
const maxEcho = 64

// clip shortens an attacker-controlled string for an error message; quote
// the result with %q.
func clip(s string) string {
	if len(s) <= maxEcho {
		return s
	}
	return s[:maxEcho] + "…"
}
