package urlpath_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/claimcheck/claimcheck/extauthz/urlpath"
)

// TestCanonical: what the policy sees for each target, in both modes. An
// empty want is a refusal, whose message must name the problem.
func TestCanonical(t *testing.T) {
	tests := []struct {
		target         string
		reject, resolv string // canonical path in each mode; "" refused
		problem        string // in the error, when refused by reject
	}{
		{"/", "/", "/", ""},
		{"/orders/42", "/orders/42", "/orders/42", ""},
		{"/orders/42?x=1&next=../y", "/orders/42", "/orders/42", ""},
		{"/orders/42/", "/orders/42/", "/orders/42/", ""},
		{"/%61dmin", "/admin", "/admin", ""},
		{"/%7euser/%2D%5f", "/~user/-_", "/~user/-_", ""},
		{"/a%2cb/a%20b", "/a%2Cb/a%20b", "/a%2Cb/a%20b", ""},
		{"/caf%c3%a9", "/caf%C3%A9", "/caf%C3%A9", ""},
		{"/orders/..foo/.x/...", "/orders/..foo/.x/...", "/orders/..foo/.x/...", ""},
		{"/a:b@c!$&'()*+,=", "/a:b@c!$&'()*+,=", "/a:b@c!$&'()*+,=", ""},
		// Dot and empty segments: refused, or resolved.
		{"/orders/../admin", "", "/admin", "dot segment"},
		{"/orders/%2e%2E/admin", "", "/admin", "dot segment"},
		{"/orders/.%2e/admin", "", "/admin", "dot segment"},
		{"/orders/./x", "", "/orders/x", "dot segment"},
		{"/orders/.", "", "/orders/", "dot segment"},
		{"/orders/..", "", "/", "dot segment"},
		{"/..", "", "/", "dot segment"},
		{"/../../admin", "", "/admin", "dot segment"},
		{"//admin", "", "/admin", "empty segment"},
		{"/orders//42", "", "/orders/42", "empty segment"},
		{"/orders/x//..", "", "/orders/", "empty segment"},
		// Refused in both modes.
		{`/orders/..\admin`, "", "", "backslash"},
		{"/orders/..%5Cadmin", "", "", "encoded backslash"},
		{"/orders/%2F..%2Fadmin", "", "", "encoded slash"},
		{"/orders/%2f", "", "", "encoded slash"},
		{"/orders/..;/admin", "", "", "path parameter"},
		{"/admin;x", "", "", "path parameter"},
		{"/orders/..%3b/admin", "", "", "%3B"},
		{"/orders/%252e%252e/admin", "", "", "double-encoded escape (%252e)"},
		{"/orders/%25%32%65", "", "", "double-encoded"},
		{"/orders/%25", "/orders/%25", "/orders/%25", ""},
		{"/orders/%c0%ae%c0%ae/admin", "", "", "not UTF-8"},
		{"/orders/%ff", "", "", "not UTF-8"},
		{"/orders/%00", "", "", "NUL or control"},
		{"/orders/%09", "", "", "NUL or control"},
		{"/orders/%7F", "", "", "NUL or control"},
		{"/orders/\x00", "", "", "control"},
		{"/orders/\t", "", "", "control"},
		{"/orders/a b", "", "", "space"},
		{"/orders/\x7f", "", "", "control"},
		{"/orders/é", "", "", "beyond ASCII"},
		{"/orders/#x", "", "", "fragment"},
		{"/orders?x=#", "", "", "fragment"},
		{"/orders?x= 1", "", "", "space"},
		{"/orders/%zz", "", "", "two hex digits"},
		{"/orders/%2", "", "", "two hex digits"},
		{"/orders/%", "", "", "two hex digits"},
		{"orders/42", "", "", `does not start with "/"`},
		{"", "", "", `does not start with "/"`},
		{"*", "", "", `does not start with "/"`},
		{`\orders`, "", "", `does not start with "/"`},
		{"?/orders", "", "", `does not start with "/"`},
	}
	for _, tt := range tests {
		for _, m := range []urlpath.Mode{urlpath.Reject, urlpath.Resolve} {
			want := tt.reject
			if m == urlpath.Resolve {
				want = tt.resolv
			}
			got, err := urlpath.Canonical(tt.target, m)
			switch {
			case want == "" && err == nil:
				t.Errorf("%s %q: accepted as %q, want refused", m, tt.target, got.Path)
			case want == "" && !errors.Is(err, urlpath.ErrInvalid):
				t.Errorf("%s %q: error %v does not wrap ErrInvalid", m, tt.target, err)
			case want == "" && m == urlpath.Reject && !strings.Contains(err.Error(), tt.problem):
				t.Errorf("%s %q: error %q does not mention %q", m, tt.target, err, tt.problem)
			case want != "" && err != nil:
				t.Errorf("%s %q: %v, want %q", m, tt.target, err, want)
			case want != "" && got.Path != want:
				t.Errorf("%s %q: path %q, want %q", m, tt.target, got.Path, want)
			}
		}
	}
}

// TestCanonicalKeepsWhatWasSent: raw_path and the query stay as sent.
func TestCanonicalKeepsWhatWasSent(t *testing.T) {
	got, err := urlpath.Canonical("/%6Frders/%7e?a=%2e%2e&b=c", urlpath.Reject)
	if err != nil {
		t.Fatal(err)
	}
	want := urlpath.Target{Path: "/orders/~", RawPath: "/%6Frders/%7e", RawQuery: "a=%2e%2e&b=c"}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// TestErrorsNeverEchoTheQuery: a query may carry a token, and refusals are
// sent to the client and logged.
func TestErrorsNeverEchoTheQuery(t *testing.T) {
	for _, target := range []string{
		"/orders/../x?access_token=s3cr3t", "/orders/x?access_token=s3cr3t#frag", "/a b?access_token=s3cr3t",
		"x?access_token=s3cr3t", "/%zz?access_token=s3cr3t", "/x?access_token=s3cr3t\x00",
	} {
		_, err := urlpath.Canonical(target, urlpath.Reject)
		if err == nil {
			t.Errorf("%q accepted", target)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%q: error %q echoes the query", target, err)
		}
	}
}

// TestLongPathErrorsAreShort: a refusal quotes at most the start of a path.
func TestLongPathErrorsAreShort(t *testing.T) {
	_, err := urlpath.Canonical("/"+strings.Repeat("a", 1<<20)+"/../x", urlpath.Reject)
	if err == nil || len(err.Error()) > 400 {
		t.Errorf("error of %d bytes: %.200v", len(err.Error()), err)
	}
}

func TestModes(t *testing.T) {
	for name, m := range urlpath.Modes {
		if m.String() != name {
			t.Errorf("Modes[%q].String() = %q", name, m)
		}
	}
	var zero urlpath.Mode
	if zero != urlpath.Reject {
		t.Error("the zero Mode is not Reject")
	}
}

// FuzzCanonical: Canonical never panics; what it accepts is canonical
// (canonicalising it again changes nothing, in either mode), holds none of
// what it refuses, and in reject mode differs from the raw path only in the
// spelling of escapes.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{
		"/", "/orders/42?x=1", "/orders/../admin", "/%61dmin", "//a", "/a/./b", "/a%2Fb", `/a\b`, "/a;b",
		"/%25%32%65", "/%c0%ae", "/caf%C3%A9", "/a/..", "/orders/%2e%2E/./x//y/..", "/%7E%7e~",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		for _, m := range []urlpath.Mode{urlpath.Reject, urlpath.Resolve} {
			got, err := urlpath.Canonical(target, m)
			if err != nil {
				if !errors.Is(err, urlpath.ErrInvalid) {
					t.Fatalf("%s %q: %v does not wrap ErrInvalid", m, target, err)
				}
				continue
			}
			again, err := urlpath.Canonical(got.Path, m)
			if err != nil || again.Path != got.Path {
				t.Fatalf("%s %q → %q → %q, %v: not idempotent", m, target, got.Path, again.Path, err)
			}
			if m == urlpath.Reject {
				// Reject's path is also Resolve's: nothing left to resolve.
				if r, err := urlpath.Canonical(got.Path, urlpath.Resolve); err != nil || r.Path != got.Path {
					t.Fatalf("%q → %q, which resolve makes %q, %v", target, got.Path, r.Path, err)
				}
			}
			p := got.Path
			if !strings.HasPrefix(p, "/") || strings.Contains(p, "//") || strings.ContainsAny(p, "\\;?#") ||
				strings.Contains(p, "/./") || strings.Contains(p, "/../") || strings.HasSuffix(p, "/.") || strings.HasSuffix(p, "/..") {
				t.Fatalf("%s %q → %q still holds what is refused", m, target, p)
			}
		}
	})
}
