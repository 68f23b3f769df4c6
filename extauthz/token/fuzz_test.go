package token_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"
	"time"

	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

// fuzzKeys returns the issuer's keys for FuzzVerify. They are derived from
// fixed seeds so that every fuzzing process, and every corpus entry a
// process inherits, agrees on them.
func fuzzKeys(tb testing.TB) []*tokentest.Key {
	tb.Helper()
	ec, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), bytes.Repeat([]byte{7}, 32))
	if err != nil {
		tb.Fatal(err)
	}
	ed := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize))
	return []*tokentest.Key{
		tokentest.NewKeyFrom(tb, ec, "ec-1", "ES256"),
		tokentest.NewKeyFrom(tb, ed, "ed-1", "EdDSA"),
	}
}

// FuzzVerify checks that Verify accepts only tokens whose signed content
// (header and payload) the issuer's keys actually signed, and that every
// rejection is classified and short.
func FuzzVerify(f *testing.F) {
	keys := fuzzKeys(f)
	v, err := token.NewVerifier([]token.Issuer{{
		Issuer: issA, Audiences: []string{audience}, ClockSkew: skew,
		Keys: &fakeSource{set: publicSet(f, keys...)},
	}}, token.WithClock(func() time.Time { return now }))
	if err != nil {
		f.Fatal(err)
	}

	// signed holds the signing inputs the issuer's keys produced. Claims are
	// fixed (no random jti), so every process computes the same set even
	// though ECDSA signatures differ from run to run.
	signed := make(map[string]bool)
	fixed := claims(issA, map[string]any{"jti": "fuzz", "scope": "a b", "scp": []string{"c"}})
	for _, k := range keys {
		for _, opts := range [][]tokentest.MintOption{nil, {tokentest.WithoutKID()}} {
			raw := tokentest.Mint(f, k, fixed, opts...)
			signed[raw[:strings.LastIndexByte(raw, '.')]] = true
			f.Add(raw)
		}
	}

	attacker := tokentest.NewECKey(f, "ec-1")
	valid := tokentest.Mint(f, keys[0], fixed)
	parts := strings.Split(valid, ".")
	for _, raw := range []string{
		tokentest.Mint(f, keys[0], fixed, tokentest.WithHeader("alg", "none")),
		tokentest.Mint(f, keys[0], fixed, tokentest.WithHeader("crit", []string{"x"})),
		tokentest.Mint(f, keys[1], claims(issA, map[string]any{"exp": now.Add(-time.Hour).Unix()})),
		tokentest.Mint(f, attacker, fixed, tokentest.WithHeader("jwk", attacker.Public)),
		tokentest.Mint(f, tokentest.NewKeyFrom(f, []byte("secret-secret-secret-secret-1234"), "ec-1", "HS256"), fixed),
		parts[0] + "." + b64(`{"iss":"`+issA+`","aud":"`+audience+`","exp":9999999999}`) + "." + parts[2],
		parts[0] + "." + parts[1] + "." + parts[2] + "=",
		parts[0] + ".x.y.z." + parts[2],
		`{"protected":"` + parts[0] + `","payload":"` + parts[1] + `","signature":"` + parts[2] + `"}`,
		"..",
		"",
	} {
		f.Add(raw)
	}

	f.Fuzz(func(t *testing.T, raw string) {
		tok, err := v.Verify(t.Context(), raw)
		if err == nil {
			if tok == nil {
				t.Fatal("Verify returned neither a token nor an error")
			}
			if input := raw[:strings.LastIndexByte(raw, '.')]; !signed[input] {
				t.Fatalf("accepted a token whose content the issuer never signed: %q", raw)
			}
			return
		}
		if tok != nil {
			t.Fatalf("Verify returned a token with error %v", err)
		}
		if token.Reason(err) == "internal_error" {
			t.Fatalf("rejection wraps no sentinel: %v", err)
		}
		if msg := err.Error(); len(msg) > 512 || (len(raw) > 32 && strings.Contains(msg, raw)) {
			t.Fatalf("error message is too long or echoes the token: %q", msg)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	for _, k := range []*tokentest.Key{
		tokentest.NewKeyFrom(b, rsaKey, "rsa-1", "RS256"),
		tokentest.NewKeyFrom(b, rsaKey, "ps-1", "PS256"),
		tokentest.NewECKey(b, "ec-1"),
		tokentest.NewEdKey(b, "ed-1"),
	} {
		b.Run(k.Alg, func(b *testing.B) {
			v, err := token.NewVerifier([]token.Issuer{{
				Issuer: issA, Audiences: []string{audience},
				Keys: &fakeSource{set: publicSet(b, k)},
			}}, token.WithClock(func() time.Time { return now }))
			if err != nil {
				b.Fatal(err)
			}
			raw := tokentest.Mint(b, k, claims(issA, map[string]any{"scope": "orders.read orders.write"}))
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
