// Package tokentest mints signed JWTs and serves JWKS documents for tests.
//
// It is the one place tests in this module get keys, tokens and key
// servers from. Everything here fails the test through testing.TB instead of
// returning errors, and none of it is meant for production code.
package tokentest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"
)

// Key is a signing key pair for minting tokens.
type Key struct {
	// Private signs tokens. For HMAC keys it is the shared secret.
	Private jwk.Key
	// Public is the key as an issuer publishes it in its JWKS: it carries
	// "kid" (unless KID is empty), "alg" and "use":"sig".
	Public jwk.Key
	// KID is the key ID; Mint puts it in the "kid" header unless it is empty.
	KID string
	// Alg is the JWS algorithm Mint signs with, e.g. "RS256".
	Alg string
}

// NewRSAKey returns a 2048-bit RSA key for RS256.
func NewRSAKey(tb testing.TB, kid string) *Key {
	tb.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatalf("tokentest: generate RSA key: %v", err)
	}
	return newKey(tb, priv, kid, "RS256")
}

// NewECKey returns a P-256 ECDSA key for ES256.
func NewECKey(tb testing.TB, kid string) *Key {
	tb.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("tokentest: generate EC key: %v", err)
	}
	return newKey(tb, priv, kid, "ES256")
}

// NewEdKey returns an Ed25519 key for EdDSA.
func NewEdKey(tb testing.TB, kid string) *Key {
	tb.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatalf("tokentest: generate Ed25519 key: %v", err)
	}
	return newKey(tb, priv, kid, "EdDSA")
}

// NewKeyFrom wraps an existing private key for signing with alg: an
// *rsa.PrivateKey, *ecdsa.PrivateKey or ed25519.PrivateKey, or a []byte
// secret for HMAC algorithms, whose Public field is then the same secret
// as an "oct" JWK. Tests use it for curves and algorithms the New*Key
// helpers do not cover, and to forge tokens, e.g. an HS256 token keyed with
// an RSA public key's bytes.
func NewKeyFrom(tb testing.TB, priv any, kid, alg string) *Key {
	tb.Helper()
	return newKey(tb, priv, kid, alg)
}

func newKey(tb testing.TB, raw any, kid, alg string) *Key {
	tb.Helper()
	priv, err := jwk.Import(raw)
	if err != nil {
		tb.Fatalf("tokentest: import %T: %v", raw, err)
	}
	pub := priv
	if _, symmetric := raw.([]byte); !symmetric {
		if pub, err = priv.PublicKey(); err != nil {
			tb.Fatalf("tokentest: public key of %T: %v", raw, err)
		}
	}
	for _, k := range []jwk.Key{priv, pub} {
		set(tb, k, jwk.AlgorithmKey, alg)
		set(tb, k, jwk.KeyUsageKey, "sig")
		if kid != "" {
			set(tb, k, jwk.KeyIDKey, kid)
		}
	}
	return &Key{Private: priv, Public: pub, KID: kid, Alg: alg}
}

func set(tb testing.TB, k jwk.Key, name string, value any) {
	tb.Helper()
	if err := k.Set(name, value); err != nil {
		tb.Fatalf("tokentest: set JWK %q: %v", name, err)
	}
}

// JWKS returns the JSON JWK Set of the keys' Public halves.
func JWKS(tb testing.TB, keys ...*Key) []byte {
	tb.Helper()
	b, err := json.Marshal(KeySet(tb, keys...))
	if err != nil {
		tb.Fatalf("tokentest: marshal JWKS: %v", err)
	}
	return b
}

// WriteJWKSFile writes the public JWKS of keys to a new file in dir and
// returns its path.
func WriteJWKSFile(tb testing.TB, dir string, keys ...*Key) string {
	tb.Helper()
	f, err := os.CreateTemp(dir, "jwks-*.json")
	if err != nil {
		tb.Fatalf("tokentest: %v", err)
	}
	if _, err := f.Write(JWKS(tb, keys...)); err != nil {
		f.Close()
		tb.Fatalf("tokentest: write %s: %v", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		tb.Fatalf("tokentest: close %s: %v", f.Name(), err)
	}
	return f.Name()
}

// Claims returns typical access-token claims: iss, aud, sub, client_id, a
// random jti, iat now and exp ttl from now. Times are Unix seconds.
func Claims(iss string, aud any, ttl time.Duration) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss":       iss,
		"aud":       aud,
		"sub":       "tokentest-subject",
		"client_id": "tokentest-client",
		"jti":       rand.Text(),
		"iat":       now.Unix(),
		"exp":       now.Add(ttl).Unix(),
	}
}

// MintOption changes how Mint builds a token.
type MintOption func(*mintConfig)

type mintConfig struct {
	header map[string]any
	omit   []string
}

// WithHeader sets the protected header field name to value, replacing the
// default for "alg", "kid" or "typ". Overriding "alg" changes only what the
// header claims: the signature is still made with the Key's own Alg.
func WithHeader(name string, value any) MintOption {
	return func(c *mintConfig) { c.header[name] = value }
}

// WithoutKID leaves "kid" out of the header.
func WithoutKID() MintOption { return WithoutHeader("kid") }

// WithoutHeader leaves the field name out of the header, e.g. "typ".
func WithoutHeader(name string) MintOption {
	return func(c *mintConfig) { c.omit = append(c.omit, name) }
}

// Mint returns a compact JWS over the JSON encoding of claims, signed by k
// with k.Alg. The header is {"alg": k.Alg, "kid": k.KID, "typ": "JWT"}
// as changed by opts; "kid" is left out when k.KID is empty.
func Mint(tb testing.TB, k *Key, claims map[string]any, opts ...MintOption) string {
	tb.Helper()
	c := mintConfig{header: map[string]any{"alg": k.Alg, "typ": "JWT"}}
	if k.KID != "" {
		c.header["kid"] = k.KID
	}
	for _, o := range opts {
		o(&c)
	}
	for _, name := range c.omit {
		delete(c.header, name)
	}
	header, err := json.Marshal(c.header)
	if err != nil {
		tb.Fatalf("tokentest: marshal header: %v", err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		tb.Fatalf("tokentest: marshal claims: %v", err)
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	sig, err := jwsbb.Sign(k.Private, k.Alg, []byte(input), nil)
	if err != nil {
		tb.Fatalf("tokentest: sign with %s key %q: %v", k.Alg, k.KID, err)
	}
	return input + "." + enc.EncodeToString(sig)
}
