// Package urlpath turns an HTTP request target into the path a policy
// judges. Both adapters (gRPC and forward-auth) and `claimcheck check` reach
// it through the decision path, so a path means the same whichever way it
// came.
//
// The canonical path follows RFC 3986 §6.2.2 and what Envoy's
// normalize_path, merge_slashes and path_with_escaped_slashes_action do:
// escapes of unreserved characters are decoded (%61 → a), the remaining
// escapes are upper-cased (%2f → %2F), and the query is split off. What is
// left that an upstream could read differently from the policy — dot
// segments, empty segments, backslashes, encoded slashes, path parameters,
// control bytes — is refused (Reject, the default) or, for dot and empty
// segments only, resolved (Resolve).
package urlpath

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Mode says what to do with dot segments and empty segments.
type Mode int

const (
	// Reject refuses a path with dot segments ("." or "..", also
	// percent-encoded) or empty segments ("//"). It is the default: the
	// path the policy judges is then the one every upstream serves.
	Reject Mode = iota
	// Resolve merges repeated slashes and removes dot segments (RFC 3986
	// §5.2.4), as Envoy's normalize_path and merge_slashes do. It is safe
	// only when the proxy in front normalises the same way before routing,
	// so that the upstream gets the resolved path too.
	Resolve
)

// Modes names the modes in configuration.
var Modes = map[string]Mode{"reject": Reject, "resolve": Resolve}

func (m Mode) String() string {
	if m == Resolve {
		return "resolve"
	}
	return "reject"
}

// ErrInvalid is wrapped by every error Canonical returns.
var ErrInvalid = errors.New("invalid request path")

// Target is a request target, split and canonicalised.
type Target struct {
	// Path is the canonical path: what the policy sees as input.request.path.
	Path string
	// RawPath is the path as sent, before canonicalisation, without the query.
	RawPath string
	// RawQuery is the query string as sent, without the "?".
	RawQuery string
}

// maxQuoted bounds how much of a path an error message repeats.
const maxQuoted = 128

// Canonical canonicalises target, an origin-form request target such as
// "/orders/42?x=1". Its error wraps ErrInvalid and says what is wrong; the
// message quotes the path but never the query, which may carry a token.
func Canonical(target string, m Mode) (Target, error) {
	rawPath, rawQuery, _ := strings.Cut(target, "?")
	t := Target{RawPath: rawPath, RawQuery: rawQuery}
	fail := func(what string) (Target, error) {
		return Target{}, fmt.Errorf("%w: %s has %s", ErrInvalid, quote(rawPath), what)
	}
	if !strings.HasPrefix(rawPath, "/") {
		return Target{}, fmt.Errorf("%w: %s does not start with \"/\"", ErrInvalid, quote(rawPath))
	}
	for i := 0; i < len(target); i++ {
		switch c := target[i]; {
		case c <= ' ' || c == 0x7f:
			return fail("a space or control character")
		case c >= utf8.RuneSelf:
			return fail("a byte beyond ASCII that is not percent-encoded")
		case c == '#':
			return fail("a fragment ('#'), which a client never sends")
		}
	}

	p, problem := escapes(rawPath)
	if problem != "" {
		return fail(problem)
	}
	if m == Resolve {
		t.Path = removeDotSegments(mergeSlashes(p))
		return t, nil
	}
	for rest := p[1:]; ; {
		seg, next, more := strings.Cut(rest, "/")
		switch {
		case seg == "." || seg == "..":
			return fail("a dot segment (\"" + seg + "\", also when percent-encoded)")
		case seg == "" && more:
			return fail("an empty segment (\"//\")")
		}
		if !more {
			break
		}
		rest = next
	}
	t.Path = p
	return t, nil
}

// escapes checks the bytes and escapes of path p and returns it with
// escapes of unreserved characters decoded and the others upper-cased; the
// problem, when not empty, says what is wrong with p.
func escapes(p string) (canonical, problem string) {
	if strings.IndexByte(p, '%') < 0 {
		switch {
		case strings.IndexByte(p, '\\') >= 0:
			return "", "a backslash, which many servers read as '/'"
		case strings.IndexByte(p, ';') >= 0:
			return "", pathParameter
		}
		return p, "" // the common case: nothing to rewrite
	}
	var b strings.Builder
	b.Grow(len(p))
	high := false // an escape of a byte beyond ASCII: check UTF-8 below
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch c {
		case '\\':
			return "", "a backslash, which many servers read as '/'"
		case ';':
			return "", pathParameter
		case '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return "", "a '%' that is not followed by two hex digits"
			}
			d := unhex(p[i+1])<<4 | unhex(p[i+2])
			i += 2
			switch {
			case unreserved(d):
				b.WriteByte(d)
				continue
			case d == '/':
				return "", "an encoded slash (%2F)"
			case d == '\\':
				return "", "an encoded backslash (%5C)"
			case d == ';':
				return "", "an encoded ';' (%3B), which some servers decode and strip as a path parameter"
			case d < ' ' || d == 0x7f:
				return "", "an encoded NUL or control character"
			case d >= utf8.RuneSelf:
				high = true
			}
			b.WriteByte('%')
			b.WriteByte(upperHex[d>>4])
			b.WriteByte(upperHex[d&0xf])
		default:
			b.WriteByte(c)
		}
	}
	out := b.String()
	if i := doubleEncoded(out); i >= 0 {
		return "", "a double-encoded escape (" + out[i:i+5] + ")"
	}
	if high && !utf8.ValidString(unescape(out)) {
		return "", "percent-encoded bytes that are not UTF-8 (such as an overlong '.')"
	}
	return out, ""
}

const pathParameter = "a ';' (path parameter), which servers such as Tomcat strip before routing"

// quote quotes a path for an error message, cut to maxQuoted bytes.
func quote(p string) string {
	if len(p) > maxQuoted {
		return fmt.Sprintf("%q… (%d bytes)", p[:maxQuoted], len(p))
	}
	return fmt.Sprintf("%q", p)
}

// doubleEncoded returns the index of an escaped '%' followed by two hex
// digits ("%252e"), which an upstream that decodes twice reads as an
// escape; -1 when there is none.
func doubleEncoded(p string) int {
	for i := 0; i+4 < len(p); i++ {
		if p[i] == '%' && p[i+1] == '2' && p[i+2] == '5' && isHex(p[i+3]) && isHex(p[i+4]) {
			return i
		}
	}
	return -1
}

// mergeSlashes replaces every run of slashes with one.
func mergeSlashes(p string) string {
	if !strings.Contains(p, "//") {
		return p
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && i > 0 && p[i-1] == '/' {
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// removeDotSegments is RFC 3986 §5.2.4 for an absolute path with no empty
// segments: "/a/./b/../c" → "/a/c"; ".." at the root stays at the root.
func removeDotSegments(p string) string {
	segs := strings.Split(p[1:], "/")
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/")
}

// unescape decodes every escape of p, which Canonical has checked.
func unescape(p string) string {
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '%' {
			b.WriteByte(unhex(p[i+1])<<4 | unhex(p[i+2]))
			i += 2
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// unreserved reports whether c is an RFC 3986 unreserved character, whose
// escape means the same as the character itself.
func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

const upperHex = "0123456789ABCDEF"

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
