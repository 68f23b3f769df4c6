package introspect

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

const (
	issuer   = "https://id.example.com"
	audience = "orders-api"
	clientID = "claimcheck"
	secret   = "s3cret"
)

var start = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func newClock() *tokentest.Clock { return tokentest.NewClock(start) }

// writeSecret writes s to a new secret file and returns its path.
func writeSecret(t testing.TB, s string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "client-secret")
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// config is a Client configuration for srv's introspection endpoint.
func config(t testing.TB, srv *tokentest.IntrospectionServer) Config {
	t.Helper()
	return Config{
		Endpoint:         Endpoint{URL: srv.IntrospectionEndpoint(), Timeout: 2 * time.Second},
		Rules:            token.Rules{Issuer: issuer, Audiences: []string{audience}, ClockSkew: 30 * time.Second},
		ClientID:         clientID,
		ClientSecretFile: writeSecret(t, secret+"\n"),
		CacheTTL:         time.Minute,
		InactiveTTL:      10 * time.Second,
	}
}

func newClient(t testing.TB, cfg Config, clk *tokentest.Clock) *Client {
	t.Helper()
	c, err := New(cfg, WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// claims are an active answer's claims for a token valid for an hour.
func claims() map[string]any {
	return map[string]any{
		"iss": issuer, "aud": audience, "client_id": "service-client-id", "scope": "orders:read orders:write",
		"token_type": "Bearer", "iat": start.Unix(), "exp": start.Add(time.Hour).Unix(),
	}
}

func with(m map[string]any, k string, v any) map[string]any {
	m[k] = v
	return m
}

func without(m map[string]any, k string) map[string]any {
	delete(m, k)
	return m
}

func TestOpaqueAnswersCheckedAsJWTClaims(t *testing.T) {
	tests := []struct {
		name   string
		answer map[string]any // nil: the token is unknown to the server
		reason string         // empty: accepted
	}{
		{"an active token", with(claims(), "active", true), ""},
		{"an active token without iss", with(without(claims(), "iss"), "active", true), ""},
		{"an audience in a list", with(with(claims(), "aud", []any{"other", audience}), "active", true), ""},
		{"expired within the clock skew", with(with(claims(), "exp", start.Add(-10*time.Second).Unix()), "active", true), ""},
		{"an unknown token", nil, "token_inactive"},
		{"active false", with(claims(), "active", false), "token_inactive"},
		{"exp past", with(with(claims(), "exp", start.Add(-time.Minute).Unix()), "active", true), "token_expired"},
		{"no exp", with(without(claims(), "exp"), "active", true), "exp_missing"},
		{"nbf in the future", with(with(claims(), "nbf", start.Add(time.Hour).Unix()), "active", true), "token_not_yet_valid"},
		{"another audience", with(with(claims(), "aud", "billing-api"), "active", true), "audience_mismatch"},
		{"no aud", with(without(claims(), "aud"), "active", true), "audience_mismatch"},
		{"another issuer", with(with(claims(), "iss", "https://evil.example.com"), "active", true), "issuer_unknown"},
		{"iss not a string", with(with(claims(), "iss", 7), "active", true), "claims_invalid"},
		{"scope not a string", with(with(claims(), "scope", []string{"a"}), "active", true), "claims_invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := tokentest.NewIntrospectionServer(t, clientID, secret)
			srv.SetAnswer("opaque-1", tt.answer)
			c := newClient(t, config(t, srv), newClock())
			tok, err := c.Opaque(context.Background(), "opaque-1")
			if tt.reason != "" {
				if got := token.Reason(err); got != tt.reason || tok != nil {
					t.Fatalf("got %v %v (%s), want %s", tok, err, got, tt.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tok.Kind != token.KindOpaque || tok.Issuer != issuer || tok.Claims["client_id"] != "service-client-id" {
				t.Errorf("token = %+v", tok)
			}
			if _, ok := tok.Claims["active"]; ok {
				t.Error(`claims hold "active"`)
			}
			if strings.Join(tok.Scopes, " ") != "orders:read orders:write" || !tok.Expiry.Equal(time.Unix(tt.answer["exp"].(int64), 0)) {
				t.Errorf("scopes %v, expiry %v", tok.Scopes, tok.Expiry)
			}
		})
	}
}

func TestOutageIsUnavailableNeverActive(t *testing.T) {
	tests := []struct {
		name  string
		fault func(srv *tokentest.IntrospectionServer, cfg *Config)
	}{
		{"5xx", func(srv *tokentest.IntrospectionServer, _ *Config) { srv.Fail(true) }},
		{"garbage", func(srv *tokentest.IntrospectionServer, _ *Config) { srv.SetMode(tokentest.ServeGarbage) }},
		{"oversized", func(srv *tokentest.IntrospectionServer, _ *Config) { srv.SetMode(tokentest.ServeOversized) }},
		{"no active member", func(srv *tokentest.IntrospectionServer, _ *Config) {
			srv.SetAnswer("opaque-1", map[string]any{"exp": start.Add(time.Hour).Unix(), "aud": audience})
		}},
		{"active not a boolean", func(srv *tokentest.IntrospectionServer, _ *Config) {
			srv.SetAnswer("opaque-1", with(claims(), "active", "true"))
		}},
		{"timeout", func(srv *tokentest.IntrospectionServer, cfg *Config) {
			srv.SetDelay(time.Minute)
			cfg.Timeout = 50 * time.Millisecond
		}},
		{"connection refused", func(srv *tokentest.IntrospectionServer, cfg *Config) {
			cfg.URL = "http://127.0.0.1:1/introspect"
		}},
		{"claimcheck's credentials refused", func(srv *tokentest.IntrospectionServer, cfg *Config) {
			cfg.ClientSecretFile = writeSecret(t, "wrong")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := tokentest.NewIntrospectionServer(t, clientID, secret)
			srv.SetActive("opaque-1", claims())
			cfg := config(t, srv)
			tt.fault(srv, &cfg)
			c := newClient(t, cfg, newClock())
			for range 2 { // an outage is not remembered as an answer
				tok, err := c.Opaque(context.Background(), "opaque-1")
				if tok != nil || !errors.Is(err, token.ErrIntrospectionUnavailable) || !token.Unavailable(err) ||
					token.Reason(err) != "introspection_unavailable" {
					t.Fatalf("got %v %v, want introspection_unavailable", tok, err)
				}
				if strings.Contains(err.Error(), "127.0.0.1") {
					t.Errorf("the error shown to the client names the endpoint: %v", err)
				}
			}
		})
	}
}

func TestOutageIsNotCached(t *testing.T) {
	srv := tokentest.NewIntrospectionServer(t, clientID, secret)
	srv.SetActive("opaque-1", claims())
	srv.Fail(true)
	c := newClient(t, config(t, srv), newClock())
	if _, err := c.Opaque(context.Background(), "opaque-1"); !errors.Is(err, token.ErrIntrospectionUnavailable) {
		t.Fatalf("err = %v", err)
	}
	srv.Fail(false)
	if _, err := c.Opaque(context.Background(), "opaque-1"); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestActiveAnswersCachedUntilExpOrCacheTTL(t *testing.T) {
	srv := tokentest.NewIntrospectionServer(t, clientID, secret)
	clk := newClock()
	srv.SetActive("long", claims())                                                 // exp in 1h: kept for cache_ttl (1m)
	srv.SetActive("short", with(claims(), "exp", start.Add(20*time.Second).Unix())) // kept until exp
	c := newClient(t, config(t, srv), clk)
	ctx := context.Background()

	first, err := c.Opaque(ctx, "long")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Opaque(ctx, "short"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(19 * time.Second)
	again, err := c.Opaque(ctx, "long")
	if err != nil || again != first {
		t.Fatalf("a cache hit gave %p %v, want the first token %p", again, err, first)
	}
	if _, err := c.Opaque(ctx, "short"); err != nil || srv.Requests() != 2 {
		t.Fatalf("before expiry: %v, %d requests, want 2", err, srv.Requests())
	}
	clk.Advance(2 * time.Second) // past short's exp
	if _, err := c.Opaque(ctx, "short"); err != nil || srv.Requests() != 3 {
		t.Fatalf("after exp: %v, %d requests, want 3 (asked again)", err, srv.Requests())
	}
	clk.Advance(40 * time.Second) // past cache_ttl
	if _, err := c.Opaque(ctx, "long"); err != nil || srv.Requests() != 4 {
		t.Fatalf("after cache_ttl: %v, %d requests, want 4", err, srv.Requests())
	}

	srv.SetAnswer("long", map[string]any{"active": false}) // revoked
	clk.Advance(61 * time.Second)
	if _, err := c.Opaque(ctx, "long"); !errors.Is(err, token.ErrInactive) {
		t.Fatalf("a revoked token after cache_ttl: %v", err)
	}
}

func TestInactiveAnswersCachedBriefly(t *testing.T) {
	for _, tt := range []struct {
		name     string
		ttl      time.Duration
		requests int // after two questions within ttl
	}{
		{"for inactive_ttl", 10 * time.Second, 1},
		{"not at all with inactive_ttl 0s", 0, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := tokentest.NewIntrospectionServer(t, clientID, secret)
			clk := newClock()
			cfg := config(t, srv)
			cfg.InactiveTTL = tt.ttl
			c := newClient(t, cfg, clk)
			ctx := context.Background()
			for range 2 {
				if _, err := c.Opaque(ctx, "unknown"); token.Reason(err) != "token_inactive" {
					t.Fatalf("err = %v", err)
				}
			}
			if srv.Requests() != tt.requests {
				t.Fatalf("%d requests, want %d", srv.Requests(), tt.requests)
			}
			srv.SetActive("unknown", claims()) // issued since
			clk.Advance(tt.ttl + time.Second)
			if _, err := c.Opaque(ctx, "unknown"); err != nil {
				t.Fatalf("after inactive_ttl: %v", err)
			}
		})
	}
}

func TestConcurrentIntrospectionsCoalesced(t *testing.T) {
	srv := tokentest.NewIntrospectionServer(t, clientID, secret)
	srv.SetActive("opaque-1", claims())
	cfg := config(t, srv)
	cfg.CacheTTL = 0 // nothing is cached: only coalescing can spare requests
	c := newClient(t, cfg, newClock())

	release := srv.Hold()
	defer release()
	const n = 20
	toks := make([]*token.Token, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { toks[i], errs[i] = c.Opaque(context.Background(), "opaque-1") })
	}
	for c.cache.waiting.Load() < n {
		runtime.Gosched()
	}
	release()
	wg.Wait()
	for i := range n {
		if errs[i] != nil || toks[i] != toks[0] {
			t.Fatalf("caller %d got %p %v, want the shared token %p", i, toks[i], errs[i], toks[0])
		}
	}
	if got := srv.Requests(); got != 1 {
		t.Fatalf("%d concurrent callers made %d requests, want 1", n, got)
	}
	if _, err := c.Opaque(context.Background(), "opaque-1"); err != nil || srv.Requests() != 2 {
		t.Fatalf("a later caller: %v, %d requests, want 2", err, srv.Requests())
	}
}

func TestCallerGivingUpFailsOnlyItself(t *testing.T) {
	srv := tokentest.NewIntrospectionServer(t, clientID, secret)
	srv.SetActive("opaque-1", claims())
	c := newClient(t, config(t, srv), newClock())
	release := srv.Hold()
	defer release()

	impatient, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Opaque(impatient, "opaque-1")
		done <- err
	}()
	patient := make(chan error, 1)
	for c.cache.waiting.Load() < 1 {
		runtime.Gosched()
	}
	go func() {
		_, err := c.Opaque(context.Background(), "opaque-1")
		patient <- err
	}()
	for c.cache.waiting.Load() < 2 {
		runtime.Gosched()
	}
	cancel()
	if err := <-done; !errors.Is(err, token.ErrIntrospectionUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller that gave up got %v", err)
	}
	release()
	if err := <-patient; err != nil {
		t.Fatalf("the caller that waited got %v", err)
	}
}

func TestClientAuthenticationEncoding(t *testing.T) {
	const id, pass = "svc:1 +é", "p@ss w/rd%"
	tests := []struct {
		auth string
		want tokentest.ClientAuth
	}{
		// RFC 6749 §2.3.1: the ID and secret are form-urlencoded, then
		// joined by ":" for Basic.
		{ClientSecretBasic, tokentest.ClientAuth{Method: "client_secret_basic",
			Username: "svc%3A1+%2B%C3%A9", Password: "p%40ss+w%2Frd%25", ClientID: id, Secret: pass}},
		{ClientSecretPost, tokentest.ClientAuth{Method: "client_secret_post", ClientID: id, Secret: pass}},
	}
	for _, tt := range tests {
		t.Run(tt.auth, func(t *testing.T) {
			srv := tokentest.NewIntrospectionServer(t, id, pass)
			srv.SetActive("opaque-1", claims())
			cfg := config(t, srv)
			cfg.ClientID, cfg.ClientSecretFile, cfg.Auth = id, writeSecret(t, pass+"\r\n"), tt.auth
			if _, err := newClient(t, cfg, newClock()).Opaque(context.Background(), "opaque-1"); err != nil {
				t.Fatal(err)
			}
			if got := srv.LastAuth(); got != tt.want {
				t.Errorf("the server saw %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSecretReadForEveryRequestAndNeverLogged(t *testing.T) {
	srv := tokentest.NewIntrospectionServer(t, clientID, secret)
	srv.SetActive("opaque-1", claims())
	srv.SetActive("opaque-2", claims())
	var logs tokentest.SyncBuffer
	cfg := config(t, srv)
	cfg.ClientSecretFile = writeSecret(t, "old-secret-value")
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	c := newClient(t, cfg, newClock())
	if _, err := c.Opaque(context.Background(), "opaque-1"); !errors.Is(err, token.ErrIntrospectionUnavailable) {
		t.Fatalf("with a refused secret: %v", err)
	}
	if err := os.WriteFile(cfg.ClientSecretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Opaque(context.Background(), "opaque-2"); err != nil {
		t.Fatalf("after rotating the secret: %v", err)
	}
	if !strings.Contains(logs.String(), "401") {
		t.Errorf("the refusal was not logged: %s", logs.String())
	}
	if strings.Contains(logs.String(), "old-secret-value") || strings.Contains(logs.String(), "opaque-1") {
		t.Errorf("the log holds the secret or the token: %s", logs.String())
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	srv := tokentest.NewIntrospectionServer(t, clientID, secret)
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"missing secret file", func(c *Config) { c.ClientSecretFile = filepath.Join(t.TempDir(), "nope") }, "nope"},
		{"empty secret", func(c *Config) { c.ClientSecretFile = writeSecret(t, "\n") }, "empty"},
		{"no client id", func(c *Config) { c.ClientID = "" }, "client_id"},
		{"no endpoint", func(c *Config) { c.URL = "" }, "no endpoint"},
		{"plain http to a remote host", func(c *Config) { c.URL = "http://id.example.com/introspect" }, "loopback"},
		{"unknown auth", func(c *Config) { c.Auth = "private_key_jwt" }, "private_key_jwt"},
		{"unknown mode", func(c *Config) { c.Mode = "sometimes" }, "sometimes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config(t, srv)
			tt.change(&cfg)
			if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestEndpointFromDiscovery(t *testing.T) {
	srv := tokentest.NewIntrospectionServer(t, clientID, secret)
	srv.SetActive("opaque-1", claims())
	idp := tokentest.NewJWKSServer(t)
	cfg := config(t, srv)
	cfg.Rules.Issuer, cfg.URL, cfg.Discovery = idp.URL, "", "openid"
	srv.SetActive("opaque-1", with(claims(), "iss", idp.URL))
	var logs tokentest.SyncBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	clk := newClock()
	c := newClient(t, cfg, clk)
	ctx := context.Background()

	// No introspection_endpoint yet: unavailable, and not asked again at once.
	if _, err := c.Opaque(ctx, "opaque-1"); !errors.Is(err, token.ErrIntrospectionUnavailable) ||
		!strings.Contains(logs.String(), "no introspection_endpoint") || strings.Contains(err.Error(), idp.URL) {
		t.Fatalf("err = %v, log %s", err, logs.String())
	}
	idp.SetMetadata("introspection_endpoint", srv.IntrospectionEndpoint())
	if _, err := c.Opaque(ctx, "opaque-1"); !errors.Is(err, token.ErrIntrospectionUnavailable) || idp.DiscoveryRequests() != 1 {
		t.Fatalf("within the retry interval: %v, %d discovery requests", err, idp.DiscoveryRequests())
	}
	clk.Advance(discoveryRetry)
	if _, err := c.Opaque(ctx, "opaque-1"); err != nil {
		t.Fatalf("after discovery: %v", err)
	}
	if _, err := c.Opaque(ctx, "opaque-2"); token.Reason(err) != "token_inactive" || idp.DiscoveryRequests() != 2 {
		t.Fatalf("the endpoint is kept once found: %v, %d discovery requests", err, idp.DiscoveryRequests())
	}
}
