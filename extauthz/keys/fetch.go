package keys

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// Defaults for FetchOptions.
const (
	DefaultHTTPTimeout = 5 * time.Second
	DefaultUserAgent   = "claimcheck"
)

// maxRedirects is how many redirects a fetch follows.
const maxRedirects = 10

// FetchOptions configures the HTTP client made by NewHTTPClient.
type FetchOptions struct {
	// Timeout bounds each request as a whole: connecting, redirects and
	// reading the body. Zero means DefaultHTTPTimeout.
	Timeout time.Duration
	// CAFile names a PEM file of CA certificates. When set, servers are
	// verified against these CAs only; the system roots are not used.
	// Empty means the system roots.
	CAFile string
	// UserAgent is the User-Agent header of every request; empty means
	// DefaultUserAgent.
	UserAgent string
	// AllowInsecureHTTP permits redirects to plain http on any host.
	// Without it, a redirect may lead to http only on a loopback host.
	AllowInsecureHTTP bool
}

// NewHTTPClient returns a client for fetching keys and discovery
// documents: it uses the proxy named by the environment (HTTPS_PROXY,
// HTTP_PROXY, NO_PROXY), requires TLS 1.2 or later, and follows at most 10
// redirects, never from https to http and to http only as
// AllowInsecureHTTP permits. Response bodies are not capped by the client;
// their readers are.
func NewHTTPClient(o FetchOptions) (*http.Client, error) {
	if o.Timeout < 0 {
		return nil, fmt.Errorf("http client: negative timeout %s", o.Timeout)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultHTTPTimeout
	}
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		b, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("http client: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("http client: CA file %s: no PEM certificates", o.CAFile)
		}
		tlsConf.RootCAs = pool
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsConf,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          10,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	insecure := o.AllowInsecureHTTP
	return &http.Client{
		Transport: userAgentTransport{base: tr, ua: o.UserAgent},
		Timeout:   o.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			return checkRedirect(req, via, insecure)
		},
	}, nil
}

// userAgentTransport sets the User-Agent header of every request.
type userAgentTransport struct {
	base *http.Transport
	ua   string
}

func (t userAgentTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("User-Agent", t.ua)
	return t.base.RoundTrip(req)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// transport.
func (t userAgentTransport) CloseIdleConnections() { t.base.CloseIdleConnections() }

// checkRedirect is the redirect policy of every fetch: at most
// maxRedirects, no downgrade from https to http, and targets held to
// checkURL.
func checkRedirect(req *http.Request, via []*http.Request, insecure bool) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	if req.URL.Scheme != "https" && slices.ContainsFunc(via, func(r *http.Request) bool { return r.URL.Scheme == "https" }) {
		return fmt.Errorf("redirect from https to %s refused", req.URL.Redacted())
	}
	if err := checkURL(req.URL.String(), insecure); err != nil {
		return fmt.Errorf("redirect to %s: %w", req.URL.Redacted(), err)
	}
	return nil
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
