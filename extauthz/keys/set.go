// Package keys provides token.KeySource implementations: key files (a
// JWKS, a PEM public key or certificate, an HMAC secret) re-read when they
// change, and a remote JWKS, given or found by OpenID Connect / RFC 8414
// discovery, refreshed in the background as its caching headers allow.
package keys

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/claimcheck/claimcheck/extauthz/token"
)

// maxBody caps JWKS and discovery documents.
const maxBody = 1 << 20

// readCapped reads r, failing if it holds more than maxBody bytes.
func readCapped(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxBody {
		return nil, fmt.Errorf("larger than %d bytes", maxBody)
	}
	return b, nil
}

// ParseSet parses a JWKS and keeps the public halves of the keys that can
// verify signatures: asymmetric keys that token.CheckKey accepts (use
// "sig" or none, key_ops with "verify" or none, RSA moduli of at least
// token.MinRSABits), whose kid no other such key shares. Symmetric ("oct")
// keys are never kept: a shared secret has no place in a key set, and
// one mixed with public keys invites key confusion. Keys sharing a kid
// are all dropped, since a token naming it would be ambiguous. Entries jwx
// cannot parse (for example key types newer than it) are skipped rather
// than failing the set; a set left with no usable key is an error.
//
// Each skipped key is logged to log with its kid and the reason, never
// its material: symmetric keys and shared kids as warnings, the rest at
// info level. A nil log discards.
func ParseSet(b []byte, log *slog.Logger) (jwk.Set, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	set, err := jwk.Parse(b, jwk.WithStrictKeySetParsing(false))
	if err != nil {
		return nil, err
	}
	asymmetric := false
	for i := range set.Len() {
		k, _ := set.Key(i)
		switch k.KeyType().String() {
		case "RSA", "EC", "OKP":
			asymmetric = true
		}
	}
	skip := func(level slog.Level, i int, k jwk.Key, reason string) {
		kid, _ := k.KeyID()
		log.Log(context.Background(), level, "jwks key skipped",
			"index", i, "kid", kid, "kty", k.KeyType().String(), "reason", reason)
	}
	var usable []jwk.Key
	var index []int
	kids := make(map[string]int)
	for i := range set.Len() {
		k, _ := set.Key(i)
		if k.KeyType().String() == "oct" {
			reason := "symmetric key: HMAC secrets are never taken from a key set"
			if asymmetric {
				reason = "symmetric key in a set that also holds asymmetric keys: HMAC secrets are never taken from a key set"
			}
			skip(slog.LevelWarn, i, k, reason)
			continue
		}
		if err := token.CheckKey(k); err != nil {
			skip(slog.LevelInfo, i, k, err.Error())
			continue
		}
		if kid, _ := k.KeyID(); kid != "" {
			kids[kid]++
		}
		usable = append(usable, k)
		index = append(index, i)
	}
	out := jwk.NewSet()
	for j, k := range usable {
		if kid, _ := k.KeyID(); kids[kid] > 1 {
			skip(slog.LevelWarn, index[j], k, fmt.Sprintf("kid shared by %d keys, so a token naming it is ambiguous", kids[kid]))
			continue
		}
		pub, err := k.PublicKey()
		if err != nil {
			skip(slog.LevelInfo, index[j], k, "no public key: "+err.Error())
			continue
		}
		if err := out.AddKey(pub); err != nil {
			return nil, err
		}
	}
	if out.Len() == 0 {
		return nil, fmt.Errorf("%w (of %d entries)", errNoUsableKeys, set.Len())
	}
	return out, nil
}

var errNoUsableKeys = errors.New("no usable signature verification keys")
