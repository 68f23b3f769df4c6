package extauthz

import (
	"context"
	"testing"

	"github.com/claimcheck/claimcheck/extauthz/token"
)

// FuzzCheck feeds arbitrary request attributes through the decision path with
// a policy that allows everything: only the verifier's acceptance may lead to
// an allow, and nothing may panic.
func FuzzCheck(f *testing.F) {
	f.Add("GET", "/orders?a=1", "authorization", "Bearer good", "cookie", "at=good")
	f.Add("POST", "/%zz", "authorization", "Bearer forged", "x-other", "1")
	f.Add("", "", "", "", "", "")
	f.Add("GET", "/?access_token=good&access_token=x", "cookie", "at=\x00", "authorization", "bearer  good ")
	a, err := New(Config{
		TokenRequired: true,
		Sources:       []TokenSource{{Header: "authorization", Prefix: "Bearer "}, {Query: "access_token"}, {Cookie: "at"}},
		ForwardClaims: map[string]string{"client_id": "x-client-id"},
	}, fakeVerifier{tokens: map[string]*token.Token{"good": goodToken}}, StaticPolicy(&fakePolicy{fn: allowAll}), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, path, k1, v1, k2, v2 string) {
		req := httpRequest(method, path, map[string]string{k1: v1, k2: v2})
		d := a.Check(context.Background(), req)
		if d.Allowed && d.Token != goodToken {
			t.Fatalf("allowed without a verified token: %+v", d)
		}
		if !d.Allowed && (d.Status < 400 || d.Status > 599 || d.Reason == "" || d.Body == "") {
			t.Fatalf("deny without status, reason or body: %+v", d)
		}
	})
}
