package extauthz

import (
	"net/http"
	"net/url"
	"strings"
)

// TokenSource is one place a bearer token may be found in a request:
// exactly one of Header, Query and Cookie is set.
type TokenSource struct {
	Header string // lower-case header name
	Prefix string // stripped from the header value, matched case-insensitively ("Bearer ")
	Query  string // query parameter name
	Cookie string // cookie name
}

// found is a token taken from a request and where it came from.
type found struct {
	raw    string
	header string // the header that carried it, if any
}

// extractToken returns the first token found in sources order. ok is false
// when no source holds one. A header that is present but lacks the prefix
// (for example "Authorization: Basic …") does not hold a bearer token.
func extractToken(sources []TokenSource, headers map[string]string, query url.Values) (found, bool) {
	for _, s := range sources {
		switch {
		case s.Header != "":
			v, ok := headers[s.Header]
			if !ok {
				continue
			}
			if s.Prefix != "" {
				if len(v) < len(s.Prefix) || !strings.EqualFold(v[:len(s.Prefix)], s.Prefix) {
					continue
				}
				v = v[len(s.Prefix):]
			}
			return found{raw: strings.TrimSpace(v), header: s.Header}, true
		case s.Query != "":
			if vs, ok := query[s.Query]; ok && len(vs) > 0 {
				return found{raw: vs[0]}, true
			}
		case s.Cookie != "":
			c, ok := headers["cookie"]
			if !ok {
				continue
			}
			cookies, err := http.ParseCookie(c)
			if err != nil {
				continue
			}
			for _, ck := range cookies {
				if ck.Name == s.Cookie {
					return found{raw: ck.Value}, true
				}
			}
		}
	}
	return found{}, false
}
