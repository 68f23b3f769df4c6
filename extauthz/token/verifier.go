// Package token verifies JWT access tokens (compact JWS) against a fixed set
// of trusted issuers.
package token

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// DefaultMaxSize is the default limit on the length of a raw token, in bytes.
const DefaultMaxSize = 16 << 10

// Token is a verified access token.
type Token struct {
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
	// KeyID is the kid of the key that verified the signature.
	KeyID string
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
	// PS384 PS512 ES256 ES384 ES512 EdDSA.
	Algorithms []string
	// ClockSkew is the leeway applied to exp, nbf and iat.
	ClockSkew time.Duration
	// Keys provides the issuer's verification keys.
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
	algs      []algorithm
	skew      time.Duration
	keys      KeySource
}

// algorithm is an allowed JWS algorithm and the key that fits it.
type algorithm struct {
	name  string
	sig   jwa.SignatureAlgorithm
	kty   string // JWK "kty"
	curve string // JWK "crv"; empty for RSA
}

// supported lists the algorithms Verify can check, in the default order.
var supported = []algorithm{
	{"RS256", jwa.RS256(), "RSA", ""},
	{"RS384", jwa.RS384(), "RSA", ""},
	{"RS512", jwa.RS512(), "RSA", ""},
	{"PS256", jwa.PS256(), "RSA", ""},
	{"PS384", jwa.PS384(), "RSA", ""},
	{"PS512", jwa.PS512(), "RSA", ""},
	{"ES256", jwa.ES256(), "EC", "P-256"},
	{"ES384", jwa.ES384(), "EC", "P-384"},
	{"ES512", jwa.ES512(), "EC", "P-521"},
	{"EdDSA", jwa.EdDSA(), "OKP", "Ed25519"},
}

// NewVerifier returns a Verifier that accepts tokens from issuers. It
// rejects configurations that could never verify a token safely: no or
// duplicate issuers, an issuer without audiences or keys, a negative clock
// skew, and allowlists naming "none", symmetric (HMAC) or unknown algorithms.
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
	iss := &issuer{
		name:      cfg.Issuer,
		audiences: slices.Clone(cfg.Audiences),
		skew:      cfg.ClockSkew,
		keys:      cfg.Keys,
	}
	if len(cfg.Algorithms) == 0 {
		iss.algs = supported
	}
	for _, name := range cfg.Algorithms {
		i := slices.IndexFunc(supported, func(a algorithm) bool { return a.name == name })
		switch {
		case i >= 0:
			if !slices.ContainsFunc(iss.algs, func(a algorithm) bool { return a.name == name }) {
				iss.algs = append(iss.algs, supported[i])
			}
		case name == "HS256" || name == "HS384" || name == "HS512":
			return nil, fmt.Errorf("token: issuer %s: symmetric algorithm %q is not supported", cfg.Issuer, name)
		default:
			return nil, fmt.Errorf("token: issuer %s: unsupported algorithm %q", cfg.Issuer, name)
		}
	}
	return iss, nil
}

// Verify checks raw, a compact JWS access token, and returns it verified.
//
// It rejects, in this order: oversized input; malformed structure; an
// unknown issuer (iss is read before verification only to choose the
// issuer); unsupported or disallowed headers; tokens for which no trusted
// key fits; bad signatures; and, for correctly signed tokens, claims that
// are mistyped, expired, not yet valid, issued in the future or for
// another audience. Header parameters that point at keys (jku, jwk, x5u,
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
	iss, err := v.issuerOf(p.claims)
	if err != nil {
		return nil, err
	}
	alg, err := iss.checkHeader(p)
	if err != nil {
		return nil, err
	}
	keys, err := iss.candidates(ctx, p, alg)
	if err != nil {
		return nil, err
	}
	kid, err := verifySignature(raw, alg, keys)
	if err != nil {
		return nil, err
	}
	c, err := parseClaims(p.claims)
	if err != nil {
		return nil, err
	}
	if err := iss.checkClaims(c, v.now()); err != nil {
		return nil, err
	}
	header := make(map[string]any, 3)
	for _, name := range [...]string{"alg", "kid", "typ"} {
		if val, ok := p.header[name]; ok {
			header[name] = val
		}
	}
	return &Token{
		Issuer: iss.name,
		Header: header,
		Claims: p.claims,
		Scopes: c.scopes,
		Expiry: c.exp,
		KeyID:  kid,
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

// checkHeader rejects extension headers and algorithms the issuer does not
// allow, and returns the token's algorithm.
func (iss *issuer) checkHeader(p *parsed) (algorithm, error) {
	for _, name := range [...]string{"crit", "b64"} {
		if _, ok := p.header[name]; ok {
			return algorithm{}, reject(ErrUnsupportedHeader, "header parameter %q is not supported", name)
		}
	}
	for _, a := range iss.algs {
		if a.name == p.alg {
			return a, nil
		}
	}
	return algorithm{}, reject(ErrAlgorithm, "alg %q is not allowed for issuer %s", clip(p.alg), iss.name)
}

// candidates returns the issuer's keys that may have signed the token: the
// usable keys with its kid, or, without a kid, every usable key that fits
// its algorithm. An unknown kid triggers one Refresh of the key source.
func (iss *issuer) candidates(ctx context.Context, p *parsed, alg algorithm) ([]jwk.Key, error) {
	set, err := iss.keys.Keys(ctx)
	if err != nil || set == nil {
		return nil, iss.keysError(ctx, err)
	}
	if !p.hasKID {
		var keys []jwk.Key
		for k := range allKeys(set) {
			if Usable(k) && fits(k, alg) {
				keys = append(keys, k)
			}
		}
		if len(keys) == 0 {
			return nil, reject(ErrKeyUnknown, "token has no kid and issuer %s has no %s key", iss.name, alg.name)
		}
		return keys, nil
	}

	matches := keysWithID(set, p.kid)
	if len(matches) == 0 {
		if set, err = iss.keys.Refresh(ctx); err != nil || set == nil {
			return nil, iss.keysError(ctx, err)
		}
		matches = keysWithID(set, p.kid)
	}
	if len(matches) == 0 {
		return nil, reject(ErrKeyUnknown, "no key with kid %q for issuer %s", clip(p.kid), iss.name)
	}
	matches = slices.DeleteFunc(matches, func(k jwk.Key) bool { return !Usable(k) })
	if len(matches) == 0 {
		return nil, reject(ErrKeyUnknown, "key %q of issuer %s is not a signature verification key", clip(p.kid), iss.name)
	}
	matches = slices.DeleteFunc(matches, func(k jwk.Key) bool { return !fits(k, alg) })
	if len(matches) == 0 {
		return nil, reject(ErrAlgorithm, "alg %q does not match key %q of issuer %s", alg.name, clip(p.kid), iss.name)
	}
	return matches, nil
}

// keysError classifies a key source failure. Context errors pass through
// unclassified: the caller went away, the token was not judged.
func (iss *issuer) keysError(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return fmt.Errorf("%w: issuer %s has no key set", ErrKeysUnavailable, iss.name)
	case errors.Is(err, ErrKeysUnavailable):
		return err
	case ctx.Err() != nil:
		return fmt.Errorf("keys for issuer %s: %w", iss.name, err)
	default:
		return fmt.Errorf("%w: issuer %s: %w", ErrKeysUnavailable, iss.name, err)
	}
}

// verifySignature checks raw against each candidate key and returns the kid
// of the first that verifies it.
func verifySignature(raw string, alg algorithm, keys []jwk.Key) (string, error) {
	compact := []byte(raw)
	for _, k := range keys {
		if _, err := jws.VerifyCompactFast(k, compact, alg.sig); err == nil {
			kid, _ := k.KeyID()
			return kid, nil
		}
	}
	if len(keys) == 1 {
		if kid, ok := keys[0].KeyID(); ok {
			return "", reject(ErrSignature, "signature does not verify with key %q", clip(kid))
		}
	}
	return "", reject(ErrSignature, "signature does not verify with any of %d %s keys", len(keys), alg.name)
}

// Usable reports whether k may verify signatures: an asymmetric key that
// jwx could parse, not restricted to another use or to other operations.
// Symmetric ("oct") keys are never usable: publishing one in a JWKS would
// hand the secret to everyone. Key sources filter with it; Verify checks
// again, whatever the source.
func Usable(k jwk.Key) bool {
	if k == nil || jwk.IsUnsupportedKey(k) {
		return false
	}
	switch k.KeyType().String() {
	case "RSA", "EC", "OKP":
	default:
		return false
	}
	if use, ok := k.KeyUsage(); ok && use != "" && use != "sig" {
		return false
	}
	if ops, ok := k.KeyOps(); ok && len(ops) > 0 && !slices.Contains(ops, jwk.KeyOpVerify) {
		return false
	}
	return true
}

// fits reports whether k's type, curve and own "alg" (if any) match alg.
func fits(k jwk.Key, alg algorithm) bool {
	if a, ok := k.Algorithm(); ok && a.String() != "" && a.String() != alg.name {
		return false
	}
	if k.KeyType().String() != alg.kty {
		return false
	}
	if alg.curve == "" {
		return true
	}
	c, ok := k.(interface {
		Crv() (jwa.EllipticCurveAlgorithm, bool)
	})
	if !ok {
		return false
	}
	crv, ok := c.Crv()
	return ok && crv.String() == alg.curve
}

func allKeys(set jwk.Set) func(yield func(jwk.Key) bool) {
	return func(yield func(jwk.Key) bool) {
		for i := range set.Len() {
			k, ok := set.Key(i)
			if ok && !yield(k) {
				return
			}
		}
	}
}

func keysWithID(set jwk.Set, kid string) []jwk.Key {
	var keys []jwk.Key
	for k := range allKeys(set) {
		if id, ok := k.KeyID(); ok && id == kid {
			keys = append(keys, k)
		}
	}
	return keys
}
