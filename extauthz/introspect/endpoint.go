package introspect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/claimcheck/claimcheck/extauthz/keys"
	"github.com/claimcheck/claimcheck/extauthz/token"
)

// Defaults shared by introspection and userinfo.
const (
	// DefaultTimeout bounds one request to an endpoint.
	DefaultTimeout = 5 * time.Second
	// discoveryRetry is how long a failed discovery of an endpoint is
	// remembered before the next request tries again, so an unreachable
	// issuer costs it at most one discovery request per interval.
	discoveryRetry = 5 * time.Second
	// maxBody caps an endpoint's answer.
	maxBody = 1 << 20
)

// endpoint is where requests go: the configured URL, or the one the
// issuer's discovery document names, looked up on first use and then kept.
type endpoint struct {
	url string // the configured URL; empty to discover it

	issuer, discovery string                      // the issuer and its kind of discovery
	member            string                      // the metadata member, e.g. "introspection_endpoint"
	pick              func(*keys.Metadata) string // reads member
	client            *http.Client
	insecure          bool
	timeout           time.Duration
	now               func() time.Time

	group  singleflight.Group
	mu     sync.Mutex
	found  string
	failed time.Time // when the latest discovery failed
	err    error     // and why
}

// get returns the endpoint's URL.
func (e *endpoint) get(ctx context.Context) (string, error) {
	if e.url != "" {
		return e.url, nil
	}
	e.mu.Lock()
	found, failed, err := e.found, e.failed, e.err
	e.mu.Unlock()
	if found != "" {
		return found, nil
	}
	if !failed.IsZero() && e.now().Before(failed.Add(discoveryRetry)) {
		return "", err
	}
	ch := e.group.DoChan("", func() (any, error) {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.timeout)
		defer cancel()
		u, err := e.discover(dctx)
		e.mu.Lock()
		defer e.mu.Unlock()
		if err != nil {
			e.failed, e.err = e.now(), err
			return "", err
		}
		e.found = u
		return u, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return "", res.Err
		}
		return res.Val.(string), nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (e *endpoint) discover(ctx context.Context) (string, error) {
	md, err := keys.Discover(ctx, e.client, e.issuer, e.discovery)
	if err != nil {
		return "", err
	}
	u := e.pick(md)
	if u == "" {
		return "", fmt.Errorf("discovery of %s: the document has no %s; configure the endpoint", e.issuer, e.member)
	}
	if err := keys.CheckURL(u, e.insecure); err != nil {
		return "", fmt.Errorf("discovery of %s: %s %q: %w", e.issuer, e.member, u, err)
	}
	return u, nil
}

// remote is what a Client and a Userinfo share: an issuer's endpoint,
// asked with a client that follows no redirect, within a timeout, logging
// failures.
type remote struct {
	now      func() time.Time
	log      *slog.Logger
	client   *http.Client
	endpoint *endpoint
	timeout  time.Duration
}

// Endpoint says where an issuer's endpoint is and how to ask it; Config and
// UserinfoConfig embed it.
type Endpoint struct {
	// Issuer is the configured issuer the endpoint belongs to.
	Issuer string
	// URL is the endpoint's URL. Empty means the one the issuer's discovery
	// document names (introspection_endpoint, userinfo_endpoint), of kind
	// Discovery (keys.DiscoveryOpenID or keys.DiscoveryOAuth), looked up on
	// first use.
	URL       string
	Discovery string
	// Timeout bounds one request; zero means DefaultTimeout.
	Timeout time.Duration
	// MaxEntries bounds the cache of answers; zero means DefaultMaxEntries.
	MaxEntries int
	// HTTPClient makes the requests (see keys.NewHTTPClient); nil means
	// http.DefaultClient. Requests to the endpoint never follow redirects.
	HTTPClient *http.Client
	// AllowInsecureHTTP permits a discovered endpoint over plain http to a
	// host other than loopback.
	AllowInsecureHTTP bool
	// Logger receives one record per failed request; nil discards them.
	Logger *slog.Logger
}

// newRemote returns the remote for ep; member names the discovery metadata
// member pick reads.
func newRemote(ep Endpoint, member string, pick func(*keys.Metadata) string, now func() time.Time) (*remote, error) {
	switch {
	case ep.URL == "" && ep.Discovery == "":
		return nil, errors.New("no endpoint and no discovery to find it")
	case ep.Timeout < 0:
		return nil, fmt.Errorf("negative timeout %s", ep.Timeout)
	}
	if ep.URL != "" {
		if err := keys.CheckURL(ep.URL, ep.AllowInsecureHTTP); err != nil {
			return nil, fmt.Errorf("endpoint %q: %w", ep.URL, err)
		}
	}
	if ep.Timeout == 0 {
		ep.Timeout = DefaultTimeout
	}
	if ep.HTTPClient == nil {
		ep.HTTPClient = http.DefaultClient
	}
	if ep.Logger == nil {
		ep.Logger = slog.New(slog.DiscardHandler)
	}
	return &remote{
		now:     now,
		log:     ep.Logger.With("issuer", ep.Issuer),
		client:  noRedirects(ep.HTTPClient),
		timeout: ep.Timeout,
		endpoint: &endpoint{
			url: ep.URL, issuer: ep.Issuer, discovery: ep.Discovery, member: member, pick: pick,
			client: ep.HTTPClient, insecure: ep.AllowInsecureHTTP, timeout: ep.Timeout, now: now,
		},
	}, nil
}

// noRedirects returns a copy of c that follows no redirect: a request that
// carries credentials or a token goes only where it was configured to.
func noRedirects(c *http.Client) *http.Client {
	cc := *c
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cc
}

// readObject reads a body that must be one JSON object of at most maxBody
// bytes, with numbers as json.Number, decoded as strictly as a JWT payload
// (token.DecodeObject): a repeated "active" or claim would otherwise mean
// whichever copy encoding/json happens to keep.
func readObject(r io.Reader) (map[string]any, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxBody {
		return nil, fmt.Errorf("the body is larger than %d bytes", maxBody)
	}
	m, err := token.DecodeObject(b)
	if err != nil {
		return nil, fmt.Errorf("the body is not a single unambiguous JSON object: %w", err)
	}
	return m, nil
}
