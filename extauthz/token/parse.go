package token

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"strings"
)

// parsed is a structurally valid, not yet verified compact JWS.
type parsed struct {
	header  map[string]any
	payload []byte // decoded; any bytes, possibly empty
	input   string // the signing input: the encoded header and payload
	sig     []byte
	alg     string
	kid     string
	hasKID  bool
}

var segmentNames = [3]string{"header", "payload", "signature"}

// parse splits raw into its three segments and decodes them and the
// header. The payload may be empty and is not interpreted. It checks
// structure only; nothing in the result is trusted.
func parse(raw string) (*parsed, error) {
	if raw == "" {
		return nil, reject(ErrMalformed, "token is empty")
	}
	if strings.HasPrefix(raw, "{") {
		return nil, reject(ErrMalformed, "JWS JSON serialization is not supported, only compact")
	}
	if n := strings.Count(raw, ".") + 1; n != 3 {
		if n == 5 {
			return nil, reject(ErrMalformed, "token has 5 segments; encrypted tokens (JWE) are not supported")
		}
		return nil, reject(ErrMalformed, "token has %d dot-separated segments, want 3", n)
	}
	var seg [3][]byte
	rest := raw
	for i := range seg {
		part, after, _ := strings.Cut(rest, ".")
		rest = after
		if part == "" && i != 1 {
			return nil, reject(ErrMalformed, "%s segment is empty", segmentNames[i])
		}
		b, err := decodeSegment(part)
		if err != nil {
			return nil, reject(ErrMalformed, "%s segment is not unpadded base64url", segmentNames[i])
		}
		seg[i] = b
	}

	p := &parsed{
		payload: seg[1],
		input:   raw[:strings.LastIndexByte(raw, '.')],
		sig:     seg[2],
	}
	var err error
	if p.header, err = DecodeObject(seg[0]); err != nil {
		return nil, malformedJSON("header", err)
	}
	var ok bool
	if p.alg, ok = p.header["alg"].(string); !ok {
		return nil, reject(ErrMalformed, "header has no string alg")
	}
	if v, present := p.header["kid"]; present {
		if p.kid, ok = v.(string); !ok {
			return nil, reject(ErrMalformed, "header kid is not a string")
		}
		p.hasKID = true
	}
	if v, present := p.header["typ"]; present {
		if _, ok := v.(string); !ok {
			return nil, reject(ErrMalformed, "header typ is not a string")
		}
	}
	return p, nil
}

// decodeSegment decodes unpadded base64url, refusing padding, characters
// outside the URL-safe alphabet (which the decoder would otherwise skip, as
// it does line breaks) and non-canonical trailing bits.
func decodeSegment(s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return nil, base64.CorruptInputError(i)
		}
	}
	return base64.RawURLEncoding.Strict().DecodeString(s)
}

// DecodeObject decodes b, which must hold exactly one JSON object, keeping
// numbers as json.Number, as strictly as a JWT's header and payload: it
// also refuses what encoding/json accepts but other parsers read
// differently — invalid UTF-8, an escaped lone UTF-16 surrogate, an object
// (at any depth) repeating a member name, compared after unescaping. The
// other answers about a token (introspection, userinfo) are held to it too.
func DecodeObject(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errNotObject
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errNotObject
	}
	if err := checkStrict(b); err != nil {
		return nil, err
	}
	return m, nil
}

// malformedJSON is the rejection of a header or payload that DecodeObject
// refused with err.
func malformedJSON(segment string, err error) error {
	var s strictError
	if errors.As(err, &s) {
		return reject(ErrMalformed, "%s %s", segment, s)
	}
	return reject(ErrMalformed, "%s is not a JSON object", segment)
}
