package token

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"time"
)

var errNotObject = errors.New("not a single JSON object")

// claims holds the registered claims Verify checks, typed.
type claims struct {
	exp      time.Time
	hasExp   bool
	nbf, iat time.Time
	hasNBF   bool
	hasIAT   bool
	aud      []string
	hasAud   bool
	scopes   []string
}

// NumericDate bounds: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
const (
	minNumericDate = -62135596800
	maxNumericDate = 253402300799
)

// parseClaims checks the JSON types of the registered claims and converts
// the ones Verify uses.
func parseClaims(m map[string]any) (*claims, error) {
	c := &claims{}
	var err error
	if c.exp, c.hasExp, err = numericDateClaim(m, "exp"); err != nil {
		return nil, err
	}
	if c.nbf, c.hasNBF, err = numericDateClaim(m, "nbf"); err != nil {
		return nil, err
	}
	if c.iat, c.hasIAT, err = numericDateClaim(m, "iat"); err != nil {
		return nil, err
	}
	for _, name := range [...]string{"sub", "jti"} {
		if v, ok := m[name]; ok {
			if _, ok := v.(string); !ok {
				return nil, reject(ErrClaims, "claim %q is not a string", name)
			}
		}
	}
	if v, ok := m["aud"]; ok {
		c.hasAud = true
		if c.aud, ok = stringOrStrings(v); !ok {
			return nil, reject(ErrClaims, `claim "aud" is neither a string nor an array of strings`)
		}
	}
	var scopes []string
	if v, ok := m["scope"]; ok {
		s, ok := v.(string)
		if !ok {
			return nil, reject(ErrClaims, `claim "scope" is not a string`)
		}
		scopes = strings.Fields(s)
	}
	switch v := m["scp"].(type) {
	case nil:
		if _, ok := m["scp"]; ok {
			return nil, reject(ErrClaims, `claim "scp" is neither a string nor an array of strings`)
		}
	case string:
		scopes = append(scopes, strings.Fields(v)...)
	default:
		list, ok := stringOrStrings(v)
		if !ok {
			return nil, reject(ErrClaims, `claim "scp" is neither a string nor an array of strings`)
		}
		scopes = append(scopes, list...)
	}
	c.scopes = dedupe(scopes)
	return c, nil
}

// checkClaims applies the time and audience rules at now.
func (iss *issuer) checkClaims(c *claims, now time.Time) error {
	if !c.hasExp {
		return reject(ErrNoExpiry, "token has no exp claim")
	}
	if !now.Before(c.exp.Add(iss.skew)) {
		return reject(ErrExpired, "token expired at %s", c.exp.UTC().Format(time.RFC3339))
	}
	if c.hasNBF && c.nbf.Add(-iss.skew).After(now) {
		return reject(ErrNotYetValid, "token is not valid before %s", c.nbf.UTC().Format(time.RFC3339))
	}
	if c.hasIAT && c.iat.Add(-iss.skew).After(now) {
		return reject(ErrIssuedInFuture, "token issued in the future, at %s", c.iat.UTC().Format(time.RFC3339))
	}
	if !c.hasAud {
		return reject(ErrAudience, "token has no aud claim")
	}
	for _, a := range c.aud {
		if slices.Contains(iss.audiences, a) {
			return nil
		}
	}
	switch len(c.aud) {
	case 0:
		return reject(ErrAudience, "token aud is empty")
	case 1:
		return reject(ErrAudience, "aud %q is not accepted for issuer %s", clip(c.aud[0]), iss.name)
	default:
		return reject(ErrAudience, "none of the %d aud values is accepted for issuer %s", len(c.aud), iss.name)
	}
}

// numericDateClaim reads the NumericDate claim name, if present.
func numericDateClaim(m map[string]any, name string) (time.Time, bool, error) {
	v, ok := m[name]
	if !ok {
		return time.Time{}, false, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false, reject(ErrClaims, "claim %q is not a number", name)
	}
	if i, err := n.Int64(); err == nil {
		if i < minNumericDate || i > maxNumericDate {
			return time.Time{}, false, reject(ErrClaims, "claim %q is out of range", name)
		}
		return time.Unix(i, 0), true, nil
	}
	f, err := n.Float64()
	if err != nil || f < minNumericDate || f > maxNumericDate {
		return time.Time{}, false, reject(ErrClaims, "claim %q is out of range", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// stringOrStrings accepts a JSON string or an array of JSON strings.
func stringOrStrings(v any) ([]string, bool) {
	switch v := v.(type) {
	case string:
		return []string{v}, true
	case []any:
		out := make([]string, len(v))
		for i, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out[i] = s
		}
		return out, true
	default:
		return nil, false
	}
}

// dedupe returns list without empty strings and repeats, in first-seen
// order, and never nil.
func dedupe(list []string) []string {
	out := make([]string, 0, len(list))
	if len(list) <= 16 {
		for _, s := range list {
			if s != "" && !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
		return out
	}
	seen := make(map[string]struct{}, len(list))
	for _, s := range list {
		if _, dup := seen[s]; s != "" && !dup {
			seen[s] = struct{}{}
			out = append(out, s)
		}
	}
	return out
}
