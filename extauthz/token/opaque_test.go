package token_test

import (
	"testing"
	"time"

	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

func TestLooksLikeJWT(t *testing.T) {
	jwt := tokentest.Mint(t, tokentest.NewECKey(t, "k1"), tokentest.Claims(issA, audience, time.Hour))
	tests := []struct {
		name string
		raw  string
		want bool
	}{
		{"a compact JWS", jwt, true},
		{"a JWS with a bad signature", jwt[:len(jwt)-4] + "AAAA", true},
		{"an opaque token", "hinxbB9GcdmNyImNg3GGeJfsi2jBXO2Q", false},
		{"an opaque token with dots", "a.b.c", false},
		{"a JWE", "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d", false},
		{"two segments", "eyJhbGciOiJFUzI1NiJ9.e30", false},
		{"a header that is not an object", "WzFd.e30.c2ln", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := token.LooksLikeJWT(tt.raw); got != tt.want {
				t.Errorf("LooksLikeJWT(%.20q…) = %v, want %v", tt.raw, got, tt.want)
			}
		})
	}
}
