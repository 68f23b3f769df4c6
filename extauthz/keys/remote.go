package keys

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/httprc/v3"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/claimcheck/claimcheck/extauthz/token"
)

var (
	_ token.KeySource = (*File)(nil)
	_ token.KeySource = (*Remote)(nil)
)

// Defaults for RemoteConfig.
const (
	DefaultRefreshInterval = 5 * time.Minute
	DefaultMinRefresh      = 30 * time.Second
	DefaultMaxRefresh      = time.Hour
)

// firstRetry is the first delay after a failure while the keys have never
// loaded, unless MinRefresh is shorter: a starting instance retries sooner
// than a running one.
const firstRetry = time.Second

// RemoteConfig configures a Remote.
type RemoteConfig struct {
	// Issuer is the issuer identifier. When JWKSURI is empty the JWKS URI
	// is found by discovery from it, and the discovery document must name
	// exactly this issuer.
	Issuer string
	// JWKSURI is the URL of the issuer's JWKS. It takes precedence over
	// discovery.
	JWKSURI string
	// Discovery is the kind of discovery document, DiscoveryOpenID or
	// DiscoveryOAuth; empty means DiscoveryOpenID. Unused with JWKSURI.
	Discovery string
	// HTTPClient makes the requests; nil means NewHTTPClient with
	// FetchOptions{AllowInsecureHTTP: AllowInsecureHTTP}. Remote uses a
	// copy whose redirects also obey AllowInsecureHTTP and which times out
	// after DefaultHTTPTimeout if the client has no timeout.
	HTTPClient *http.Client
	// RefreshInterval is the refresh period when a JWKS response has
	// neither a Cache-Control max-age nor an Expires header; zero means
	// DefaultRefreshInterval. It is kept within [MinRefresh, MaxRefresh]
	// like the header values.
	RefreshInterval time.Duration
	// MinRefresh is the shortest time until the next scheduled refresh
	// and between two refreshes for unknown key IDs (Refresh); it is also
	// the first delay after a failed refresh. Zero means DefaultMinRefresh.
	MinRefresh time.Duration
	// MaxRefresh is the longest time until the next refresh, whatever the
	// caching headers say, and the longest delay after failures. Zero
	// means the larger of DefaultMaxRefresh and MinRefresh.
	MaxRefresh time.Duration
	// AllowInsecureHTTP permits plain http to any host. Without it, http is
	// allowed only for loopback hosts (127.0.0.0/8, ::1, localhost).
	AllowInsecureHTTP bool
	// Logger receives one record per refresh; nil discards them.
	Logger *slog.Logger
	// OnRefresh, when set, is called after each refresh with its outcome:
	// RefreshSuccess, RefreshNotModified or RefreshError (e.g. to count
	// fetches in metrics). It runs on the refresh goroutine and must not
	// block.
	OnRefresh func(outcome string)
}

// Refresh outcomes, as given to RemoteConfig.OnRefresh.
const (
	RefreshSuccess     = "success"      // a key set was fetched and is current
	RefreshNotModified = "not_modified" // 304: the current set is still current
	RefreshError       = "error"        // the fetch (or discovery) failed; the last good set is kept
)

// Status describes the state of a Remote's keys.
type Status struct {
	// Ready reports whether keys have loaded at least once.
	Ready bool
	// Keys is the number of keys in the current set.
	Keys int
	// JWKSURI is the JWKS URL of the latest refresh: the configured one or
	// the one discovery gave. Empty until discovery first succeeds.
	JWKSURI string
	// LastAttempt is when the latest refresh started.
	LastAttempt time.Time
	// LastSuccess is when a refresh last succeeded (a 304 Not Modified
	// included).
	LastSuccess time.Time
	// LastError is the error of the latest refresh, nil if it succeeded.
	LastError error
	// NextRefresh is when the next scheduled refresh is due.
	NextRefresh time.Time
}

// Remote is a KeySource for a JWKS served over HTTP. Keys are fetched in
// the background: first right away, then as the response's Cache-Control
// max-age or Expires header says (RefreshInterval if it has neither), kept
// within [MinRefresh, MaxRefresh]. Refreshes are conditional (If-None-Match)
// when the server sent an ETag. A failed refresh keeps the last good set
// and is retried with exponential backoff and jitter, from MinRefresh up to
// MaxRefresh. With discovery, the discovery document is read again before
// every JWKS fetch, so a changed jwks_uri is followed. Remote is safe for
// concurrent use.
type Remote struct {
	cfg     RemoteConfig
	log     *slog.Logger
	client  *http.Client
	discURL string // discovery document URL; empty with a configured JWKSURI

	keys   atomic.Pointer[loadedSet]
	ready  chan struct{} // closed when keys first load and their status is recorded
	kick   chan struct{} // asks run for a refresh now; buffered
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns

	readyOnce sync.Once // closes ready

	// Owned by run.
	res      *httprc.ResourceBase[jwk.Set]
	fetch    *jwksFetch
	failures int // consecutive failed refreshes

	mu         sync.Mutex
	status     Status // but Ready and Keys, which come from keys
	stopped    bool
	pending    chan struct{} // closed when the refresh Refresh asked for ends
	lastForced time.Time
}

// loadedSet holds a key set for an atomic.Pointer.
type loadedSet struct{ set jwk.Set }

// NewRemote validates cfg and starts fetching keys in the background; it
// does not wait for them (see WaitReady). Until the first fetch succeeds,
// Keys returns an error wrapping token.ErrKeysUnavailable. Background work
// stops when ctx is done or Close is called.
func NewRemote(ctx context.Context, cfg RemoteConfig) (*Remote, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	r := &Remote{
		cfg:   cfg,
		log:   cfg.Logger,
		ready: make(chan struct{}),
		kick:  make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if cfg.JWKSURI == "" {
		if err := checkURL(cfg.Issuer, cfg.AllowInsecureHTTP); err != nil {
			return nil, fmt.Errorf("jwks: issuer %s: %w", cfg.Issuer, err)
		}
		u, err := discoveryURL(cfg.Issuer, cfg.Discovery)
		if err != nil {
			return nil, fmt.Errorf("jwks: issuer %s: %w", cfg.Issuer, err)
		}
		r.discURL = u
	} else {
		if err := checkURL(cfg.JWKSURI, cfg.AllowInsecureHTTP); err != nil {
			return nil, fmt.Errorf("jwks %s: %w", cfg.JWKSURI, err)
		}
		r.status.JWKSURI = cfg.JWKSURI
	}
	var err error
	if r.client, err = r.httpClient(); err != nil {
		return nil, err
	}
	ctx, r.cancel = context.WithCancel(ctx)
	go r.run(ctx)
	return r, nil
}

func (c *RemoteConfig) setDefaults() error {
	if c.JWKSURI == "" && c.Issuer == "" {
		return errors.New("jwks: need a JWKS URI or an issuer for discovery")
	}
	if c.RefreshInterval < 0 || c.MinRefresh < 0 || c.MaxRefresh < 0 {
		return errors.New("jwks: negative refresh interval")
	}
	if c.Discovery == "" {
		c.Discovery = DiscoveryOpenID
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = DefaultRefreshInterval
	}
	if c.MinRefresh == 0 {
		c.MinRefresh = DefaultMinRefresh
	}
	if c.MaxRefresh == 0 {
		c.MaxRefresh = max(DefaultMaxRefresh, c.MinRefresh)
	}
	if c.MaxRefresh < c.MinRefresh {
		return fmt.Errorf("jwks: MaxRefresh %s is less than MinRefresh %s", c.MaxRefresh, c.MinRefresh)
	}
	return nil
}

// httpClient returns a copy of the configured client whose redirects obey
// the URL rules.
func (r *Remote) httpClient() (*http.Client, error) {
	c := r.cfg.HTTPClient
	if c == nil {
		var err error
		if c, err = NewHTTPClient(FetchOptions{AllowInsecureHTTP: r.cfg.AllowInsecureHTTP}); err != nil {
			return nil, fmt.Errorf("jwks: %w", err)
		}
	}
	cp := *c
	if cp.Timeout == 0 {
		cp.Timeout = DefaultHTTPTimeout
	}
	next, insecure := c.CheckRedirect, r.cfg.AllowInsecureHTTP
	cp.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if err := checkRedirect(req, via, insecure); err != nil {
			return err
		}
		if next != nil {
			return next(req, via)
		}
		return nil
	}
	return &cp, nil
}

// run refreshes the keys when they are due or Refresh asks, until ctx
// ends.
func (r *Remote) run(ctx context.Context) {
	defer close(r.done)
	defer func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.stopped = true
		if r.pending != nil {
			close(r.pending)
			r.pending = nil
		}
	}()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-r.kick:
		}
		// This refresh serves a waiting Refresh, whatever woke us.
		r.mu.Lock()
		served := r.pending
		select {
		case <-r.kick:
		default:
		}
		r.mu.Unlock()

		next := r.refresh(ctx)

		if served != nil {
			r.mu.Lock()
			if r.pending == served {
				r.pending = nil
			}
			r.mu.Unlock()
			close(served)
		}
		if ctx.Err() != nil {
			return
		}
		timer.Reset(time.Until(next))
	}
}

// refresh fetches the keys once, records and logs the outcome and returns
// when the next refresh is due.
func (r *Remote) refresh(ctx context.Context) time.Time {
	start := time.Now()
	r.mu.Lock()
	r.status.LastAttempt = start
	r.mu.Unlock()

	uri, notModified, err := r.fetchKeys(ctx)
	if ctx.Err() != nil {
		return start // stopping; nothing to record
	}
	now := time.Now()
	var next time.Time
	if err == nil {
		r.failures = 0
		if r.fetch.cached {
			next = r.res.Next() // from the caching headers, within [MinRefresh, MaxRefresh]
		} else {
			next = now.Add(min(max(r.cfg.RefreshInterval, r.cfg.MinRefresh), r.cfg.MaxRefresh))
		}
	} else {
		r.failures++
		base := r.cfg.MinRefresh
		if r.keys.Load() == nil {
			base = min(base, firstRetry)
		}
		next = now.Add(backoff(base, r.cfg.MaxRefresh, r.failures))
	}

	r.mu.Lock()
	if uri != "" {
		r.status.JWKSURI = uri
	}
	r.status.LastError = err
	if err == nil {
		r.status.LastSuccess = now
	}
	r.status.NextRefresh = next
	lastSuccess := r.status.LastSuccess
	r.mu.Unlock()
	if err == nil {
		// Only now, so that WaitReady's callers see the status of the fetch.
		r.readyOnce.Do(func() { close(r.ready) })
	}

	n := 0
	if l := r.keys.Load(); l != nil {
		n = l.set.Len()
	}
	attrs := []any{
		"issuer", r.name(), "jwks_uri", uri, "keys", n,
		"last_success", timeOrNever(lastSuccess), "next_refresh_in", next.Sub(now).Round(time.Millisecond),
	}
	if err != nil {
		r.log.Warn("jwks refresh failed", append(attrs, "err", err)...)
	} else {
		r.log.Info("jwks refreshed", append(attrs, "not_modified", notModified)...)
	}
	if r.cfg.OnRefresh != nil {
		switch {
		case err != nil:
			r.cfg.OnRefresh(RefreshError)
		case notModified:
			r.cfg.OnRefresh(RefreshNotModified)
		default:
			r.cfg.OnRefresh(RefreshSuccess)
		}
	}
	return next
}

// fetchKeys runs discovery if configured, then fetches the JWKS and, on
// success, makes it the current set. It returns the JWKS URI it used and
// whether the server answered 304 Not Modified.
func (r *Remote) fetchKeys(ctx context.Context) (uri string, notModified bool, err error) {
	uri = r.cfg.JWKSURI
	if uri == "" {
		if uri, err = discover(ctx, r.client, r.discURL, r.cfg.Issuer, r.cfg.AllowInsecureHTTP); err != nil {
			return "", false, err
		}
	}
	if r.res == nil || r.res.URL() != uri {
		if r.res != nil {
			r.log.Info("jwks_uri changed", "issuer", r.name(), "from", r.res.URL(), "to", uri)
		}
		f := &jwksFetch{client: r.client, url: uri, log: r.log}
		res, err := httprc.NewResource[jwk.Set](uri, f,
			httprc.WithHTTPClient(f),
			httprc.WithMinInterval(r.cfg.MinRefresh),
			httprc.WithMaxInterval(r.cfg.MaxRefresh),
		)
		if err != nil {
			return uri, false, fmt.Errorf("jwks %s: %w", uri, err)
		}
		r.res, r.fetch = res, f
	}

	r.fetch.reset()
	err = r.res.Sync(ctx)
	switch {
	case err == nil:
		r.fetch.etag = r.fetch.gotETag
		r.setKeys(r.res.Resource())
		return uri, false, nil
	case r.fetch.notModified:
		return uri, true, nil
	case r.fetch.err != nil:
		return uri, false, r.fetch.err // the same error, without httprc's wrapping
	default:
		return uri, false, fmt.Errorf("jwks %s: %w", uri, err)
	}
}

func (r *Remote) setKeys(set jwk.Set) {
	r.keys.Store(&loadedSet{set: set})
}

// jwksFetch is the HTTP client and the transformer httprc uses for one
// JWKS URL. It makes requests conditional on the ETag of the body the
// current set came from and notes what each response held.
type jwksFetch struct {
	client *http.Client
	url    string
	log    *slog.Logger
	etag   string // of the body of the current set

	// The latest response.
	gotETag     string
	notModified bool  // 304 to a conditional request
	cached      bool  // has Cache-Control max-age or Expires
	err         error // why the fetch failed, if it did
}

func (f *jwksFetch) reset() {
	f.gotETag, f.notModified, f.cached, f.err = "", false, false, nil
}

// Do implements httprc.HTTPClient.
func (f *jwksFetch) Do(req *http.Request) (*http.Response, error) {
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	if f.etag != "" {
		req.Header.Set("If-None-Match", f.etag)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		f.err = fmt.Errorf("jwks: %w", err)
		return nil, err
	}
	f.cached = hasCachingHeaders(resp.Header)
	switch {
	case resp.StatusCode == http.StatusOK:
		f.gotETag = resp.Header.Get("ETag")
	case resp.StatusCode == http.StatusNotModified && f.etag != "":
		f.notModified = true
	default:
		f.err = fmt.Errorf("jwks %s: unexpected status %s", f.url, resp.Status)
	}
	return resp, nil
}

// Transform implements httprc.Transformer.
func (f *jwksFetch) Transform(_ context.Context, resp *http.Response) (jwk.Set, error) {
	body, err := readCapped(resp.Body)
	if err == nil {
		var set jwk.Set
		if set, err = ParseSet(body, f.log); err == nil {
			return set, nil
		}
	}
	f.err = fmt.Errorf("jwks %s: %w", f.url, err)
	return nil, f.err
}

// hasCachingHeaders reports whether h has what httprc bases the refresh
// time on: a Cache-Control max-age directive or a valid Expires date.
func hasCachingHeaders(h http.Header) bool {
	for _, v := range h.Values("Cache-Control") {
		for d := range strings.SplitSeq(v, ",") {
			name, _, _ := strings.Cut(strings.TrimSpace(d), "=")
			if strings.EqualFold(name, "max-age") {
				return true
			}
		}
	}
	if v := h.Get("Expires"); v != "" {
		if _, err := http.ParseTime(v); err == nil {
			return true
		}
	}
	return false
}

// backoff returns the delay after the n-th consecutive failure (n ≥ 1):
// lo doubled n-1 times plus up to half of that again at random, kept
// within [lo, hi].
func backoff(lo, hi time.Duration, n int) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	d += rand.N(d/2 + 1)
	if d > hi {
		d = hi - rand.N(hi/4+1)
	}
	return max(d, lo)
}

// Keys returns the last successfully fetched key set, or an error wrapping
// token.ErrKeysUnavailable if none has been fetched yet.
func (r *Remote) Keys(context.Context) (jwk.Set, error) {
	if l := r.keys.Load(); l != nil {
		return l.set, nil
	}
	return nil, fmt.Errorf("%w: keys for %s have not loaded yet", token.ErrKeysUnavailable, r.name())
}

// Refresh refetches the JWKS, for a token whose kid is not in the current
// set, and returns the current set. Concurrent calls share one fetch, and
// a call within MinRefresh of the previous one's does not fetch at all;
// nor does a call before the keys first loaded (background retries are
// under way). Refresh returns early with ctx's error if ctx ends first.
func (r *Remote) Refresh(ctx context.Context) (jwk.Set, error) {
	if r.keys.Load() == nil {
		return r.Keys(ctx)
	}
	r.mu.Lock()
	done := r.pending
	if done == nil {
		if r.stopped || (!r.lastForced.IsZero() && time.Since(r.lastForced) < r.cfg.MinRefresh) {
			r.mu.Unlock()
			return r.Keys(ctx)
		}
		done = make(chan struct{})
		r.pending = done
		r.lastForced = time.Now()
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
	r.mu.Unlock()

	select {
	case <-done:
		return r.Keys(ctx)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Ready reports whether keys have loaded at least once.
func (r *Remote) Ready() bool { return r.keys.Load() != nil }

// WaitReady waits until keys have loaded once and returns nil, or returns
// ctx's error combined with the latest fetch error if ctx ends first (or
// the Remote was closed before).
func (r *Remote) WaitReady(ctx context.Context) error {
	select {
	case <-r.ready:
		return nil
	case <-ctx.Done():
	case <-r.done:
	}
	if r.Ready() {
		return nil
	}
	cause := ctx.Err()
	if cause == nil {
		cause = errors.New("closed")
	}
	r.mu.Lock()
	last := r.status.LastError
	r.mu.Unlock()
	if last == nil {
		return fmt.Errorf("keys for %s not loaded: %w", r.name(), cause)
	}
	return fmt.Errorf("keys for %s not loaded: %w; last error: %w", r.name(), cause, last)
}

// Status reports the state of the keys and of the latest refresh.
func (r *Remote) Status() Status {
	r.mu.Lock()
	s := r.status
	r.mu.Unlock()
	if l := r.keys.Load(); l != nil {
		s.Ready, s.Keys = true, l.set.Len()
	}
	return s
}

// Close stops background work and waits for it to end. Keys keeps
// returning the last good set.
func (r *Remote) Close() error {
	r.cancel()
	<-r.done
	return nil
}

func (r *Remote) name() string {
	if r.cfg.Issuer != "" {
		return r.cfg.Issuer
	}
	return r.cfg.JWKSURI
}

// timeOrNever is a log value for a time that may be zero.
func timeOrNever(t time.Time) any {
	if t.IsZero() {
		return "never"
	}
	return t
}
