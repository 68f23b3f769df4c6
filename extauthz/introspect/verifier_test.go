package introspect

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/claimcheck/claimcheck/extauthz/keys"
	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

const otherIssuer = "https://other.example.com"

// jwtVerifier verifies JWTs of issuer and otherIssuer signed by key, at the
// real time (tokentest.Claims uses it).
func jwtVerifier(t *testing.T, key *tokentest.Key) *token.Verifier {
	t.Helper()
	f, err := keys.NewFile(tokentest.WriteJWKSFile(t, t.TempDir(), key), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	var issuers []token.Issuer
	for _, name := range []string{issuer, otherIssuer} {
		issuers = append(issuers, token.Issuer{Issuer: name, Audiences: []string{audience}, Keys: f})
	}
	v, err := token.NewVerifier(issuers)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVerifierRoutesByKind(t *testing.T) {
	key := tokentest.NewECKey(t, "k1")
	jwt := tokentest.Mint(t, key, tokentest.Claims(issuer, audience, time.Hour))
	otherJWT := tokentest.Mint(t, key, tokentest.Claims(otherIssuer, audience, time.Hour))
	live := map[string]any{"iss": issuer, "aud": audience, "exp": time.Now().Add(time.Hour).Unix(), "client_id": "svc"}

	tests := []struct {
		name     string
		mode     string // "": no introspection at all
		raw      string
		active   bool   // the server knows raw as active
		kind     string // accepted as this kind, or
		reason   string // rejected for this reason
		requests int    // introspection requests made
	}{
		{"an opaque token is introspected", ModeOpaque, "opaque-1", true, token.KindOpaque, "", 1},
		{"an unknown opaque token", ModeOpaque, "opaque-1", false, "", "token_inactive", 1},
		{"a JWT is verified locally only", ModeOpaque, jwt, false, token.KindJWT, "", 0},
		{"with always a JWT is introspected too", ModeAlways, jwt, true, token.KindJWT, "", 1},
		{"with always a revoked JWT is refused", ModeAlways, jwt, false, "", "token_inactive", 1},
		{"with always opaque tokens still go there", ModeAlways, "opaque-1", true, token.KindOpaque, "", 1},
		{"with jwt a JWT is introspected", ModeJWT, jwt, false, "", "token_inactive", 1},
		{"with jwt no opaque token is sent", ModeJWT, "opaque-1", true, "", "token_malformed", 0},
		{"another issuer's JWT is not introspected", ModeAlways, otherJWT, false, token.KindJWT, "", 0},
		{"a bad JWT is never sent", ModeAlways, jwt[:len(jwt)-4] + "AAAA", true, "", "signature_invalid", 0},
		{"without introspection an opaque token is malformed", "", "opaque-1", true, "", "token_malformed", 0},
		{"a token outside RFC 6750's syntax is never sent", ModeOpaque, "opaque 1\"", true, "", "token_malformed", 0},
		{"an empty token is never sent", ModeOpaque, "", true, "", "token_malformed", 0},
		{"an oversized token is never sent", ModeOpaque, strings.Repeat("a", 2000), true, "", "token_too_large", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := tokentest.NewIntrospectionServer(t, clientID, secret)
			if tt.active {
				srv.SetActive(tt.raw, live)
			}
			var clients []*Client
			if tt.mode != "" {
				cfg := config(t, srv)
				cfg.Mode = tt.mode
				c, err := New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				clients = append(clients, c)
			}
			v, err := NewVerifier(jwtVerifier(t, key), 1024, clients...)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := v.Verify(context.Background(), tt.raw)
			switch {
			case tt.reason != "" && token.Reason(err) != tt.reason:
				t.Errorf("got %v (%s), want %s", err, token.Reason(err), tt.reason)
			case tt.reason == "" && (err != nil || tok.Kind != tt.kind):
				t.Errorf("got %+v %v, want a %s token", tok, err, tt.kind)
			}
			if srv.Requests() != tt.requests {
				t.Errorf("%d introspection requests, want %d", srv.Requests(), tt.requests)
			}
		})
	}
}

func TestNewVerifierAllowsOneOpaqueIssuer(t *testing.T) {
	srv := tokentest.NewIntrospectionServer(t, clientID, secret)
	client := func(iss, mode string) *Client {
		cfg := config(t, srv)
		cfg.Rules.Issuer, cfg.Mode = iss, mode
		c, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	jwt := jwtVerifier(t, tokentest.NewECKey(t, "k1"))
	tests := []struct {
		name    string
		clients []*Client
		want    string // empty: accepted
	}{
		{"one opaque, one jwt", []*Client{client(issuer, ModeOpaque), client(otherIssuer, ModeJWT)}, ""},
		{"one always, one jwt", []*Client{client(issuer, ModeAlways), client(otherIssuer, ModeJWT)}, ""},
		{"two opaque", []*Client{client(issuer, ModeOpaque), client(otherIssuer, ModeOpaque)}, "both take opaque tokens"},
		{"opaque and always", []*Client{client(issuer, ModeOpaque), client(otherIssuer, ModeAlways)}, "both take opaque tokens"},
		{"one issuer twice", []*Client{client(issuer, ModeJWT), client(issuer, ModeJWT)}, "two clients"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewVerifier(jwt, 1024, tt.clients...)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
