package extauthz

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/claimcheck/claimcheck/extauthz/token"
)

// errorBody is the JSON body of a deny.
func errorBody(oauthErr, desc string) string {
	b, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{oauthErr, desc})
	return string(b)
}

// challengeText makes s fit an RFC 6750 error_description: printable ASCII
// without '"' and '\'.
func challengeText(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\'')
		case r < 0x20 || r > 0x7e:
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// claimHeaderValue renders a claim as a header value: strings as they are,
// numbers and booleans as text, lists of strings joined by commas, anything
// else as JSON. ok is false when the claim is absent or the value could not
// be sent safely (control characters).
func claimHeaderValue(t *token.Token, claim string) (string, bool) {
	if t == nil {
		return "", false
	}
	v, ok := t.Claims[claim]
	if !ok || v == nil {
		return "", false
	}
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case json.Number:
		s = v.String()
	case bool:
		s = strconv.FormatBool(v)
	case []any:
		parts := make([]string, 0, len(v))
		for _, e := range v {
			es, ok := e.(string)
			if !ok {
				b, _ := json.Marshal(v)
				s = string(b)
				parts = nil
				break
			}
			parts = append(parts, es)
		}
		if parts != nil {
			s = strings.Join(parts, ",")
		}
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return "", false
		}
		s = string(b)
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", false
	}
	return s, true
}
