package decisionlog

import (
	"net/url"
	"strings"
)

// Redactor removes credentials from a policy input document before it
// leaves the process.
type Redactor struct {
	// Headers are lower-case header names to drop besides authorization,
	// proxy-authorization and cookie (the token sources' headers).
	Headers []string
	// Query are query parameters to drop (the token sources' parameters).
	Query []string
}

var alwaysRedacted = []string{"authorization", "proxy-authorization", "cookie"}

// Input returns a copy of input without credential headers and query
// parameters, in input.request, input.parsed_query and input.attributes.
// The copy shares the untouched parts with input.
func (r Redactor) Input(input map[string]any) map[string]any {
	if input == nil {
		return nil
	}
	out := shallow(input)
	if req, ok := out["request"].(map[string]any); ok {
		req = shallow(req)
		req["headers"] = r.headers(req["headers"])
		req["query"] = r.query(req["query"])
		out["request"] = req
	}
	out["parsed_query"] = r.query(out["parsed_query"])
	if attrs, ok := out["attributes"].(map[string]any); ok {
		attrs = shallow(attrs)
		if req, ok := attrs["request"].(map[string]any); ok {
			req = shallow(req)
			if h, ok := req["http"].(map[string]any); ok {
				h = shallow(h)
				h["headers"] = r.headers(h["headers"])
				if p, ok := h["path"].(string); ok {
					h["path"] = r.path(p)
				}
				req["http"] = h
			}
			attrs["request"] = req
		}
		out["attributes"] = attrs
	}
	return out
}

func (r Redactor) drop(name string) bool {
	name = strings.ToLower(name)
	for _, h := range alwaysRedacted {
		if name == h {
			return true
		}
	}
	for _, h := range r.Headers {
		if name == h {
			return true
		}
	}
	return false
}

func (r Redactor) headers(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	out := make(map[string]any, len(m))
	for k, val := range m {
		switch {
		case r.drop(k):
		case k == ":path":
			if s, ok := val.(string); ok {
				out[k] = r.path(s)
			}
		default:
			out[k] = val
		}
	}
	return out
}

func (r Redactor) query(v any) any {
	m, ok := v.(map[string]any)
	if !ok || len(r.Query) == 0 {
		return v
	}
	out := make(map[string]any, len(m))
	for k, val := range m {
		if !r.secretParam(k) {
			out[k] = val
		}
	}
	return out
}

// path drops secret query parameters from a request target.
func (r Redactor) path(p string) string {
	base, raw, ok := strings.Cut(p, "?")
	if !ok || len(r.Query) == 0 {
		return p
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return base
	}
	for _, name := range r.Query {
		q.Del(name)
	}
	if len(q) == 0 {
		return base
	}
	return base + "?" + q.Encode()
}

func (r Redactor) secretParam(name string) bool {
	for _, q := range r.Query {
		if name == q {
			return true
		}
	}
	return false
}

func shallow(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
