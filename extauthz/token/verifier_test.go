package token_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

const (
	issA     = "https://id.example.com"
	issB     = "https://other.example.com"
	issES    = "https://es-only.example.com"
	issRSA   = "https://rsa-only.example.com"
	issDown  = "https://down.example.com"
	audience = "api://claimcheck"
	skew     = 30 * time.Second
)

var now = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// fakeSource is a KeySource whose set can change on Refresh.
type fakeSource struct {
	mu        sync.Mutex
	set       jwk.Set
	refreshed jwk.Set // replaces set on Refresh when non-nil
	err       error
	refreshes int
}

func (f *fakeSource) Keys(context.Context) (jwk.Set, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.set, f.err
}

func (f *fakeSource) Refresh(context.Context) (jwk.Set, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refreshes++
	if f.refreshed != nil {
		f.set = f.refreshed
	}
	return f.set, f.err
}

func (f *fakeSource) Refreshes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refreshes
}

func setOf(t testing.TB, keys ...jwk.Key) jwk.Set {
	t.Helper()
	set := jwk.NewSet()
	for _, k := range keys {
		if err := set.AddKey(k); err != nil {
			t.Fatal(err)
		}
	}
	return set
}

func publicSet(t testing.TB, keys ...*tokentest.Key) jwk.Set {
	t.Helper()
	var pubs []jwk.Key
	for _, k := range keys {
		pubs = append(pubs, k.Public)
	}
	return setOf(t, pubs...)
}

// withJWK returns a copy of k.Public with field name set to value.
func withJWK(t testing.TB, k *tokentest.Key, name string, value any) jwk.Key {
	t.Helper()
	c, err := k.Public.Clone()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set(name, value); err != nil {
		t.Fatal(err)
	}
	return c
}

// withoutAlg returns a copy of k.Public without "alg", published as kid.
func withoutAlg(t testing.TB, k *tokentest.Key, kid string) jwk.Key {
	t.Helper()
	c := withJWK(t, k, jwk.KeyIDKey, kid)
	if err := c.Remove(jwk.AlgorithmKey); err != nil {
		t.Fatal(err)
	}
	return c
}

// fixture is a Verifier over several issuers and the keys that sign for them.
type fixture struct {
	v *token.Verifier

	rsa, ec, ed *tokentest.Key // issuer A
	encRSA      *tokentest.Key // issuer A, published with use "enc"
	pinnedRSA   *tokentest.Key // issuer A, published with alg RS256, signing RS384
	p384        *tokentest.Key // issuer A, P-384 key
	otherRSA    *tokentest.Key // issuer B, same kid as rsa
	attacker    *tokentest.Key // nobody's
	rsaOnly     *tokentest.Key // issuer RSA, no kid
	srcA        *fakeSource
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{
		rsa:      tokentest.NewRSAKey(t, "rsa-1"),
		ec:       tokentest.NewECKey(t, "ec-1"),
		ed:       tokentest.NewEdKey(t, "ed-1"),
		encRSA:   tokentest.NewRSAKey(t, "enc-1"),
		p384:     tokentest.NewKeyFrom(t, p384, "ec384-1", "ES384"),
		otherRSA: tokentest.NewRSAKey(t, "rsa-1"),
		attacker: tokentest.NewRSAKey(t, "rsa-1"),
		rsaOnly:  tokentest.NewRSAKey(t, ""),
	}
	f.pinnedRSA = tokentest.NewRSAKey(t, "pinned-1")
	hmacSecret := tokentest.NewKeyFrom(t, []byte("0123456789abcdef0123456789abcdef"), "oct-1", "HS256")

	f.srcA = &fakeSource{set: setOf(t,
		f.rsa.Public, f.ec.Public, f.ed.Public, f.p384.Public, f.pinnedRSA.Public,
		withJWK(t, f.encRSA, jwk.KeyUsageKey, "enc"),
		withoutAlg(t, f.rsa, "rsa-bare"),
		withoutAlg(t, f.p384, "ec384-bare"),
		withoutAlg(t, f.ec, "ec-bare"),
		hmacSecret.Public,
	)}
	issuers := []token.Issuer{
		{Issuer: issA, Audiences: []string{audience, "api://second"}, ClockSkew: skew, Keys: f.srcA},
		{Issuer: issB, Audiences: []string{audience}, Keys: &fakeSource{set: publicSet(t, f.otherRSA)}},
		{Issuer: issES, Audiences: []string{audience}, Algorithms: []string{"ES256"}, Keys: &fakeSource{set: publicSet(t, f.ec)}},
		{Issuer: issRSA, Audiences: []string{audience}, Keys: &fakeSource{set: publicSet(t, f.rsaOnly)}},
		{Issuer: issDown, Audiences: []string{audience}, Keys: &fakeSource{err: fmt.Errorf("keys for %s have not loaded yet: %w", issDown, token.ErrKeysUnavailable)}},
	}
	f.v, err = token.NewVerifier(issuers, token.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// claims returns valid claims for iss at the fixture's clock, changed by set
// (a nil value deletes the claim).
func claims(iss string, set map[string]any) map[string]any {
	c := tokentest.Claims(iss, audience, time.Hour)
	c["iat"] = now.Add(-time.Minute).Unix()
	c["exp"] = now.Add(time.Hour).Unix()
	for k, v := range set {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// compact assembles a token from raw JSON header and payload with a dummy
// signature, for inputs Mint cannot produce.
func compact(header, payload string) string {
	return b64(header) + "." + b64(payload) + "." + b64("signature")
}

// resign replaces the signature of raw with one by k over the same input.
func resign(t testing.TB, raw string, k *tokentest.Key) string {
	t.Helper()
	parts := strings.Split(raw, ".")
	var hdr, payload map[string]any
	decode(t, parts[0], &hdr)
	decode(t, parts[1], &payload)
	return tokentest.Mint(t, k, payload, headerOpts(hdr)...)
}

func headerOpts(h map[string]any) []tokentest.MintOption {
	var opts []tokentest.MintOption
	for name, v := range h {
		opts = append(opts, tokentest.WithHeader(name, v))
	}
	return opts
}

func decode(t testing.TB, seg string, v any) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyAccepts(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name       string
		raw        func() string
		wantKID    string
		wantScopes []string
		wantHeader map[string]any
		wantExpiry time.Time
	}{
		{
			name: "RS256 token",
			raw: func() string {
				return tokentest.Mint(t, f.rsa, claims(issA, map[string]any{"scope": "read write"}))
			},
			wantKID:    "rsa-1",
			wantScopes: []string{"read", "write"},
			wantHeader: map[string]any{"alg": "RS256", "kid": "rsa-1", "typ": "JWT"},
		},
		{
			name:       "ES256 token",
			raw:        func() string { return tokentest.Mint(t, f.ec, claims(issA, nil)) },
			wantKID:    "ec-1",
			wantScopes: []string{},
			wantHeader: map[string]any{"alg": "ES256", "kid": "ec-1", "typ": "JWT"},
		},
		{
			name:       "EdDSA token",
			raw:        func() string { return tokentest.Mint(t, f.ed, claims(issA, map[string]any{"scp": "a b"})) },
			wantKID:    "ed-1",
			wantScopes: []string{"a", "b"},
			wantHeader: map[string]any{"alg": "EdDSA", "kid": "ed-1", "typ": "JWT"},
		},
		{
			name:       "ES384 token on a P-384 key",
			raw:        func() string { return tokentest.Mint(t, f.p384, claims(issA, nil)) },
			wantKID:    "ec384-1",
			wantScopes: []string{},
		},
		{
			name: "header keeps only alg kid typ",
			raw: func() string {
				return tokentest.Mint(t, f.ec, claims(issA, nil), tokentest.WithHeader("cty", "JWT"), tokentest.WithHeader("x-custom", 1))
			},
			wantKID:    "ec-1",
			wantScopes: []string{},
			wantHeader: map[string]any{"alg": "ES256", "kid": "ec-1", "typ": "JWT"},
		},
		{
			name: "typ at+jwt kept",
			raw: func() string {
				return tokentest.Mint(t, f.ec, claims(issA, nil), tokentest.WithHeader("typ", "at+jwt"))
			},
			wantKID:    "ec-1",
			wantScopes: []string{},
			wantHeader: map[string]any{"alg": "ES256", "kid": "ec-1", "typ": "at+jwt"},
		},
		{
			name: "aud array containing an accepted audience",
			raw: func() string {
				return tokentest.Mint(t, f.ec, claims(issA, map[string]any{"aud": []string{"other", "api://second"}}))
			},
			wantKID:    "ec-1",
			wantScopes: []string{},
		},
		{
			name: "scp array",
			raw: func() string {
				return tokentest.Mint(t, f.ec, claims(issA, map[string]any{"scp": []string{"orders.read", "orders.write"}}))
			},
			wantKID:    "ec-1",
			wantScopes: []string{"orders.read", "orders.write"},
		},
		{
			name: "scope and scp merged without duplicates",
			raw: func() string {
				return tokentest.Mint(t, f.ec, claims(issA, map[string]any{"scope": " a  b a ", "scp": []string{"b", "c"}}))
			},
			wantKID:    "ec-1",
			wantScopes: []string{"a", "b", "c"},
		},
		{
			name:       "no kid with one matching key",
			raw:        func() string { return tokentest.Mint(t, f.rsaOnly, claims(issRSA, nil)) },
			wantScopes: []string{},
			wantHeader: map[string]any{"alg": "RS256", "typ": "JWT"},
		},
		{
			name:       "no kid picks the key that fits among several",
			raw:        func() string { return tokentest.Mint(t, f.ed, claims(issA, nil), tokentest.WithoutKID()) },
			wantKID:    "ed-1",
			wantScopes: []string{},
			wantHeader: map[string]any{"alg": "EdDSA", "typ": "JWT"},
		},
		{
			name: "exp just inside the skew",
			raw: func() string {
				return tokentest.Mint(t, f.ec, claims(issA, map[string]any{"exp": now.Add(-skew + time.Second).Unix()}))
			},
			wantKID:    "ec-1",
			wantScopes: []string{},
			wantExpiry: now.Add(-skew + time.Second),
		},
		{
			name: "fractional exp",
			raw: func() string {
				return tokentest.Mint(t, f.ec, claims(issA, map[string]any{"exp": float64(now.Unix()) + 0.5}))
			},
			wantKID:    "ec-1",
			wantScopes: []string{},
			wantExpiry: now.Add(500 * time.Millisecond),
		},
		{
			name: "nbf just inside the skew",
			raw: func() string {
				return tokentest.Mint(t, f.ec, claims(issA, map[string]any{"nbf": now.Add(skew).Unix()}))
			},
			wantKID:    "ec-1",
			wantScopes: []string{},
		},
		{
			name: "iat just inside the skew",
			raw: func() string {
				return tokentest.Mint(t, f.ec, claims(issA, map[string]any{"iat": now.Add(skew).Unix()}))
			},
			wantKID:    "ec-1",
			wantScopes: []string{},
		},
		{
			name: "attacker-controlled jku and x5u are ignored when the real key signed",
			raw: func() string {
				return tokentest.Mint(t, f.rsa, claims(issA, nil), tokentest.WithHeader("jku", "https://evil.test/jwks"))
			},
			wantKID:    "rsa-1",
			wantScopes: []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := tt.raw()
			tok, err := f.v.Verify(t.Context(), raw)
			if err != nil {
				t.Fatalf("Verify: %v (reason %s)", err, token.Reason(err))
			}
			parts := strings.Split(raw, ".")
			var want map[string]any
			dec := json.NewDecoder(strings.NewReader(mustB64(t, parts[1])))
			dec.UseNumber()
			if err := dec.Decode(&want); err != nil {
				t.Fatal(err)
			}
			if got, _ := json.Marshal(tok.Claims); string(got) != mustJSON(t, want) {
				t.Errorf("Claims = %s, want %s", got, mustJSON(t, want))
			}
			if _, ok := tok.Claims["exp"].(json.Number); !ok {
				t.Errorf("Claims[exp] is %T, want json.Number", tok.Claims["exp"])
			}
			if tok.Issuer != want["iss"] {
				t.Errorf("Issuer = %q, want %q", tok.Issuer, want["iss"])
			}
			if tok.KeyID != tt.wantKID {
				t.Errorf("KeyID = %q, want %q", tok.KeyID, tt.wantKID)
			}
			if tok.Scopes == nil || strings.Join(tok.Scopes, " ") != strings.Join(tt.wantScopes, " ") {
				t.Errorf("Scopes = %#v, want %#v", tok.Scopes, tt.wantScopes)
			}
			if tt.wantHeader != nil && mustJSON(t, tok.Header) != mustJSON(t, tt.wantHeader) {
				t.Errorf("Header = %v, want %v", tok.Header, tt.wantHeader)
			}
			wantExpiry := tt.wantExpiry
			if wantExpiry.IsZero() {
				wantExpiry = now.Add(time.Hour)
			}
			if !tok.Expiry.Equal(wantExpiry) {
				t.Errorf("Expiry = %s, want %s", tok.Expiry, wantExpiry)
			}
		})
	}
}

func mustB64(t testing.TB, s string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestVerifyRejects(t *testing.T) {
	f := newFixture(t)
	valid := tokentest.Mint(t, f.rsa, claims(issA, nil))
	parts := strings.Split(valid, ".")
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: mustPKIX(t, f.rsa)})

	tests := []struct {
		name string
		raw  func() string
		want error
	}{
		// token_too_large
		{"17 KiB of garbage is too large before any parsing", func() string { return strings.Repeat("!", 17<<10) }, token.ErrTooLarge},
		{"17 KiB validly signed token is too large", func() string {
			return tokentest.Mint(t, f.ec, claims(issA, map[string]any{"pad": strings.Repeat("x", 17<<10)}))
		}, token.ErrTooLarge},

		// token_malformed
		{"empty string", func() string { return "" }, token.ErrMalformed},
		{"two segments", func() string { return parts[0] + "." + parts[1] }, token.ErrMalformed},
		{"four segments", func() string { return valid + ".x" }, token.ErrMalformed},
		{"JWE-looking five segments", func() string { return parts[0] + ".a.b.c." + parts[2] }, token.ErrMalformed},
		{"JSON serialization", func() string {
			return fmt.Sprintf(`{"payload":%q,"protected":%q,"signature":%q}`, parts[1], parts[0], parts[2])
		}, token.ErrMalformed},
		{"padding in the payload", func() string { return parts[0] + "." + parts[1] + "=." + parts[2] }, token.ErrMalformed},
		{"padding in the signature", func() string { return parts[0] + "." + parts[1] + "." + parts[2] + "==" }, token.ErrMalformed},
		{"standard base64 alphabet", func() string {
			return parts[0] + "." + parts[1] + "." + strings.NewReplacer("-", "+", "_", "/").Replace(parts[2]) + "+/"
		}, token.ErrMalformed},
		{"line break inside a segment", func() string { return parts[0][:5] + "\n" + parts[0][5:] + "." + parts[1] + "." + parts[2] }, token.ErrMalformed},
		{"non-canonical trailing base64 bits", func() string {
			hdr := b64(`{"alg":"RS256"} `) // 16 bytes: the last character carries 4 zero bits
			return hdr[:len(hdr)-1] + "B." + parts[1] + "." + parts[2]
		}, token.ErrMalformed},
		{"empty header", func() string { return "." + parts[1] + "." + parts[2] }, token.ErrMalformed},
		{"empty payload", func() string { return parts[0] + ".." + parts[2] }, token.ErrMalformed},
		{"empty signature", func() string { return parts[0] + "." + parts[1] + "." }, token.ErrMalformed},
		{"header is a JSON array", func() string { return compact(`["alg","RS256"]`, `{}`) }, token.ErrMalformed},
		{"header is JSON null", func() string { return compact(`null`, `{}`) }, token.ErrMalformed},
		{"header has trailing data", func() string { return compact(`{"alg":"RS256"}{}`, `{}`) }, token.ErrMalformed},
		{"header is not JSON", func() string { return compact(`alg=RS256`, `{}`) }, token.ErrMalformed},
		{"payload is a JSON string", func() string { return compact(`{"alg":"RS256","kid":"rsa-1"}`, `"claims"`) }, token.ErrMalformed},
		{"header without alg", func() string { return compact(`{"kid":"rsa-1"}`, `{"iss":"`+issA+`"}`) }, token.ErrMalformed},
		{"alg is not a string", func() string { return compact(`{"alg":256}`, `{"iss":"`+issA+`"}`) }, token.ErrMalformed},
		{"kid is not a string", func() string { return compact(`{"alg":"RS256","kid":1}`, `{"iss":"`+issA+`"}`) }, token.ErrMalformed},

		// issuer_unknown
		{"unknown issuer", func() string { return tokentest.Mint(t, f.rsa, claims("https://evil.example.com", nil)) }, token.ErrIssuerUnknown},
		{"issuer differing only by a trailing slash", func() string { return tokentest.Mint(t, f.rsa, claims(issA+"/", nil)) }, token.ErrIssuerUnknown},
		{"no iss", func() string { return tokentest.Mint(t, f.rsa, claims(issA, map[string]any{"iss": nil})) }, token.ErrIssuerUnknown},
		{"iss is not a string", func() string { return tokentest.Mint(t, f.rsa, claims(issA, map[string]any{"iss": []string{issA}})) }, token.ErrIssuerUnknown},

		// algorithm_not_allowed
		{`alg "none"`, func() string { return tokentest.Mint(t, f.rsa, claims(issA, nil), tokentest.WithHeader("alg", "none")) }, token.ErrAlgorithm},
		{`alg "None"`, func() string { return tokentest.Mint(t, f.rsa, claims(issA, nil), tokentest.WithHeader("alg", "None")) }, token.ErrAlgorithm},
		{`alg "NONE"`, func() string { return tokentest.Mint(t, f.rsa, claims(issA, nil), tokentest.WithHeader("alg", "NONE")) }, token.ErrAlgorithm},
		{"HS256 keyed with the RSA public key (key confusion)", func() string {
			return tokentest.Mint(t, tokentest.NewKeyFrom(t, rsaPEM, "rsa-1", "HS256"), claims(issA, nil))
		}, token.ErrAlgorithm},
		{"algorithm outside the issuer's allowlist", func() string {
			return tokentest.Mint(t, f.rsa, claims(issES, nil))
		}, token.ErrAlgorithm},
		{"unknown algorithm", func() string { return tokentest.Mint(t, f.rsa, claims(issA, nil), tokentest.WithHeader("alg", "RS1")) }, token.ErrAlgorithm},
		{"ES256 header on an RSA key", func() string {
			return tokentest.Mint(t, f.rsa, claims(issA, nil), tokentest.WithHeader("alg", "ES256"))
		}, token.ErrAlgorithm},
		{"ES256 header on a P-384 key", func() string {
			return tokentest.Mint(t, f.p384, claims(issA, nil), tokentest.WithHeader("alg", "ES256"))
		}, token.ErrAlgorithm},
		{"ES256 header on an RSA key without JWK alg", func() string {
			return tokentest.Mint(t, f.rsa, claims(issA, nil), tokentest.WithHeader("alg", "ES256"), tokentest.WithHeader("kid", "rsa-bare"))
		}, token.ErrAlgorithm},
		{"RS256 header on an EC key without JWK alg", func() string {
			return tokentest.Mint(t, f.ec, claims(issA, nil), tokentest.WithHeader("alg", "RS256"), tokentest.WithHeader("kid", "ec-bare"))
		}, token.ErrAlgorithm},
		{"ES256 header on a P-384 key without JWK alg", func() string {
			return tokentest.Mint(t, f.p384, claims(issA, nil), tokentest.WithHeader("alg", "ES256"), tokentest.WithHeader("kid", "ec384-bare"))
		}, token.ErrAlgorithm},
		{"RS384 signature by a key whose JWK pins RS256", func() string {
			k := *f.pinnedRSA
			k.Alg = "RS384"
			return tokentest.Mint(t, &k, claims(issA, nil))
		}, token.ErrAlgorithm},

		// header_unsupported
		{"crit header", func() string {
			return tokentest.Mint(t, f.rsa, claims(issA, nil), tokentest.WithHeader("crit", []string{"exp"}), tokentest.WithHeader("exp", 1))
		}, token.ErrUnsupportedHeader},
		{"b64 header", func() string { return tokentest.Mint(t, f.rsa, claims(issA, nil), tokentest.WithHeader("b64", false)) }, token.ErrUnsupportedHeader},

		// key_unknown
		{"unknown kid", func() string { return tokentest.Mint(t, f.rsa, claims(issA, nil), tokentest.WithHeader("kid", "nope")) }, token.ErrKeyUnknown},
		{"no kid and no key for the algorithm", func() string { return tokentest.Mint(t, f.ec, claims(issRSA, nil), tokentest.WithoutKID()) }, token.ErrKeyUnknown},
		{"kid of an encryption key", func() string {
			return tokentest.Mint(t, f.encRSA, claims(issA, nil))
		}, token.ErrKeyUnknown},
		{"kid of a symmetric key in the set", func() string {
			return tokentest.Mint(t, f.rsa, claims(issA, nil), tokentest.WithHeader("kid", "oct-1"))
		}, token.ErrKeyUnknown},

		// signature_invalid
		{"payload changed after signing", func() string {
			return parts[0] + "." + b64(mustJSON(t, claims(issA, map[string]any{"sub": "admin"}))) + "." + parts[2]
		}, token.ErrSignature},
		{"signature of another token", func() string {
			other := tokentest.Mint(t, f.rsa, claims(issA, map[string]any{"sub": "other"}))
			return parts[0] + "." + parts[1] + "." + strings.Split(other, ".")[2]
		}, token.ErrSignature},
		{"signed by another issuer's key with the right kid", func() string { return tokentest.Mint(t, f.otherRSA, claims(issA, nil)) }, token.ErrSignature},
		{"jwk header carrying the attacker's key", func() string {
			return tokentest.Mint(t, f.attacker, claims(issA, nil), tokentest.WithHeader("jwk", f.attacker.Public))
		}, token.ErrSignature},
		{"jku header pointing at the attacker's JWKS", func() string {
			return tokentest.Mint(t, f.attacker, claims(issA, nil), tokentest.WithHeader("jku", "https://evil.test/jwks.json"))
		}, token.ErrSignature},
		{"x5c and x5u headers for the attacker's key", func() string {
			return tokentest.Mint(t, f.attacker, claims(issA, nil),
				tokentest.WithHeader("x5c", []string{base64.StdEncoding.EncodeToString(mustPKIX(t, f.attacker))}),
				tokentest.WithHeader("x5u", "https://evil.test/cert.pem"))
		}, token.ErrSignature},
		{"no kid, signed by an unknown key", func() string { return tokentest.Mint(t, f.attacker, claims(issA, nil), tokentest.WithoutKID()) }, token.ErrSignature},

		// token_expired
		{"exp at now minus skew", func() string {
			return tokentest.Mint(t, f.ec, claims(issA, map[string]any{"exp": now.Add(-skew).Unix()}))
		}, token.ErrExpired},
		{"exp just outside the skew", func() string {
			return tokentest.Mint(t, f.ec, claims(issA, map[string]any{"exp": now.Add(-skew - time.Second).Unix()}))
		}, token.ErrExpired},
		{"exp at the epoch", func() string { return tokentest.Mint(t, f.ec, claims(issA, map[string]any{"exp": 0})) }, token.ErrExpired},

		// exp_missing
		{"no exp", func() string { return tokentest.Mint(t, f.ec, claims(issA, map[string]any{"exp": nil})) }, token.ErrNoExpiry},

		// token_not_yet_valid
		{"nbf just outside the skew", func() string {
			return tokentest.Mint(t, f.ec, claims(issA, map[string]any{"nbf": now.Add(skew + time.Second).Unix()}))
		}, token.ErrNotYetValid},

		// iat_in_future
		{"iat just outside the skew", func() string {
			return tokentest.Mint(t, f.ec, claims(issA, map[string]any{"iat": now.Add(skew + time.Second).Unix()}))
		}, token.ErrIssuedInFuture},

		// audience_mismatch
		{"other audience", func() string { return tokentest.Mint(t, f.ec, claims(issA, map[string]any{"aud": "api://other"})) }, token.ErrAudience},
		{"aud array without an accepted audience", func() string {
			return tokentest.Mint(t, f.ec, claims(issA, map[string]any{"aud": []string{"a", "b"}}))
		}, token.ErrAudience},
		{"empty aud array", func() string { return tokentest.Mint(t, f.ec, claims(issA, map[string]any{"aud": []string{}})) }, token.ErrAudience},
		{"no aud", func() string { return tokentest.Mint(t, f.ec, claims(issA, map[string]any{"aud": nil})) }, token.ErrAudience},

		// claims_invalid
		{"exp is a string", func() string { return tokentest.Mint(t, f.ec, claims(issA, map[string]any{"exp": "2030-01-01"})) }, token.ErrClaims},
		{"exp beyond year 9999", func() string { return tokentest.Mint(t, f.ec, claims(issA, map[string]any{"exp": 1e300})) }, token.ErrClaims},
		{"nbf is a bool", func() string { return tokentest.Mint(t, f.ec, claims(issA, map[string]any{"nbf": true})) }, token.ErrClaims},
		{"iat is a string", func() string { return tokentest.Mint(t, f.ec, claims(issA, map[string]any{"iat": "1"})) }, token.ErrClaims},
		{"aud is a number", func() string { return tokentest.Mint(t, f.ec, claims(issA, map[string]any{"aud": 1})) }, token.ErrClaims},
		{"aud array with a number", func() string {
			return tokentest.Mint(t, f.ec, claims(issA, map[string]any{"aud": []any{audience, 1}}))
		}, token.ErrClaims},
		{"scope is an array", func() string { return tokentest.Mint(t, f.ec, claims(issA, map[string]any{"scope": []string{"a"}})) }, token.ErrClaims},
		{"scp is a number", func() string { return tokentest.Mint(t, f.ec, claims(issA, map[string]any{"scp": 1})) }, token.ErrClaims},
		{"scp is null", func() string {
			return compactSigned(t, f.ec, `{"iss":"`+issA+`","aud":"`+audience+`","exp":1e10,"scp":null}`)
		}, token.ErrClaims},
		{"scp array with an object", func() string {
			return tokentest.Mint(t, f.ec, claims(issA, map[string]any{"scp": []any{"a", map[string]any{}}}))
		}, token.ErrClaims},
		{"sub is a number", func() string { return tokentest.Mint(t, f.ec, claims(issA, map[string]any{"sub": 42})) }, token.ErrClaims},
		{"jti is an object", func() string { return tokentest.Mint(t, f.ec, claims(issA, map[string]any{"jti": map[string]any{}})) }, token.ErrClaims},

		// issuer_keys_unavailable
		{"issuer keys never loaded", func() string { return tokentest.Mint(t, f.rsa, claims(issDown, nil)) }, token.ErrKeysUnavailable},
	}
	sentinels := []error{
		token.ErrTooLarge, token.ErrMalformed, token.ErrIssuerUnknown, token.ErrAlgorithm,
		token.ErrUnsupportedHeader, token.ErrKeyUnknown, token.ErrSignature, token.ErrExpired,
		token.ErrNoExpiry, token.ErrNotYetValid, token.ErrIssuedInFuture, token.ErrAudience,
		token.ErrClaims, token.ErrKeysUnavailable,
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := tt.raw()
			tok, err := f.v.Verify(t.Context(), raw)
			if err == nil {
				t.Fatalf("Verify accepted the token: %+v", tok)
			}
			if tok != nil {
				t.Errorf("Verify returned a token with error %v", err)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify error = %v (reason %s), want %v", err, token.Reason(err), tt.want)
			}
			wrapped := 0
			for _, s := range sentinels {
				if errors.Is(err, s) {
					wrapped++
				}
			}
			if wrapped != 1 {
				t.Errorf("error %q wraps %d sentinels, want exactly 1", err, wrapped)
			}
			if len(raw) > 32 && strings.Contains(err.Error(), raw) {
				t.Errorf("error message echoes the token: %q", err)
			}
		})
	}
}

func compactSigned(t testing.TB, k *tokentest.Key, payload string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(payload), &m); err != nil {
		t.Fatal(err)
	}
	return tokentest.Mint(t, k, m)
}

func mustPKIX(t testing.TB, k *tokentest.Key) []byte {
	t.Helper()
	var raw any
	if err := jwk.Export(k.Public, &raw); err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestReasonCodes(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{token.ErrTooLarge, "token_too_large"},
		{token.ErrMalformed, "token_malformed"},
		{token.ErrIssuerUnknown, "issuer_unknown"},
		{token.ErrAlgorithm, "algorithm_not_allowed"},
		{token.ErrUnsupportedHeader, "header_unsupported"},
		{token.ErrKeyUnknown, "key_unknown"},
		{token.ErrSignature, "signature_invalid"},
		{token.ErrExpired, "token_expired"},
		{token.ErrNoExpiry, "exp_missing"},
		{token.ErrNotYetValid, "token_not_yet_valid"},
		{token.ErrIssuedInFuture, "iat_in_future"},
		{token.ErrAudience, "audience_mismatch"},
		{token.ErrClaims, "claims_invalid"},
		{token.ErrKeysUnavailable, "issuer_keys_unavailable"},
		{errors.New("boom"), "internal_error"},
		{context.Canceled, "internal_error"},
		{nil, "internal_error"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := token.Reason(tt.err); got != tt.want {
				t.Errorf("Reason(%v) = %q, want %q", tt.err, got, tt.want)
			}
			if !slices.Contains(token.Reasons(), tt.want) {
				t.Errorf("Reasons() = %v, lacks %q", token.Reasons(), tt.want)
			}
			if tt.err == nil {
				return
			}
			if got := token.Reason(fmt.Errorf("context: %w", tt.err)); got != tt.want {
				t.Errorf("Reason(wrapped %v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

func TestVerifyRejectionMessages(t *testing.T) {
	f := newFixture(t)
	longKID := strings.Repeat("k", 500)
	tests := []struct {
		name string
		raw  string
		want string
	}{
		{"expiry time", tokentest.Mint(t, f.ec, claims(issA, map[string]any{"exp": now.Add(-time.Hour).Unix()})), "token expired at 2026-11-23T09:00:00Z"},
		{"disallowed alg and issuer", tokentest.Mint(t, f.ec, claims(issES, nil), tokentest.WithHeader("alg", "HS256")), `alg "HS256" is not allowed for issuer ` + issES},
		{"unknown kid", tokentest.Mint(t, f.ec, claims(issA, nil), tokentest.WithHeader("kid", "abc")), `no key with kid "abc" for issuer ` + issA},
		{"long kid is clipped", tokentest.Mint(t, f.ec, claims(issA, nil), tokentest.WithHeader("kid", longKID)), `no key with kid "` + longKID[:64] + `…" for issuer ` + issA},
		{"JWE", "a.b.c.d.e", "token has 5 segments; encrypted tokens (JWE) are not supported"},
		{"size", strings.Repeat("a", 16<<10+1), "token is 16385 bytes, the limit is 16384"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.v.Verify(t.Context(), tt.raw)
			if err == nil || err.Error() != tt.want {
				t.Errorf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestVerifyRefreshesOnceForUnknownKID(t *testing.T) {
	old, rotated := tokentest.NewECKey(t, "old"), tokentest.NewECKey(t, "rotated")
	tests := []struct {
		name       string
		afterFetch jwk.Set
		signer     *tokentest.Key
		wantErr    error
	}{
		{"key appearing after the refresh is accepted", publicSet(t, old, rotated), rotated, nil},
		{"key still missing after the refresh", publicSet(t, old), rotated, token.ErrKeyUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &fakeSource{set: publicSet(t, old), refreshed: tt.afterFetch}
			v, err := token.NewVerifier([]token.Issuer{{Issuer: issA, Audiences: []string{audience}, Keys: src}},
				token.WithClock(func() time.Time { return now }))
			if err != nil {
				t.Fatal(err)
			}
			tok, err := v.Verify(t.Context(), tokentest.Mint(t, tt.signer, claims(issA, nil)))
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Verify error = %v, want %v", err, tt.wantErr)
			}
			if err == nil && tok.KeyID != "rotated" {
				t.Errorf("KeyID = %q, want rotated", tok.KeyID)
			}
			if got := src.Refreshes(); got != 1 {
				t.Errorf("Refresh called %d times, want 1", got)
			}
		})
	}
}

func TestVerifyDoesNotRefreshForKnownKIDOrMissingKID(t *testing.T) {
	f := newFixture(t)
	for _, raw := range []string{
		tokentest.Mint(t, f.ec, claims(issA, nil)),
		tokentest.Mint(t, f.attacker, claims(issA, nil)),
		tokentest.Mint(t, f.attacker, claims(issA, nil), tokentest.WithoutKID()),
		tokentest.Mint(t, f.encRSA, claims(issA, nil)),
	} {
		f.v.Verify(t.Context(), raw)
	}
	if got := f.srcA.Refreshes(); got != 0 {
		t.Errorf("Refresh called %d times, want 0", got)
	}
}

func TestVerifyKeySourceErrors(t *testing.T) {
	k := tokentest.NewECKey(t, "k")
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name       string
		ctx        context.Context
		src        *fakeSource
		wantReason string
	}{
		{"ErrKeysUnavailable passes through", t.Context(), &fakeSource{err: fmt.Errorf("never loaded: %w", token.ErrKeysUnavailable)}, "issuer_keys_unavailable"},
		{"other source errors mean unavailable", t.Context(), &fakeSource{err: errors.New("disk on fire")}, "issuer_keys_unavailable"},
		{"nil set means unavailable", t.Context(), &fakeSource{}, "issuer_keys_unavailable"},
		{"canceled caller is not a verdict", canceled, &fakeSource{err: context.Canceled}, "internal_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := token.NewVerifier([]token.Issuer{{Issuer: issA, Audiences: []string{audience}, Keys: tt.src}},
				token.WithClock(func() time.Time { return now }))
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(tt.ctx, tokentest.Mint(t, k, claims(issA, nil)))
			if got := token.Reason(err); got != tt.wantReason {
				t.Errorf("Reason = %s (%v), want %s", got, err, tt.wantReason)
			}
			if tt.src.err != nil && !errors.Is(err, tt.src.err) {
				t.Errorf("error %v does not wrap the source error %v", err, tt.src.err)
			}
		})
	}
}

func TestWithMaxSize(t *testing.T) {
	k := tokentest.NewEdKey(t, "k")
	raw := tokentest.Mint(t, k, claims(issA, nil))
	tests := []struct {
		name   string
		max    int
		reason string
	}{
		{"limit one byte short rejects", len(raw) - 1, "token_too_large"},
		{"limit equal to the size accepts", len(raw), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := token.NewVerifier([]token.Issuer{{Issuer: issA, Audiences: []string{audience}, Keys: &fakeSource{set: publicSet(t, k)}}},
				token.WithClock(func() time.Time { return now }), token.WithMaxSize(tt.max))
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(t.Context(), raw)
			if tt.reason == "" && err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if tt.reason != "" && token.Reason(err) != tt.reason {
				t.Fatalf("Reason = %s (%v), want %s", token.Reason(err), err, tt.reason)
			}
		})
	}
}

func TestNewVerifierRejectsBadConfig(t *testing.T) {
	src := &fakeSource{}
	good := token.Issuer{Issuer: issA, Audiences: []string{audience}, Keys: src}
	with := func(change func(*token.Issuer)) token.Issuer {
		iss := good
		change(&iss)
		return iss
	}
	tests := []struct {
		name    string
		issuers []token.Issuer
		opts    []token.Option
	}{
		{"no issuers", nil, nil},
		{"duplicate issuer", []token.Issuer{good, good}, nil},
		{"empty issuer name", []token.Issuer{with(func(i *token.Issuer) { i.Issuer = "" })}, nil},
		{"no audiences", []token.Issuer{with(func(i *token.Issuer) { i.Audiences = nil })}, nil},
		{"empty audience", []token.Issuer{with(func(i *token.Issuer) { i.Audiences = []string{""} })}, nil},
		{"HMAC mixed with an asymmetric algorithm", []token.Issuer{with(func(i *token.Issuer) { i.Algorithms = []string{"RS256", "HS256"} })}, nil},
		{"none algorithm", []token.Issuer{with(func(i *token.Issuer) { i.Algorithms = []string{"none"} })}, nil},
		{"unknown algorithm", []token.Issuer{with(func(i *token.Issuer) { i.Algorithms = []string{"RS1"} })}, nil},
		{"algorithm in the wrong case", []token.Issuer{with(func(i *token.Issuer) { i.Algorithms = []string{"rs256"} })}, nil},
		{"nil key source", []token.Issuer{with(func(i *token.Issuer) { i.Keys = nil })}, nil},
		{"negative clock skew", []token.Issuer{with(func(i *token.Issuer) { i.ClockSkew = -time.Second })}, nil},
		{"negative MaxKidlessKeys", []token.Issuer{with(func(i *token.Issuer) { i.MaxKidlessKeys = -1 })}, nil},
		{"zero max size", []token.Issuer{good}, []token.Option{token.WithMaxSize(0)}},
		{"nil clock", []token.Issuer{good}, []token.Option{token.WithClock(nil)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if v, err := token.NewVerifier(tt.issuers, tt.opts...); err == nil {
				t.Errorf("NewVerifier succeeded: %+v", v)
			}
		})
	}
	if _, err := token.NewVerifier([]token.Issuer{good, with(func(i *token.Issuer) { i.Issuer = issB; i.Algorithms = []string{"ES256", "EdDSA"} })}); err != nil {
		t.Errorf("NewVerifier with a valid config: %v", err)
	}
}

func TestVerifierDoesNotShareConfigSlices(t *testing.T) {
	k := tokentest.NewEdKey(t, "k")
	auds := []string{audience}
	algs := []string{"EdDSA"}
	v, err := token.NewVerifier([]token.Issuer{{Issuer: issA, Audiences: auds, Algorithms: algs, Keys: &fakeSource{set: publicSet(t, k)}}},
		token.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	auds[0], algs[0] = "changed", "RS256"
	if _, err := v.Verify(t.Context(), tokentest.Mint(t, k, claims(issA, nil))); err != nil {
		t.Errorf("Verify after the caller changed its slices: %v", err)
	}
}

func TestIssuerOfNamesTheConfiguredIssuerOfARejectedToken(t *testing.T) {
	f := newFixture(t)
	valid := tokentest.Mint(t, f.rsa, claims(issA, nil))
	parts := strings.Split(valid, ".")
	tests := []struct {
		name string
		raw  string
		want string
	}{
		{"malformed: no issuer read yet", "a.b", ""},
		{"unknown issuer", tokentest.Mint(t, f.rsa, claims("https://evil.example.com", nil)), ""},
		{"bad signature", parts[0] + "." + parts[1] + "." + parts[0], issA},
		{"expired", tokentest.Mint(t, f.rsa, claims(issA, map[string]any{"exp": now.Add(-time.Hour).Unix()})), issA},
		{"wrong audience", tokentest.Mint(t, f.rsa, claims(issA, map[string]any{"aud": "other"})), issA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.v.Verify(t.Context(), tt.raw)
			if err == nil {
				t.Fatal("Verify accepted the token")
			}
			if got := token.IssuerOf(err); got != tt.want {
				t.Errorf("IssuerOf(%v) = %q, want %q", err, got, tt.want)
			}
			if got := token.IssuerOf(fmt.Errorf("wrapped: %w", err)); got != tt.want {
				t.Errorf("IssuerOf(wrapped) = %q, want %q", got, tt.want)
			}
		})
	}
	if got := token.IssuerOf(nil); got != "" {
		t.Errorf("IssuerOf(nil) = %q", got)
	}
}
