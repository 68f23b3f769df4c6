package token

import "strings"

// ValidTyp reports whether s can be a required "typ": a media type such as
// "at+jwt" or "application/at+jwt", made of RFC 6838 restricted-name
// characters, with at most one "/" between non-empty parts.
func ValidTyp(s string) bool {
	main, sub, slash := strings.Cut(s, "/")
	if !slash {
		return restrictedName(main)
	}
	return restrictedName(main) && restrictedName(sub)
}

// restrictedName reports whether s is an RFC 6838 §4.2 restricted-name.
func restrictedName(s string) bool {
	if s == "" || len(s) > 127 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || !strings.ContainsRune("!#$&-^_.+", rune(c))) {
			return false
		}
	}
	return true
}

// normalizeTyp puts a "typ" value in the form RFC 7515 §4.1.9 compares:
// lower case (media types are case-insensitive), with "application/"
// prepended when it has no "/".
func normalizeTyp(s string) string {
	if s == "" {
		return ""
	}
	s = strings.ToLower(s)
	if !strings.Contains(s, "/") {
		s = "application/" + s
	}
	return s
}

// checkTyp enforces the issuer's required "typ", if any, on a header whose
// "typ", when present, parse found to be a string.
func (iss *issuer) checkTyp(header map[string]any) error {
	if iss.typ == "" {
		return nil
	}
	v, ok := header["typ"].(string)
	if !ok {
		return reject(ErrTyp, "token has no typ header; issuer %s requires %q", iss.name, iss.typ)
	}
	if normalizeTyp(v) != iss.typ {
		return reject(ErrTyp, "typ %q is not %q, which issuer %s requires", clip(v), iss.typ, iss.name)
	}
	return nil
}
