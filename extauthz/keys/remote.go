package keys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/httprc/v3"
	"github.com/lestrrat-go/httprc/v3/errsink"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/claimcheck/claimcheck/extauthz/token"
)

var (
	_ token.KeySource = (*File)(nil)
	_ token.KeySource = (*Remote)(nil)
)

// Defaults for RemoteConfig.
const (
	DefaultHTTPTimeout     = 5 * time.Second
	DefaultRefreshInterval = 5 * time.Minute
	DefaultMinRefresh      = 10 * time.Second
)

// Retry delays while the keys have never loaded.
const (
	firstRetry = 500 * time.Millisecond
	maxRetry   = time.Minute
)

// RemoteConfig configures a Remote.
type RemoteConfig struct {
	// Issuer is used for OpenID Connect discovery when JWKSURI is empty:
	// the JWKS URI is taken from {Issuer}/.well-known/openid-configuration,
	// whose "issuer" must equal Issuer exactly.
	Issuer string
	// JWKSURI is the URL of the issuer's JWKS. It takes precedence over
	// discovery.
	JWKSURI string
	// HTTPClient makes the requests. nil means a client with a
	// DefaultHTTPTimeout timeout. Remote uses a copy whose redirects must
	// also satisfy the https rule.
	HTTPClient *http.Client
	// RefreshInterval is the period of background refreshes; zero means
	// DefaultRefreshInterval.
	RefreshInterval time.Duration
	// MinRefresh is the shortest time between two refreshes requested
	// through Refresh (unknown kid); zero means DefaultMinRefresh.
	MinRefresh time.Duration
	// AllowInsecureHTTP permits plain http to any host. Without it, http is
	// allowed only for loopback hosts (127.0.0.0/8, ::1, localhost).
	AllowInsecureHTTP bool
	// Logger receives one record per fetch outcome; nil discards them.
	Logger *slog.Logger
}

// Remote is a KeySource for a JWKS served over HTTP. Keys are fetched in
// the background, first right away and with retries until they load, then
// every RefreshInterval; a failed refresh keeps the last good set. It is
// safe for concurrent use.
type Remote struct {
	cfg    RemoteConfig
	log    *slog.Logger
	client *http.Client
	ctrl   httprc.Controller
	res    atomic.Pointer[httprc.ResourceBase[jwk.Set]]

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	closed     bool
	inflight   chan struct{} // closed when the running Refresh fetch ends
	lastForced time.Time
}

// NewRemote validates cfg and starts fetching keys in the background; it
// does not wait for them. Until the first fetch succeeds, Keys returns an
// error wrapping token.ErrKeysUnavailable. Background work stops when ctx
// is done or Close is called.
func NewRemote(ctx context.Context, cfg RemoteConfig) (*Remote, error) {
	if cfg.JWKSURI == "" && cfg.Issuer == "" {
		return nil, errors.New("jwks: need a JWKS URI or an issuer for discovery")
	}
	target := cfg.JWKSURI
	if target == "" {
		target = cfg.Issuer // discovery starts here
	}
	if err := checkURL(target, cfg.AllowInsecureHTTP); err != nil {
		return nil, fmt.Errorf("jwks %s: %w", target, err)
	}
	if cfg.RefreshInterval < 0 || cfg.MinRefresh < 0 {
		return nil, errors.New("jwks: negative refresh interval")
	}
	if cfg.RefreshInterval == 0 {
		cfg.RefreshInterval = DefaultRefreshInterval
	}
	if cfg.MinRefresh == 0 {
		cfg.MinRefresh = DefaultMinRefresh
	}
	r := &Remote{cfg: cfg, log: cfg.Logger}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.client = r.httpClient()

	r.ctx, r.cancel = context.WithCancel(ctx)
	hc := httprc.NewClient(
		httprc.WithHTTPClient(r.client),
		// One resource, so one worker. Refresh coalescing keeps at most two
		// synchronous fetches queued (the start-up retry and Refresh), well
		// within what httprc's request channels buffer.
		httprc.WithWorkers(1),
		httprc.WithWhitelist(httprc.WhitelistFunc(func(u string) bool {
			return checkURL(u, cfg.AllowInsecureHTTP) == nil
		})),
		httprc.WithErrorSink(errsink.NewFunc(func(_ context.Context, err error) {
			r.log.Warn("jwks refresh failed", "issuer", r.cfg.Issuer, "err", err)
		})),
	)
	ctrl, err := hc.Start(r.ctx)
	if err != nil {
		r.cancel()
		return nil, fmt.Errorf("jwks: start fetcher: %w", err)
	}
	r.ctrl = ctrl
	r.wg.Add(1)
	go r.load()
	return r, nil
}

// httpClient returns a copy of the configured client whose redirects are
// held to the same URL rules as the configured URLs.
func (r *Remote) httpClient() *http.Client {
	c := &http.Client{Timeout: DefaultHTTPTimeout}
	if r.cfg.HTTPClient != nil {
		cp := *r.cfg.HTTPClient
		c = &cp
	}
	next := c.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if err := checkURL(req.URL.String(), r.cfg.AllowInsecureHTTP); err != nil {
			return fmt.Errorf("redirect to %s: %w", req.URL.Redacted(), err)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return c
}

// load runs discovery if needed, registers the JWKS with the fetcher and
// retries with backoff until the keys have loaded once. Later refreshes are
// the fetcher's.
func (r *Remote) load() {
	defer r.wg.Done()
	jwksURI := r.cfg.JWKSURI
	for delay := firstRetry; jwksURI == ""; delay = min(2*delay, maxRetry) {
		u, err := r.discover(r.ctx)
		if err == nil {
			r.log.Info("oidc discovery done", "issuer", r.cfg.Issuer, "jwks_uri", u)
			jwksURI = u
			break
		}
		if r.ctx.Err() != nil {
			return
		}
		r.log.Warn("oidc discovery failed", "issuer", r.cfg.Issuer, "err", err)
		if !sleep(r.ctx, delay) {
			return
		}
	}

	res, err := httprc.NewResource[jwk.Set](jwksURI, transformer{r: r, url: jwksURI},
		httprc.WithHTTPClient(r.client),
		httprc.WithConstantInterval(r.cfg.RefreshInterval),
		httprc.WithMinInterval(r.cfg.RefreshInterval),
	)
	if err == nil {
		err = r.ctrl.Add(r.ctx, res, httprc.WithWaitReady(false))
	}
	if err != nil {
		if r.ctx.Err() == nil {
			r.log.Error("jwks fetcher setup failed", "issuer", r.cfg.Issuer, "jwks_uri", jwksURI, "err", err)
		}
		return
	}
	r.res.Store(res)

	// The fetcher tries once right away and, on failure, not again until
	// RefreshInterval; retry sooner until the first success.
	for delay := firstRetry; ; delay = min(2*delay, maxRetry) {
		wait, cancel := context.WithTimeout(r.ctx, jitter(delay))
		err := res.Ready(wait)
		cancel()
		if err == nil || r.ctx.Err() != nil {
			return
		}
		if res.IsBusy() {
			continue // a fetch is under way; queueing another would only repeat it
		}
		if err := r.ctrl.Refresh(r.ctx, jwksURI); err == nil {
			return
		} else if r.ctx.Err() == nil {
			r.log.Warn("jwks refresh failed", "issuer", r.cfg.Issuer, "jwks_uri", jwksURI, "err", err)
		}
	}
}

// discover fetches the issuer's discovery document and returns its
// jwks_uri.
func (r *Remote) discover(ctx context.Context) (string, error) {
	u := strings.TrimSuffix(r.cfg.Issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", fmt.Errorf("discovery %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("discovery %s: %s", u, resp.Status)
	}
	body, err := readCapped(resp.Body)
	if err != nil {
		return "", fmt.Errorf("discovery %s: %w", u, err)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("discovery %s: %w", u, err)
	}
	if doc.Issuer != r.cfg.Issuer {
		return "", fmt.Errorf("discovery %s: document names issuer %q, want %q", u, doc.Issuer, r.cfg.Issuer)
	}
	if doc.JWKSURI == "" {
		return "", fmt.Errorf("discovery %s: no jwks_uri", u)
	}
	if err := checkURL(doc.JWKSURI, r.cfg.AllowInsecureHTTP); err != nil {
		return "", fmt.Errorf("discovery %s: jwks_uri %s: %w", u, doc.JWKSURI, err)
	}
	return doc.JWKSURI, nil
}

// Keys returns the last successfully fetched key set, or an error wrapping
// token.ErrKeysUnavailable if none has been fetched yet.
func (r *Remote) Keys(context.Context) (jwk.Set, error) {
	if res := r.res.Load(); res != nil {
		if set := res.Resource(); set != nil {
			return set, nil
		}
	}
	return nil, fmt.Errorf("%w: keys for %s have not loaded yet", token.ErrKeysUnavailable, r.name())
}

// Refresh refetches the JWKS, for a token whose kid is not in the current
// set, and returns the current set. Concurrent calls share one fetch, and
// a call within MinRefresh of the previous fetch does not fetch at all.
// Refresh returns early with ctx's error if ctx ends first.
func (r *Remote) Refresh(ctx context.Context) (jwk.Set, error) {
	res := r.res.Load()
	if res == nil {
		return r.Keys(ctx)
	}
	r.mu.Lock()
	done := r.inflight
	if done == nil {
		if r.closed || (!r.lastForced.IsZero() && time.Since(r.lastForced) < r.cfg.MinRefresh) {
			r.mu.Unlock()
			return r.Keys(ctx)
		}
		done = make(chan struct{})
		r.inflight = done
		r.lastForced = time.Now()
		r.wg.Add(1)
		go r.refresh(res.URL(), done)
	}
	r.mu.Unlock()

	select {
	case <-done:
		return r.Keys(ctx)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// refresh runs one fetch for Refresh, detached from any caller's context.
func (r *Remote) refresh(jwksURI string, done chan struct{}) {
	defer r.wg.Done()
	if err := r.ctrl.Refresh(r.ctx, jwksURI); err != nil && r.ctx.Err() == nil {
		r.log.Warn("jwks refresh failed", "issuer", r.cfg.Issuer, "jwks_uri", jwksURI, "err", err)
	}
	r.mu.Lock()
	r.inflight = nil
	r.mu.Unlock()
	close(done)
}

// Ready reports whether keys have loaded at least once.
func (r *Remote) Ready() bool {
	res := r.res.Load()
	return res != nil && res.Resource() != nil
}

// Close stops background work and waits for it to end. Keys keeps
// returning the last good set.
func (r *Remote) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
	if err := r.ctrl.Shutdown(DefaultHTTPTimeout); err != nil {
		return fmt.Errorf("jwks %s: shutdown: %w", r.name(), err)
	}
	return nil
}

func (r *Remote) name() string {
	if r.cfg.Issuer != "" {
		return r.cfg.Issuer
	}
	return r.cfg.JWKSURI
}

// transformer turns a JWKS response into the usable keys and logs each
// successful fetch; failures reach the log through the error sink or the
// caller of Refresh.
type transformer struct {
	r   *Remote
	url string
}

func (t transformer) Transform(_ context.Context, resp *http.Response) (jwk.Set, error) {
	body, err := readCapped(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %w", t.url, err)
	}
	set, err := parseSet(body)
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %w", t.url, err)
	}
	t.r.log.Info("jwks refreshed", "issuer", t.r.cfg.Issuer, "jwks_uri", t.url, "keys", set.Len())
	return set, nil
}

// checkURL enforces https, except for loopback hosts or when insecure is
// set.
func checkURL(raw string, insecure bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Host == "" {
		return errors.New("URL has no host")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if insecure || isLoopback(u.Hostname()) {
			return nil
		}
		return errors.New("http is allowed only for loopback hosts; use https or set AllowInsecureHTTP")
	default:
		return fmt.Errorf("unsupported URL scheme %q", u.Scheme)
	}
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// sleep waits for d or until ctx ends, reporting whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(jitter(d))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// jitter spreads retries of many instances: a random duration in [d/2, d].
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}
