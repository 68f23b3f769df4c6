package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Keys of a decision object.
const (
	keyAllowed                = "allowed"
	keyHeaders                = "headers"
	keyResponseHeadersToAdd   = "response_headers_to_add"
	keyRequestHeadersToRemove = "request_headers_to_remove"
	keyBody                   = "body"
	keyHTTPStatus             = "http_status"
	keyDynamicMetadata        = "dynamic_metadata"
)

// decodeResult converts a decision value, a boolean or a decision object,
// into a Result.
func decodeResult(v ast.Value) (Result, error) {
	switch v := v.(type) {
	case ast.Boolean:
		return Result{Allowed: bool(v)}, nil
	case ast.Object:
		return decodeObject(v)
	default:
		return Result{}, wrongType("decision", "a boolean or an object", v)
	}
}

// decodeObject converts a decision object. Keys it does not know are ignored.
func decodeObject(obj ast.Object) (Result, error) {
	var res Result

	allowed := obj.Get(ast.StringTerm(keyAllowed))
	if allowed == nil {
		return Result{}, fmt.Errorf("%w: decision object has no %q key", ErrBadResult, keyAllowed)
	}
	b, ok := allowed.Value.(ast.Boolean)
	if !ok {
		return Result{}, wrongType(keyAllowed, "a boolean", allowed.Value)
	}
	res.Allowed = bool(b)

	var err error
	if t := obj.Get(ast.StringTerm(keyHeaders)); t != nil {
		if res.Headers, err = decodeHeaders(keyHeaders, t.Value); err != nil {
			return Result{}, err
		}
	}
	if t := obj.Get(ast.StringTerm(keyResponseHeadersToAdd)); t != nil {
		if res.ResponseHeadersToAdd, err = decodeHeaders(keyResponseHeadersToAdd, t.Value); err != nil {
			return Result{}, err
		}
	}
	if t := obj.Get(ast.StringTerm(keyRequestHeadersToRemove)); t != nil {
		if res.RequestHeadersToRemove, err = headerNames(keyRequestHeadersToRemove, t.Value); err != nil {
			return Result{}, err
		}
	}
	if t := obj.Get(ast.StringTerm(keyBody)); t != nil {
		s, ok := t.Value.(ast.String)
		if !ok {
			return Result{}, wrongType(keyBody, "a string", t.Value)
		}
		res.Body = string(s)
	}
	if t := obj.Get(ast.StringTerm(keyHTTPStatus)); t != nil {
		if res.HTTPStatus, err = decodeStatus(t.Value); err != nil {
			return Result{}, err
		}
	}
	if t := obj.Get(ast.StringTerm(keyDynamicMetadata)); t != nil {
		if res.DynamicMetadata, err = decodeMetadata(t.Value); err != nil {
			return Result{}, err
		}
	}
	return res, nil
}

// decodeHeaders converts an object mapping header names to a string or an
// array of strings. As in opa-envoy-plugin, an array of such objects is
// accepted too. Names within one object are sorted.
func decodeHeaders(label string, v ast.Value) ([]Header, error) {
	switch v := v.(type) {
	case ast.Object:
		return appendHeaders(nil, label, v)
	case *ast.Array:
		var hs []Header
		for i := range v.Len() {
			elemLabel := fmt.Sprintf("%s[%d]", label, i)
			obj, ok := v.Elem(i).Value.(ast.Object)
			if !ok {
				return nil, wrongType(elemLabel, "an object", v.Elem(i).Value)
			}
			var err error
			if hs, err = appendHeaders(hs, elemLabel, obj); err != nil {
				return nil, err
			}
		}
		return hs, nil
	default:
		return nil, wrongType(label, "an object", v)
	}
}

// appendHeaders appends the headers of one header object to hs.
func appendHeaders(hs []Header, label string, obj ast.Object) ([]Header, error) {
	names := make([]string, 0, obj.Len())
	for _, k := range obj.Keys() {
		name, ok := k.Value.(ast.String)
		if !ok {
			return nil, fmt.Errorf("%w: %s keys must be strings, got %s", ErrBadResult, label, ast.ValueName(k.Value))
		}
		if name == "" {
			return nil, fmt.Errorf("%w: %s has an empty header name", ErrBadResult, label)
		}
		if !IsToken(string(name)) {
			return nil, notAHeaderName(label, string(name))
		}
		names = append(names, string(name))
	}
	slices.Sort(names)

	for _, name := range names {
		valueLabel := fmt.Sprintf("%s[%q]", label, name)
		var values []string
		switch v := obj.Get(ast.StringTerm(name)).Value.(type) {
		case ast.String:
			values = []string{string(v)}
		case *ast.Array, ast.Set:
			var err error
			if values, err = decodeStrings(valueLabel, v); err != nil {
				return nil, err
			}
		default:
			return nil, wrongType(valueLabel, "a string or an array of strings", v)
		}
		for _, value := range values {
			if !ValidHeaderValue(value) {
				// The value itself stays out of the message: it may hold
				// what the policy meant for the upstream only.
				return nil, fmt.Errorf("%w: %s: the value has a control character (CR, LF, NUL or another; only tab is allowed)", ErrBadResult, valueLabel)
			}
			hs = append(hs, Header{Key: name, Value: value})
		}
	}
	return hs, nil
}

// headerNames converts request_headers_to_remove: header names.
func headerNames(label string, v ast.Value) ([]string, error) {
	names, err := decodeStrings(label, v)
	if err != nil {
		return nil, err
	}
	for i, name := range names {
		if !IsToken(name) {
			return nil, notAHeaderName(fmt.Sprintf("%s[%d]", label, i), name)
		}
	}
	return names, nil
}

func notAHeaderName(label, name string) error {
	return fmt.Errorf("%w: %s: %q is not a header name (an HTTP token: letters, digits and !#$%%&'*+-.^_`|~)", ErrBadResult, label, name)
}

// IsToken reports whether s is an HTTP token (RFC 9110 §5.6.2), the
// grammar of header names and methods.
func IsToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return s != ""
}

// ValidHeaderValue reports whether v can be sent as a header value: no
// control character but tab (RFC 9110 §5.5). CR and LF would end the header
// and start another on the wire, NUL cuts it short in some parsers; Envoy
// and Go refuse them, each in its own way, so the decision path refuses them
// first, the same over every adapter.
func ValidHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// decodeStrings converts an array of strings, or a set of strings in sorted
// order.
func decodeStrings(label string, v ast.Value) ([]string, error) {
	var arr *ast.Array
	switch v := v.(type) {
	case *ast.Array:
		arr = v
	case ast.Set:
		arr = v.Sorted()
	default:
		return nil, wrongType(label, "an array of strings", v)
	}

	out := make([]string, 0, arr.Len())
	for i := range arr.Len() {
		s, ok := arr.Elem(i).Value.(ast.String)
		if !ok {
			return nil, wrongType(fmt.Sprintf("%s[%d]", label, i), "a string", arr.Elem(i).Value)
		}
		out = append(out, string(s))
	}
	return out, nil
}

// decodeStatus converts an HTTP status code, an integer from 100 to 599.
func decodeStatus(v ast.Value) (int, error) {
	n, ok := v.(ast.Number)
	if !ok {
		return 0, wrongType(keyHTTPStatus, "an integer", v)
	}
	code, ok := n.Int()
	if !ok {
		return 0, fmt.Errorf("%w: %s must be an integer, got %v", ErrBadResult, keyHTTPStatus, n)
	}
	if code < 100 || code > 599 {
		return 0, fmt.Errorf("%w: %s must be between 100 and 599, got %d", ErrBadResult, keyHTTPStatus, code)
	}
	return code, nil
}

// decodeMetadata converts an object into plain Go values, with json.Number
// for numbers and sorted slices for sets.
func decodeMetadata(v ast.Value) (map[string]any, error) {
	obj, ok := v.(ast.Object)
	if !ok {
		return nil, wrongType(keyDynamicMetadata, "an object", v)
	}
	x, err := ast.JSONWithOpt(obj, ast.JSONOpt{SortSets: true, CopyMaps: true})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadResult, keyDynamicMetadata, err)
	}
	m, ok := x.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: %s converted to %T, want an object", ErrBadResult, keyDynamicMetadata, x)
	}
	return m, nil
}

// wrongType reports a decision value of the wrong type.
func wrongType(label, want string, got ast.Value) error {
	return fmt.Errorf("%w: %s must be %s, got %s", ErrBadResult, label, want, ast.ValueName(got))
}
