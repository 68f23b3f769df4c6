package token_test

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"

	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

// signRaw returns a compact JWS of payload, any bytes, signed by k, with
// header {"alg": k.Alg, "kid": k.KID} changed by set (a nil value deletes).
func signRaw(t testing.TB, k *tokentest.Key, payload []byte, set map[string]any) string {
	t.Helper()
	header := map[string]any{"alg": k.Alg}
	if k.KID != "" {
		header["kid"] = k.KID
	}
	for name, v := range set {
		if v == nil {
			delete(header, name)
			continue
		}
		header[name] = v
	}
	input := b64(mustJSON(t, header)) + "." + base64.RawURLEncoding.EncodeToString(payload)
	sig, err := jwsbb.Sign(k.Private, k.Alg, []byte(input), nil)
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestVerifySignature(t *testing.T) {
	ec, rsaKey, ed := tokentest.NewECKey(t, "ec-1"), tokentest.NewRSAKey(t, "rsa-1"), tokentest.NewEdKey(t, "")
	set := publicSet(t, ec, rsaKey, ed)
	attacker := tokentest.NewECKey(t, "ec-1")
	hmacKey := tokentest.NewKeyFrom(t, bytes.Repeat([]byte("k"), 32), "ec-1", "HS256")
	binary := []byte{0, 1, 2, 0xff, '.', '"'}
	valid := signRaw(t, ec, []byte("ab"), nil)
	parts := strings.Split(valid, ".")
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	paddedS := slices.Concat(sig[:32], []byte{0}, sig[32:]) // r || 0x00 || s: the same r and s, in 65 bytes

	tests := []struct {
		name        string
		raw         string
		set         jwk.Set
		algs        []string
		want        error
		wantPayload []byte
		wantKID     string
	}{
		{"binary payload", signRaw(t, ec, binary, nil), set, nil, nil, binary, "ec-1"},
		{"empty payload", signRaw(t, rsaKey, nil, nil), set, nil, nil, []byte{}, "rsa-1"},
		{"JSON payload", signRaw(t, ed, []byte(`{"a":1}`), nil), set, nil, nil, []byte(`{"a":1}`), ""},
		{"allowlisted algorithm", valid, set, []string{"ES256"}, nil, []byte("ab"), "ec-1"},
		{"padding", parts[0] + "." + parts[1] + "=." + parts[2], set, nil, token.ErrMalformed, nil, ""},
		{"non-canonical trailing bits in the payload", parts[0] + ".YWJ." + parts[2], set, nil, token.ErrMalformed, nil, ""},
		{"header is not an object", b64(`"ES256"`) + "." + parts[1] + "." + parts[2], set, nil, token.ErrMalformed, nil, ""},
		{"empty signature", parts[0] + "." + parts[1] + ".", set, nil, token.ErrMalformed, nil, ""},
		{"ES256 signature with s zero-padded", parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(paddedS), set, nil, token.ErrSignature, nil, ""},
		{"crit header", signRaw(t, ec, []byte("ab"), map[string]any{"crit": []string{"b64"}}), set, nil, token.ErrUnsupportedHeader, nil, ""},
		{"b64 header", signRaw(t, ec, []byte("ab"), map[string]any{"b64": true}), set, nil, token.ErrUnsupportedHeader, nil, ""},
		{"HMAC under the default allowlist", signRaw(t, hmacKey, []byte("ab"), nil), set, nil, token.ErrAlgorithm, nil, ""},
		{"algorithm outside the allowlist", signRaw(t, rsaKey, []byte("ab"), nil), set, []string{"ES256", "EdDSA"}, token.ErrAlgorithm, nil, ""},
		{"unknown kid", signRaw(t, ec, []byte("ab"), map[string]any{"kid": "nope"}), set, nil, token.ErrKeyUnknown, nil, ""},
		{"another key with the same kid", signRaw(t, attacker, []byte("ab"), nil), set, nil, token.ErrSignature, nil, ""},
		{"no key set", valid, nil, nil, token.ErrKeysUnavailable, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload, kid, err := token.VerifySignature(tt.raw, tt.set, tt.algs)
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("error = %v (reason %s), want %v", err, token.Reason(err), tt.want)
				}
				if payload != nil || kid != "" {
					t.Errorf("rejection returned payload %q, kid %q", payload, kid)
				}
				return
			}
			if err != nil {
				t.Fatalf("VerifySignature: %v", err)
			}
			if !bytes.Equal(payload, tt.wantPayload) || kid != tt.wantKID {
				t.Errorf("got payload %q, kid %q; want %q, %q", payload, kid, tt.wantPayload, tt.wantKID)
			}
		})
	}
}

func TestVerifySignatureRejectsBadAllowlists(t *testing.T) {
	k := tokentest.NewECKey(t, "ec-1")
	raw := signRaw(t, k, []byte("ab"), nil)
	for _, algs := range [][]string{{"none"}, {"ES256", "HS256"}, {"HS512", "EdDSA"}, {"es256"}, {"HS1"}} {
		t.Run(strings.Join(algs, ","), func(t *testing.T) {
			_, _, err := token.VerifySignature(raw, publicSet(t, k), algs)
			if err == nil {
				t.Fatal("VerifySignature accepted the allowlist")
			}
			if got := token.Reason(err); got != "internal_error" {
				t.Errorf("a bad allowlist is classified as %s, a verdict on the token: %v", got, err)
			}
		})
	}
}

// signPSS returns a compact JWS over claims signed with RSASSA-PSS under
// alg with the given salt length.
func signPSS(t testing.TB, priv *rsa.PrivateKey, alg string, hash crypto.Hash, saltLen int, claims map[string]any) string {
	t.Helper()
	input := b64(mustJSON(t, map[string]any{"alg": alg, "kid": "ps"})) + "." + b64(mustJSON(t, claims))
	h := hash.New()
	h.Write([]byte(input))
	sig, err := rsa.SignPSS(rand.Reader, priv, hash, h.Sum(nil), &rsa.PSSOptions{SaltLength: saltLen})
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestVerifyPSSSaltLength(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub := tokentest.NewKeyFrom(t, priv, "ps", "PS256")
	if err := pub.Public.Remove(jwk.AlgorithmKey); err != nil {
		t.Fatal(err)
	}
	v, err := token.NewVerifier([]token.Issuer{{Issuer: issA, Audiences: []string{audience}, Keys: &fakeSource{set: publicSet(t, pub)}}},
		token.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []struct {
		name string
		hash crypto.Hash
	}{{"PS256", crypto.SHA256}, {"PS384", crypto.SHA384}, {"PS512", crypto.SHA512}} {
		tests := []struct {
			name    string
			saltLen int
			want    error
		}{
			{"salt as long as the hash", a.hash.Size(), nil},
			{"no salt", 0, token.ErrSignature},
			{"salt one byte short", a.hash.Size() - 1, token.ErrSignature},
			{"salt one byte long", a.hash.Size() + 1, token.ErrSignature},
			{"longest possible salt", rsa.PSSSaltLengthAuto, token.ErrSignature},
		}
		for _, tt := range tests {
			t.Run(a.name+" "+tt.name, func(t *testing.T) {
				_, err := v.Verify(t.Context(), signPSS(t, priv, a.name, a.hash, tt.saltLen, claims(issA, nil)))
				switch {
				case tt.want == nil && err != nil:
					t.Fatalf("Verify: %v", err)
				case tt.want != nil && !errors.Is(err, tt.want):
					t.Fatalf("Verify error = %v, want %v", err, tt.want)
				}
			})
		}
	}
}

// shortRSA is an RSA public key whose modulus reads as n: jwx itself
// refuses to make keys under 2048 bits, so this checks claimcheck's own
// bound.
type shortRSA struct {
	jwk.RSAPublicKey
	n []byte
}

func (k shortRSA) N() ([]byte, bool) { return k.n, true }

// rocaModulus returns 65537^200, which has the ROCA fingerprint: its
// residue mod every prime is a power of 65537.
func rocaModulus() *big.Int {
	return new(big.Int).Exp(big.NewInt(65537), big.NewInt(200), nil)
}

func TestCheckKey(t *testing.T) {
	rsaKey, ec, ed := tokentest.NewRSAKey(t, "r"), tokentest.NewECKey(t, "e"), tokentest.NewEdKey(t, "d")
	roca, err := jwk.Import(&rsa.PublicKey{N: rocaModulus(), E: 65537})
	if err != nil {
		t.Fatal(err)
	}
	unparsable, err := jwk.Parse([]byte(`{"keys":[{"kty":"RSA","kid":"bad","n":"AQAB","e":"AQAB"}]}`), jwk.WithStrictKeySetParsing(false))
	if err != nil {
		t.Fatal(err)
	}
	bad, _ := unparsable.Key(0)
	short := make([]byte, 128)
	short[0] = 0xc0

	tests := []struct {
		name    string
		key     jwk.Key
		wantErr string // empty: usable
	}{
		{"RSA key", rsaKey.Public, ""},
		{"EC key", ec.Public, ""},
		{"Ed25519 key", ed.Public, ""},
		{"RSA private key", rsaKey.Private, ""},
		{"key_ops with verify", withJWK(t, ec, jwk.KeyOpsKey, []string{"sign", "verify"}), ""},
		{"use enc", withJWK(t, rsaKey, jwk.KeyUsageKey, "enc"), `use is "enc"`},
		{"key_ops without verify", withJWK(t, ec, jwk.KeyOpsKey, []string{"encrypt"}), `key_ops lack "verify"`},
		{"symmetric key", tokentest.NewKeyFrom(t, bytes.Repeat([]byte("k"), 64), "s", "HS256").Public, "symmetric key"},
		{"1024-bit RSA modulus", shortRSA{rsaKey.Public.(jwk.RSAPublicKey), short}, "RSA modulus of 1024 bits"},
		{"RSA modulus with the ROCA fingerprint", roca, "ROCA"},
		{"entry jwx could not parse", bad, "jwx could not parse it"},
		{"nil", nil, "no key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := token.CheckKey(tt.key)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("CheckKey: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("CheckKey error = %v, want one mentioning %q", err, tt.wantErr)
			}
			if got := token.Usable(tt.key); got != (err == nil) {
				t.Errorf("Usable = %v, CheckKey = %v", got, err)
			}
		})
	}
}

func TestCheckKeyPassesRandomModuli(t *testing.T) {
	for range 8 {
		k := tokentest.NewRSAKey(t, "r")
		if err := token.CheckKey(k.Public); err != nil {
			t.Fatalf("CheckKey on a fresh RSA key: %v", err)
		}
	}
}

// hmacSecret returns an "oct" key as the keys package's HMAC source
// publishes it: use "sig", no kid, no alg.
func hmacSecret(t testing.TB, secret []byte) jwk.Key {
	t.Helper()
	k, err := jwk.Import(secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Set(jwk.KeyUsageKey, "sig"); err != nil {
		t.Fatal(err)
	}
	return k
}

func TestUsableHMAC(t *testing.T) {
	withUse := func(use string) jwk.Key {
		k := hmacSecret(t, bytes.Repeat([]byte("k"), 32))
		if err := k.Set(jwk.KeyUsageKey, use); err != nil {
			t.Fatal(err)
		}
		return k
	}
	tests := []struct {
		name string
		key  jwk.Key
		want bool
	}{
		{"32-byte secret", hmacSecret(t, bytes.Repeat([]byte("k"), 32)), true},
		{"64-byte secret", hmacSecret(t, bytes.Repeat([]byte("k"), 64)), true},
		{"31-byte secret", hmacSecret(t, bytes.Repeat([]byte("k"), 31)), false},
		{"use enc", withUse("enc"), false},
		{"RSA key", tokentest.NewRSAKey(t, "r").Public, false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := token.UsableHMAC(tt.key); got != tt.want {
				t.Errorf("UsableHMAC = %v, want %v", got, tt.want)
			}
			if tt.key != nil && tt.key.KeyType().String() == "oct" && token.Usable(tt.key) {
				t.Error("Usable accepted a symmetric key for asymmetric verification")
			}
		})
	}
}

func TestVerifyHMAC(t *testing.T) {
	const issHMAC = "https://hmac.example.com"
	secret := bytes.Repeat([]byte("s"), 48) // enough for HS256 and HS384, not HS512
	signer := func(alg, kid string) *tokentest.Key { return tokentest.NewKeyFrom(t, secret, kid, alg) }
	rsaKey := tokentest.NewRSAKey(t, "rsa-1")
	rsaPEM := pemOf(t, rsaKey)

	newVerifier := func(t *testing.T, keys ...jwk.Key) *token.Verifier {
		t.Helper()
		v, err := token.NewVerifier([]token.Issuer{{
			Issuer: issHMAC, Audiences: []string{audience},
			Algorithms: []string{"HS256", "HS384", "HS512"},
			Keys:       &fakeSource{set: setOf(t, keys...)},
		}}, token.WithClock(func() time.Time { return now }))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name string
		keys []jwk.Key
		raw  string
		want error
	}{
		{"HS256 without kid", []jwk.Key{hmacSecret(t, secret)}, tokentest.Mint(t, signer("HS256", ""), claims(issHMAC, nil)), nil},
		{"HS384 with a kid, on the kid-less secret", []jwk.Key{hmacSecret(t, secret)}, tokentest.Mint(t, signer("HS384", "any"), claims(issHMAC, nil)), nil},
		{"HS512 on a secret shorter than 64 bytes", []jwk.Key{hmacSecret(t, secret)}, tokentest.Mint(t, signer("HS512", ""), claims(issHMAC, nil)), token.ErrKeyUnknown},
		{"HS256 on a 31-byte secret", []jwk.Key{hmacSecret(t, secret[:31])},
			tokentest.Mint(t, tokentest.NewKeyFrom(t, secret[:31], "", "HS256"), claims(issHMAC, nil)), token.ErrKeyUnknown},
		{"another secret", []jwk.Key{hmacSecret(t, bytes.Repeat([]byte("x"), 48))}, tokentest.Mint(t, signer("HS256", ""), claims(issHMAC, nil)), token.ErrSignature},
		{"secret restricted to encryption", []jwk.Key{withUseOf(t, hmacSecret(t, secret), "enc")}, tokentest.Mint(t, signer("HS256", ""), claims(issHMAC, nil)), token.ErrKeyUnknown},
		{"RS256 on an HMAC issuer", []jwk.Key{hmacSecret(t, secret), rsaKey.Public}, tokentest.Mint(t, rsaKey, claims(issHMAC, nil)), token.ErrAlgorithm},
		{"HS256 keyed with a public key the source holds (key confusion)", []jwk.Key{rsaKey.Public},
			tokentest.Mint(t, tokentest.NewKeyFrom(t, rsaPEM, "rsa-1", "HS256"), claims(issHMAC, nil)), token.ErrKeyUnknown},
		{`alg "none"`, []jwk.Key{hmacSecret(t, secret)}, tokentest.Mint(t, signer("HS256", ""), claims(issHMAC, nil), tokentest.WithHeader("alg", "none")), token.ErrAlgorithm},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := newVerifier(t, tt.keys...).Verify(t.Context(), tt.raw)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if tok.KeyID != "" {
					t.Errorf("KeyID = %q, want empty", tok.KeyID)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify error = %v (reason %s), want %v", err, token.Reason(err), tt.want)
			}
		})
	}
}

func withUseOf(t testing.TB, k jwk.Key, use string) jwk.Key {
	t.Helper()
	if err := k.Set(jwk.KeyUsageKey, use); err != nil {
		t.Fatal(err)
	}
	return k
}

func TestNewVerifierAlgorithms(t *testing.T) {
	tests := []struct {
		algs []string
		ok   bool
	}{
		{nil, true},
		{[]string{"HS256"}, true},
		{[]string{"HS256", "HS384", "HS512"}, true},
		{[]string{"RS256", "PS256", "ES256", "EdDSA"}, true},
		{[]string{"HS256", "RS256"}, false},
		{[]string{"EdDSA", "HS512"}, false},
		{[]string{"HS256", "none"}, false},
		{[]string{"HS1"}, false},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.algs, ","), func(t *testing.T) {
			_, err := token.NewVerifier([]token.Issuer{{Issuer: issA, Audiences: []string{audience}, Algorithms: tt.algs, Keys: &fakeSource{}}})
			if (err == nil) != tt.ok {
				t.Errorf("NewVerifier error = %v, want ok = %v", err, tt.ok)
			}
		})
	}
}

func TestVerifyKeysWithoutKID(t *testing.T) {
	signer := tokentest.NewECKey(t, "k1")
	other := tokentest.NewECKey(t, "k1")
	bare := func(k *tokentest.Key) jwk.Key {
		c, err := k.Public.Clone()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Remove(jwk.KeyIDKey); err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name          string
		keys          []jwk.Key
		refreshed     []jwk.Key // the set after a Refresh, if any
		raw           string
		want          error
		wantKID       string
		wantRefreshes int
	}{
		{"a kid-less key verifies a token with a kid, without a refresh",
			[]jwk.Key{bare(signer)}, nil, tokentest.Mint(t, signer, claims(issA, nil)), nil, "", 0},
		{"the key with the token's kid is tried first",
			[]jwk.Key{bare(signer), signer.Public}, nil, tokentest.Mint(t, signer, claims(issA, nil)), nil, "k1", 0},
		{"a kid-less key verifies when the key with the kid does not",
			[]jwk.Key{other.Public, bare(signer)}, nil, tokentest.Mint(t, signer, claims(issA, nil)), nil, "", 0},
		{"a kid-less key that does not verify is a bad signature, not a reason to refresh",
			[]jwk.Key{bare(other)}, []jwk.Key{signer.Public}, tokentest.Mint(t, signer, claims(issA, nil)), token.ErrSignature, "", 0},
		{"a kid-less key of another type does not stop the refresh",
			[]jwk.Key{tokentest.NewRSAKey(t, "").Public}, []jwk.Key{signer.Public}, tokentest.Mint(t, signer, claims(issA, nil)), nil, "k1", 1},
		{"nothing fits after the refresh",
			[]jwk.Key{tokentest.NewEdKey(t, "").Public}, nil, tokentest.Mint(t, signer, claims(issA, nil)), token.ErrKeyUnknown, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &fakeSource{set: setOf(t, tt.keys...)}
			if tt.refreshed != nil {
				src.refreshed = setOf(t, tt.refreshed...)
			}
			v, err := token.NewVerifier([]token.Issuer{{Issuer: issA, Audiences: []string{audience}, Keys: src}},
				token.WithClock(func() time.Time { return now }))
			if err != nil {
				t.Fatal(err)
			}
			tok, err := v.Verify(t.Context(), tt.raw)
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("Verify: %v", err)
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("Verify error = %v (reason %s), want %v", err, token.Reason(err), tt.want)
			case tt.want == nil && tok.KeyID != tt.wantKID:
				t.Errorf("KeyID = %q, want %q", tok.KeyID, tt.wantKID)
			}
			if got := src.Refreshes(); got != tt.wantRefreshes {
				t.Errorf("Refresh called %d times, want %d", got, tt.wantRefreshes)
			}
		})
	}
}

func TestVerifyTokenWithoutKIDTriesOnlyFittingKeys(t *testing.T) {
	set := publicSet(t,
		tokentest.NewECKey(t, "p256-a"), tokentest.NewECKey(t, "p256-b"),
		tokentest.NewRSAKey(t, "rsa"), tokentest.NewEdKey(t, "ed"))
	v, err := token.NewVerifier([]token.Issuer{{Issuer: issA, Audiences: []string{audience}, Keys: &fakeSource{set: set}}},
		token.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(t.Context(), tokentest.Mint(t, tokentest.NewECKey(t, ""), claims(issA, nil)))
	if !errors.Is(err, token.ErrSignature) {
		t.Fatalf("Verify error = %v, want %v", err, token.ErrSignature)
	}
	if want := "signature does not verify with any of 2 ES256 keys"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}

func TestVerifyIssuersAreIsolated(t *testing.T) {
	keyA, keyB := tokentest.NewECKey(t, "shared"), tokentest.NewECKey(t, "shared")
	v, err := token.NewVerifier([]token.Issuer{
		{Issuer: issA, Audiences: []string{audience}, Keys: &fakeSource{set: publicSet(t, keyA)}},
		{Issuer: issB, Audiences: []string{audience}, Keys: &fakeSource{set: publicSet(t, keyB)}},
	}, token.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		iss  string
		key  *tokentest.Key
		want error
	}{
		{"A's token signed with A's key", issA, keyA, nil},
		{"A's token signed with B's key of the same kid", issA, keyB, token.ErrSignature},
		{"B's token signed with B's key", issB, keyB, nil},
		{"B's token signed with A's key of the same kid", issB, keyA, token.ErrSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := v.Verify(t.Context(), tokentest.Mint(t, tt.key, claims(tt.iss, nil)))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if tok.Issuer != tt.iss {
					t.Errorf("Issuer = %q, want %q", tok.Issuer, tt.iss)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify error = %v (reason %s), want %v", err, token.Reason(err), tt.want)
			}
		})
	}
}

func TestVerifyRejectsKeysCheckKeyRejects(t *testing.T) {
	rsaKey := tokentest.NewRSAKey(t, "rsa-1")
	short := make([]byte, 128)
	short[0] = 0xc0
	tests := []struct {
		name string
		key  jwk.Key
	}{
		{"1024-bit RSA modulus", shortRSA{rsaKey.Public.(jwk.RSAPublicKey), short}},
		{"key for encryption", withJWK(t, rsaKey, jwk.KeyUsageKey, "enc")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := token.NewVerifier([]token.Issuer{{Issuer: issA, Audiences: []string{audience}, Keys: &fakeSource{set: setOf(t, tt.key)}}},
				token.WithClock(func() time.Time { return now }))
			if err != nil {
				t.Fatal(err)
			}
			for _, opts := range [][]tokentest.MintOption{nil, {tokentest.WithoutKID()}} {
				if _, err := v.Verify(t.Context(), tokentest.Mint(t, rsaKey, claims(issA, nil), opts...)); !errors.Is(err, token.ErrKeyUnknown) {
					t.Errorf("Verify error = %v, want %v", err, token.ErrKeyUnknown)
				}
			}
		})
	}
}

func pemOf(t testing.TB, k *tokentest.Key) []byte {
	t.Helper()
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: mustPKIX(t, k)})
}
