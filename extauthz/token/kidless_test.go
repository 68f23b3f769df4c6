package token_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

// TestMaxKidlessKeysBoundsTheKeysTried: a token whose kid names no key is
// tried against at most MaxKidlessKeys fitting keys, in key set order, and
// refused as key_unknown when the right key comes later; a token whose kid
// names a key keeps today's path, refetch on an unknown kid included.
func TestMaxKidlessKeysBoundsTheKeysTried(t *testing.T) {
	const pool = 300
	named := make([]*tokentest.Key, pool)   // kids k0, k1, …
	unnamed := make([]*tokentest.Key, pool) // no kids
	for i := range pool {
		named[i] = tokentest.NewECKey(t, fmt.Sprintf("k%d", i))
		unnamed[i] = tokentest.NewECKey(t, "")
	}
	eds := make([]*tokentest.Key, 6)
	for i := range eds {
		eds[i] = tokentest.NewEdKey(t, "")
	}
	attacker := tokentest.NewECKey(t, "")
	kidAbsent := tokentest.WithoutKID()
	kid := func(s string) tokentest.MintOption { return tokentest.WithHeader("kid", s) }

	tests := []struct {
		name      string
		keys      []*tokentest.Key // the issuer's set, in order
		max       int              // MaxKidlessKeys; 0: the default
		signer    *tokentest.Key
		opt       tokentest.MintOption // the token's kid
		reason    string               // "" accepted
		refreshes int
	}{
		{"kid absent, 1 key, signed by it", named[:1], 0, named[0], kidAbsent, "", 0},
		{"kid absent, 1 key, forged", named[:1], 0, attacker, kidAbsent, "signature_invalid", 0},
		{"kid absent, 4 keys, signed by the 4th", named[:4], 0, named[3], kidAbsent, "", 0},
		{"kid absent, 4 keys, forged: all were tried", named[:4], 0, attacker, kidAbsent, "signature_invalid", 0},
		{"kid absent, 5 keys, signed by the 4th", named[:5], 0, named[3], kidAbsent, "", 0},
		{"kid absent, 5 keys, signed by the 5th", named[:5], 0, named[4], kidAbsent, "key_unknown", 0},
		{"kid absent, 5 keys, forged", named[:5], 0, attacker, kidAbsent, "key_unknown", 0},
		{"kid absent, 300 keys, signed by the 1st", named, 0, named[0], kidAbsent, "", 0},
		{"kid absent, 300 keys, signed by the 300th", named, 0, named[pool-1], kidAbsent, "key_unknown", 0},
		{"kid absent, 300 keys, forged", named, 0, attacker, kidAbsent, "key_unknown", 0},
		{"kid absent, 300 keys without kids, signed by the 5th", unnamed, 0, unnamed[4], kidAbsent, "key_unknown", 0},
		{"kid absent, max 1, 4 keys, signed by the 2nd", named[:4], 1, named[1], kidAbsent, "key_unknown", 0},
		{"kid absent, max 300, 300 keys, signed by the 300th", named, 300, named[pool-1], kidAbsent, "", 0},
		{"kid absent, keys of another algorithm do not count", append(eds[:6:6], named[:4]...), 0, named[3], kidAbsent, "", 0},

		{"kid empty, 300 keys with kids: unknown, refetched once", named, 0, named[0], kid(""), "key_unknown", 1},
		{"kid empty, 300 keys without kids, signed by the 4th", unnamed, 0, unnamed[3], kid(""), "", 0},
		{"kid empty, 300 keys without kids, signed by the 5th", unnamed, 0, unnamed[4], kid(""), "key_unknown", 0},
		{"kid empty, 4 keys without kids, forged", unnamed[:4], 0, attacker, kid(""), "signature_invalid", 0},

		{"kid unknown, 300 keys with kids: refetched once", named, 0, named[0], kid("nope"), "key_unknown", 1},
		{"kid unknown, 300 keys without kids, signed by the 1st", unnamed, 0, unnamed[0], kid("nope"), "", 0},
		{"kid unknown, 300 keys without kids, signed by the 5th", unnamed, 0, unnamed[4], kid("nope"), "key_unknown", 0},
		{"kid of the 300th key, signed by it", named, 0, named[pool-1], kid("k299"), "", 0},
		{"kid of the 300th key, forged, keys without kids too", append(named[:pool:pool], unnamed[:10]...), 0, attacker, kid("k299"), "signature_invalid", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &fakeSource{set: publicSet(t, tt.keys...)}
			v, err := token.NewVerifier([]token.Issuer{{Issuer: issA, Audiences: []string{audience}, MaxKidlessKeys: tt.max, Keys: src}},
				token.WithClock(func() time.Time { return now }))
			if err != nil {
				t.Fatal(err)
			}
			tok, err := v.Verify(t.Context(), tokentest.Mint(t, tt.signer, claims(issA, nil), tt.opt))
			if got := token.Reason(err); tt.reason != "" && got != tt.reason || tt.reason == "" && err != nil {
				t.Fatalf("got %v (%s), want %q", err, got, tt.reason)
			}
			if tt.reason == "" && tok.KeyID != tt.signer.KID {
				t.Errorf("KeyID = %q, want %q", tok.KeyID, tt.signer.KID)
			}
			if tt.reason == "key_unknown" && !strings.Contains(err.Error(), "kid") {
				t.Errorf("the error does not say why: %v", err)
			}
			if got := src.Refreshes(); got != tt.refreshes {
				t.Errorf("%d refreshes, want %d", got, tt.refreshes)
			}
		})
	}
}
