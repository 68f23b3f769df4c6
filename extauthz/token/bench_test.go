package token_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

// BenchmarkKidlessForged is the cost of refusing a forged ES256 token
// without a kid for an issuer publishing n ES256 keys: max_kidless_keys
// (the default) bounds the signatures checked, so 300 keys cost what 4 do.
func BenchmarkKidlessForged(b *testing.B) {
	attacker := tokentest.NewECKey(b, "")
	forged := tokentest.Mint(b, attacker, claims(issA, nil))
	for _, n := range []int{1, 4, 300} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			keys := make([]*tokentest.Key, n)
			for i := range keys {
				keys[i] = tokentest.NewECKey(b, fmt.Sprintf("k%d", i))
			}
			v, err := token.NewVerifier([]token.Issuer{{
				Issuer: issA, Audiences: []string{audience}, Keys: tokentest.StaticKeys{Set: tokentest.KeySet(b, keys...)},
			}}, token.WithClock(func() time.Time { return now }))
			if err != nil {
				b.Fatal(err)
			}
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, forged); !errors.Is(err, token.ErrSignature) && !errors.Is(err, token.ErrKeyUnknown) {
					b.Fatalf("a forged token: %v", err)
				}
			}
		})
	}
}
