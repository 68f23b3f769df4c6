package introspect

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

// userToken is a verified token about subject "alice" that expires in an
// hour.
func userToken() *token.Token {
	return &token.Token{Kind: token.KindJWT, Issuer: issuer, Expiry: start.Add(time.Hour),
		Claims: map[string]any{"iss": issuer, "sub": "alice"}}
}

func newUserinfo(t *testing.T, srv *tokentest.IntrospectionServer, onError string, clk *tokentest.Clock) *Userinfo {
	t.Helper()
	u, err := NewUserinfo(UserinfoConfig{Endpoint: Endpoint{Issuer: issuer, URL: srv.UserinfoEndpoint(), Timeout: time.Second},
		OnError: onError, CacheTTL: time.Minute}, WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestUserinfoFetchedAndCached(t *testing.T) {
	srv := tokentest.NewIntrospectionServer(t, clientID, secret)
	srv.SetUserinfo("tok-1", map[string]any{"sub": "alice", "email": "alice@example.com", "groups": []string{"ops"}})
	clk := newClock()
	u := newUserinfo(t, srv, OnErrorDeny, clk)
	ctx := context.Background()
	for range 2 {
		info, err := u.Fetch(ctx, userToken(), "tok-1")
		if err != nil || info["email"] != "alice@example.com" {
			t.Fatalf("got %v %v", info, err)
		}
	}
	if srv.UserinfoRequests() != 1 {
		t.Fatalf("%d requests for two fetches, want 1", srv.UserinfoRequests())
	}
	clk.Advance(time.Minute)
	if _, err := u.Fetch(ctx, userToken(), "tok-1"); err != nil || srv.UserinfoRequests() != 2 {
		t.Fatalf("after cache_ttl: %v, %d requests, want 2", err, srv.UserinfoRequests())
	}
}

func TestUserinfoFailures(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(srv *tokentest.IntrospectionServer)
		reason string // with on_error: deny
	}{
		{"the endpoint refuses the token", func(*tokentest.IntrospectionServer) {}, "userinfo_rejected"},
		{"5xx", func(srv *tokentest.IntrospectionServer) { srv.Fail(true) }, "userinfo_unavailable"},
		{"garbage", func(srv *tokentest.IntrospectionServer) {
			srv.SetUserinfo("tok-1", map[string]any{"sub": "alice"})
			srv.SetMode(tokentest.ServeGarbage)
		}, "userinfo_unavailable"},
		{"no sub", func(srv *tokentest.IntrospectionServer) {
			srv.SetUserinfo("tok-1", map[string]any{"email": "alice@example.com"})
		}, "userinfo_unavailable"},
		{"another subject", func(srv *tokentest.IntrospectionServer) {
			srv.SetUserinfo("tok-1", map[string]any{"sub": "mallory"})
		}, "userinfo_unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, onError := range []string{OnErrorDeny, OnErrorContinue} {
				srv := tokentest.NewIntrospectionServer(t, clientID, secret)
				tt.setup(srv)
				info, err := newUserinfo(t, srv, onError, newClock()).Fetch(context.Background(), userToken(), "tok-1")
				switch onError {
				case OnErrorDeny:
					if info != nil || token.Reason(err) != tt.reason {
						t.Errorf("deny: got %v %v (%s), want %s", info, err, token.Reason(err), tt.reason)
					}
				case OnErrorContinue:
					if info != nil || err != nil {
						t.Errorf("continue: got %v %v, want neither", info, err)
					}
				}
			}
		})
	}
}

func TestUserinfoRefusalCachedOutageNot(t *testing.T) {
	srv := tokentest.NewIntrospectionServer(t, clientID, secret)
	u := newUserinfo(t, srv, OnErrorContinue, newClock())
	ctx := context.Background()
	u.Fetch(ctx, userToken(), "refused")
	u.Fetch(ctx, userToken(), "refused")
	if srv.UserinfoRequests() != 1 {
		t.Fatalf("a refusal was asked %d times, want 1", srv.UserinfoRequests())
	}
	srv.Fail(true)
	u.Fetch(ctx, userToken(), "tok-1")
	srv.Fail(false)
	srv.SetUserinfo("tok-1", map[string]any{"sub": "alice"})
	if info, _ := u.Fetch(ctx, userToken(), "tok-1"); info["sub"] != "alice" {
		t.Fatalf("after the outage: %v", info)
	}
}

func TestUserinfoSentAsBearerOnly(t *testing.T) {
	srv := tokentest.NewIntrospectionServer(t, clientID, secret)
	srv.SetUserinfo("tok-1", map[string]any{"sub": "alice"})
	u := newUserinfo(t, srv, OnErrorDeny, newClock())
	if _, err := u.Fetch(context.Background(), userToken(), "tok-1"); err != nil {
		t.Fatal(err)
	}
	if srv.Requests() != 0 {
		t.Errorf("userinfo made %d introspection requests", srv.Requests())
	}
}

func TestUserinfosByIssuer(t *testing.T) {
	srv := tokentest.NewIntrospectionServer(t, clientID, secret)
	srv.SetUserinfo("tok-1", map[string]any{"sub": "alice"})
	s := Userinfos{issuer: newUserinfo(t, srv, OnErrorDeny, newClock())}
	other := userToken()
	other.Issuer = otherIssuer
	if info, err := s.Userinfo(context.Background(), other, "tok-1"); info != nil || err != nil {
		t.Fatalf("an issuer without userinfo: %v %v", info, err)
	}
	if info, err := s.Userinfo(context.Background(), userToken(), "tok-1"); info["sub"] != "alice" || err != nil {
		t.Fatalf("the issuer with userinfo: %v %v", info, err)
	}
}

func TestUserinfoEndpointFromDiscovery(t *testing.T) {
	srv := tokentest.NewIntrospectionServer(t, clientID, secret)
	srv.SetUserinfo("tok-1", map[string]any{"sub": "alice"})
	idp := tokentest.NewJWKSServer(t)
	idp.SetMetadata("userinfo_endpoint", srv.UserinfoEndpoint())
	u, err := NewUserinfo(UserinfoConfig{Endpoint: Endpoint{Issuer: idp.URL, Discovery: "openid"}})
	if err != nil {
		t.Fatal(err)
	}
	tok := userToken()
	tok.Issuer = idp.URL
	if info, err := u.Fetch(context.Background(), tok, "tok-1"); err != nil || info["sub"] != "alice" {
		t.Fatalf("got %v %v", info, err)
	}
	if _, err := NewUserinfo(UserinfoConfig{Endpoint: Endpoint{Issuer: idp.URL, Discovery: "openid"}, OnError: "ignore"}); err == nil ||
		!strings.Contains(err.Error(), "ignore") {
		t.Errorf("an unknown on_error: %v", err)
	}
	if _, err := NewUserinfo(UserinfoConfig{Endpoint: Endpoint{Issuer: idp.URL}}); err == nil || errors.Is(err, token.ErrUserinfoUnavailable) {
		t.Errorf("no endpoint and no discovery: %v", err)
	}
}
