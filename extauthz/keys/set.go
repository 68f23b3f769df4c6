// Package keys provides token.KeySource implementations: a JWKS file read
// at start-up, and a remote JWKS (optionally found by OpenID Connect
// discovery) that is refreshed in the background.
package keys

import (
	"errors"
	"fmt"
	"io"

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

// parseSet parses a JWKS and keeps the public halves of the keys that can
// verify signatures. Entries jwx cannot parse (for example key types newer
// than it) are skipped rather than failing the set; a set left with no
// usable key is an error.
func parseSet(b []byte) (jwk.Set, error) {
	set, err := jwk.Parse(b, jwk.WithStrictKeySetParsing(false))
	if err != nil {
		return nil, err
	}
	out := jwk.NewSet()
	for i := range set.Len() {
		k, _ := set.Key(i)
		if !token.Usable(k) {
			continue
		}
		pub, err := k.PublicKey()
		if err != nil {
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
