package token

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// strictError says why JSON that encoding/json would accept is still
// refused in a token: it would silently decode to something other than what
// another parser reads from the same signed bytes.
type strictError string

func (e strictError) Error() string { return string(e) }

// checkStrict refuses JSON text that is not valid UTF-8 or escapes a lone
// UTF-16 surrogate (encoding/json would replace either with U+FFFD; other
// parsers drop or keep it), or that has an object, at any depth, repeating
// a member name (encoding/json keeps the last, other parsers the first, so
// the policy and the upstream could read different claims from the same
// signed bytes). RFC 7515 §5.2 and RFC 7519 §4 allow rejecting both. b
// must be syntactically valid JSON, as DecodeObject has found it to be.
//
// It runs before the signature is checked, on every token: it scans b once
// without allocating for the usual small objects, and keeps a set only for
// objects with many members, so that it stays linear.
func checkStrict(b []byte) error {
	if !utf8.Valid(b) {
		return strictError("is not valid UTF-8")
	}
	if loneSurrogate(b) {
		return strictError("escapes a lone UTF-16 surrogate")
	}
	if name, dup := duplicateName(b); dup {
		return strictError(fmt.Sprintf("repeats the member name %q", clip(name)))
	}
	return nil
}

// manyMembers is the member count past which an object's names go in a set.
const manyMembers = 16

// open is an object or array being scanned by duplicateName.
type open struct {
	first int                 // index in names of the object's first name; -1 for an array
	set   map[string]struct{} // the object's names, once it has manyMembers
}

// duplicateName returns the first member name that an object in the valid
// JSON text b repeats, compared after unescaping.
func duplicateName(b []byte) (string, bool) {
	var namesBuf [32][]byte
	var stackBuf [8]open
	names, stack := namesBuf[:0], stackBuf[:0]
	wantName := false
	for i := 0; i < len(b); i++ {
		if len(stack) == 0 && b[i] != '{' && b[i] != '[' && b[i] != '"' {
			continue // outside any container: whitespace or a scalar
		}
		switch b[i] {
		case '{':
			stack = append(stack, open{first: len(names)})
			wantName = true
		case '[':
			stack = append(stack, open{first: -1})
		case '}', ']':
			if top := stack[len(stack)-1]; top.first >= 0 {
				names = names[:top.first]
			}
			stack = stack[:len(stack)-1]
		case ',':
			wantName = stack[len(stack)-1].first >= 0
		case '"':
			end := stringEnd(b, i)
			if wantName {
				wantName = false
				name := b[i+1 : end]
				if bytes.IndexByte(name, '\\') >= 0 {
					var s string
					if json.Unmarshal(b[i:end+1], &s) != nil {
						return "", false // not valid JSON; DecodeObject reports it
					}
					name = []byte(s)
				}
				top := &stack[len(stack)-1]
				if top.set == nil {
					for _, n := range names[top.first:] {
						if bytes.Equal(n, name) {
							return string(name), true
						}
					}
					names = append(names, name)
					if len(names)-top.first == manyMembers {
						top.set = make(map[string]struct{}, 2*manyMembers)
						for _, n := range names[top.first:] {
							top.set[string(n)] = struct{}{}
						}
					}
				} else if _, dup := top.set[string(name)]; dup {
					return string(name), true
				} else {
					top.set[string(name)] = struct{}{}
				}
			}
			i = end
		}
	}
	return "", false
}

// stringEnd returns the index of the quote closing the JSON string that
// starts at b[start], or len(b)-1 if there is none.
func stringEnd(b []byte, start int) int {
	for j := start + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j
		}
	}
	return len(b) - 1
}

// loneSurrogate reports whether the JSON text b, which is syntactically
// valid, has a \uD800–\uDFFF escape that is not a high surrogate followed
// by a low one. In valid JSON every backslash starts an escape.
func loneSurrogate(b []byte) bool {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		i++ // the escaped character
		if i+5 > len(b) {
			return false // not valid JSON: the tokenizer reports it
		}
		if b[i] != 'u' {
			continue
		}
		switch u := hex4(b[i+1 : i+5]); {
		case u >= 0xDC00 && u <= 0xDFFF:
			return true
		case u >= 0xD800 && u <= 0xDBFF:
			next := b[i+5:]
			if len(next) < 6 || next[0] != '\\' || next[1] != 'u' {
				return true
			}
			if lo := hex4(next[2:6]); lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			i += 10
		default:
			i += 4
		}
	}
	return false
}

// hex4 decodes four hexadecimal digits, which valid JSON guarantees.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}
