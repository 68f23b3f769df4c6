// Package introspect asks an issuer about a bearer token: RFC 7662 token
// introspection, for opaque tokens and for issuers whose every token must be
// checked as it is used (revocation), and the OpenID Connect userinfo
// endpoint. Answers are cached per token and concurrent questions about one
// token are asked once. An endpoint that cannot be asked, or answers
// something unusable, is an error wrapping token.ErrIntrospectionUnavailable
// or token.ErrUserinfoUnavailable: a deny, never an allow.
package introspect

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/claimcheck/claimcheck/extauthz/keys"
	"github.com/claimcheck/claimcheck/extauthz/token"
)

// Client authentication methods at the introspection endpoint (RFC 6749
// §2.3.1).
const (
	// ClientSecretBasic sends the client ID and secret, each
	// form-urlencoded, as HTTP Basic credentials.
	ClientSecretBasic = "client_secret_basic"
	// ClientSecretPost sends them as client_id and client_secret in the
	// form body.
	ClientSecretPost = "client_secret_post"
	// DefaultAuth is the method when Config.Auth is empty.
	DefaultAuth = ClientSecretBasic
)

// Modes say which tokens an issuer introspects.
const (
	// ModeOpaque introspects tokens that are not JWTs; the issuer's JWTs
	// are verified locally only.
	ModeOpaque = "opaque"
	// ModeAlways introspects opaque tokens and, after local verification,
	// the issuer's JWTs too.
	ModeAlways = "always"
	// ModeJWT introspects the issuer's JWTs after local verification, and
	// takes no opaque tokens.
	ModeJWT = "jwt"
	// DefaultMode is the mode when Config.Mode is empty.
	DefaultMode = ModeOpaque
)

// Config configures a Client for one issuer.
type Config struct {
	// Endpoint is the introspection endpoint. Its Issuer may be left
	// empty: it is Rules.Issuer.
	Endpoint
	// Rules are the issuer, its audiences and clock skew; an answer about
	// an opaque token is checked by them as a JWT's claims would be.
	Rules token.Rules
	// Mode is ModeOpaque (DefaultMode), ModeAlways or ModeJWT.
	Mode string
	// ClientID identifies claimcheck to the endpoint.
	ClientID string
	// ClientSecretFile holds the client secret. It is read for every
	// request, so a rotated secret is used at once; one trailing newline is
	// ignored. The secret is never logged.
	ClientSecretFile string
	// Auth is ClientSecretBasic (DefaultAuth) or ClientSecretPost.
	Auth string
	// CacheTTL bounds how long an active answer is reused: until
	// min(exp, CacheTTL). Zero asks about every request.
	CacheTTL time.Duration
	// InactiveTTL is how long an inactive or rejected answer is reused;
	// zero reuses none.
	InactiveTTL time.Duration
}

// Option changes a Client or a Userinfo.
type Option func(*options)

type options struct{ now func() time.Time }

// WithClock sets the function that reads the current time; the default is
// time.Now.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

func applyOptions(opts []Option) (options, error) {
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if o.now == nil {
		return o, errors.New("introspect: WithClock: nil clock")
	}
	return o, nil
}

// Client introspects tokens at one issuer. It is safe for concurrent use.
type Client struct {
	*remote
	cfg   Config
	cache *answers[*token.Token]
}

// New returns a Client for cfg. It reads the client secret once, so that a
// missing or empty secret file is an error now rather than at the first
// request.
func New(cfg Config, opts ...Option) (*Client, error) {
	o, err := applyOptions(opts)
	if err != nil {
		return nil, err
	}
	name := cfg.Rules.Issuer
	switch {
	case name == "":
		return nil, errors.New("introspect: no issuer")
	case cfg.Endpoint.Issuer != "" && cfg.Endpoint.Issuer != name:
		return nil, fmt.Errorf("introspect: issuer %s: the endpoint belongs to issuer %q", name, cfg.Endpoint.Issuer)
	case len(cfg.Rules.Audiences) == 0:
		return nil, fmt.Errorf("introspect: issuer %s: no audiences", name)
	case cfg.ClientID == "":
		return nil, fmt.Errorf("introspect: issuer %s: no client_id", name)
	case cfg.CacheTTL < 0 || cfg.InactiveTTL < 0:
		return nil, fmt.Errorf("introspect: issuer %s: negative cache_ttl or inactive_ttl", name)
	}
	if cfg.Mode == "" {
		cfg.Mode = DefaultMode
	}
	if cfg.Mode != ModeOpaque && cfg.Mode != ModeAlways && cfg.Mode != ModeJWT {
		return nil, fmt.Errorf("introspect: issuer %s: unknown mode %q", name, cfg.Mode)
	}
	if cfg.Auth == "" {
		cfg.Auth = DefaultAuth
	}
	if cfg.Auth != ClientSecretBasic && cfg.Auth != ClientSecretPost {
		return nil, fmt.Errorf("introspect: issuer %s: unknown auth %q", name, cfg.Auth)
	}
	cfg.Endpoint.Issuer = name
	c := &Client{cfg: cfg}
	c.remote, err = newRemote(cfg.Endpoint, "introspection_endpoint",
		func(m *keys.Metadata) string { return m.IntrospectionEndpoint }, o.now)
	if err != nil {
		return nil, fmt.Errorf("introspect: issuer %s: %w", name, err)
	}
	if _, err := c.secret(); err != nil {
		return nil, fmt.Errorf("introspect: issuer %s: %w", name, err)
	}
	if c.cache, err = newAnswers[*token.Token](cfg.MaxEntries, o.now, token.ErrIntrospectionUnavailable); err != nil {
		return nil, fmt.Errorf("introspect: issuer %s: %w", name, err)
	}
	return c, nil
}

// Issuer is the issuer the Client asks.
func (c *Client) Issuer() string { return c.cfg.Rules.Issuer }

// Mode is the Client's mode.
func (c *Client) Mode() string { return c.cfg.Mode }

// Opaque introspects raw, an opaque token, and returns it with the
// answer's claims (all members but "active") as token.KindOpaque. The answer
// must say active: true and pass the issuer's rules (see token.Rules.Opaque);
// otherwise the error wraps token.ErrInactive or the rule's sentinel. An
// endpoint that cannot be asked or answers something unusable is an error
// wrapping token.ErrIntrospectionUnavailable.
func (c *Client) Opaque(ctx context.Context, raw string) (*token.Token, error) {
	return c.cache.get(ctx, raw, c.timeout, func(ctx context.Context) answer[*token.Token] {
		resp, err := c.introspect(ctx, raw)
		if err != nil {
			return c.rejected(err)
		}
		delete(resp, "active")
		tok, err := c.cfg.Rules.Opaque(resp, c.now())
		if err != nil {
			return c.rejected(err)
		}
		return answer[*token.Token]{v: tok, expires: c.keepUntil(tok.Expiry)}
	})
}

// Active introspects raw, a JWT tok the caller has verified, and returns
// nil if the issuer says it is still active. The JWT's own claims stand;
// the answer only has to say active: true and, if it names an iss, name the
// issuer. Errors are as Opaque's.
func (c *Client) Active(ctx context.Context, raw string, tok *token.Token) error {
	_, err := c.cache.get(ctx, raw, c.timeout, func(ctx context.Context) answer[*token.Token] {
		resp, err := c.introspect(ctx, raw)
		if err != nil {
			return c.rejected(err)
		}
		if iss, ok := resp["iss"]; ok && iss != c.Issuer() {
			s, _ := iss.(string)
			return c.rejected(token.Reject(token.ErrIssuerUnknown, "introspection names issuer %q, not %s", clip(s), c.Issuer()))
		}
		return answer[*token.Token]{expires: c.keepUntil(tok.Expiry)}
	})
	return err
}

// keepUntil is when an active answer about a token that expires at exp
// stops being reused.
func (c *Client) keepUntil(exp time.Time) time.Time {
	until := c.now().Add(c.cfg.CacheTTL)
	if exp.Before(until) {
		return exp
	}
	return until
}

// rejected is the answer for a token the issuer's answer rules out, reused
// for InactiveTTL unless time may cure it or it is an outage.
func (c *Client) rejected(err error) answer[*token.Token] {
	ans := answer[*token.Token]{err: err}
	if token.NegativeCacheable(err) {
		ans.expires = c.now().Add(c.cfg.InactiveTTL)
	}
	return ans
}

// introspect asks the endpoint about raw and returns the answer of an
// active token. An inactive one is token.ErrInactive. A failure is logged
// with its details and returned as token.ErrIntrospectionUnavailable with
// a message fit for the client, which names no endpoint.
func (c *Client) introspect(ctx context.Context, raw string) (map[string]any, error) {
	resp, err := c.post(ctx, raw)
	if err != nil {
		c.log.Warn("introspection failed; denying", "err", err)
		return nil, token.Reject(token.ErrIntrospectionUnavailable, "the issuer's introspection endpoint gave no usable answer")
	}
	if resp["active"] != true {
		return nil, token.Reject(token.ErrInactive, "the issuer says the token is not active")
	}
	return resp, nil
}

// post sends the RFC 7662 request and returns the answer, which must be a
// JSON object with a boolean "active".
func (c *Client) post(ctx context.Context, raw string) (map[string]any, error) {
	u, err := c.endpoint.get(ctx)
	if err != nil {
		return nil, err
	}
	secret, err := c.secret()
	if err != nil {
		return nil, err
	}
	form := url.Values{"token": {raw}, "token_type_hint": {"access_token"}}
	if c.cfg.Auth == ClientSecretPost {
		form.Set("client_id", c.cfg.ClientID)
		form.Set("client_secret", secret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("introspection %s: %w", u, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if c.cfg.Auth == ClientSecretBasic {
		// RFC 6749 §2.3.1: both are form-urlencoded before Basic encoding.
		req.SetBasicAuth(url.QueryEscape(c.cfg.ClientID), url.QueryEscape(secret))
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("introspection: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("introspection %s: unexpected status %s", u, resp.Status)
	}
	m, err := readObject(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("introspection %s: %w", u, err)
	}
	if _, ok := m["active"].(bool); !ok {
		return nil, fmt.Errorf("introspection %s: the answer has no boolean \"active\"", u)
	}
	return m, nil
}

// secret reads the client secret file.
func (c *Client) secret() (string, error) {
	b, err := os.ReadFile(c.cfg.ClientSecretFile)
	if err != nil {
		return "", fmt.Errorf("client secret: %w", err)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if s == "" {
		return "", fmt.Errorf("client secret: %s is empty", c.cfg.ClientSecretFile)
	}
	return s, nil
}

// clip shortens s, which came from the network, for an error message.
func clip(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
