package extauthz

import (
	"context"
	"net/http"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/claimcheck/claimcheck/extauthz/reason"
	"github.com/claimcheck/claimcheck/extauthz/token"
)

// TestHeaderSpellingsThatCollideAreABadRequest: two names of the headers
// map that lower-case alike are a 400 naming the header, never whichever
// the map gives first; names that only look alike pass.
func TestHeaderSpellingsThatCollideAreABadRequest(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string]string
		collide string // the header named in the 400; "" for an allow
	}{
		{"two spellings of authorization", map[string]string{"Authorization": "Bearer good", "authorization": "Bearer other"}, "authorization"},
		{"the same token in both", map[string]string{"Authorization": "Bearer good", "authorization": "Bearer good"}, "authorization"},
		{"upper and lower, neither lower-case", map[string]string{"AUTHORIZATION": "Bearer good", "Authorization": "Bearer good"}, "authorization"},
		{"two spellings of another header", map[string]string{"authorization": "Bearer good", "X-Tenant": "a", "x-TENANT": "b"}, "x-tenant"},
		{"cookie", map[string]string{"authorization": "Bearer good", "Cookie": "at=a", "cookie": "at=b"}, "cookie"},
		{"Kelvin sign is not k", map[string]string{"authorization": "Bearer good", "\u212Aey": "a", "key": "b"}, ""},
		{"one upper-case name", map[string]string{"Authorization": "Bearer good", "X-Tenant": "a"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 20 { // map order varies: the answer must not
				d := newAuthorizer(t, Config{TokenRequired: true}, fakeVerifier{tokens: map[string]*token.Token{"good": goodToken}}, &fakePolicy{fn: allowAll}).
					Check(context.Background(), httpRequest("GET", "/orders", tt.headers))
				if tt.collide == "" {
					if !d.Allowed {
						t.Fatalf("denied: %s %s", d.Reason, d.Description)
					}
					continue
				}
				if d.Allowed || d.Status != http.StatusBadRequest || d.Reason != reason.BadRequest || !strings.Contains(d.Description, `"`+tt.collide+`"`) {
					t.Fatalf("got allowed %v %d %s %q, want a 400 bad_request naming %q", d.Allowed, d.Status, d.Reason, d.Description, tt.collide)
				}
			}
		})
	}
}

// TestRawHeaderEntriesAreJoinedAsEnvoyJoins: header_map is a list in
// request order, so repeated entries are no coin toss: they are joined,
// cookie lines with "; " and the rest with ",", whatever their spelling.
func TestRawHeaderEntriesAreJoinedAsEnvoyJoins(t *testing.T) {
	tests := []struct {
		name    string
		entries [][2]string
		header  string
		want    string
	}{
		{"repeated header", [][2]string{{"x-trace", "a"}, {"x-trace", "b"}}, "x-trace", "a,b"},
		{"two spellings in order", [][2]string{{"X-Trace", "a"}, {"x-trace", "b"}, {"X-TRACE", "c"}}, "x-trace", "a,b,c"},
		{"two cookie lines", [][2]string{{"cookie", "a=1"}, {"cookie", "b=2"}}, "cookie", "a=1; b=2"},
		{"cookie lines in two spellings", [][2]string{{"Cookie", "a=1"}, {"cookie", "b=2; c=3"}}, "cookie", "a=1; b=2; c=3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httpRequest("GET", "/orders", nil)
			hm := &corev3.HeaderMap{Headers: []*corev3.HeaderValue{{Key: "authorization", RawValue: []byte("Bearer good")}}}
			for _, e := range tt.entries {
				hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: e[0], RawValue: []byte(e[1])})
			}
			req.Attributes.Request.Http.HeaderMap = hm
			p := &fakePolicy{fn: allowAll}
			d := newAuthorizer(t, Config{TokenRequired: true}, fakeVerifier{tokens: map[string]*token.Token{"good": goodToken}}, p).
				Check(context.Background(), req)
			if !d.Allowed {
				t.Fatalf("denied: %s %s", d.Reason, d.Description)
			}
			if got := p.input["request"].(map[string]any)["headers"].(map[string]any)[tt.header]; got != tt.want {
				t.Errorf("input.request.headers[%q] = %q, want %q", tt.header, got, tt.want)
			}
		})
	}
}

// TestCookieTokenIsFoundInAnyCookieLine: the token cookie is found in
// whichever of several cookie lines holds it, and next to cookies that do
// not parse. An empty value is found (as an empty header or query token
// is), for the verifier to refuse.
func TestCookieTokenIsFoundInAnyCookieLine(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  string
		found bool
	}{
		{"first line", []string{"at=good", "theme=dark"}, "good", true},
		{"second line", []string{"theme=dark", "at=good"}, "good", true},
		{"second line, several cookies", []string{"a=1; b=2", "c=3; at=good; d=4"}, "good", true},
		{"quoted value", []string{`at="good"`}, "good", true},
		{"spaces around", []string{"  theme=dark ;   at=good  "}, "good", true},
		{"next to a malformed cookie", []string{`bad cookie; x="unterminated; at=good`}, "good", true},
		{"empty segments", []string{";;at=good;;"}, "good", true},
		{"the first of two", []string{"at=good", "at=other"}, "good", true},
		{"empty value", []string{"at="}, "", true},
		{"name is case-sensitive", []string{"AT=good"}, "", false},
		{"name with a space", []string{"at =good"}, "", false},
		{"no cookie of that name", []string{"att=good; xat=good"}, "", false},
	}
	sources := []TokenSource{{Cookie: "at"}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httpRequest("GET", "/", nil)
			hm := &corev3.HeaderMap{}
			for _, l := range tt.lines {
				hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: "cookie", RawValue: []byte(l)})
			}
			req.Attributes.Request.Http.HeaderMap = hm
			r, err := parseRequest(req, 0)
			if err != nil {
				t.Fatal(err)
			}
			f, ok := extractToken(sources, r.headers, r.query)
			if ok != tt.found || f.raw != tt.want {
				t.Fatalf("found %q %v, want %q %v", f.raw, ok, tt.want, tt.found)
			}
		})
	}
}
