package introspect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/claimcheck/claimcheck/extauthz/keys"
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

// remoteConfig says which endpoint a remote asks and how.
type remoteConfig struct {
	issuer, url, discovery string
	member                 string                      // the discovery metadata member naming the endpoint
	pick                   func(*keys.Metadata) string // reads member
	timeout                time.Duration               // zero: DefaultTimeout
	client                 *http.Client                // nil: http.DefaultClient
	insecure               bool
	logger                 *slog.Logger // nil: discard
}

func newRemote(rc remoteConfig, now func() time.Time) (*remote, error) {
	switch {
	case rc.url == "" && rc.discovery == "":
		return nil, errors.New("no endpoint and no discovery to find it")
	case rc.timeout < 0:
		return nil, fmt.Errorf("negative timeout %s", rc.timeout)
	}
	if rc.url != "" {
		if err := keys.CheckURL(rc.url, rc.insecure); err != nil {
			return nil, fmt.Errorf("endpoint %q: %w", rc.url, err)
		}
	}
	if rc.timeout == 0 {
		rc.timeout = DefaultTimeout
	}
	if rc.client == nil {
		rc.client = http.DefaultClient
	}
	if rc.logger == nil {
		rc.logger = slog.New(slog.DiscardHandler)
	}
	return &remote{
		now:     now,
		log:     rc.logger.With("issuer", rc.issuer),
		client:  noRedirects(rc.client),
		timeout: rc.timeout,
		endpoint: &endpoint{
			url: rc.url, issuer: rc.issuer, discovery: rc.discovery, member: rc.member, pick: rc.pick,
			client: rc.client, insecure: rc.insecure, timeout: rc.timeout, now: now,
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

var errNotObject = errors.New("the body is not a single JSON object")

// readObject reads a body that must be one JSON object of at most maxBody
// bytes, with numbers as json.Number.
func readObject(r io.Reader) (map[string]any, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxBody {
		return nil, fmt.Errorf("the body is larger than %d bytes", maxBody)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, errNotObject
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errNotObject
	}
	return m, nil
}
