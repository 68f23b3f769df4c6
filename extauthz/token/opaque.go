package token

import (
	"bytes"
	"strings"
	"time"
)

// Kinds of token, for Token.Kind and input.token.kind.
const (
	// KindJWT is a JWT verified locally, with the issuer's keys.
	KindJWT = "jwt"
	// KindOpaque is a token the issuer vouched for by introspection.
	KindOpaque = "opaque"
)

// LooksLikeJWT reports whether raw has the shape of a compact JWS: three
// dot-separated segments, the first of which decodes to a JSON object. It
// says nothing about validity; it only tells JWTs, which Verify checks, from
// opaque tokens, which only their issuer can.
func LooksLikeJWT(raw string) bool {
	head, rest, ok := strings.Cut(raw, ".")
	if !ok || strings.Count(rest, ".") != 1 {
		return false
	}
	b, err := decodeSegment(head)
	return err == nil && bytes.HasPrefix(bytes.TrimLeft(b, " \t\r\n"), []byte("{"))
}

// Rules are the claim checks Verify makes once a signature verifies, for
// tokens an issuer vouches for another way.
type Rules struct {
	// Issuer is the configured issuer the answer came from.
	Issuer string
	// Audiences lists accepted aud values; the claims must name one.
	Audiences []string
	// ClockSkew is the leeway applied to exp, nbf and iat.
	ClockSkew time.Duration
}

// Opaque returns the token whose claims r's issuer vouched for (an RFC 7662
// introspection response without "active"), checked at now as Verify checks
// a JWT's: registered claims of the right JSON types, exp required and not
// past, nbf and iat, and an aud naming one of r.Audiences. An iss claim is
// optional, since the answer came from the issuer's own endpoint, but when
// present must equal r.Issuer. Errors wrap the package's sentinels.
func (r Rules) Opaque(claims map[string]any, now time.Time) (*Token, error) {
	if v, ok := claims["iss"]; ok {
		name, isString := v.(string)
		switch {
		case !isString:
			return nil, reject(ErrClaims, `claim "iss" is not a string`)
		case name != r.Issuer:
			return nil, reject(ErrIssuerUnknown, "introspection names issuer %q, not %s", clip(name), r.Issuer)
		}
	}
	c, err := parseClaims(claims)
	if err != nil {
		return nil, err
	}
	iss := &issuer{name: r.Issuer, audiences: r.Audiences, skew: r.ClockSkew}
	if err := iss.checkClaims(c, now); err != nil {
		return nil, err
	}
	return &Token{
		Kind:   KindOpaque,
		Issuer: r.Issuer,
		Header: map[string]any{},
		Claims: claims,
		Scopes: c.scopes,
		Expiry: c.exp,
		memo:   new(memo),
	}, nil
}

// NegativeCacheable reports whether err rejects the token for good, so a
// cache may remember it for a while: not an unavailable issuer, a context
// error, an oversized token, or a token not valid yet (time cures those).
func NegativeCacheable(err error) bool { return negativeCacheable(err) }
