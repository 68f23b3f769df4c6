package main

import (
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

// forwardAuthGate is the demo's reverse proxy: like Caddy's forward_auth,
// it asks claimcheck's forward-auth endpoint about each request (method and
// URI in X-Forwarded-*, the client's headers as they came) and, on 200,
// copies the claim headers into the request and proxies it upstream; any
// other answer goes back to the client as it is. claimcheck unreachable is
// a 502: it never fails open.
type forwardAuthGate struct {
	authURL string
	copy    []string // claim headers to copy from the answer, replacing the client's
	proxy   *httputil.ReverseProxy
	client  *http.Client
}

func newForwardAuthGate(authURL, upstream string, copyHeaders []string) *forwardAuthGate {
	u, _ := url.Parse(upstream)
	return &forwardAuthGate{
		authURL: authURL,
		copy:    copyHeaders,
		proxy:   &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(u); r.Out.Host = r.In.Host }},
		client:  &http.Client{Timeout: 5 * time.Second},
	}
}

func (g *forwardAuthGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ask, err := http.NewRequestWithContext(r.Context(), http.MethodGet, g.authURL, nil)
	if err != nil {
		http.Error(w, "bad gateway", http.StatusBadGateway)
		return
	}
	ask.Header = r.Header.Clone()
	ask.Header.Set("X-Forwarded-Method", r.Method)
	ask.Header.Set("X-Forwarded-Uri", r.URL.RequestURI())
	ask.Header.Set("X-Forwarded-Host", r.Host)
	ask.Header.Set("X-Forwarded-Proto", "http")
	ans, err := g.client.Do(ask)
	if err != nil {
		http.Error(w, "authorization unavailable", http.StatusBadGateway)
		return
	}
	defer ans.Body.Close()
	w.Header().Set("X-Claimcheck-Reason", ans.Header.Get("X-Claimcheck-Reason"))
	if ans.StatusCode != http.StatusOK {
		for _, h := range []string{"Content-Type", "WWW-Authenticate"} {
			if v := ans.Header.Values(h); len(v) > 0 {
				w.Header()[h] = v
			}
		}
		w.WriteHeader(ans.StatusCode)
		io.Copy(w, io.LimitReader(ans.Body, 64<<10))
		return
	}
	for _, h := range g.copy {
		r.Header.Del(h)
		if v := ans.Header.Get(h); v != "" {
			r.Header.Set(h, v)
		}
	}
	g.proxy.ServeHTTP(w, r)
}
