package token_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"

	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

// fuzzKeys returns issuer A's ECDSA and EdDSA keys for FuzzVerify. They
// are derived from fixed seeds so that every fuzzing process, and every
// corpus entry a process inherits, agrees on them. (Go 1.26 ignores the
// reader rsa.GenerateKey is given, so the RSA key cannot be; tokens signed
// by it verify only in the process that made them.)
func fuzzKeys(tb testing.TB) []*tokentest.Key {
	tb.Helper()
	ed := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize))
	return []*tokentest.Key{
		tokentest.NewKeyFrom(tb, ed, "ed-1", "EdDSA"),
		tokentest.FixedECKey(tb, 7, "ec-1", "ES256"),
		tokentest.FixedECKey(tb, 8, "ec384-1", "ES384"),
		tokentest.FixedECKey(tb, 9, "ec521-1", "ES512"),
	}
}

const (
	issFuzzOther = "https://other.fuzz.example"
	issFuzzHMAC  = "https://hmac.fuzz.example"
)

// FuzzVerify checks that Verify accepts only the genuine tokens the
// issuers' keys signed, never a forged, unsigned, re-signed or tampered
// one, and that every rejection is classified and short. Its verifier has
// an issuer with RSA, ECDSA and EdDSA keys that requires typ at+jwt,
// another with its own key, and an HMAC issuer; its seeds include the
// whole tokentest.Attacks catalog.
func FuzzVerify(f *testing.F) {
	keys := fuzzKeys(f)
	ec := keys[1]
	rsaKey := tokentest.NewRSAKey(f, "rsa-1")
	keysA := append([]*tokentest.Key{rsaKey}, keys...)
	other := tokentest.NewKeyFrom(f, ed25519.NewKeyFromSeed(bytes.Repeat([]byte{11}, ed25519.SeedSize)), "other-1", "EdDSA")
	hmacKey := tokentest.NewKeyFrom(f, []byte("fuzz-hmac-secret-fuzz-hmac-secret!"), "oct-1", "HS256")
	byIssuer := map[string][]*tokentest.Key{issA: keysA, issFuzzOther: {other}, issFuzzHMAC: {hmacKey}}
	v, err := token.NewVerifier([]token.Issuer{
		{Issuer: issA, Audiences: []string{audience}, ClockSkew: skew, RequireTyp: "at+jwt", Keys: &fakeSource{set: publicSet(f, keysA...)}},
		{Issuer: issFuzzOther, Audiences: []string{audience}, Keys: &fakeSource{set: publicSet(f, other)}},
		{Issuer: issFuzzHMAC, Audiences: []string{audience}, Algorithms: []string{"HS256"}, Keys: &fakeSource{set: setOf(f, hmacKey.Public)}},
	}, token.WithClock(func() time.Time { return now }))
	if err != nil {
		f.Fatal(err)
	}

	// genuine holds the signing inputs of the valid tokens the issuers'
	// keys produced. Claims are fixed (no random jti), so every process
	// computes the same set even though signatures differ between runs.
	genuine := make(map[string]bool)
	addGenuine := func(k *tokentest.Key, iss string, opts ...tokentest.MintOption) string {
		raw := tokentest.Mint(f, k, claims(iss, map[string]any{"jti": "fuzz", "scope": "a b", "scp": []string{"c"}}), opts...)
		genuine[raw[:strings.LastIndexByte(raw, '.')]] = true
		f.Add(raw)
		return raw
	}
	for _, k := range keysA {
		for _, opts := range [][]tokentest.MintOption{nil, {tokentest.WithoutKID()}} {
			addGenuine(k, issA, append(opts, tokentest.WithHeader("typ", "at+jwt"))...)
		}
	}
	addGenuine(keys[0], issA, tokentest.WithHeader("typ", "application/AT+JWT"))
	addGenuine(other, issFuzzOther)
	valid := addGenuine(hmacKey, issFuzzHMAC)

	for _, a := range tokentest.Attacks(f, tokentest.Target{
		Issuer: issA, Audience: audience, RSA: rsaKey, EC: keys[1:], RequireTyp: "at+jwt",
		Other: other, AttackerURL: "https://attacker.invalid", Now: now,
	}) {
		f.Add(a.Token)
	}
	parts := strings.Split(valid, ".")
	for _, raw := range []string{
		tokentest.Mint(f, tokentest.NewKeyFrom(f, []byte("secret-secret-secret-secret-1234"), "oct-1", "HS256"), claims(issFuzzHMAC, nil)),
		tokentest.Mint(f, ec, claims(issFuzzHMAC, nil), tokentest.WithHeader("alg", "HS256")),
		parts[0] + "." + b64(`{"iss":"`+issFuzzHMAC+`","aud":"`+audience+`","exp":9999999999}`) + "." + parts[2],
		parts[0] + ".x.y.z." + parts[2],
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
			input := raw[:strings.LastIndexByte(raw, '.')]
			if !genuine[input] {
				t.Fatalf("accepted a token that is not one of the genuine ones the issuers signed: %q", raw)
			}
			crossCheck(t, byIssuer[tok.Issuer], tok, input, raw[len(input)+1:])
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

// crossCheck verifies an accepted token's signature again with jwx's own
// implementation, using the key Verify says it used: a second opinion that
// does not share claimcheck's signature code.
func crossCheck(t *testing.T, keys []*tokentest.Key, tok *token.Token, input, sig string) {
	t.Helper()
	alg, _ := tok.Header["alg"].(string)
	rawSig, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		t.Fatalf("accepted signature is not base64url: %v", err)
	}
	for _, k := range keys {
		if k.KID != tok.KeyID || k.Alg != alg {
			continue
		}
		var pub any
		if err := jwk.Export(k.Public, &pub); err != nil {
			t.Fatal(err)
		}
		if err := jwsbb.Verify(pub, alg, []byte(input), rawSig); err != nil {
			t.Fatalf("accepted a %s token that jwx rejects with key %q: %v", alg, k.KID, err)
		}
		return
	}
	t.Fatalf("accepted a %s token of %s with key %q, which has no such key", alg, tok.Issuer, tok.KeyID)
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
