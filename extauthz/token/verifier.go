// Package token verifies JWT access tokens (compact JWS) against a fixed set
// of trusted issuers.
package token

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// DefaultMaxSize is the default limit on the length of a raw token, in bytes.
const DefaultMaxSize = 16 << 10

// DefaultMaxKidlessKeys is the default of Issuer.MaxKidlessKeys.
const DefaultMaxKidlessKeys = 4

// Token is a verified access token.
type Token struct {
	// Kind is KindJWT for a token verified locally, KindOpaque for one
	// whose claims came from the issuer's introspection endpoint.
	Kind string
	// Issuer is the iss claim; it equals the Issuer of a configured entry.
	Issuer string
	// Header holds the "alg", "kid" and "typ" header parameters that are
	// present, and nothing else.
	Header map[string]any
	// Claims is the verified payload. It was decoded with json.Number for
	// numbers (Decoder.UseNumber), so numeric claims are json.Number values,
	// never float64.
	Claims map[string]any
	// Scopes combines the space-separated "scope" claim and the "scp" claim
	// (a string or an array of strings), without duplicates. It is empty,
	// never nil, when the token grants no scopes.
	Scopes []string
	// Expiry is the exp claim.
	Expiry time.Time
	// KeyID is the kid of the key that verified the signature; empty for a
	// key without one.
	KeyID string

	key  jwk.Key // the key that verified the signature
	memo *memo   // see Memo
}

// KeySource gives an issuer's current verification keys.
type KeySource interface {
	// Keys returns the current key set, or an error wrapping
	// ErrKeysUnavailable if keys were never loaded.
	Keys(ctx context.Context) (jwk.Set, error)
	// Refresh asks for a refetch because a token named an unknown kid;
	// implementations rate-limit and coalesce it and return the current set
	// either way.
	Refresh(ctx context.Context) (jwk.Set, error)
}

// Issuer describes a trusted token issuer.
type Issuer struct {
	// Issuer must equal the token's iss claim exactly.
	Issuer string
	// Audiences lists accepted aud values; a token must name at least one.
	// At least one audience is required.
	Audiences []string
	// Algorithms is the allowlist of JWS algorithms, e.g. "RS256". Empty
	// allows every supported asymmetric algorithm: RS256 RS384 RS512 PS256
	// PS384 PS512 ES256 ES384 ES512 EdDSA. HMAC algorithms (HS256 HS384
	// HS512) are accepted only when listed, and then alone: an issuer signs
	// either with shared secrets or with private keys, never both.
	Algorithms []string
	// ClockSkew is the leeway applied to exp, nbf and iat.
	ClockSkew time.Duration
	// RequireTyp, when set, is the media type a token's "typ" header must
	// name, e.g. "at+jwt" for RFC 9068 access tokens, so that other JWTs
	// of the issuer, such as ID tokens, are refused. It is compared as RFC
	// 7515 §4.1.9 says: case-insensitively, with "application/" implied
	// when there is no "/". A token without "typ" is refused.
	RequireTyp string
	// MaxKidlessKeys bounds the keys tried for a token whose kid names
	// none: a token without a kid is tried against the first
	// MaxKidlessKeys keys, in key set order, that fit its algorithm (type,
	// curve, the key's own "alg"); a token with a kid, against the keys
	// with that kid and then the first MaxKidlessKeys fitting keys without
	// one. If none verifies and fitting keys were left untried, the token
	// is refused with ErrKeyUnknown: a forged token costs at most this many
	// signature checks however many keys the issuer publishes. Zero means
	// DefaultMaxKidlessKeys.
	MaxKidlessKeys int
	// Keys provides the issuer's verification keys; NoKeys for an issuer
	// whose JWTs are all refused.
	Keys KeySource
}

// Option configures a Verifier.
type Option func(*Verifier)

// WithClock sets the function Verify uses to read the current time.
// The default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(v *Verifier) { v.now = now }
}

// WithMaxSize sets the largest raw token, in bytes, that Verify accepts.
// The default is DefaultMaxSize.
func WithMaxSize(n int) Option {
	return func(v *Verifier) { v.maxSize = n }
}

// Verifier verifies access tokens. It is safe for concurrent use.
type Verifier struct {
	issuers map[string]*issuer
	now     func() time.Time
	maxSize int
}

// issuer is a validated Issuer.
type issuer struct {
	name      string
	audiences []string
	skew      time.Duration
	typ       string // normalized RequireTyp; empty: any
	sig       *signatures
	keyless   bool // Keys is NoKeys: no JWT of it verifies
}

// NewVerifier returns a Verifier that accepts tokens from issuers. It
// rejects configurations that could never verify a token safely: no or
// duplicate issuers, an issuer without audiences or keys, a negative clock
// skew, and allowlists naming "none" or unknown algorithms, or mixing HMAC
// with asymmetric algorithms.
func NewVerifier(issuers []Issuer, opts ...Option) (*Verifier, error) {
	v := &Verifier{
		issuers: make(map[string]*issuer, len(issuers)),
		now:     time.Now,
		maxSize: DefaultMaxSize,
	}
	for _, o := range opts {
		o(v)
	}
	if v.now == nil {
		return nil, errors.New("token: WithClock: nil clock")
	}
	if v.maxSize <= 0 {
		return nil, fmt.Errorf("token: WithMaxSize: %d is not a positive size", v.maxSize)
	}
	if len(issuers) == 0 {
		return nil, errors.New("token: no issuers configured")
	}
	for _, cfg := range issuers {
		iss, err := newIssuer(cfg)
		if err != nil {
			return nil, err
		}
		if _, dup := v.issuers[iss.name]; dup {
			return nil, fmt.Errorf("token: issuer %q configured twice", iss.name)
		}
		v.issuers[iss.name] = iss
	}
	return v, nil
}

func newIssuer(cfg Issuer) (*issuer, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("token: issuer with empty name")
	}
	if len(cfg.Audiences) == 0 {
		return nil, fmt.Errorf("token: issuer %s: no audiences", cfg.Issuer)
	}
	if slices.Contains(cfg.Audiences, "") {
		return nil, fmt.Errorf("token: issuer %s: empty audience", cfg.Issuer)
	}
	if cfg.Keys == nil {
		return nil, fmt.Errorf("token: issuer %s: no key source", cfg.Issuer)
	}
	if cfg.ClockSkew < 0 {
		return nil, fmt.Errorf("token: issuer %s: negative clock skew %s", cfg.Issuer, cfg.ClockSkew)
	}
	maxKidless := cfg.MaxKidlessKeys
	switch {
	case maxKidless == 0:
		maxKidless = DefaultMaxKidlessKeys
	case maxKidless < 0:
		return nil, fmt.Errorf("token: issuer %s: MaxKidlessKeys %d is not a positive number", cfg.Issuer, maxKidless)
	}
	algs, err := allowlist(cfg.Algorithms)
	if err != nil {
		return nil, fmt.Errorf("token: issuer %s: %w", cfg.Issuer, err)
	}
	if cfg.RequireTyp != "" && !ValidTyp(cfg.RequireTyp) {
		return nil, fmt.Errorf("token: issuer %s: require_typ %q is not a media type", cfg.Issuer, cfg.RequireTyp)
	}
	return &issuer{
		name:      cfg.Issuer,
		audiences: slices.Clone(cfg.Audiences),
		skew:      cfg.ClockSkew,
		typ:       normalizeTyp(cfg.RequireTyp),
		sig:       &signatures{owner: "issuer " + cfg.Issuer, algs: algs, keys: cfg.Keys, maxKidless: maxKidless},
		keyless:   cfg.Keys == NoKeys,
	}, nil
}

// Verify checks raw, a compact JWS access token, and returns it verified.
//
// It rejects, in this order: oversized input; malformed structure; an
// unknown issuer (iss is read before verification only to choose the
// issuer); unsupported or disallowed headers; tokens for which no trusted
// key fits; bad signatures; and, for correctly signed tokens, a "typ"
// other than the issuer's RequireTyp, and claims that are mistyped,
// expired, not yet valid, issued in the future or for another audience. Header parameters that point at keys (jku, jwk, x5u,
// x5c) are ignored.
//
// Every rejection wraps one of the package's sentinel errors; an error
// wrapping ErrKeysUnavailable means the issuer's keys could not be loaded.
// Error messages never contain the token.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Token, error) {
	if len(raw) > v.maxSize {
		return nil, reject(ErrTooLarge, "token is %d bytes, the limit is %d", len(raw), v.maxSize)
	}
	p, err := parse(raw)
	if err != nil {
		return nil, err
	}
	payload, err := DecodeObject(p.payload)
	if err != nil {
		return nil, malformedJSON("payload", err)
	}
	iss, err := v.issuerOf(payload)
	if err != nil {
		return nil, err
	}
	if iss.keyless {
		return nil, reject(ErrKeyUnknown, "issuer %s has no keys: only its opaque tokens are accepted, by introspection", iss.name)
	}
	key, err := iss.sig.verify(ctx, p)
	if err != nil {
		return nil, iss.rejected(err)
	}
	kid, _ := key.KeyID()
	if err := iss.checkTyp(p.header); err != nil {
		return nil, err
	}
	c, err := parseClaims(payload)
	if err != nil {
		return nil, iss.rejected(err)
	}
	if err := iss.checkClaims(c, v.now()); err != nil {
		return nil, iss.rejected(err)
	}
	header := make(map[string]any, 3)
	for _, name := range [...]string{"alg", "kid", "typ"} {
		if val, ok := p.header[name]; ok {
			header[name] = val
		}
	}
	return &Token{
		Kind:   KindJWT,
		Issuer: iss.name,
		Header: header,
		Claims: payload,
		Scopes: c.scopes,
		Expiry: c.exp,
		KeyID:  kid,
		key:    key,
		memo:   new(memo),
	}, nil
}

// issuerOf picks the configured issuer named by the unverified iss claim.
func (v *Verifier) issuerOf(claims map[string]any) (*issuer, error) {
	val, ok := claims["iss"]
	if !ok {
		return nil, reject(ErrIssuerUnknown, "token has no iss claim")
	}
	name, ok := val.(string)
	if !ok {
		return nil, reject(ErrIssuerUnknown, "iss claim is not a string")
	}
	iss, ok := v.issuers[name]
	if !ok {
		return nil, reject(ErrIssuerUnknown, "issuer %q is not trusted", clip(name))
	}
	return iss, nil
}
