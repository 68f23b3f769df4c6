package token_test

import (
	"testing"
	"time"

	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

// attackFixture is a Verifier for tokentest.Attacks: the target issuer
// (RSA and three ECDSA keys, require_typ at+jwt) and another issuer.
type attackFixture struct {
	v      *token.Verifier
	target tokentest.Target
}

func newAttackFixture(t testing.TB) *attackFixture {
	t.Helper()
	tg := tokentest.Target{
		Issuer:      issTyped,
		Audience:    audience,
		RSA:         tokentest.NewRSAKey(t, "rsa-1"),
		RequireTyp:  "at+jwt",
		Other:       tokentest.NewRSAKey(t, "other-1"),
		AttackerURL: "https://attacker.invalid",
		Now:         now,
	}
	for _, alg := range []string{"ES256", "ES384", "ES512"} {
		tg.EC = append(tg.EC, tokentest.NewECKeyFor(t, "ec-"+alg, alg))
	}
	v, err := token.NewVerifier([]token.Issuer{
		{Issuer: issTyped, Audiences: []string{audience}, ClockSkew: skew, RequireTyp: "at+jwt",
			Keys: &fakeSource{set: publicSet(t, append([]*tokentest.Key{tg.RSA}, tg.EC...)...)}},
		{Issuer: issB, Audiences: []string{audience}, Keys: &fakeSource{set: publicSet(t, tg.Other)}},
	}, token.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	return &attackFixture{v: v, target: tg}
}

// TestVerifyRejectsAttacks runs the attack catalog against the verifier:
// every token is rejected with its reason, and a genuine token of the same
// issuer is accepted (so the rejections are not for want of a working
// setup).
func TestVerifyRejectsAttacks(t *testing.T) {
	f := newAttackFixture(t)
	genuine := tokentest.Mint(t, f.target.RSA, claims(issTyped, nil), tokentest.WithHeader("typ", "at+jwt"))
	if _, err := f.v.Verify(t.Context(), genuine); err != nil {
		t.Fatalf("genuine token rejected: %v", err)
	}
	attacks := tokentest.Attacks(t, f.target)
	if len(attacks) < 150 {
		t.Fatalf("only %d attacks", len(attacks))
	}
	for _, a := range attacks {
		t.Run(a.Name, func(t *testing.T) {
			tok, err := f.v.Verify(t.Context(), a.Token)
			if err == nil {
				t.Fatalf("accepted: %+v", tok)
			}
			if got := token.Reason(err); got != a.Reason {
				t.Errorf("reason %s (%v), want %s", got, err, a.Reason)
			}
		})
	}
}

// TestVerifyStrictJSONKeepsLegitimateTokens: the duplicate-name check is
// per object, so the same name in sibling or nested objects, and escaped
// non-ASCII text, are fine.
func TestVerifyStrictJSONKeepsLegitimateTokens(t *testing.T) {
	f := newAttackFixture(t)
	header := []byte(`{"alg":"RS256","kid":"rsa-1","typ":"at+jwt"}`)
	base := string(tokentest.MustJSON(t, claims(issTyped, nil)))
	for _, members := range []string{
		`"a":{"x":1},"b":{"x":2}`,
		`"list":[{"id":1},{"id":2}],"id":3`,
		`"nested":{"nested":{"nested":"x"}}`,
		`"name":"José \u00e9 \ud83d\ude00 日本"`,
		`"empty":{},"also":[]`,
		`"":1`,
	} {
		raw := tokentest.MintRaw(t, f.target.RSA, header, []byte("{"+members+","+base[1:]))
		if _, err := f.v.Verify(t.Context(), raw); err != nil {
			t.Errorf("%s: %v", members, err)
		}
	}
}
