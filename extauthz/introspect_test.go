package extauthz

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/claimcheck/claimcheck/extauthz/introspect"
	"github.com/claimcheck/claimcheck/extauthz/reason"
	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/extauthz/tokentest"
	"github.com/claimcheck/claimcheck/policy"
)

// jwtShaped has a JWT's shape; the fake verifier accepts it.
const jwtShaped = "eyJhbGciOiJFUzI1NiJ9.e30.c2ln"

// introspecting returns a Verifier that takes opaque tokens to srv's
// introspection endpoint for issuer https://id.example.com, and JWTs to the
// fake verifier.
func introspecting(t *testing.T, srv *tokentest.IntrospectionServer) Verifier {
	t.Helper()
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := introspect.New(introspect.Config{
		Endpoint: introspect.Endpoint{URL: srv.IntrospectionEndpoint(), Timeout: 2 * time.Second},
		Rules:    token.Rules{Issuer: "https://id.example.com", Audiences: []string{"orders-api"}},
		ClientID: "claimcheck", ClientSecretFile: secret, CacheTTL: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	v, err := introspect.NewVerifier(fakeVerifier{tokens: map[string]*token.Token{jwtShaped: goodToken}}, 4096, c)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestIntrospectedTokensDecide(t *testing.T) {
	srv := tokentest.NewIntrospectionServer(t, "claimcheck", "s3cret")
	srv.SetActive("opaque-ok", map[string]any{"iss": "https://id.example.com", "aud": "orders-api",
		"client_id": "service-client-id", "exp": time.Now().Add(time.Hour).Unix()})
	srv.SetRawAnswer("opaque-twice", fmt.Sprintf(`{"active":false,"iss":"https://id.example.com","aud":"orders-api",`+
		`"client_id":"service-client-id","exp":%d,"act\u0069ve":true}`, time.Now().Add(time.Hour).Unix()))
	a := newAuthorizer(t, Config{TokenRequired: true}, introspecting(t, srv), &fakePolicy{fn: allowAll})
	tests := []struct {
		name    string
		raw     string
		fail    bool
		allowed bool
		status  int
		reason  string
		kind    string
	}{
		{"an active opaque token reaches the policy", "opaque-ok", false, true, 200, reason.Allowed, token.KindOpaque},
		{"a JWT is still verified locally", jwtShaped, false, true, 200, reason.Allowed, token.KindJWT},
		{"an inactive opaque token is 401", "opaque-unknown", false, false, 401, "token_inactive", ""},
		{"an outage is 503, never an allow", "opaque-other", true, false, 503, "introspection_unavailable", ""},
		{"an answer saying active twice is 503, never an allow", "opaque-twice", false, false, 503, "introspection_unavailable", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.Fail(tt.fail)
			d := a.Check(context.Background(), httpRequest("GET", "/orders/1", bearer(tt.raw)))
			if d.Allowed != tt.allowed || d.Status != tt.status || d.Reason != tt.reason {
				t.Fatalf("got %v %d %s (%s), want %v %d %s", d.Allowed, d.Status, d.Reason, d.Description, tt.allowed, tt.status, tt.reason)
			}
			if tt.kind != "" && d.Token.Kind != tt.kind {
				t.Errorf("kind = %q, want %q", d.Token.Kind, tt.kind)
			}
			if tt.status == 401 {
				if h, _ := header(d.DenyHeaders, "www-authenticate"); !strings.Contains(h, `error="invalid_token"`) {
					t.Errorf("WWW-Authenticate = %q", h)
				}
			}
		})
	}
	srv.Fail(false)
}

// countingUserinfo answers info and counts the questions.
type countingUserinfo struct {
	info  map[string]any
	calls int
}

func (c *countingUserinfo) Userinfo(context.Context, *token.Token, string) (map[string]any, error) {
	c.calls++
	return c.info, nil
}

func TestUserinfoFetchedOnlyForPoliciesThatReadIt(t *testing.T) {
	tests := []struct {
		name  string
		reads map[string]bool // nil: the policy may read anything
		want  bool
	}{
		{"a policy reading input.token.userinfo", map[string]bool{"token": true, "token.userinfo": true}, true},
		{"a policy reading input whole", nil, true},
		{"a policy reading only the claims", map[string]bool{"token": true, "token.claims": true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ui := &countingUserinfo{info: map[string]any{"sub": "svc", "email": "svc@example.com"}}
			p := &fakePolicy{fn: allowAll, reads: tt.reads}
			a := newAuthorizer(t, Config{TokenRequired: true, Userinfo: ui}, fakeVerifier{tokens: map[string]*token.Token{"good": goodToken}}, p)
			d := a.Check(context.Background(), httpRequest("GET", "/orders/1", bearer("good")))
			if !d.Allowed {
				t.Fatalf("denied: %s", d.Reason)
			}
			got, _ := p.input["token"].(map[string]any)["userinfo"].(map[string]any)
			if (ui.calls == 1) != tt.want || (got["email"] == "svc@example.com") != tt.want {
				t.Errorf("%d fetches, input.token.userinfo = %v; want fetched: %v", ui.calls, got, tt.want)
			}
		})
	}
}

func TestUserinfoFailureDeniesUnlessContinue(t *testing.T) {
	tests := []struct {
		name    string
		onError string
		fail    bool   // the endpoint answers 500; else it refuses the token
		body    string // else, when set, the endpoint's answer
		allowed bool
		status  int
		reason  string
	}{
		{"an outage with on_error deny is 503", introspect.OnErrorDeny, true, "", false, 503, "userinfo_unavailable"},
		{"a refusal with on_error deny is 401", introspect.OnErrorDeny, false, "", false, 401, "userinfo_rejected"},
		{"an answer naming two subjects with on_error deny is 503", introspect.OnErrorDeny, false, `{"sub":"mallory","sub":"svc"}`, false, 503, "userinfo_unavailable"},
		{"an outage with on_error continue", introspect.OnErrorContinue, true, "", true, 200, reason.Allowed},
		{"a refusal with on_error continue", introspect.OnErrorContinue, false, "", true, 200, reason.Allowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := tokentest.NewIntrospectionServer(t, "claimcheck", "s3cret")
			srv.Fail(tt.fail)
			if tt.body != "" {
				srv.SetRawUserinfo("good", tt.body)
			}
			u, err := introspect.NewUserinfo(introspect.UserinfoConfig{
				Endpoint: introspect.Endpoint{Issuer: goodToken.Issuer, URL: srv.UserinfoEndpoint()},
				OnError:  tt.onError, CacheTTL: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			var sawUserinfo bool
			allowReading := func(in map[string]any) (policy.Result, error) {
				_, sawUserinfo = in["token"].(map[string]any)["userinfo"]
				return policy.Result{Allowed: true}, nil
			}
			a := newAuthorizer(t, Config{TokenRequired: true, Userinfo: introspect.Userinfos{goodToken.Issuer: u}},
				fakeVerifier{tokens: map[string]*token.Token{"good": goodToken}}, &fakePolicy{fn: allowReading})
			d := a.Check(context.Background(), httpRequest("GET", "/orders/1", bearer("good")))
			if d.Allowed != tt.allowed || d.Status != tt.status || d.Reason != tt.reason {
				t.Fatalf("got %v %d %s (%s), want %v %d %s", d.Allowed, d.Status, d.Reason, d.Description, tt.allowed, tt.status, tt.reason)
			}
			if sawUserinfo {
				t.Error("the policy saw input.token.userinfo though the endpoint failed")
			}
			if srv.UserinfoRequests() != 1 {
				t.Errorf("%d userinfo requests, want 1", srv.UserinfoRequests())
			}
		})
	}
}
