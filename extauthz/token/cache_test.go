package token_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// cacheFixture is a Cache over a Verifier for issuer A, whose keys come
// from src.
type cacheFixture struct {
	v     *token.Verifier
	c     *token.Cache
	src   *fakeSource
	clock *fakeClock
	key   *tokentest.Key // in src's set
}

func newCacheFixture(t testing.TB, cfg token.CacheConfig) *cacheFixture {
	t.Helper()
	f := &cacheFixture{clock: newFakeClock(now), key: tokentest.NewECKey(t, "ec-1")}
	f.src = &fakeSource{set: publicSet(t, f.key)}
	v, err := token.NewVerifier([]token.Issuer{{
		Issuer:    issA,
		Audiences: []string{audience},
		ClockSkew: skew,
		Keys:      f.src,
	}}, token.WithClock(f.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	f.v = v
	f.c = token.NewCache(v, cfg)
	return f
}

func (f *cacheFixture) mint(t testing.TB, set map[string]any) string {
	t.Helper()
	return tokentest.Mint(t, f.key, claims(issA, set))
}

func (f *cacheFixture) setKeys(set jwk.Set) {
	f.src.mu.Lock()
	f.src.set = set
	f.src.mu.Unlock()
}

func (f *cacheFixture) setKeysErr(err error) {
	f.src.mu.Lock()
	f.src.err = err
	f.src.mu.Unlock()
}

func TestCacheHitReturnsTheVerifiedToken(t *testing.T) {
	f := newCacheFixture(t, token.DefaultCacheConfig())
	raw := f.mint(t, nil)
	first, err := f.c.Verify(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	second, err := f.c.Verify(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	// Verify builds a new Token each time; the same pointer is a hit.
	if first != second {
		t.Error("second Verify returned a different Token: not a hit")
	}
	if second.Claims["jti"] != first.Claims["jti"] || second.Issuer != issA || second.KeyID != "ec-1" {
		t.Errorf("hit returned %+v", second)
	}
	st := f.c.Stats()
	if st.Hits != 1 || st.Misses != 1 || st.Entries != 1 || st.Bytes <= 0 {
		t.Errorf("stats = %+v, want 1 hit, 1 miss, 1 entry", st)
	}
	if strings.Contains(fmt.Sprintf("%+v", st), raw) {
		t.Error("stats mention the token")
	}
}

// TestCacheHitNeverOutlivesVerify changes time or keys after a token was
// cached and expects the cache to answer exactly as the Verifier does now.
func TestCacheHitNeverOutlivesVerify(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, f *cacheFixture)
		reason string // "" means still accepted
	}{
		{"unchanged", func(*testing.T, *cacheFixture) {}, ""},
		{"within clock skew after exp", func(_ *testing.T, f *cacheFixture) {
			f.clock.Advance(time.Hour + skew/2)
		}, ""},
		{"past exp plus skew", func(_ *testing.T, f *cacheFixture) {
			f.clock.Advance(time.Hour + skew)
		}, "token_expired"},
		{"clock moved back before nbf", func(_ *testing.T, f *cacheFixture) {
			f.clock.Advance(-2 * time.Minute)
		}, "token_not_yet_valid"},
		{"key removed from the set", func(t *testing.T, f *cacheFixture) {
			f.setKeys(publicSet(t, tokentest.NewECKey(t, "ec-2")))
		}, "key_unknown"},
		{"key replaced under the same kid", func(t *testing.T, f *cacheFixture) {
			f.setKeys(publicSet(t, tokentest.NewECKey(t, "ec-1")))
		}, "signature_invalid"},
		{"key republished for encryption", func(t *testing.T, f *cacheFixture) {
			f.setKeys(setOf(t, withJWK(t, f.key, jwk.KeyUsageKey, "enc")))
		}, "key_unknown"},
		{"key republished for another algorithm", func(t *testing.T, f *cacheFixture) {
			f.setKeys(setOf(t, withJWK(t, f.key, jwk.AlgorithmKey, "ES384")))
		}, "algorithm_not_allowed"},
		{"key set rebuilt with the same key", func(t *testing.T, f *cacheFixture) {
			c, err := f.key.Public.Clone()
			if err != nil {
				t.Fatal(err)
			}
			f.setKeys(setOf(t, c))
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCacheFixture(t, token.DefaultCacheConfig())
			raw := f.mint(t, map[string]any{"nbf": now.Add(-time.Minute).Unix()})
			cached, err := f.c.Verify(context.Background(), raw)
			if err != nil {
				t.Fatal(err)
			}
			tt.change(t, f)
			_, want := f.v.Verify(context.Background(), raw)
			if got := reasonOf(want); got != tt.reason {
				t.Fatalf("setup: Verifier says %q, want %q", got, tt.reason)
			}
			tok, err := f.c.Verify(context.Background(), raw)
			if reasonOf(err) != tt.reason {
				t.Fatalf("cache says %q (%v), want %q", reasonOf(err), err, tt.reason)
			}
			if err != nil {
				if tok != nil {
					t.Error("rejection came with a token")
				}
				if err.Error() != want.Error() {
					t.Errorf("cache error %q, Verifier error %q", err, want)
				}
				if st := f.c.Stats(); st.Hits != 0 {
					t.Errorf("stats = %+v, want no hit", st)
				}
				return
			}
			if tt.name == "unchanged" && tok != cached {
				t.Error("unchanged: not a hit")
			}
		})
	}
}

func reasonOf(err error) string {
	if err == nil {
		return ""
	}
	return token.Reason(err)
}

func TestCacheMaxTTL(t *testing.T) {
	cfg := token.DefaultCacheConfig()
	cfg.MaxTTL = time.Minute
	f := newCacheFixture(t, cfg)
	raw := f.mint(t, nil) // exp in an hour
	first, err := f.c.Verify(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(59 * time.Second)
	if tok, _ := f.c.Verify(context.Background(), raw); tok != first {
		t.Fatal("not a hit within MaxTTL")
	}
	f.clock.Advance(time.Second)
	tok, err := f.c.Verify(context.Background(), raw)
	if err != nil || tok == first {
		t.Fatalf("after MaxTTL: %v, hit %v; want a fresh verification", err, tok == first)
	}
	if st := f.c.Stats(); st.Misses != 2 || st.Hits != 1 || st.Entries != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestCacheTamperedTokenIsAnotherKey(t *testing.T) {
	f := newCacheFixture(t, token.DefaultCacheConfig())
	raw := f.mint(t, nil)
	if _, err := f.c.Verify(context.Background(), raw); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(raw, ".")
	other := strings.Split(f.mint(t, map[string]any{"sub": "admin"}), ".")
	tampered := parts[0] + "." + other[1] + "." + parts[2]
	_, err := f.c.Verify(context.Background(), tampered)
	if !errors.Is(err, token.ErrSignature) {
		t.Fatalf("tampered token: %v, want signature_invalid", err)
	}
	if st := f.c.Stats(); st.Hits != 0 || st.Misses != 2 {
		t.Errorf("stats = %+v, want 2 misses", st)
	}
}

func TestCacheBounds(t *testing.T) {
	// Bytes one entry of this fixture's tokens takes.
	probe := newCacheFixture(t, token.DefaultCacheConfig())
	if _, err := probe.c.Verify(context.Background(), probe.mint(t, nil)); err != nil {
		t.Fatal(err)
	}
	per := probe.c.Stats().Bytes

	tests := []struct {
		name       string
		cfg        token.CacheConfig
		maxEntries int64
	}{
		{"MaxEntries, one shard", token.CacheConfig{MaxEntries: 50}, 50},
		{"MaxEntries, sharded", token.CacheConfig{MaxEntries: 1000}, 1000},
		{"MaxBytes", token.CacheConfig{MaxEntries: 1000, MaxBytes: 40 * per}, 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCacheFixture(t, tt.cfg)
			maxBytes := tt.cfg.MaxBytes
			if maxBytes == 0 {
				maxBytes = token.DefaultCacheMaxBytes
			}
			n := 3 * int(tt.maxEntries)
			for i := range n {
				if _, err := f.c.Verify(context.Background(), f.mint(t, nil)); err != nil {
					t.Fatal(err)
				}
				if st := f.c.Stats(); st.Entries > tt.maxEntries || st.Bytes > maxBytes {
					t.Fatalf("after %d tokens: stats = %+v, bounds %d entries, %d bytes", i+1, st, tt.maxEntries, maxBytes)
				}
			}
			st := f.c.Stats()
			if st.Evictions == 0 || st.Entries < tt.maxEntries/2 {
				t.Errorf("stats = %+v: want evictions and a mostly full cache", st)
			}
			if st.Evictions+uint64(st.Entries) != uint64(n) {
				t.Errorf("stats = %+v: evictions and entries do not add up to %d", st, n)
			}
		})
	}
}

func TestCacheNegative(t *testing.T) {
	const negTTL = 10 * time.Second
	tests := []struct {
		name   string
		token  func(t *testing.T, f *cacheFixture) string
		setup  func(t *testing.T, f *cacheFixture) // before the first Verify
		reason string
		cached bool
	}{
		{"signature invalid", func(t *testing.T, f *cacheFixture) string {
			return resign(t, f.mint(t, nil), tokentest.NewECKey(t, "ec-1"))
		}, nil, "signature_invalid", true},
		{"expired", func(t *testing.T, f *cacheFixture) string {
			return f.mint(t, map[string]any{"exp": now.Add(-time.Hour).Unix()})
		}, nil, "token_expired", true},
		{"audience mismatch", func(t *testing.T, f *cacheFixture) string {
			return f.mint(t, map[string]any{"aud": "api://other"})
		}, nil, "audience_mismatch", true},
		{"malformed", func(*testing.T, *cacheFixture) string { return "not.a.token" }, nil, "token_malformed", true},
		{"not yet valid: time cures it", func(t *testing.T, f *cacheFixture) string {
			return f.mint(t, map[string]any{"nbf": now.Add(time.Hour).Unix()})
		}, nil, "token_not_yet_valid", false},
		{"keys unavailable", func(t *testing.T, f *cacheFixture) string { return f.mint(t, nil) },
			func(_ *testing.T, f *cacheFixture) {
				f.setKeysErr(fmt.Errorf("%w: never loaded", token.ErrKeysUnavailable))
			}, "issuer_keys_unavailable", false},
		{"context canceled", func(t *testing.T, f *cacheFixture) string { return f.mint(t, nil) },
			func(_ *testing.T, f *cacheFixture) { f.setKeysErr(context.Canceled) }, "internal_error", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := token.DefaultCacheConfig()
			cfg.NegativeTTL = negTTL
			f := newCacheFixture(t, cfg)
			raw := tt.token(t, f)
			if tt.setup != nil {
				tt.setup(t, f)
			}
			ctx, cancel := context.WithCancel(context.Background())
			if tt.reason == "internal_error" {
				cancel()
			}
			defer cancel()
			_, first := f.c.Verify(ctx, raw)
			if reasonOf(first) != tt.reason {
				t.Fatalf("first: %v (%s), want %s", first, reasonOf(first), tt.reason)
			}
			_, second := f.c.Verify(ctx, raw)
			if reasonOf(second) != tt.reason || second.Error() != first.Error() {
				t.Fatalf("second: %v, want the same as %v", second, first)
			}
			st := f.c.Stats()
			if !tt.cached {
				if st.NegativeHits != 0 || st.Entries != 0 || st.Misses != 2 {
					t.Fatalf("stats = %+v, want nothing cached", st)
				}
				return
			}
			if second != first || st.NegativeHits != 1 || st.Misses != 1 || st.Entries != 1 {
				t.Fatalf("stats = %+v, same error %v: want a negative hit with the same error", st, second == first)
			}
			f.clock.Advance(negTTL)
			_, third := f.c.Verify(ctx, raw)
			if reasonOf(third) != tt.reason || third == first {
				t.Fatalf("after NegativeTTL: %v, want a fresh %s", third, tt.reason)
			}
			if st := f.c.Stats(); st.Misses != 2 || st.NegativeHits != 1 {
				t.Errorf("stats = %+v", st)
			}
		})
	}
}

func TestCacheNegativeDisabled(t *testing.T) {
	f := newCacheFixture(t, token.CacheConfig{})
	raw := f.mint(t, map[string]any{"aud": "api://other"})
	for range 3 {
		if _, err := f.c.Verify(context.Background(), raw); !errors.Is(err, token.ErrAudience) {
			t.Fatal(err)
		}
	}
	if st := f.c.Stats(); st.NegativeHits != 0 || st.Misses != 3 || st.Entries != 0 {
		t.Errorf("stats = %+v", st)
	}
}

// TestCacheKeysUnavailableThenAvailable: a 503 is never remembered, so the
// token is accepted as soon as the keys load.
func TestCacheKeysUnavailableThenAvailable(t *testing.T) {
	f := newCacheFixture(t, token.DefaultCacheConfig())
	raw := f.mint(t, nil)
	f.setKeysErr(fmt.Errorf("%w: never loaded", token.ErrKeysUnavailable))
	if _, err := f.c.Verify(context.Background(), raw); !errors.Is(err, token.ErrKeysUnavailable) {
		t.Fatal(err)
	}
	f.setKeysErr(nil)
	if _, err := f.c.Verify(context.Background(), raw); err != nil {
		t.Fatal(err)
	}
}

// TestCacheNegativeDoesNotEvictPositive: a flood of bad tokens leaves
// verified ones cached.
func TestCacheNegativeDoesNotEvictPositive(t *testing.T) {
	cfg := token.DefaultCacheConfig()
	cfg.MaxEntries = 16
	f := newCacheFixture(t, cfg)
	var good []string
	for range 16 {
		raw := f.mint(t, nil)
		good = append(good, raw)
		if _, err := f.c.Verify(context.Background(), raw); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 {
		if _, err := f.c.Verify(context.Background(), fmt.Sprintf("bad.token.%d", i)); err == nil {
			t.Fatal("bad token accepted")
		}
	}
	before := f.c.Stats().Hits
	for _, raw := range good {
		if _, err := f.c.Verify(context.Background(), raw); err != nil {
			t.Fatal(err)
		}
	}
	if st := f.c.Stats(); st.Hits-before != 16 || st.Entries > 16 {
		t.Errorf("stats = %+v, want 16 more hits", st)
	}
}

func TestCacheConcurrent(t *testing.T) {
	cfg := token.DefaultCacheConfig()
	cfg.MaxEntries = 64 // smaller than the token set: evictions race with hits
	f := newCacheFixture(t, cfg)
	type tc struct {
		raw    string
		reason string
	}
	var cases []tc
	for i := range 100 {
		switch i % 4 {
		case 0:
			cases = append(cases, tc{f.mint(t, map[string]any{"aud": "api://other"}), "audience_mismatch"})
		case 1:
			cases = append(cases, tc{fmt.Sprintf("x.y.%d", i), "token_malformed"})
		default:
			cases = append(cases, tc{f.mint(t, nil), ""})
		}
	}
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	for g := range 16 {
		wg.Go(func() {
			for i := range 400 {
				c := cases[(g*7+i)%len(cases)]
				tok, err := f.c.Verify(context.Background(), c.raw)
				if reasonOf(err) != c.reason || (err == nil) != (tok != nil) {
					select {
					case errc <- fmt.Errorf("got %v, want %q", err, c.reason):
					default:
					}
					return
				}
				if tok != nil && tok.Issuer != issA {
					select {
					case errc <- fmt.Errorf("token for %q", tok.Issuer):
					default:
					}
					return
				}
				_ = f.c.Stats()
			}
		})
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	st := f.c.Stats()
	if st.Entries > 64 || st.Hits == 0 || st.NegativeHits == 0 {
		t.Errorf("stats = %+v", st)
	}
	t.Logf("stats = %+v", st)
}

// TestCacheMemoryStaysBounded sends 100,000 distinct valid tokens through
// a Cache bounded at 10,000 entries and checks that the heap stops growing
// once the cache is full. Set CLAIMCHECK_MEMTEST=1 to run it.
func TestCacheMemoryStaysBounded(t *testing.T) {
	if os.Getenv("CLAIMCHECK_MEMTEST") != "1" {
		t.Skip("set CLAIMCHECK_MEMTEST=1 to run")
	}
	const total, batch = 100_000, 25_000
	f := newCacheFixture(t, token.DefaultCacheConfig())
	goroutines := runtime.NumGoroutine()
	var heap []uint64
	start := time.Now()
	for done := 0; done < total; done += batch {
		raws := make([]string, batch)
		for i := range raws {
			raws[i] = f.mint(t, nil)
		}
		for _, raw := range raws {
			if _, err := f.c.Verify(context.Background(), raw); err != nil {
				t.Fatal(err)
			}
		}
		raws = nil
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heap = append(heap, ms.HeapInuse)
		st := f.c.Stats()
		t.Logf("%6d tokens: HeapInuse %6.1f MiB, HeapAlloc %6.1f MiB, VmRSS %s, entries %d, cache bytes %.1f MiB, evictions %d, %s",
			done+batch, mib(ms.HeapInuse), mib(ms.HeapAlloc), vmRSS(), st.Entries, float64(st.Bytes)/(1<<20), st.Evictions,
			time.Since(start).Round(time.Millisecond))
		if st.Entries > token.DefaultCacheMaxEntries {
			t.Errorf("%d entries, bound %d", st.Entries, token.DefaultCacheMaxEntries)
		}
	}
	if last := heap[len(heap)-1]; float64(last) > 1.5*float64(heap[0]) {
		t.Errorf("HeapInuse grew from %.1f MiB at %d tokens to %.1f MiB at %d", mib(heap[0]), batch, mib(last), total)
	}
	if n := runtime.NumGoroutine(); n != goroutines {
		t.Errorf("goroutines: %d before, %d after", goroutines, n)
	}
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// vmRSS returns the VmRSS line of /proc/self/status, or "n/a".
func vmRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "n/a"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return "n/a"
}

func BenchmarkCacheVerify(b *testing.B) {
	for _, kind := range []string{"ES256", "RS256"} {
		b.Run(kind+"/hit", func(b *testing.B) {
			f := newCacheFixture(b, token.DefaultCacheConfig())
			if kind == "RS256" {
				f.key = tokentest.NewRSAKey(b, "rsa-1")
				f.setKeys(publicSet(b, f.key))
			}
			raw := f.mint(b, nil)
			if _, err := f.c.Verify(context.Background(), raw); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := f.c.Verify(context.Background(), raw); err != nil {
						b.Error(err)
						return
					}
				}
			})
			if st := f.c.Stats(); st.Misses != 1 {
				b.Errorf("stats = %+v, want only hits", st)
			}
		})
		b.Run(kind+"/uncached", func(b *testing.B) {
			f := newCacheFixture(b, token.DefaultCacheConfig())
			if kind == "RS256" {
				f.key = tokentest.NewRSAKey(b, "rsa-1")
				f.setKeys(publicSet(b, f.key))
			}
			raw := f.mint(b, nil)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.v.Verify(context.Background(), raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestMemoIsSharedByCacheHits: work derived from a verified token is done
// once, however many hits return it; a fresh verification starts anew.
func TestMemoIsSharedByCacheHits(t *testing.T) {
	f := newCacheFixture(t, token.CacheConfig{})
	raw := f.mint(t, nil)
	calls := 0
	derive := func() any { calls++; return calls }
	for range 3 {
		tok, err := f.c.Verify(context.Background(), raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := tok.Memo(derive); got != 1 {
			t.Fatalf("Memo = %v, want the first result", got)
		}
	}
	if calls != 1 {
		t.Errorf("derived %d times over 3 hits, want 1", calls)
	}
	if got := (&token.Token{}).Memo(derive); got != 2 {
		t.Errorf("a token not made by Verify: Memo = %v, want a fresh result", got)
	}
}
