package decisionlog

import (
	"encoding/base64"
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
				if hm, ok := h["headerMap"]; ok {
					h["headerMap"] = r.headerMap(hm)
				}
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

// headerMap redacts the protojson form of Envoy's raw headers
// (encode_raw_headers): {"headers": [{"key", "value" or "rawValue"}]},
// where rawValue is base64.
func (r Redactor) headerMap(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	list, ok := m["headers"].([]any)
	if !ok {
		return v
	}
	kept := make([]any, 0, len(list))
	for _, e := range list {
		hv, ok := e.(map[string]any)
		if !ok {
			continue // not a header value: nothing to vouch for
		}
		key, _ := hv["key"].(string)
		if r.drop(key) {
			continue
		}
		if key == ":path" {
			hv = shallow(hv)
			if p, ok := hv["value"].(string); ok {
				hv["value"] = r.path(p)
			}
			if raw, ok := hv["rawValue"].(string); ok {
				b, err := base64.StdEncoding.DecodeString(raw)
				if err != nil {
					delete(hv, "rawValue")
				} else {
					hv["rawValue"] = base64.StdEncoding.EncodeToString([]byte(r.path(string(b))))
				}
			}
		}
		kept = append(kept, hv)
	}
	out := shallow(m)
	out["headers"] = kept
	return out
}
