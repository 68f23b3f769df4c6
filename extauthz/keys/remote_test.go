package keys_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/claimcheck/claimcheck/extauthz/keys"
	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

func newVerifier(t *testing.T, issuer string, src token.KeySource) *token.Verifier {
	t.Helper()
	v, err := token.NewVerifier([]token.Issuer{{Issuer: issuer, Audiences: []string{"api"}, Keys: src}})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestRemoteUnknownKIDFloodFetchesOnce(t *testing.T) {
	k := tokentest.NewECKey(t, "k")
	srv := tokentest.NewJWKSServer(t, k)
	r, _ := newRemote(t, keys.RemoteConfig{Issuer: srv.URL, JWKSURI: srv.JWKSURI(), MinRefresh: time.Hour})
	waitReady(t, r)
	v := newVerifier(t, srv.URL, r)

	const goroutines, perGoroutine = 200, 5
	toks := make([][]string, goroutines)
	for i := range toks {
		for range perGoroutine {
			toks[i] = append(toks[i], tokentest.Mint(t, k, tokentest.Claims(srv.URL, "api", time.Hour), tokentest.WithHeader("kid", rand.Text())))
		}
	}
	before := srv.Requests()

	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	errs := make([][]error, goroutines)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range goroutines {
		wg.Go(func() {
			<-start
			for _, tok := range toks[i] {
				_, err := v.Verify(ctx, tok)
				errs[i] = append(errs[i], err)
			}
		})
	}
	close(start)
	wg.Wait()

	if got := srv.Requests() - before; got != 1 {
		t.Errorf("%d tokens with unknown kids made %d JWKS fetches, want exactly 1", goroutines*perGoroutine, got)
	}
	for i := range errs {
		for _, err := range errs[i] {
			if !errors.Is(err, token.ErrKeyUnknown) {
				t.Fatalf("Verify error = %v, want ErrKeyUnknown", err)
			}
		}
	}
}

func TestRemoteBacksOffWhileFailing(t *testing.T) {
	k := tokentest.NewECKey(t, "k")
	tests := []struct {
		name      string
		loadFirst bool
	}{
		{"never loaded", false},
		{"after a load", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := tokentest.NewJWKSServer(t, k)
			srv.Fail(!tt.loadFirst)
			r, _ := newRemote(t, keys.RemoteConfig{
				JWKSURI:         srv.JWKSURI(),
				RefreshInterval: time.Millisecond,
				MinRefresh:      time.Millisecond,
				MaxRefresh:      time.Hour,
			})
			if tt.loadFirst {
				waitReady(t, r)
				srv.Fail(true)
			}
			before := srv.Requests()
			time.Sleep(500 * time.Millisecond) // the window in which requests are counted
			got := srv.Requests() - before

			// Retrying every MinRefresh would make hundreds of requests;
			// delays doubling from 1ms allow about ten.
			if got > 15 {
				t.Errorf("%d requests to a failing server within 500ms, want at most 15 (backoff)", got)
			}
			if got == 0 {
				t.Error("no retries at all")
			}
			if st := r.Status(); st.LastError == nil {
				t.Errorf("Status() = %+v, want the fetch error", st)
			}
		})
	}
}

func TestRemoteRefreshSchedule(t *testing.T) {
	k := tokentest.NewECKey(t, "k")
	now := time.Now()
	tests := []struct {
		name            string
		header, value   string
		refreshInterval time.Duration
		want            time.Duration
	}{
		{"no caching headers", "", "", 0, keys.DefaultRefreshInterval},
		{"no caching headers, interval above MaxRefresh", "", "", 3 * time.Hour, time.Hour},
		{"no caching headers, interval below MinRefresh", "", "", time.Second, time.Minute},
		{"no-cache without max-age", "Cache-Control", "no-cache", 0, keys.DefaultRefreshInterval},
		{"max-age", "Cache-Control", "public, max-age=600", 0, 10 * time.Minute},
		{"max-age below MinRefresh", "Cache-Control", "max-age=5", 0, time.Minute},
		{"max-age above MaxRefresh", "Cache-Control", "max-age=86400", 0, time.Hour},
		{"Expires", "Expires", now.Add(20 * time.Minute).UTC().Format(http.TimeFormat), 0, 20 * time.Minute},
		{"Expires in the past", "Expires", now.Add(-time.Hour).UTC().Format(http.TimeFormat), 0, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := tokentest.NewJWKSServer(t, k)
			if tt.header != "" {
				srv.SetHeader(tt.header, tt.value)
			}
			r, _ := newRemote(t, keys.RemoteConfig{
				JWKSURI:         srv.JWKSURI(),
				RefreshInterval: tt.refreshInterval,
				MinRefresh:      time.Minute,
				MaxRefresh:      time.Hour,
			})
			waitReady(t, r)
			st := r.Status()
			got := st.NextRefresh.Sub(st.LastSuccess)
			if d := got - tt.want; d < -2*time.Second || d > 2*time.Second {
				t.Errorf("next refresh %s after the fetch, want %s", got.Round(time.Second), tt.want)
			}
		})
	}
}

func TestRemoteConditionalRefresh(t *testing.T) {
	k1, k2 := tokentest.NewECKey(t, "k1"), tokentest.NewECKey(t, "k2")
	srv := tokentest.NewJWKSServer(t, k1)
	srv.SetETag(`"v1"`)
	r, logs := newRemote(t, keys.RemoteConfig{JWKSURI: srv.JWKSURI(), MinRefresh: time.Nanosecond})
	waitReady(t, r)
	if got := srv.ConditionalRequests(); got != 0 {
		t.Fatalf("first request was conditional (%d)", got)
	}
	success := r.Status().LastSuccess

	// The server answers 304 to If-None-Match "v1", whatever its keys.
	srv.SetKeys(k2)
	if set, err := r.Refresh(t.Context()); err != nil || kids(t, set) != "k1" {
		t.Fatalf("Refresh after a 304 = %v, %v; want the current set k1", kids(t, set), err)
	}
	if got := srv.ConditionalRequests(); got != 1 {
		t.Errorf("conditional requests = %d, want 1", got)
	}
	if st := r.Status(); st.LastError != nil || !st.LastSuccess.After(success) || st.Keys != 1 {
		t.Errorf("Status() after a 304 = %+v, want a success with 1 key", st)
	}
	logs.waitLog(t, "jwks refreshed", "not_modified=true")

	srv.SetETag(`"v2"`)
	if set, _ := r.Refresh(t.Context()); kids(t, set) != "k2" {
		t.Fatalf("Refresh after the ETag changed = %s, want k2", kids(t, set))
	}
	if got := srv.ConditionalRequests(); got != 2 {
		t.Errorf("conditional requests = %d, want 2", got)
	}

	// The ETag of a rejected body is not remembered: the next request
	// still names "v2", so the server sends its keys in full.
	srv.SetMode(tokentest.ServeGarbage)
	srv.SetETag(`"garbage"`)
	if set, _ := r.Refresh(t.Context()); kids(t, set) != "k2" || r.Status().LastError == nil {
		t.Fatalf("Refresh of garbage = %s, %v; want k2 kept and an error", kids(t, set), r.Status().LastError)
	}
	srv.SetKeys(k1)
	srv.SetMode(tokentest.ServeKeys) // background retries may fetch from here on
	if set, _ := r.Refresh(t.Context()); kids(t, set) != "k1" {
		t.Errorf("Refresh after garbage with its ETag = %s, want k1", kids(t, set))
	}
}

func TestRemoteDiscoveryURL(t *testing.T) {
	k := tokentest.NewECKey(t, "k")
	jwks := tokentest.NewJWKSServer(t, k)
	tests := []struct {
		name, discovery, issuerPath, wantPath string
	}{
		{"OpenID by default", "", "", "/.well-known/openid-configuration"},
		{"OpenID", keys.DiscoveryOpenID, "", "/.well-known/openid-configuration"},
		{"OpenID, issuer with a trailing slash", keys.DiscoveryOpenID, "/", "/.well-known/openid-configuration"},
		{"OpenID, issuer with a path", keys.DiscoveryOpenID, "/realms/a", "/realms/a/.well-known/openid-configuration"},
		{"OpenID, issuer with a path and a trailing slash", keys.DiscoveryOpenID, "/realms/a/", "/realms/a/.well-known/openid-configuration"},
		{"RFC 8414", keys.DiscoveryOAuth, "", "/.well-known/oauth-authorization-server"},
		{"RFC 8414, issuer with a trailing slash", keys.DiscoveryOAuth, "/", "/.well-known/oauth-authorization-server"},
		{"RFC 8414, issuer with a path", keys.DiscoveryOAuth, "/realms/a", "/.well-known/oauth-authorization-server/realms/a"},
		{"RFC 8414, issuer with a path and a trailing slash", keys.DiscoveryOAuth, "/realms/a/", "/.well-known/oauth-authorization-server/realms/a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				mu     sync.Mutex
				paths  []string
				issuer string
			)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				paths = append(paths, r.URL.Path)
				mu.Unlock()
				if r.URL.Path != tt.wantPath {
					http.NotFound(w, r)
					return
				}
				json.NewEncoder(w).Encode(map[string]string{"issuer": issuer, "jwks_uri": jwks.JWKSURI()})
			}))
			t.Cleanup(srv.Close)
			issuer = srv.URL + tt.issuerPath

			r, _ := newRemote(t, keys.RemoteConfig{Issuer: issuer, Discovery: tt.discovery})
			eventually(t, "the first refresh", func() bool { return !r.Status().LastAttempt.IsZero() && !r.Status().NextRefresh.IsZero() })
			mu.Lock()
			defer mu.Unlock()
			if len(paths) == 0 || paths[0] != tt.wantPath {
				t.Fatalf("discovery requested %q, want %s", paths, tt.wantPath)
			}
			if st := r.Status(); !st.Ready || st.JWKSURI != jwks.JWKSURI() {
				t.Errorf("Status() = %+v, want ready with JWKS URI %s", st, jwks.JWKSURI())
			}
		})
	}
}

func TestRemoteDiscoveryFollowsChangedJWKSURI(t *testing.T) {
	ka, kb := tokentest.NewECKey(t, "a"), tokentest.NewECKey(t, "b")
	for _, kind := range []string{keys.DiscoveryOpenID, keys.DiscoveryOAuth} {
		t.Run(kind, func(t *testing.T) {
			idp, other := tokentest.NewJWKSServer(t, ka), tokentest.NewJWKSServer(t, kb)
			r, logs := newRemote(t, keys.RemoteConfig{
				Issuer:          idp.URL,
				Discovery:       kind,
				RefreshInterval: time.Millisecond,
				MinRefresh:      time.Millisecond,
			})
			waitReady(t, r)
			if set, _ := r.Keys(t.Context()); kids(t, set) != "a" {
				t.Fatalf("keys = %s, want a", kids(t, set))
			}

			idp.SetJWKSURI(other.JWKSURI())
			eventually(t, "keys from the new jwks_uri", func() bool {
				set, _ := r.Keys(t.Context())
				return kids(t, set) == "b"
			})
			if st := r.Status(); st.JWKSURI != other.JWKSURI() {
				t.Errorf("Status().JWKSURI = %s, want %s", st.JWKSURI, other.JWKSURI())
			}
			logs.waitLog(t, "jwks_uri changed", other.JWKSURI())
			if idp.DiscoveryRequests() < 2 {
				t.Errorf("discovery requests = %d, want it re-read", idp.DiscoveryRequests())
			}
		})
	}
}

func TestRemoteWaitReadyAfterClose(t *testing.T) {
	srv := tokentest.NewJWKSServer(t)
	srv.Fail(true)
	r, err := keys.NewRemote(t.Context(), keys.RemoteConfig{JWKSURI: srv.JWKSURI(), MinRefresh: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "a failed fetch", func() bool { return r.Status().LastError != nil })
	r.Close()
	if err := r.WaitReady(t.Context()); err == nil || !strings.Contains(err.Error(), "500") {
		t.Errorf("WaitReady after Close = %v, want an error with the last fetch error", err)
	}
}

// outcomes records what OnRefresh reports.
type outcomes struct {
	mu  sync.Mutex
	got []string
}

func (o *outcomes) add(s string) { o.mu.Lock(); o.got = append(o.got, s); o.mu.Unlock() }

func (o *outcomes) last() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.got) == 0 {
		return ""
	}
	return o.got[len(o.got)-1]
}

func TestRemoteReportsEachRefreshOutcome(t *testing.T) {
	k := tokentest.NewECKey(t, "k")
	srv := tokentest.NewJWKSServer(t, k)
	srv.SetETag(`"v1"`)
	var o outcomes
	// MaxRefresh keeps background retries after the failure rare.
	r, _ := newRemote(t, keys.RemoteConfig{JWKSURI: srv.JWKSURI(), MinRefresh: time.Nanosecond,
		MaxRefresh: time.Hour, OnRefresh: o.add})
	waitReady(t, r)
	eventually(t, "the first outcome", func() bool { return o.last() != "" })
	if got := o.last(); got != keys.RefreshSuccess {
		t.Errorf("first fetch: outcome %q, want %q", got, keys.RefreshSuccess)
	}
	r.Refresh(t.Context())
	if got := o.last(); got != keys.RefreshNotModified {
		t.Errorf("304: outcome %q, want %q", got, keys.RefreshNotModified)
	}
	srv.Fail(true)
	r.Refresh(t.Context())
	if got := o.last(); got != keys.RefreshError {
		t.Errorf("failing server: outcome %q, want %q", got, keys.RefreshError)
	}
}
