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
			if v, ok := cookieValue(headers["cookie"], s.Cookie); ok {
				return found{raw: v}, true
			}
		}
	}
	return found{}, false
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
