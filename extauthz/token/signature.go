package token

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rsa"
	_ "crypto/sha256" // SHA-256 for RS256, PS256, ES256, HS256
	_ "crypto/sha512" // SHA-384 and SHA-512 for the other algorithms
	"errors"
	"fmt"
	"math/big"
	"math/bits"
	"slices"
	"strings"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// MinRSABits is the size, in bits, of the smallest RSA modulus a key may
// have to be used.
const MinRSABits = 2048

// family is a kind of JWS algorithm: how a signature is checked.
type family int

const (
	rsaPKCS1 family = iota
	rsaPSS
	ecdsaFixed // ECDSA with the JWS fixed-length r||s encoding
	edDSA
	hmacSHA2
)

// algorithm is a JWS algorithm and the key that fits it.
type algorithm struct {
	name   string
	family family
	hash   crypto.Hash // zero for EdDSA, which hashes internally
	kty    string      // JWK "kty"
	curve  string      // JWK "crv"; empty for RSA and HMAC
}

// asymmetric lists the public-key algorithms, in the default allowlist's
// order.
var asymmetric = []algorithm{
	{"RS256", rsaPKCS1, crypto.SHA256, "RSA", ""},
	{"RS384", rsaPKCS1, crypto.SHA384, "RSA", ""},
	{"RS512", rsaPKCS1, crypto.SHA512, "RSA", ""},
	{"PS256", rsaPSS, crypto.SHA256, "RSA", ""},
	{"PS384", rsaPSS, crypto.SHA384, "RSA", ""},
	{"PS512", rsaPSS, crypto.SHA512, "RSA", ""},
	{"ES256", ecdsaFixed, crypto.SHA256, "EC", "P-256"},
	{"ES384", ecdsaFixed, crypto.SHA384, "EC", "P-384"},
	{"ES512", ecdsaFixed, crypto.SHA512, "EC", "P-521"},
	{"EdDSA", edDSA, 0, "OKP", "Ed25519"},
}

// symmetric lists the HMAC algorithms, which must be configured
// explicitly.
var symmetric = []algorithm{
	{"HS256", hmacSHA2, crypto.SHA256, "oct", ""},
	{"HS384", hmacSHA2, crypto.SHA384, "oct", ""},
	{"HS512", hmacSHA2, crypto.SHA512, "oct", ""},
}

// allowlist resolves algorithm names. Empty means every asymmetric
// algorithm. HMAC algorithms may not be mixed with asymmetric ones: the
// same allowlist accepting both would let a token choose whether a key is
// a public key or a shared secret.
func allowlist(names []string) ([]algorithm, error) {
	if len(names) == 0 {
		return asymmetric, nil
	}
	var algs []algorithm
	for _, name := range names {
		i := slices.IndexFunc(asymmetric, func(a algorithm) bool { return a.name == name })
		j := slices.IndexFunc(symmetric, func(a algorithm) bool { return a.name == name })
		var a algorithm
		switch {
		case i >= 0:
			a = asymmetric[i]
		case j >= 0:
			a = symmetric[j]
		default:
			return nil, fmt.Errorf("unsupported algorithm %q", name)
		}
		if !slices.ContainsFunc(algs, func(b algorithm) bool { return b.name == name }) {
			algs = append(algs, a)
		}
	}
	hmacs := 0
	for _, a := range algs {
		if a.family == hmacSHA2 {
			hmacs++
		}
	}
	if hmacs > 0 && hmacs < len(algs) {
		return nil, fmt.Errorf("algorithms %s mix HMAC and asymmetric algorithms; use one kind per issuer", strings.Join(names, ", "))
	}
	return algs, nil
}

// VerifySignature checks compact, a compact JWS, against the keys in set
// and returns its payload and the kid of the key that verified it (empty
// for a key without one). It is the signature layer of Verifier.Verify:
// the same structural rules (unpadded base64url, canonical encoding, a
// JSON object header), refusal of the crit and b64 headers, the algorithm
// allowlist (nil or empty means every asymmetric algorithm; HMAC
// algorithms must be listed and cannot be mixed with asymmetric ones), key
// selection (with DefaultMaxKidlessKeys) and the signature check. Unlike Verify, it neither limits the
// size of compact nor interprets the payload, which may be any bytes.
//
// Rejections wrap the package's sentinel errors; an unusable algorithms
// list is an error wrapping none of them.
func VerifySignature(compact string, set jwk.Set, algorithms []string) (payload []byte, kid string, err error) {
	algs, err := allowlist(algorithms)
	if err != nil {
		return nil, "", fmt.Errorf("token: %w", err)
	}
	if set == nil {
		return nil, "", fmt.Errorf("%w: no key set", ErrKeysUnavailable)
	}
	p, err := parse(compact)
	if err != nil {
		return nil, "", err
	}
	sv := &signatures{owner: "the key set", algs: algs, keys: staticKeys{set}, maxKidless: DefaultMaxKidlessKeys}
	k, err := sv.verify(context.Background(), p)
	if err != nil {
		return nil, "", err
	}
	kid, _ = k.KeyID()
	return p.payload, kid, nil
}

// staticKeys is a KeySource that never changes.
type staticKeys struct{ set jwk.Set }

func (s staticKeys) Keys(context.Context) (jwk.Set, error)    { return s.set, nil }
func (s staticKeys) Refresh(context.Context) (jwk.Set, error) { return s.set, nil }

// signatures checks the signatures of tokens against one source of keys.
type signatures struct {
	owner      string // names the keys' owner in errors, e.g. "issuer https://…"
	algs       []algorithm
	keys       KeySource
	maxKidless int // see Issuer.MaxKidlessKeys
}

// verify checks p's header, algorithm and signature, and returns the key
// that verified it.
func (sv *signatures) verify(ctx context.Context, p *parsed) (jwk.Key, error) {
	alg, err := sv.checkHeader(p)
	if err != nil {
		return nil, err
	}
	keys, untried, err := sv.candidates(ctx, p, alg)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if alg.verify(k, p.input, p.sig) {
			return k, nil
		}
	}
	if untried {
		if !p.hasKID {
			return nil, reject(ErrKeyUnknown, "token has no kid and none of the first %d %s keys of %s verifies it (max_kidless_keys)", len(keys), alg.name, sv.owner)
		}
		return nil, reject(ErrKeyUnknown, "no key with kid %q for %s, and none of its first %d %s keys without a kid verifies it (max_kidless_keys)", clip(p.kid), sv.owner, len(keys), alg.name)
	}
	if len(keys) == 1 {
		if kid, ok := keys[0].KeyID(); ok && kid != "" {
			return nil, reject(ErrSignature, "signature does not verify with key %q", clip(kid))
		}
	}
	return nil, reject(ErrSignature, "signature does not verify with any of %d %s keys", len(keys), alg.name)
}

// checkHeader rejects extension headers and algorithms outside the
// allowlist, and returns the token's algorithm.
func (sv *signatures) checkHeader(p *parsed) (algorithm, error) {
	for _, name := range [...]string{"crit", "b64"} {
		if _, ok := p.header[name]; ok {
			return algorithm{}, reject(ErrUnsupportedHeader, "header parameter %q is not supported", name)
		}
	}
	for _, a := range sv.algs {
		if a.name == p.alg {
			return a, nil
		}
	}
	return algorithm{}, reject(ErrAlgorithm, "alg %q is not allowed for %s", clip(p.alg), sv.owner)
}

// candidates returns the keys that may have signed the token, in the order
// to try them. A token without a kid may have been signed by any key that
// fits its algorithm: it gets the first maxKidless of them, in key set
// order. A token with a kid may have been signed by the fitting keys with
// that kid, tried first, or by a fitting key without a kid, of which it
// gets the first maxKidless; only when there is neither a key with its kid
// nor a fitting key without one is the key source refreshed, once. So a
// forged token costs at most maxKidless signature checks beyond its kid's
// own keys, however many keys the issuer publishes.
//
// untried is true when fitting keys were left out and no key has the
// token's kid: if none of keys verifies, the token's key is unknown
// rather than its signature wrong.
func (sv *signatures) candidates(ctx context.Context, p *parsed, alg algorithm) (keys []jwk.Key, untried bool, err error) {
	set, err := sv.keys.Keys(ctx)
	if err != nil || set == nil {
		return nil, false, sv.keysError(ctx, err)
	}
	if !p.hasKID {
		keys, untried = sv.kidless(set, alg, func(jwk.Key) bool { return true })
		if len(keys) == 0 {
			return nil, false, reject(ErrKeyUnknown, "token has no kid and %s has no %s key", sv.owner, alg.name)
		}
		return keys, untried, nil
	}

	named, keys, untried := sv.keysFor(set, p.kid, alg)
	if len(named) == 0 && len(keys) == 0 {
		if set, err = sv.keys.Refresh(ctx); err != nil || set == nil {
			return nil, false, sv.keysError(ctx, err)
		}
		named, keys, untried = sv.keysFor(set, p.kid, alg)
	}
	switch {
	case len(keys) > 0:
		return keys, untried && len(named) == 0, nil
	case len(named) == 0:
		return nil, false, reject(ErrKeyUnknown, "no key with kid %q for %s", clip(p.kid), sv.owner)
	case !slices.ContainsFunc(named, alg.usable):
		return nil, false, reject(ErrKeyUnknown, "key %q of %s is not a signature verification key", clip(p.kid), sv.owner)
	default:
		return nil, false, reject(ErrAlgorithm, "alg %q does not match key %q of %s", alg.name, clip(p.kid), sv.owner)
	}
}

// keysFor returns the keys in set whose kid is kid, and the keys to try
// for a token with that kid and alg: the fitting ones among them, then the
// first maxKidless fitting keys without a kid; untried says whether there
// were more of those.
func (sv *signatures) keysFor(set jwk.Set, kid string, alg algorithm) (named, keys []jwk.Key, untried bool) {
	for k := range allKeys(set) {
		if id, _ := k.KeyID(); id != "" && id == kid {
			named = append(named, k)
			if alg.fits(k) {
				keys = append(keys, k)
			}
		}
	}
	kidless, untried := sv.kidless(set, alg, func(k jwk.Key) bool { id, _ := k.KeyID(); return id == "" })
	return named, append(keys, kidless...), untried
}

// kidless returns the first maxKidless keys in set that fit alg and pass
// only, and whether more of them follow. It checks no key past the one
// that shows there are more: fits costs a hygiene check per key.
func (sv *signatures) kidless(set jwk.Set, alg algorithm, only func(jwk.Key) bool) (keys []jwk.Key, more bool) {
	for k := range allKeys(set) {
		if !only(k) || !alg.fits(k) {
			continue
		}
		if len(keys) == sv.maxKidless {
			return keys, true
		}
		keys = append(keys, k)
	}
	return keys, false
}

// keysError classifies a key source failure. Context errors pass through
// unclassified: the caller went away, the token was not judged.
func (sv *signatures) keysError(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return fmt.Errorf("%w: %s has no key set", ErrKeysUnavailable, sv.owner)
	case errors.Is(err, ErrKeysUnavailable):
		return err
	case ctx.Err() != nil:
		return fmt.Errorf("keys for %s: %w", sv.owner, err)
	default:
		return fmt.Errorf("%w: %s: %w", ErrKeysUnavailable, sv.owner, err)
	}
}

// usable reports whether k may verify signatures of a's kind: public-key
// signatures, or HMACs.
func (a algorithm) usable(k jwk.Key) bool {
	if a.family == hmacSHA2 {
		return UsableHMAC(k)
	}
	return Usable(k)
}

// fits reports whether k may verify a signature made with a: it is usable
// for a's kind, and its type, curve, own "alg" (if any) and, for HMAC,
// length match a.
func (a algorithm) fits(k jwk.Key) bool {
	if !a.usable(k) || k.KeyType().String() != a.kty {
		return false
	}
	if ka, ok := k.Algorithm(); ok && ka.String() != "" && ka.String() != a.name {
		return false
	}
	if a.family == hmacSHA2 {
		return len(octets(k)) >= a.hash.Size()
	}
	if a.curve == "" {
		return true
	}
	c, ok := k.(interface {
		Crv() (jwa.EllipticCurveAlgorithm, bool)
	})
	if !ok {
		return false
	}
	crv, ok := c.Crv()
	return ok && crv.String() == a.curve
}

// verify reports whether sig is a's signature of input by k. It checks the
// key's type and size again, whatever fits said.
func (a algorithm) verify(k jwk.Key, input string, sig []byte) bool {
	var raw any
	if err := jwk.Export(k, &raw); err != nil {
		return false
	}
	if s, ok := raw.(crypto.Signer); ok {
		raw = s.Public()
	}
	var digest []byte
	if a.hash != 0 {
		h := a.hash.New()
		h.Write([]byte(input))
		digest = h.Sum(nil)
	}
	switch a.family {
	case rsaPKCS1, rsaPSS:
		pub, ok := raw.(*rsa.PublicKey)
		if !ok || pub.N.BitLen() < MinRSABits {
			return false
		}
		if a.family == rsaPSS {
			// The salt is as long as the hash (RFC 7518, section 3.5);
			// rsa.PSSSaltLengthAuto would accept any length.
			opts := &rsa.PSSOptions{SaltLength: a.hash.Size(), Hash: a.hash}
			return rsa.VerifyPSS(pub, a.hash, digest, sig, opts) == nil
		}
		return rsa.VerifyPKCS1v15(pub, a.hash, digest, sig) == nil
	case ecdsaFixed:
		pub, ok := raw.(*ecdsa.PublicKey)
		if !ok || pub.Curve.Params().Name != a.curve {
			return false
		}
		size := (pub.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return false
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		return ecdsa.Verify(pub, digest, r, s)
	case edDSA:
		pub, ok := raw.(ed25519.PublicKey)
		return ok && len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, []byte(input), sig)
	case hmacSHA2:
		secret, ok := raw.([]byte)
		if !ok || len(secret) < a.hash.Size() {
			return false
		}
		mac := hmac.New(a.hash.New, secret)
		mac.Write([]byte(input))
		return hmac.Equal(mac.Sum(nil), sig)
	default:
		return false
	}
}

// Usable reports whether k may verify signatures: CheckKey finds nothing
// wrong with it.
func Usable(k jwk.Key) bool { return CheckKey(k) == nil }

// CheckKey says why k may not verify signatures, or returns nil if it may:
// an asymmetric key that jwx could parse, with an RSA modulus of at least
// MinRSABits and without the ROCA fingerprint, not restricted to another
// use or to other operations.
// Symmetric ("oct") keys are never usable: publishing one in a JWKS would
// hand the secret to everyone. Key sources filter with it; Verify checks
// again, whatever the source. The error never contains key material.
func CheckKey(k jwk.Key) error {
	if k == nil {
		return errors.New("no key")
	}
	if u, ok := k.(jwk.UnsupportedKey); ok {
		return fmt.Errorf("jwx could not parse it: %w", u.Reason())
	}
	switch kty := k.KeyType().String(); kty {
	case "RSA":
		var n []byte
		if rk, ok := k.(interface{ N() ([]byte, bool) }); ok {
			n, _ = rk.N()
		}
		if b := bitLen(n); b < MinRSABits {
			return fmt.Errorf("RSA modulus of %d bits, want at least %d", b, MinRSABits)
		}
		if hasROCAFingerprint(n) {
			return errors.New("RSA modulus has the ROCA fingerprint (CVE-2017-15361): it can be factored")
		}
	case "EC", "OKP":
	case "oct":
		return errors.New("symmetric key")
	default:
		return fmt.Errorf("unsupported key type %q", clip(kty))
	}
	return checkUse(k)
}

// UsableHMAC reports whether k may verify HMAC signatures: a symmetric
// ("oct") key of at least 32 bytes, the least any HMAC algorithm accepts,
// not restricted to another use or to other operations. HS384 and HS512
// need keys of at least 48 and 64 bytes.
func UsableHMAC(k jwk.Key) bool {
	if k == nil || jwk.IsUnsupportedKey(k) || k.KeyType().String() != "oct" {
		return false
	}
	return len(octets(k)) >= crypto.SHA256.Size() && checkUse(k) == nil
}

// octets returns the secret of a symmetric key, or nil.
func octets(k jwk.Key) []byte {
	sk, ok := k.(jwk.SymmetricKey)
	if !ok {
		return nil
	}
	secret, _ := sk.Octets()
	return secret
}

// checkUse rejects keys whose "use" is not "sig" or whose "key_ops" lack
// "verify".
func checkUse(k jwk.Key) error {
	if use, ok := k.KeyUsage(); ok && use != "" && use != "sig" {
		return fmt.Errorf("use is %q, not \"sig\"", clip(use))
	}
	if ops, ok := k.KeyOps(); ok && len(ops) > 0 && !slices.Contains(ops, jwk.KeyOpVerify) {
		return errors.New(`key_ops lack "verify"`)
	}
	return nil
}

// bitLen returns the length in bits of the big-endian unsigned integer b.
func bitLen(b []byte) int {
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	if len(b) == 0 {
		return 0
	}
	return (len(b)-1)*8 + bits.Len8(b[0])
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
