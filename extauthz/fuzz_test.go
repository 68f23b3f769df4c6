package extauthz

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

// FuzzCheck feeds arbitrary request attributes through the decision path
// with a policy that allows everything and reads the whole input, twice:
// with a fake verifier that knows one token, and with the real verifier
// and a genuine signed token (seeded in a header, the query and a cookie,
// beside the tokentest.Attacks catalog). Only the verifier's acceptance
// may lead to an allow: with the real one, an allow must carry the genuine
// token's verified claims. Nothing may panic, and every deny has a status,
// reason and body.
func FuzzCheck(f *testing.F) {
	f.Add("GET", "/orders?a=1", "authorization", "Bearer good", "cookie", "at=good")
	f.Add("POST", "/%zz", "authorization", "Bearer forged", "x-other", "1")
	f.Add("", "", "", "", "", "")
	f.Add("GET", "/?access_token=good&access_token=x", "cookie", "at=\x00", "authorization", "bearer  good ")
	cfg := Config{
		TokenRequired: true,
		Sources:       []TokenSource{{Header: "authorization", Prefix: "Bearer ", Strip: true}, {Query: "access_token", Strip: true}, {Cookie: "at", Strip: true}},
		ForwardClaims: map[string]string{"client_id": "x-client-id"},
	}
	fake, err := New(cfg, fakeVerifier{tokens: map[string]*token.Token{"good": goodToken}}, StaticPolicy(&fakePolicy{fn: allowAll}), nil)
	if err != nil {
		f.Fatal(err)
	}

	const iss, aud = "https://id.fuzz.example", "orders-api"
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	// A fixed key, so that every fuzzing process accepts the same seeds.
	key := tokentest.FixedECKey(f, 5, "ec-1", "ES256")
	real, err := New(cfg, tokentest.NewVerifier(f, iss, aud, now, key), StaticPolicy(&fakePolicy{fn: allowAll}), nil)
	if err != nil {
		f.Fatal(err)
	}
	genuineClaims := map[string]any{
		"iss": iss, "aud": aud, "sub": "svc", "client_id": "fuzz-client", "jti": "genuine",
		"iat": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	genuine := tokentest.Mint(f, key, genuineClaims)
	if d := real.Check(context.Background(), httpRequest("GET", "/", bearer(genuine))); !d.Allowed {
		f.Fatalf("the genuine token is denied: %s %s", d.Reason, d.Description)
	}
	f.Add("GET", "/orders", "authorization", "Bearer "+genuine, "x-client-id", "spoofed")
	f.Add("GET", "/orders?access_token="+url.QueryEscape(genuine), "", "", "cookie", "at=x")
	f.Add("PUT", "/", "cookie", "a=b; at="+genuine, "authorization", "Basic eA==")
	for _, a := range tokentest.Attacks(f, tokentest.Target{
		Issuer: iss, Audience: aud, RSA: tokentest.NewRSAKey(f, "rsa-1"), EC: []*tokentest.Key{key},
		Other: tokentest.NewRSAKey(f, "other-1"), AttackerURL: "https://attacker.invalid", Now: now,
	}) {
		f.Add("GET", "/orders", "authorization", "Bearer "+a.Token, "cookie", "at="+genuine)
	}

	f.Fuzz(func(t *testing.T, method, path, k1, v1, k2, v2 string) {
		req := httpRequest(method, path, map[string]string{k1: v1, k2: v2})
		d := fake.Check(context.Background(), req)
		if d.Allowed && d.Token != goodToken {
			t.Fatalf("allowed without a verified token: %+v", d)
		}
		checkDeny(t, d)
		if d.Allowed {
			r, err := parseRequest(req, cfg.PathNormalization)
			if err != nil {
				t.Fatalf("allowed a request that does not parse: %v", err)
			}
			checkStripped(t, cfg.Sources, r, d)
		}

		d = real.Check(context.Background(), httpRequest(method, path, map[string]string{k1: v1, k2: v2}))
		if d.Allowed && (d.Token == nil || d.Token.Issuer != iss || d.Token.Claims["jti"] != "genuine" || d.Token.KeyID != "ec-1") {
			t.Fatalf("allowed without the genuine token: %+v", d)
		}
		checkDeny(t, d)
	})
}

func checkDeny(t *testing.T, d Decision) {
	t.Helper()
	if !d.Allowed && (d.Status < 400 || d.Status > 599 || d.Reason == "" || d.Body == "") {
		t.Fatalf("deny without status, reason or body: %+v", d)
	}
}
