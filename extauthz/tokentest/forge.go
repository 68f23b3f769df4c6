package tokentest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwe"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"
)

// Helpers for forged and malformed tokens: the raw material of attack
// tests and fuzz seeds.

// NewECKeyFor returns an ECDSA key for alg: ES256 (P-256), ES384 (P-384)
// or ES512 (P-521).
func NewECKeyFor(tb testing.TB, kid, alg string) *Key {
	tb.Helper()
	priv, err := ecdsa.GenerateKey(curveFor(tb, alg), rand.Reader)
	if err != nil {
		tb.Fatalf("tokentest: generate %s key: %v", alg, err)
	}
	return newKey(tb, priv, kid, alg)
}

// FixedECKey returns the ECDSA key for alg (ES256, ES384 or ES512) whose
// private scalar is seed repeated: the same key in every process, for fuzz
// targets whose corpus must verify wherever it is replayed. Never use it
// outside tests.
func FixedECKey(tb testing.TB, seed byte, kid, alg string) *Key {
	tb.Helper()
	curve := curveFor(tb, alg)
	scalar := bytes.Repeat([]byte{seed}, (curve.Params().BitSize+7)/8)
	if alg == "ES512" {
		scalar[0] = 0 // below P-521's order, whose top byte is 1
	}
	priv, err := ecdsa.ParseRawPrivateKey(curve, scalar)
	if err != nil {
		tb.Fatalf("tokentest: fixed %s key from %d: %v", alg, seed, err)
	}
	return newKey(tb, priv, kid, alg)
}

func curveFor(tb testing.TB, alg string) elliptic.Curve {
	tb.Helper()
	switch alg {
	case "ES256":
		return elliptic.P256()
	case "ES384":
		return elliptic.P384()
	case "ES512":
		return elliptic.P521()
	}
	tb.Fatalf("tokentest: %q is not an ECDSA algorithm", alg)
	return nil
}

// Compact returns the compact serialization of the raw header and payload
// bytes and the signature, each base64url-encoded as they are.
func Compact(header, payload, sig []byte) string {
	return SigningInput(header, payload) + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// SigningInput returns the JWS signing input of the raw header and payload
// bytes.
func SigningInput(header, payload []byte) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
}

// Sign returns k's signature (with k.Alg) over input.
func Sign(tb testing.TB, k *Key, input string) []byte {
	tb.Helper()
	sig, err := jwsbb.Sign(k.Private, k.Alg, []byte(input), nil)
	if err != nil {
		tb.Fatalf("tokentest: sign with %s key %q: %v", k.Alg, k.KID, err)
	}
	return sig
}

// MintRaw signs the header and payload bytes exactly as given with k.Alg:
// for JSON that Mint cannot produce, such as repeated member names,
// invalid UTF-8 or deep nesting.
func MintRaw(tb testing.TB, k *Key, header, payload []byte) string {
	tb.Helper()
	input := SigningInput(header, payload)
	return input + "." + base64.RawURLEncoding.EncodeToString(Sign(tb, k, input))
}

// MustJSON returns the JSON encoding of v.
func MustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatalf("tokentest: marshal %T: %v", v, err)
	}
	return b
}

// ECDSASignature returns the JWS encoding of the ECDSA signature (r, s) for
// alg (ES256, ES384 or ES512): both fixed-length, big-endian, concatenated.
// Values too big for the length keep their low-order bytes.
func ECDSASignature(tb testing.TB, alg string, r, s *big.Int) []byte {
	tb.Helper()
	size := (curveFor(tb, alg).Params().BitSize + 7) / 8
	out := make([]byte, 2*size)
	r.FillBytes(out[:size])
	s.FillBytes(out[size:])
	return out
}

// CurveOrder returns the order n of alg's curve, for signatures such as
// r = n that a verifier must refuse.
func CurveOrder(tb testing.TB, alg string) *big.Int {
	tb.Helper()
	return new(big.Int).Set(curveFor(tb, alg).Params().N)
}

// PublicKeyEncodings returns k's public key in the encodings a JWT library
// might be handed as "the key": PEM (PKIX, and PKCS #1 for RSA, with and
// without the final newline), DER and the JWK JSON. Signing HS256 with one
// of them as the secret is the algorithm-confusion attack.
func PublicKeyEncodings(tb testing.TB, k *Key) map[string][]byte {
	tb.Helper()
	pub, der := publicDER(tb, k)
	pemBytes := PublicKeyPEM(tb, k)
	out := map[string][]byte{
		"PEM":                   pemBytes,
		"PEM without newline":   pemBytes[:len(pemBytes)-1],
		"DER":                   der,
		"JWK JSON":              MustJSON(tb, k.Public),
		"base64 DER (PEM body)": []byte(base64.StdEncoding.EncodeToString(der)),
	}
	if rk, ok := pub.(*rsa.PublicKey); ok {
		out["PEM PKCS#1"] = pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(rk)})
	}
	return out
}

// PublicKeyPEM returns k's public key as a PEM "PUBLIC KEY" (PKIX), as an
// issuer's public_key_file holds it.
func PublicKeyPEM(tb testing.TB, k *Key) []byte {
	tb.Helper()
	_, der := publicDER(tb, k)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// publicDER returns k's public key and its PKIX DER encoding.
func publicDER(tb testing.TB, k *Key) (any, []byte) {
	tb.Helper()
	var pub any
	if err := jwk.Export(k.Public, &pub); err != nil {
		tb.Fatalf("tokentest: export public key %q: %v", k.KID, err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		tb.Fatalf("tokentest: marshal public key %q: %v", k.KID, err)
	}
	return pub, der
}

// SelfSignedCert returns a DER X.509 certificate for k's public key, signed
// by k: what an attacker puts in an x5c header.
func SelfSignedCert(tb testing.TB, k *Key) []byte {
	tb.Helper()
	var priv any
	if err := jwk.Export(k.Private, &priv); err != nil {
		tb.Fatalf("tokentest: export private key %q: %v", k.KID, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "tokentest attacker"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		tb.Fatalf("tokentest: key %q cannot sign a certificate", k.KID)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, signer.Public(), priv)
	if err != nil {
		tb.Fatalf("tokentest: self-signed certificate for %q: %v", k.KID, err)
	}
	return der
}

// JSONSerializations returns the flattened and the general JWS JSON
// serializations (RFC 7515 §7.2) of the compact token raw.
func JSONSerializations(tb testing.TB, raw string) (flattened, general string) {
	tb.Helper()
	parts := splitCompact(tb, raw)
	flattened = string(MustJSON(tb, map[string]string{"protected": parts[0], "payload": parts[1], "signature": parts[2]}))
	general = string(MustJSON(tb, map[string]any{
		"payload":    parts[1],
		"signatures": []map[string]string{{"protected": parts[0], "signature": parts[2]}},
	}))
	return flattened, general
}

// Encrypt returns a compact JWE (five segments) of payload, encrypted to
// k's RSA public key with RSA-OAEP-256 and A256GCM.
func Encrypt(tb testing.TB, k *Key, payload []byte) string {
	tb.Helper()
	b, err := jwe.Encrypt(payload, jwe.WithKey(jwa.RSA_OAEP_256(), k.Public), jwe.WithContentEncryption(jwa.A256GCM()))
	if err != nil {
		tb.Fatalf("tokentest: encrypt to %q: %v", k.KID, err)
	}
	return string(b)
}

func splitCompact(tb testing.TB, raw string) []string {
	tb.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		tb.Fatalf("tokentest: %q is not a compact JWS", raw)
	}
	return parts
}
