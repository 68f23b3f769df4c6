package introspect

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"time"

	"github.com/claimcheck/claimcheck/extauthz/keys"
	"github.com/claimcheck/claimcheck/extauthz/token"
)

// What a Userinfo does when the endpoint fails.
const (
	// OnErrorDeny denies the request.
	OnErrorDeny = "deny"
	// OnErrorContinue goes on without userinfo.
	OnErrorContinue = "continue"
	// DefaultOnError is what a Userinfo does when UserinfoConfig.OnError
	// is empty.
	DefaultOnError = OnErrorDeny
)

// UserinfoConfig configures a Userinfo for one issuer.
type UserinfoConfig struct {
	// Endpoint is the userinfo endpoint, and the issuer whose tokens are
	// sent there.
	Endpoint
	// OnError is OnErrorDeny (DefaultOnError) or OnErrorContinue.
	OnError string
	// CacheTTL bounds how long an answer is reused: until min(the token's
	// exp, CacheTTL). Zero asks for every request.
	CacheTTL time.Duration
}

// Userinfo fetches OpenID Connect userinfo for one issuer's tokens. It is
// safe for concurrent use.
type Userinfo struct {
	*remote
	cfg   UserinfoConfig
	cache *answers[map[string]any]
}

// NewUserinfo returns a Userinfo for cfg.
func NewUserinfo(cfg UserinfoConfig, opts ...Option) (*Userinfo, error) {
	o, err := applyOptions(opts)
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.Issuer == "":
		return nil, errors.New("userinfo: no issuer")
	case cfg.CacheTTL < 0:
		return nil, fmt.Errorf("userinfo: issuer %s: negative cache_ttl", cfg.Issuer)
	}
	if cfg.OnError == "" {
		cfg.OnError = DefaultOnError
	}
	if cfg.OnError != OnErrorDeny && cfg.OnError != OnErrorContinue {
		return nil, fmt.Errorf("userinfo: issuer %s: unknown on_error %q", cfg.Issuer, cfg.OnError)
	}
	u := &Userinfo{cfg: cfg}
	u.remote, err = newRemote(cfg.Endpoint, "userinfo_endpoint",
		func(m *keys.Metadata) string { return m.UserinfoEndpoint }, o.now)
	if err != nil {
		return nil, fmt.Errorf("userinfo: issuer %s: %w", cfg.Issuer, err)
	}
	if u.cache, err = newAnswers[map[string]any](cfg.MaxEntries, o.now, token.ErrUserinfoUnavailable); err != nil {
		return nil, fmt.Errorf("userinfo: issuer %s: %w", cfg.Issuer, err)
	}
	return u, nil
}

// Fetch returns the userinfo of tok, verified from raw, asking the endpoint
// with raw as the bearer token. An answer, or a refusal, is reused until
// min(the token's exp, CacheTTL); a failure is not. The answer must be a JSON object whose sub
// equals the token's sub claim when it has one (OpenID Connect Core
// §5.3.2). A 401 or 403 is an error wrapping token.ErrUserinfoRejected, any
// other failure one wrapping token.ErrUserinfoUnavailable — unless OnError
// is OnErrorContinue: then Fetch logs the failure and returns nil, nil.
func (u *Userinfo) Fetch(ctx context.Context, tok *token.Token, raw string) (map[string]any, error) {
	info, err := u.cache.get(ctx, raw, u.timeout, func(ctx context.Context) answer[map[string]any] {
		until := u.now().Add(u.cfg.CacheTTL)
		if tok.Expiry.Before(until) {
			until = tok.Expiry
		}
		info, err := u.get(ctx, raw, tok)
		if err != nil {
			u.log.Warn("userinfo failed", "on_error", u.cfg.OnError, "err", err)
			if !errors.Is(err, token.ErrUserinfoRejected) {
				until = time.Time{} // an outage is not an answer about the token
				// The details are in the log; the client learns no endpoint.
				err = token.Reject(token.ErrUserinfoUnavailable, "the issuer's userinfo endpoint gave no usable answer")
			}
		}
		return answer[map[string]any]{v: info, err: err, expires: until}
	})
	if err != nil && u.cfg.OnError == OnErrorContinue {
		return nil, nil
	}
	return info, err
}

func (u *Userinfo) get(ctx context.Context, raw string, tok *token.Token) (map[string]any, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", token.ErrUserinfoUnavailable, fmt.Sprintf(format, args...))
	}
	ep, err := u.endpoint.get(ctx)
	if err != nil {
		return nil, fail("%v", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ep, nil)
	if err != nil {
		return nil, fail("userinfo %s: %v", ep, err)
	}
	req.Header.Set("Authorization", "Bearer "+raw)
	req.Header.Set("Accept", "application/json")
	resp, err := u.client.Do(req)
	if err != nil {
		return nil, fail("userinfo: %v", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, token.Reject(token.ErrUserinfoRejected, "the userinfo endpoint refused the token (%s)", resp.Status)
	case resp.StatusCode != http.StatusOK:
		return nil, fail("userinfo %s: unexpected status %s", ep, resp.Status)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/jwt" {
		return nil, fail("userinfo %s: signed or encrypted userinfo (application/jwt) is not supported", ep)
	}
	info, err := readObject(resp.Body)
	if err != nil {
		return nil, fail("userinfo %s: %v", ep, err)
	}
	sub, ok := info["sub"].(string)
	if !ok {
		return nil, fail("userinfo %s: the answer has no string sub", ep)
	}
	if want, ok := tok.Claims["sub"].(string); ok && sub != want {
		return nil, fail("userinfo %s: the answer is about sub %q, the token about %q", ep, clip(sub), clip(want))
	}
	return info, nil
}

// Userinfos holds each issuer's Userinfo, by issuer. Its Userinfo method
// serves the extauthz decision path.
type Userinfos map[string]*Userinfo

// Userinfo returns the userinfo of tok from its issuer's Userinfo, or nil,
// nil if its issuer has none.
func (s Userinfos) Userinfo(ctx context.Context, tok *token.Token, raw string) (map[string]any, error) {
	u := s[tok.Issuer]
	if u == nil {
		return nil, nil
	}
	return u.Fetch(ctx, tok, raw)
}
