package extauthz

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/claimcheck/claimcheck/policy"
)

// TokenSource is one place a bearer token may be found in a request:
// exactly one of Header, Query and Cookie is set.
type TokenSource struct {
	Header string // lower-case header name
	Prefix string // stripped from the header value, matched case-insensitively ("Bearer ")
	Query  string // query parameter name
	Cookie string // cookie name
	// Strip keeps what this source holds from the upstream of an allowed
	// request (see Authorizer.strip).
	Strip bool
}

// found is a token taken from a request.
type found struct {
	raw string
}

// extractToken returns the first token found in sources order. ok is false
// when no source holds one. A header that is present but lacks the prefix
// (for example "Authorization: Basic …") does not hold a bearer token.
func extractToken(sources []TokenSource, headers map[string]string, query url.Values) (found, bool) {
	for _, s := range sources {
		switch {
		case s.Header != "":
			if v, ok := s.headerToken(headers); ok {
				return found{raw: v}, true
			}
		case s.Query != "":
			if vs, ok := query[s.Query]; ok && len(vs) > 0 {
				return found{raw: vs[0]}, true
			}
		case s.Cookie != "":
			if v, ok := cookieValue(headers["cookie"], s.Cookie); ok {
				return found{raw: v}, true
			}
		}
	}
	return found{}, false
}

// headerToken returns the token in the header source s names, if the
// header is there with s's prefix.
func (s TokenSource) headerToken(headers map[string]string) (string, bool) {
	v, ok := headers[s.Header]
	if !ok {
		return "", false
	}
	if s.Prefix != "" {
		if len(v) < len(s.Prefix) || !strings.EqualFold(v[:len(s.Prefix)], s.Prefix) {
			return "", false
		}
		v = v[len(s.Prefix):]
	}
	return strings.TrimSpace(v), true
}

// cookieValue returns the value of the first cookie called name in a Cookie
// header: cookie lines that came separately are joined with "; "
// (JoinHeaderValues), so a token in any line is found. Each cookie is
// parsed on its own: one malformed cookie (another application's, on the
// same domain) does not hide the token in the others.
func cookieValue(header, name string) (string, bool) {
	for seg := range strings.SplitSeq(header, ";") {
		cs, err := http.ParseCookie(seg)
		if err == nil && len(cs) == 1 && cs[0].Name == name {
			return cs[0].Value, true
		}
	}
	return "", false
}

// strip keeps what every source with Strip holds away from the upstream of
// the request d allows, whichever source the token was taken from: a
// second credential the upstream might read instead of the one verified
// (a query token next to the header) is one nobody judged.
//
//   - A header source's header is removed when it holds a token (with the
//     prefix: "Authorization: Basic …" stays).
//   - A query source's parameter is removed (over gRPC) under every name it
//     was sent as: Envoy matches query_parameters_to_remove against the
//     names as sent, while the token was looked up by the decoded name, so
//     access%5Ftoken is listed next to access_token. Names are matched
//     without regard to case: ACCESS_TOKEN is not a token to claimcheck,
//     but it is access_token to an upstream that reads names that way
//     (ASP.NET does).
//   - The cookie header is restated without the cookie sources' cookies,
//     matched without regard to case for the same reason (or removed when
//     none remain), and restated unchanged when it holds none:
//     a forward-auth proxy that copies Cookie from the answer (Caddy
//     copy_headers, nginx auth_request_set, Traefik authResponseHeaders)
//     would otherwise drop every cookie of a request without the token
//     cookie. A decision that sets or removes cookie itself keeps its own.
func (a *Authorizer) strip(d *Decision, r *request) {
	var cookies []string
	for _, s := range a.cfg.Sources {
		if !s.Strip {
			continue
		}
		switch {
		case s.Header != "":
			if _, ok := s.headerToken(r.headers); ok && !slices.Contains(d.RemoveHeaders, s.Header) {
				d.RemoveHeaders = append(d.RemoveHeaders, s.Header)
			}
		case s.Query != "":
			d.RemoveQueryParameters = sentNames(d.RemoveQueryParameters, r.rawQuery, s.Query)
		case s.Cookie != "":
			cookies = append(cookies, s.Cookie)
		}
	}
	c, ok := r.headers["cookie"]
	if len(cookies) == 0 || !ok || setsOrRemoves(d, "cookie") {
		return
	}
	// A value Envoy or a proxy would refuse (a hostile CheckRequest's) is
	// not restated but removed: the credential must not get through.
	if rest := withoutCookies(c, cookies); rest != "" && policy.ValidHeaderValue(rest) {
		d.UpstreamHeaders = append(d.UpstreamHeaders, policy.Header{Key: "cookie", Value: rest})
	} else {
		d.RemoveHeaders = append(d.RemoveHeaders, "cookie")
	}
}

// sentNames appends to names, once each, the names as sent of the
// parameters of rawQuery that decode to name, in any case.
func sentNames(names []string, rawQuery, name string) []string {
	for seg := range strings.SplitSeq(rawQuery, "&") {
		k, _, _ := strings.Cut(seg, "=")
		if dk, err := url.QueryUnescape(k); err == nil && strings.EqualFold(dk, name) && !slices.Contains(names, k) {
			names = append(names, k)
		}
	}
	return names
}

// withoutCookies returns the Cookie header without the cookies called one
// of names, in any case, or header itself when it has none of them. A
// cookie's name is matched after trimming spaces ("at =x" is taken out
// too, as lenient parsers read it); the other cookies keep their bytes,
// joined with "; ".
func withoutCookies(header string, names []string) string {
	segs := strings.Split(header, ";")
	kept := make([]string, 0, len(segs))
	removed := false
	for _, seg := range segs {
		seg = strings.Trim(seg, " \t")
		name, _, pair := strings.Cut(seg, "=")
		name = strings.Trim(name, " \t")
		if pair && slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, name) }) {
			removed = true
			continue
		}
		if seg != "" {
			kept = append(kept, seg)
		}
	}
	if !removed {
		return header
	}
	return strings.Join(kept, "; ")
}

// setsOrRemoves reports whether d already sets or removes the header name.
func setsOrRemoves(d *Decision, name string) bool {
	for _, h := range d.UpstreamHeaders {
		if strings.EqualFold(h.Key, name) {
			return true
		}
	}
	return slices.ContainsFunc(d.RemoveHeaders, func(h string) bool { return strings.EqualFold(h, name) })
}
