package token_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

func TestRequireTyp(t *testing.T) {
	key := tokentest.NewRSAKey(t, "rsa-1")
	newVerifier := func(requireTyp string) (*token.Verifier, error) {
		return token.NewVerifier([]token.Issuer{{Issuer: issTyped, Audiences: []string{audience}, RequireTyp: requireTyp,
			Keys: &fakeSource{set: publicSet(t, key)}}}, token.WithClock(func() time.Time { return now }))
	}
	v, err := newVerifier("at+jwt")
	if err != nil {
		t.Fatal(err)
	}
	mint := func(opts ...tokentest.MintOption) string {
		return tokentest.Mint(t, key, claims(issTyped, nil), opts...)
	}
	tests := []struct {
		name string
		raw  string
		want error // nil: accepted
	}{
		{"at+jwt", mint(tokentest.WithHeader("typ", "at+jwt")), nil},
		{"upper case", mint(tokentest.WithHeader("typ", "AT+JWT")), nil},
		{"with application/", mint(tokentest.WithHeader("typ", "application/at+jwt")), nil},
		{"with Application/ in mixed case", mint(tokentest.WithHeader("typ", "Application/At+Jwt")), nil},
		{"JWT, as ID tokens", mint(tokentest.WithHeader("typ", "JWT")), token.ErrTyp},
		{"no typ", mint(tokentest.WithoutHeader("typ")), token.ErrTyp},
		{"empty typ", mint(tokentest.WithHeader("typ", "")), token.ErrTyp},
		{"another media type family", mint(tokentest.WithHeader("typ", "text/at+jwt")), token.ErrTyp},
		{"prefix only", mint(tokentest.WithHeader("typ", "at")), token.ErrTyp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := v.Verify(t.Context(), tt.raw)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			if tok != nil || !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if token.Reason(err) != "typ_mismatch" || !strings.Contains(err.Error(), "application/at+jwt") {
				t.Errorf("reason %q, message %q", token.Reason(err), err)
			}
		})
	}

	t.Run("an issuer without require_typ accepts any typ", func(t *testing.T) {
		v, err := newVerifier("")
		if err != nil {
			t.Fatal(err)
		}
		for _, opt := range []tokentest.MintOption{tokentest.WithHeader("typ", "JWT"), tokentest.WithoutHeader("typ")} {
			if _, err := v.Verify(t.Context(), mint(opt)); err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("a forged token is refused for its signature, not its typ", func(t *testing.T) {
		forged := tokentest.Mint(t, tokentest.NewRSAKey(t, "rsa-1"), claims(issTyped, nil), tokentest.WithHeader("typ", "JWT"))
		if _, err := v.Verify(t.Context(), forged); token.Reason(err) != "signature_invalid" {
			t.Errorf("got %v", err)
		}
	})

	for _, bad := range []string{"at jwt", "a/b/c", "/jwt", "at+jwt/", "at+jwt; q=1", "+jwt", "é"} {
		if _, err := newVerifier(bad); err == nil || !strings.Contains(err.Error(), "require_typ") {
			t.Errorf("RequireTyp %q: NewVerifier error %v", bad, err)
		}
		if token.ValidTyp(bad) {
			t.Errorf("ValidTyp(%q) = true", bad)
		}
	}
	for _, good := range []string{"at+jwt", "application/at+jwt", "JWT", "secevent+jwt", "vnd.example.v1+jwt"} {
		if !token.ValidTyp(good) {
			t.Errorf("ValidTyp(%q) = false", good)
		}
	}
}

const issTyped = "https://typed.example.com"
