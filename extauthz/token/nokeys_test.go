package token_test

import (
	"errors"
	"testing"
	"time"

	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

// TestVerifyRefusesEveryJWTOfAKeylessIssuer: an issuer with NoKeys verifies
// no JWT, whatever its alg or signature, with key_unknown and a message
// saying why, while the other issuers' tokens still verify.
func TestVerifyRefusesEveryJWTOfAKeylessIssuer(t *testing.T) {
	k := tokentest.NewECKey(t, "k")
	v, err := token.NewVerifier([]token.Issuer{
		{Issuer: "opaque-idp", Audiences: []string{audience}, Keys: token.NoKeys},
		{Issuer: issA, Audiences: []string{audience}, Keys: &fakeSource{set: publicSet(t, k)}},
	}, token.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	for name, raw := range map[string]string{
		"signed":           tokentest.Mint(t, k, claims("opaque-idp", nil)),
		"without kid":      tokentest.Mint(t, k, claims("opaque-idp", nil), tokentest.WithoutKID()),
		"alg none":         compact(`{"alg":"none"}`, `{"iss":"opaque-idp","aud":"`+audience+`"}`),
		"unsupported crit": compact(`{"alg":"ES256","crit":["x"]}`, `{"iss":"opaque-idp"}`),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := v.Verify(t.Context(), raw)
			if !errors.Is(err, token.ErrKeyUnknown) || err.Error() != "issuer opaque-idp has no keys: only its opaque tokens are accepted, by introspection" {
				t.Errorf("error = %v (%s)", err, token.Reason(err))
			}
		})
	}
	if _, err := v.Verify(t.Context(), tokentest.Mint(t, k, claims(issA, nil))); err != nil {
		t.Errorf("the other issuer's token: %v", err)
	}
}
