package keys_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/claimcheck/claimcheck/extauthz/keys"
	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

// logRecorder is a slog.Handler that keeps records for inspection.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecorder) WithGroup(string) slog.Handler            { return h }

func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}

// find returns the text of the first record with message msg whose
// attributes mention substr, if any.
func (h *logRecorder) find(msg, substr string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.recs {
		if r.Message != msg {
			continue
		}
		var b strings.Builder
		r.Attrs(func(a slog.Attr) bool {
			b.WriteString(a.String() + " ")
			return true
		})
		if strings.Contains(b.String(), substr) {
			return b.String(), true
		}
	}
	return "", false
}

// waitLog waits until a record with message msg mentioning substr arrives.
func (h *logRecorder) waitLog(t *testing.T, msg, substr string) string {
	t.Helper()
	var text string
	eventually(t, "a "+msg+" log mentioning "+substr, func() bool {
		var ok bool
		text, ok = h.find(msg, substr)
		return ok
	})
	return text
}

// eventually fails the test if cond does not become true within a generous
// bound. It waits for background work; it does not measure it.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newRemote(t *testing.T, cfg keys.RemoteConfig) (*keys.Remote, *logRecorder) {
	t.Helper()
	logs := &logRecorder{}
	cfg.Logger = slog.New(logs)
	r, err := keys.NewRemote(t.Context(), cfg)
	if err != nil {
		t.Fatalf("NewRemote: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r, logs
}

func waitReady(t *testing.T, r *keys.Remote) {
	t.Helper()
	eventually(t, "keys to load", r.Ready)
}

func kids(t *testing.T, set jwk.Set) string {
	t.Helper()
	var ids []string
	for i := range set.Len() {
		k, _ := set.Key(i)
		id, _ := k.KeyID()
		ids = append(ids, id)
	}
	return strings.Join(ids, ",")
}

func TestRemoteServesKeys(t *testing.T) {
	k1, k2 := tokentest.NewECKey(t, "k1"), tokentest.NewEdKey(t, "k2")
	tests := []struct {
		name          string
		cfg           func(srv *tokentest.JWKSServer) keys.RemoteConfig
		wantDiscovery int
	}{
		{"configured JWKS URI", func(srv *tokentest.JWKSServer) keys.RemoteConfig {
			return keys.RemoteConfig{Issuer: srv.URL, JWKSURI: srv.JWKSURI()}
		}, 0},
		{"JWKS URI from OIDC discovery", func(srv *tokentest.JWKSServer) keys.RemoteConfig {
			return keys.RemoteConfig{Issuer: srv.URL}
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := tokentest.NewJWKSServer(t, k1, k2)
			r, logs := newRemote(t, tt.cfg(srv))
			waitReady(t, r)

			set, err := r.Keys(t.Context())
			if err != nil {
				t.Fatalf("Keys: %v", err)
			}
			if got := kids(t, set); got != "k1,k2" {
				t.Errorf("key IDs = %s, want k1,k2", got)
			}
			if got := srv.DiscoveryRequests(); got != tt.wantDiscovery {
				t.Errorf("discovery requests = %d, want %d", got, tt.wantDiscovery)
			}
			if text, ok := logs.find("jwks refreshed", "keys=2"); !ok || !strings.Contains(text, "issuer="+srv.URL) {
				t.Errorf("no success log naming the issuer and key count; logs: %+v", logs.recs)
			}

			v, err := token.NewVerifier([]token.Issuer{{Issuer: srv.URL, Audiences: []string{"api"}, Keys: r}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.Verify(t.Context(), tokentest.Mint(t, k2, tokentest.Claims(srv.URL, "api", time.Hour))); err != nil {
				t.Errorf("Verify with remote keys: %v", err)
			}
		})
	}
}

func TestRemoteKeysUnavailableUntilFirstFetch(t *testing.T) {
	k := tokentest.NewECKey(t, "k")
	srv := tokentest.NewJWKSServer(t, k)
	srv.Fail(true)
	r, logs := newRemote(t, keys.RemoteConfig{Issuer: srv.URL, JWKSURI: srv.JWKSURI(), MinRefresh: time.Millisecond})

	logs.waitLog(t, "jwks refresh failed", "500")
	if r.Ready() {
		t.Fatal("Ready() before any successful fetch")
	}
	for _, call := range []func(context.Context) (jwk.Set, error){r.Keys, r.Refresh} {
		if _, err := call(t.Context()); !errors.Is(err, token.ErrKeysUnavailable) {
			t.Errorf("error = %v, want ErrKeysUnavailable", err)
		}
	}
	st := r.Status()
	if st.Ready || st.Keys != 0 || !st.LastSuccess.IsZero() || st.LastError == nil || !strings.Contains(st.LastError.Error(), "500") {
		t.Errorf("Status() = %+v, want not ready, no keys, no success and a 500 error", st)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err := r.WaitReady(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "500") {
		t.Errorf("WaitReady = %v, want the deadline joined with the last fetch error (500)", err)
	}

	srv.Fail(false)
	if err := r.WaitReady(t.Context()); err != nil {
		t.Fatalf("WaitReady after recovery: %v", err)
	}
	if set, err := r.Keys(t.Context()); err != nil || kids(t, set) != "k" {
		t.Errorf("Keys after recovery = %v, %v; want k", set, err)
	}
	if st := r.Status(); !st.Ready || st.Keys != 1 || st.LastError != nil || st.LastSuccess.IsZero() {
		t.Errorf("Status() after recovery = %+v, want ready with 1 key and no error", st)
	}
}

func TestRemoteDiscoveryIssuerMismatchRejected(t *testing.T) {
	k := tokentest.NewECKey(t, "k")
	srv := tokentest.NewJWKSServer(t, k)
	srv.SetIssuer("https://impostor.example.com")
	r, logs := newRemote(t, keys.RemoteConfig{Issuer: srv.URL})

	logs.waitLog(t, "jwks refresh failed", "impostor.example.com")
	if r.Ready() {
		t.Error("Ready() after a mismatched discovery document")
	}
	if _, err := r.Keys(t.Context()); !errors.Is(err, token.ErrKeysUnavailable) {
		t.Errorf("Keys error = %v, want ErrKeysUnavailable", err)
	}
	if got := srv.Requests(); got != 0 {
		t.Errorf("JWKS requests = %d, want 0: the jwks_uri of a mismatched document must not be used", got)
	}
}

func TestRemoteFailedFetchKeepsLastGoodSet(t *testing.T) {
	good, next := tokentest.NewECKey(t, "good"), tokentest.NewECKey(t, "next")
	tests := []struct {
		name      string
		discovery bool
		break_    func(*tokentest.JWKSServer)
		wantErr   string
	}{
		{"server error", false, func(s *tokentest.JWKSServer) { s.Fail(true) }, "500"},
		{"garbage", false, func(s *tokentest.JWKSServer) { s.SetMode(tokentest.ServeGarbage) }, "invalid character"},
		{"body over 1 MiB", false, func(s *tokentest.JWKSServer) { s.SetMode(tokentest.ServeOversized) }, "larger than"},
		{"slower than the timeout", false, func(s *tokentest.JWKSServer) { s.SetDelay(time.Minute) }, "exceeded"},
		{"empty key set", false, func(s *tokentest.JWKSServer) { s.SetKeys() }, "no usable"},
		{"only a symmetric key", false, func(s *tokentest.JWKSServer) {
			s.SetKeys(tokentest.NewKeyFrom(t, []byte("0123456789abcdef0123456789abcdef"), "next", "HS256"))
		}, "no usable"},
		{"discovery fails", true, func(s *tokentest.JWKSServer) { s.Fail(true) }, "discovery"},
		{"discovery names another issuer", true, func(s *tokentest.JWKSServer) { s.SetIssuer("https://impostor.example.com") }, "impostor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := tokentest.NewJWKSServer(t, good)
			client, err := keys.NewHTTPClient(keys.FetchOptions{Timeout: 100 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			cfg := keys.RemoteConfig{Issuer: srv.URL, JWKSURI: srv.JWKSURI(), HTTPClient: client, MinRefresh: time.Millisecond}
			if tt.discovery {
				cfg.JWKSURI = ""
			}
			r, logs := newRemote(t, cfg)
			waitReady(t, r)
			before := srv.Requests() + srv.DiscoveryRequests()
			success := r.Status().LastSuccess

			tt.break_(srv)
			set, err := r.Refresh(t.Context())
			if err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			if srv.Requests()+srv.DiscoveryRequests() == before {
				t.Fatal("Refresh did not fetch")
			}
			if got := kids(t, set); got != "good" {
				t.Errorf("Refresh returned %s, want the last good set (good)", got)
			}
			if set, _ := r.Keys(t.Context()); kids(t, set) != "good" {
				t.Errorf("Keys returned %s, want the last good set (good)", kids(t, set))
			}
			st := r.Status()
			if !st.Ready || st.Keys != 1 || st.LastError == nil || !strings.Contains(st.LastError.Error(), tt.wantErr) {
				t.Errorf("Status() = %+v, want ready with 1 key and an error mentioning %q", st, tt.wantErr)
			}
			if !st.LastSuccess.Equal(success) || !st.LastAttempt.After(success) {
				t.Errorf("Status() = %+v, want LastSuccess unchanged (%v) and a later LastAttempt", st, success)
			}
			text := logs.waitLog(t, "jwks refresh failed", tt.wantErr)
			for _, want := range []string{"issuer=" + srv.URL, "keys=1", "last_success="} {
				if !strings.Contains(text, want) {
					t.Errorf("failure log %q lacks %q", text, want)
				}
			}

			srv.Fail(false)
			srv.SetMode(tokentest.ServeKeys)
			srv.SetDelay(0)
			srv.SetIssuer(srv.URL)
			srv.SetKeys(next)
			eventually(t, "the recovered server's keys", func() bool {
				set, _ := r.Refresh(t.Context())
				return kids(t, set) == "next"
			})
			if st := r.Status(); st.LastError != nil || !st.LastSuccess.After(success) {
				t.Errorf("Status() after recovery = %+v, want no error and a new LastSuccess", st)
			}
		})
	}
}

func TestRemoteRefreshIsCoalescedAndRateLimited(t *testing.T) {
	k1, k2 := tokentest.NewECKey(t, "k1"), tokentest.NewECKey(t, "k2")
	srv := tokentest.NewJWKSServer(t, k1)
	r, _ := newRemote(t, keys.RemoteConfig{Issuer: srv.URL, JWKSURI: srv.JWKSURI(), MinRefresh: time.Hour})
	waitReady(t, r)
	before := srv.Requests()
	srv.SetKeys(k1, k2)

	// A bound on each call turns a stuck fetcher into a failure.
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	const callers = 50
	results := make([]string, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range callers {
		wg.Go(func() {
			<-start
			set, err := r.Refresh(ctx)
			errs[i] = err
			if err == nil {
				results[i] = kids(t, set)
			}
		})
	}
	close(start)
	wg.Wait()

	if got := srv.Requests() - before; got != 1 {
		t.Errorf("%d concurrent Refresh calls made %d fetches, want 1", callers, got)
	}
	for i := range callers {
		if errs[i] != nil || results[i] != "k1,k2" {
			t.Errorf("caller %d got %q, %v; want the refreshed set k1,k2", i, results[i], errs[i])
		}
	}

	srv.SetKeys(k2)
	if set, _ := r.Refresh(t.Context()); kids(t, set) != "k1,k2" {
		t.Errorf("Refresh within MinRefresh returned %s, want the current set k1,k2", kids(t, set))
	}
	if got := srv.Requests() - before; got != 1 {
		t.Errorf("fetches after a Refresh within MinRefresh = %d, want still 1", got)
	}
}

func TestRemoteUnknownKIDRefreshAcceptsRotatedKey(t *testing.T) {
	old, rotated := tokentest.NewRSAKey(t, "old"), tokentest.NewRSAKey(t, "rotated")
	srv := tokentest.NewJWKSServer(t, old)
	r, _ := newRemote(t, keys.RemoteConfig{Issuer: srv.URL})
	waitReady(t, r)
	v, err := token.NewVerifier([]token.Issuer{{Issuer: srv.URL, Audiences: []string{"api"}, Keys: r}})
	if err != nil {
		t.Fatal(err)
	}

	srv.SetKeys(old, rotated)
	tok, err := v.Verify(t.Context(), tokentest.Mint(t, rotated, tokentest.Claims(srv.URL, "api", time.Hour)))
	if err != nil {
		t.Fatalf("Verify with a key published after start-up: %v", err)
	}
	if tok.KeyID != "rotated" {
		t.Errorf("KeyID = %q, want rotated", tok.KeyID)
	}
}

// refusingTransport fails every request, so tests of URL rules never reach
// the network.
type refusingTransport struct{}

func (refusingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("test transport refuses all requests")
}

func TestNewRemoteURLRules(t *testing.T) {
	tests := []struct {
		name    string
		cfg     keys.RemoteConfig
		wantErr bool
	}{
		{"http JWKS URI on a public host", keys.RemoteConfig{JWKSURI: "http://id.example.com/jwks.json"}, true},
		{"http issuer for discovery on a public host", keys.RemoteConfig{Issuer: "http://id.example.com"}, true},
		{"http on a private address", keys.RemoteConfig{JWKSURI: "http://10.0.0.1/jwks.json"}, true},
		{"http on a name that only starts with localhost", keys.RemoteConfig{JWKSURI: "http://localhost.example.com/jwks.json"}, true},
		{"unsupported scheme", keys.RemoteConfig{JWKSURI: "file:///etc/jwks.json"}, true},
		{"no host", keys.RemoteConfig{JWKSURI: "https:///jwks.json"}, true},
		{"neither JWKS URI nor issuer", keys.RemoteConfig{}, true},
		{"negative MinRefresh", keys.RemoteConfig{JWKSURI: "https://id.example.com/jwks.json", MinRefresh: -time.Second}, true},
		{"unknown discovery", keys.RemoteConfig{Issuer: "https://id.example.com", Discovery: "saml"}, true},
		{"issuer with a query for discovery", keys.RemoteConfig{Issuer: "https://id.example.com/?tenant=a"}, true},
		{"issuer with a fragment for discovery", keys.RemoteConfig{Issuer: "https://id.example.com/#a"}, true},
		{"MaxRefresh below MinRefresh", keys.RemoteConfig{JWKSURI: "https://id.example.com/jwks.json", MinRefresh: time.Minute, MaxRefresh: time.Second}, true},
		{"negative MaxRefresh", keys.RemoteConfig{JWKSURI: "https://id.example.com/jwks.json", MaxRefresh: -time.Second}, true},
		{"https", keys.RemoteConfig{JWKSURI: "https://id.example.com/jwks.json"}, false},
		{"RFC 8414 discovery", keys.RemoteConfig{Issuer: "https://id.example.com/t1", Discovery: keys.DiscoveryOAuth}, false},
		{"MinRefresh above the default MaxRefresh", keys.RemoteConfig{JWKSURI: "https://id.example.com/jwks.json", MinRefresh: 2 * time.Hour}, false},
		{"http on 127.0.0.0/8", keys.RemoteConfig{JWKSURI: "http://127.1.2.3:8080/jwks.json"}, false},
		{"http on ::1", keys.RemoteConfig{JWKSURI: "http://[::1]:8080/jwks.json"}, false},
		{"http on localhost", keys.RemoteConfig{Issuer: "http://localhost:8080"}, false},
		{"http on a public host with AllowInsecureHTTP", keys.RemoteConfig{JWKSURI: "http://id.example.com/jwks.json", AllowInsecureHTTP: true}, false},
		{"issuer is only a name when the JWKS URI is set", keys.RemoteConfig{Issuer: "urn:example:issuer", JWKSURI: "https://id.example.com/jwks.json"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.HTTPClient = &http.Client{Transport: refusingTransport{}}
			r, err := keys.NewRemote(t.Context(), tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("NewRemote error = %v, want error: %v", err, tt.wantErr)
			}
			if err == nil {
				if err := r.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}
		})
	}
}

func TestRemoteRefusesInsecureURLsFromTheNetwork(t *testing.T) {
	k := tokentest.NewECKey(t, "k")
	tests := []struct {
		name    string
		handler func(self *string) http.Handler
		cfg     func(url string) keys.RemoteConfig
		wantLog string
		logMsg  string
	}{
		{
			name: "discovered jwks_uri over http to a public host",
			handler: func(self *string) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					w.Write([]byte(`{"issuer":"` + *self + `","jwks_uri":"http://id.example.com/jwks.json"}`))
				})
			},
			cfg:     func(url string) keys.RemoteConfig { return keys.RemoteConfig{Issuer: url} },
			logMsg:  "jwks refresh failed",
			wantLog: "loopback",
		},
		{
			name: "redirect to http on a public host",
			handler: func(*string) http.Handler {
				return http.RedirectHandler("http://id.example.com/jwks.json", http.StatusFound)
			},
			cfg:     func(url string) keys.RemoteConfig { return keys.RemoteConfig{JWKSURI: url + "/jwks.json"} },
			logMsg:  "jwks refresh failed",
			wantLog: "redirect",
		},
		{
			name: "JWKS body over 1 MiB",
			handler: func(*string) http.Handler {
				body := `{"keys":[` + strings.Repeat(" ", 1<<20) + string(tokentest.JWKS(t, k)[len(`{"keys":[`):])
				return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(body)) })
			},
			cfg:     func(url string) keys.RemoteConfig { return keys.RemoteConfig{JWKSURI: url + "/jwks.json"} },
			logMsg:  "jwks refresh failed",
			wantLog: "larger than",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var self string
			srv := httptest.NewServer(tt.handler(&self))
			t.Cleanup(srv.Close)
			self = srv.URL
			r, logs := newRemote(t, tt.cfg(srv.URL))
			logs.waitLog(t, tt.logMsg, tt.wantLog)
			if r.Ready() {
				t.Error("Ready() although the keys came from a refused source")
			}
		})
	}
}

func TestRemoteCloseStopsFetching(t *testing.T) {
	k := tokentest.NewECKey(t, "k")
	srv := tokentest.NewJWKSServer(t, k)
	r, err := keys.NewRemote(t.Context(), keys.RemoteConfig{JWKSURI: srv.JWKSURI(), MinRefresh: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	waitReady(t, r)
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	before := srv.Requests()
	set, err := r.Refresh(t.Context())
	if err != nil || kids(t, set) != "k" {
		t.Errorf("Refresh after Close = %v, %v; want the last set", set, err)
	}
	if srv.Requests() != before {
		t.Error("Refresh after Close fetched")
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestNewFile(t *testing.T) {
	rsa, ec := tokentest.NewRSAKey(t, "rsa"), tokentest.NewECKey(t, "ec")
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	privateSet := jwk.NewSet()
	if err := privateSet.AddKey(ec.Private); err != nil {
		t.Fatal(err)
	}
	encKey, err := rsa.Public.Clone()
	if err != nil {
		t.Fatal(err)
	}
	encSet := jwk.NewSet()
	if err := errors.Join(encKey.Set(jwk.KeyUsageKey, "enc"), encSet.AddKey(encKey)); err != nil {
		t.Fatal(err)
	}
	unsupported := `{"keys":[{"kty":"AKP","alg":"ML-DSA-44","kid":"pq","pub":"AAAA"},` + string(tokentest.JWKS(t, ec)[len(`{"keys":[`):])

	tests := []struct {
		name     string
		path     string
		wantKIDs string
		wantErr  string
	}{
		{"public keys", tokentest.WriteJWKSFile(t, dir, rsa, ec), "rsa,ec", ""},
		{"private keys are reduced to public", write("private.json", mustJSON(t, privateSet)), "ec", ""},
		{"unparseable entries are skipped", write("pq.json", unsupported), "ec", ""},
		{"missing file", filepath.Join(dir, "missing.json"), "", "missing.json"},
		{"not JSON", write("bad.json", "not json"), "", "bad.json"},
		{"empty set", write("empty.json", `{"keys":[]}`), "", "no usable"},
		{"only an encryption key", write("enc.json", mustJSON(t, encSet)), "", "no usable"},
		{"only a symmetric key", write("oct.json", string(tokentest.JWKS(t, tokentest.NewKeyFrom(t, []byte("0123456789abcdef"), "s", "HS256")))), "", "no usable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := keys.NewFile(tt.path, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NewFile error = %v, want one mentioning %q", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.path) {
					t.Errorf("error %q does not name the path", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewFile: %v", err)
			}
			t.Cleanup(func() { f.Close() })
			for _, get := range []func(context.Context) (jwk.Set, error){f.Keys, f.Refresh} {
				set, err := get(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if got := kids(t, set); got != tt.wantKIDs {
					t.Errorf("key IDs = %s, want %s", got, tt.wantKIDs)
				}
				for i := range set.Len() {
					k, _ := set.Key(i)
					if private, err := jwk.IsPrivateKey(k); err != nil || private {
						t.Errorf("key %d is private (%v, %v)", i, private, err)
					}
				}
			}
		})
	}
}

func mustJSON(t *testing.T, set jwk.Set) string {
	t.Helper()
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
