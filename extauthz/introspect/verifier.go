package introspect

import (
	"context"
	"fmt"

	"github.com/claimcheck/claimcheck/extauthz/token"
)

// JWTVerifier verifies JWTs locally: a *token.Verifier or a *token.Cache.
type JWTVerifier interface {
	Verify(ctx context.Context, raw string) (*token.Token, error)
}

// Verifier verifies bearer tokens of both kinds. A JWT goes to the JWT
// verifier and then, if its issuer introspects JWTs too (ModeAlways,
// ModeJWT), to that issuer's introspection endpoint. Any other token goes to
// the one issuer that takes opaque tokens (ModeOpaque or ModeAlways): an
// opaque token does not say who issued it, and sending it to several
// issuers in turn would hand one issuer's tokens to the others. Without such
// an issuer every token goes to the JWT verifier, which rejects the
// malformed ones. It is safe for concurrent use.
type Verifier struct {
	jwt     JWTVerifier
	maxSize int
	opaque  *Client            // nil: no issuer takes opaque tokens
	jwts    map[string]*Client // issuer → the client that introspects its JWTs
}

// NewVerifier returns a Verifier over jwt and the issuers' clients. maxSize
// is the largest token, in bytes, sent to introspection. At most one client
// may take opaque tokens.
func NewVerifier(jwt JWTVerifier, maxSize int, clients ...*Client) (*Verifier, error) {
	if jwt == nil {
		return nil, fmt.Errorf("introspect: no JWT verifier")
	}
	if maxSize <= 0 {
		return nil, fmt.Errorf("introspect: %d is not a positive size", maxSize)
	}
	v := &Verifier{jwt: jwt, maxSize: maxSize, jwts: map[string]*Client{}}
	for _, c := range clients {
		if _, dup := v.jwts[c.Issuer()]; dup || v.opaque != nil && v.opaque.Issuer() == c.Issuer() {
			return nil, fmt.Errorf("introspect: issuer %s has two clients", c.Issuer())
		}
		if c.Mode() != ModeJWT {
			if v.opaque != nil {
				return nil, fmt.Errorf("introspect: issuers %s and %s both take opaque tokens; at most one may (use mode %q for the others)",
					v.opaque.Issuer(), c.Issuer(), ModeJWT)
			}
			v.opaque = c
		}
		if c.Mode() != ModeOpaque {
			v.jwts[c.Issuer()] = c
		}
	}
	return v, nil
}

// Verify checks raw and returns the token, of kind token.KindJWT or
// token.KindOpaque. Errors wrap the token package's sentinels.
func (v *Verifier) Verify(ctx context.Context, raw string) (*token.Token, error) {
	if v.opaque != nil && !token.LooksLikeJWT(raw) {
		switch {
		case len(raw) > v.maxSize:
			return nil, token.Reject(token.ErrTooLarge, "token is %d bytes, the limit is %d", len(raw), v.maxSize)
		case !isB64Token(raw):
			return nil, token.Reject(token.ErrMalformed, "token is neither a JWT nor an RFC 6750 bearer token")
		}
		return v.opaque.Opaque(ctx, raw)
	}
	tok, err := v.jwt.Verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	if c := v.jwts[tok.Issuer]; c != nil {
		if err := c.Active(ctx, raw, tok); err != nil {
			return nil, err
		}
	}
	return tok, nil
}

// isB64Token reports whether s is an RFC 6750 b64token: 1*( ALPHA / DIGIT /
// "-" / "." / "_" / "~" / "+" / "/" ) *"=". Nothing else is sent to an
// issuer as a token.
func isB64Token(s string) bool {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/') {
			break
		}
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}
