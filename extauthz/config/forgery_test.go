package config

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

// forgeryKeys are the keys refusesForgeries gives every issuer, and those
// an attacker signs with. They are fixed, so that fuzzing processes agree.
type forgeryKeys struct {
	issuerEC, attackerEC *tokentest.Key
	issuerSecret         []byte // long enough for HS512
	issuerHMAC           *tokentest.Key
	attackerHMAC         *tokentest.Key
}

func newForgeryKeys(tb testing.TB) forgeryKeys {
	tb.Helper()
	secret := bytes.Repeat([]byte("issuer-secret-"), 5)
	hmacKey := tokentest.NewKeyFrom(tb, secret, "k1", "HS256")
	// As keys.NewHMACFile publishes a secret: for any HMAC algorithm.
	if err := hmacKey.Public.Remove(jwk.AlgorithmKey); err != nil {
		tb.Fatal(err)
	}
	return forgeryKeys{
		issuerEC:     tokentest.FixedECKey(tb, 1, "k1", "ES256"),
		attackerEC:   tokentest.FixedECKey(tb, 2, "k1", "ES256"),
		issuerSecret: secret,
		issuerHMAC:   hmacKey,
		attackerHMAC: tokentest.NewKeyFrom(tb, bytes.Repeat([]byte("attacker-secr-"), 5), "k1", "HS256"),
	}
}

// refusesForgeries builds the token.Verifier serve builds from c's issuers,
// with each issuer's keys replaced by a known key, and checks that it
// refuses unsigned and wrongly signed tokens naming each issuer and
// audience: alg none, HS256 keyed with the issuer's public key, a
// signature by an attacker's key under the issuer's kid, and an HMAC by an
// attacker's secret; and that it accepts a genuine token when the issuer's
// algorithms allow the known key's. A configuration Parse accepts must
// also be one the verifier accepts.
func refusesForgeries(t *testing.T, c *Config, k forgeryKeys) {
	t.Helper()
	issuers := make([]token.Issuer, 0, len(c.Issuers))
	for _, is := range c.Issuers {
		pub := k.issuerEC
		if is.HMACSecretFile != "" {
			pub = k.issuerHMAC
		}
		issuers = append(issuers, token.Issuer{
			Issuer: is.Issuer, Audiences: is.Audiences, Algorithms: is.Algorithms,
			ClockSkew: time.Duration(is.ClockSkew), RequireTyp: is.RequireTyp, MaxKidlessKeys: is.KidlessKeys(),
			Keys: tokentest.StaticKeys{Set: tokentest.KeySet(t, pub)},
		})
	}
	v, err := token.NewVerifier(issuers, token.WithMaxSize(c.Token.MaxSize))
	if err != nil {
		t.Fatalf("Parse accepted a configuration the verifier refuses: %v", err)
	}
	ecPEM := tokentest.NewKeyFrom(t, tokentest.PublicKeyPEM(t, k.issuerEC), "k1", "HS256")
	for _, is := range c.Issuers {
		claims := tokentest.Claims(is.Issuer, is.Audiences[0], time.Hour)
		typ := is.RequireTyp
		if typ == "" {
			typ = "at+jwt"
		}
		withTyp := tokentest.WithHeader("typ", typ)
		var genuine *tokentest.Key
		switch {
		case is.HMACSecretFile != "":
			genuine = tokentest.NewKeyFrom(t, k.issuerSecret, "k1", is.Algorithms[0])
		case len(is.Algorithms) == 0 || slices.Contains(is.Algorithms, "ES256"):
			genuine = k.issuerEC
		}
		if genuine != nil {
			if _, err := v.Verify(context.Background(), tokentest.Mint(t, genuine, claims, withTyp)); err != nil {
				t.Fatalf("issuer %q refused a genuine %s token: %v", is.Issuer, genuine.Alg, err)
			}
		}
		for name, raw := range map[string]string{
			"alg none":                      tokentest.Mint(t, k.issuerEC, claims, withTyp, tokentest.WithHeader("alg", "none")),
			"HS256 keyed with the PEM":      tokentest.Mint(t, ecPEM, claims, withTyp),
			"attacker's key, issuer's kid":  tokentest.Mint(t, k.attackerEC, claims, withTyp),
			"attacker's secret":             tokentest.Mint(t, k.attackerHMAC, claims, withTyp),
			"ES256 signature, HS256 header": tokentest.Mint(t, k.issuerEC, claims, withTyp, tokentest.WithHeader("alg", "HS256")),
		} {
			if _, err := v.Verify(context.Background(), raw); err == nil {
				t.Fatalf("issuer %q accepted a forged token (%s)", is.Issuer, name)
			}
		}
	}
}
