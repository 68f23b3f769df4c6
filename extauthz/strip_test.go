package extauthz

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/policy"
)

// TestDryRunStillStrips: a request allowed only by dry-run reaches the
// upstream too, so its credentials are stripped as on a real allow.
func TestDryRunStillStrips(t *testing.T) {
	deny := func(map[string]any) (policy.Result, error) { return policy.Result{}, nil }
	cfg := Config{TokenRequired: true, DryRun: true, Sources: []TokenSource{
		{Header: "authorization", Prefix: "Bearer ", Strip: true}, {Query: "access_token", Strip: true}, {Cookie: "at", Strip: true}}}
	a := newAuthorizer(t, cfg, fakeVerifier{tokens: map[string]*token.Token{"good": goodToken}}, &fakePolicy{fn: deny})
	for _, tok := range []string{"good", "forged"} { // a policy denial and a token rejection
		d := a.Check(context.Background(), httpRequest("GET", "/orders?access_token="+tok+"&x=1",
			map[string]string{"authorization": "Bearer " + tok, "cookie": "at=" + tok + "; theme=dark"}))
		if !d.Allowed || !d.DryRun {
			t.Fatalf("%s: not a dry-run allow: %+v", tok, d)
		}
		if !slices.Contains(d.RemoveHeaders, "authorization") || !slices.Equal(d.RemoveQueryParameters, []string{"access_token"}) {
			t.Errorf("%s: remove headers %q, query %q", tok, d.RemoveHeaders, d.RemoveQueryParameters)
		}
		if c, _ := header(d.UpstreamHeaders, "cookie"); c != "theme=dark" {
			t.Errorf("%s: upstream cookie %q", tok, c)
		}
	}
}

// checkStripped fails when an allow would let a credential of sources
// (all stripping) reach the upstream: a bearer header that is not removed,
// a query parameter whose name decodes to a query source's (in any case)
// that is not removed by its name as sent, a cookie of a cookie source's
// name in the cookie header the upstream gets.
func checkStripped(t *testing.T, sources []TokenSource, r *request, d Decision) {
	t.Helper()
	cookie, hasCookie := r.headers["cookie"]
	for _, h := range d.UpstreamHeaders {
		if strings.EqualFold(h.Key, "cookie") {
			cookie, hasCookie = h.Value, true
		}
	}
	if slices.Contains(d.RemoveHeaders, "cookie") {
		hasCookie = false
	}
	for _, s := range sources {
		switch {
		case s.Header != "":
			if _, ok := s.headerToken(r.headers); ok && !slices.Contains(d.RemoveHeaders, s.Header) {
				t.Fatalf("header %s reaches the upstream: %+v", s.Header, d)
			}
		case s.Query != "":
			for seg := range strings.SplitSeq(r.rawQuery, "&") {
				k, _, _ := strings.Cut(seg, "=")
				if dk, err := url.QueryUnescape(k); err == nil && strings.EqualFold(dk, s.Query) && !slices.Contains(d.RemoveQueryParameters, k) {
					t.Fatalf("query parameter %q reaches the upstream: %+v", k, d)
				}
			}
		case s.Cookie != "":
			if !hasCookie {
				continue
			}
			for seg := range strings.SplitSeq(cookie, ";") {
				name, _, pair := strings.Cut(seg, "=")
				if pair && strings.EqualFold(strings.TrimSpace(name), s.Cookie) {
					t.Fatalf("cookie %q reaches the upstream in %q: %+v", seg, cookie, d)
				}
			}
		}
	}
}
