package tokentest

import (
	"context"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/claimcheck/claimcheck/extauthz/token"
)

// StaticKeys is a token.KeySource whose set never changes.
type StaticKeys struct{ Set jwk.Set }

// Keys returns the set.
func (s StaticKeys) Keys(context.Context) (jwk.Set, error) { return s.Set, nil }

// Refresh returns the set.
func (s StaticKeys) Refresh(context.Context) (jwk.Set, error) { return s.Set, nil }

// KeySet returns the jwk.Set of the keys' Public halves.
func KeySet(tb testing.TB, keys ...*Key) jwk.Set {
	tb.Helper()
	set := jwk.NewSet()
	for _, k := range keys {
		if err := set.AddKey(k.Public); err != nil {
			tb.Fatalf("tokentest: add key %q to set: %v", k.KID, err)
		}
	}
	return set
}

// NewVerifier returns a token.Verifier trusting one issuer, iss with
// audience aud and the keys' public halves, whose clock stands at now.
func NewVerifier(tb testing.TB, iss, aud string, now time.Time, keys ...*Key) *token.Verifier {
	tb.Helper()
	v, err := token.NewVerifier([]token.Issuer{{Issuer: iss, Audiences: []string{aud}, Keys: StaticKeys{KeySet(tb, keys...)}}},
		token.WithClock(func() time.Time { return now }))
	if err != nil {
		tb.Fatalf("tokentest: %v", err)
	}
	return v
}
