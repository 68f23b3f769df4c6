package keys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Kinds of discovery document, for RemoteConfig.Discovery.
const (
	// DiscoveryOpenID is OpenID Connect Discovery 1.0: the document is at
	// {issuer}/.well-known/openid-configuration, the suffix appended to
	// the issuer (without its trailing "/").
	DiscoveryOpenID = "openid"
	// DiscoveryOAuth is OAuth 2.0 Authorization Server Metadata (RFC
	// 8414): "/.well-known/oauth-authorization-server" goes between the
	// issuer's host and its path, so issuer https://h/t1 is described at
	// https://h/.well-known/oauth-authorization-server/t1.
	DiscoveryOAuth = "oauth"
)

// discoveryURL returns where the discovery document of kind for issuer is.
func discoveryURL(issuer, kind string) (string, error) {
	u, err := url.Parse(issuer)
	if err != nil {
		return "", err
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", errors.New("an issuer for discovery has no query or fragment")
	}
	switch kind {
	case DiscoveryOpenID:
		return strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration", nil
	case DiscoveryOAuth:
		return u.Scheme + "://" + u.Host + "/.well-known/oauth-authorization-server" + strings.TrimSuffix(u.EscapedPath(), "/"), nil
	default:
		return "", fmt.Errorf("unknown discovery %q, want %q or %q", kind, DiscoveryOpenID, DiscoveryOAuth)
	}
}

// discover reads the discovery document at docURL and returns its
// jwks_uri. The document must name issuer exactly, and its jwks_uri must
// pass checkURL.
func discover(ctx context.Context, client *http.Client, docURL, issuer string, insecure bool) (string, error) {
	doc, err := fetchMetadata(ctx, client, docURL, issuer)
	if err != nil {
		return "", err
	}
	if doc.JWKSURI == "" {
		return "", fmt.Errorf("discovery %s: no jwks_uri", docURL)
	}
	if err := checkURL(doc.JWKSURI, insecure); err != nil {
		return "", fmt.Errorf("discovery %s: jwks_uri %q: %w", docURL, clip(doc.JWKSURI), err)
	}
	return doc.JWKSURI, nil
}

// Metadata is what claimcheck reads of an issuer's discovery document.
type Metadata struct {
	Issuer                string `json:"issuer"`
	JWKSURI               string `json:"jwks_uri"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
	UserinfoEndpoint      string `json:"userinfo_endpoint"`
}

// Discover reads issuer's discovery document of kind (DiscoveryOpenID or
// DiscoveryOAuth) with client. The document must name issuer exactly; the
// URLs in it are not checked (see CheckURL).
func Discover(ctx context.Context, client *http.Client, issuer, kind string) (*Metadata, error) {
	docURL, err := discoveryURL(issuer, kind)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	return fetchMetadata(ctx, client, docURL, issuer)
}

// CheckURL reports why raw may not be fetched: not absolute, not http(s),
// or plain http to a host other than loopback unless insecure is set.
func CheckURL(raw string, insecure bool) error { return checkURL(raw, insecure) }

// fetchMetadata reads the discovery document at docURL, which must name
// issuer exactly.
func fetchMetadata(ctx context.Context, client *http.Client, docURL, issuer string) (*Metadata, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, docURL, nil)
	if err != nil {
		return nil, fmt.Errorf("discovery %s: %w", docURL, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("discovery %s: unexpected status %s", docURL, resp.Status)
	}
	body, err := readCapped(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("discovery %s: %w", docURL, err)
	}
	var doc Metadata
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("discovery %s: %w", docURL, err)
	}
	if doc.Issuer != issuer {
		return nil, fmt.Errorf("discovery %s: document names issuer %q, want %q", docURL, clip(doc.Issuer), issuer)
	}
	return &doc, nil
}

// clip shortens s, which came from the network, for an error message.
func clip(s string) string {
	const n = 200
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
