package extauthz

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/claimcheck/claimcheck/extauthz/token"
)

// request is the part of a CheckRequest the decision path reads, normalised once.
type request struct {
	method, path, rawQuery, host, scheme, protocol, id string
	headers                                            map[string]string // lower-case keys
	query                                              url.Values
}

// parseRequest normalises the HTTP attributes of a CheckRequest. The error
// says what is wrong with a request Envoy would not send (no HTTP attributes,
// an unparsable path).
func parseRequest(req *authv3.CheckRequest) (*request, error) {
	h := req.GetAttributes().GetRequest().GetHttp()
	if h == nil {
		return nil, fmt.Errorf("the CheckRequest has no attributes.request.http")
	}
	r := &request{
		method:   h.GetMethod(),
		host:     h.GetHost(),
		scheme:   h.GetScheme(),
		protocol: h.GetProtocol(),
		id:       h.GetId(),
		headers:  headerMap(h),
	}
	r.path, r.rawQuery, _ = strings.Cut(h.GetPath(), "?")
	r.path, _, _ = strings.Cut(r.path, "#")
	q, err := url.ParseQuery(r.rawQuery)
	if err != nil {
		return nil, fmt.Errorf("query string: %w", err)
	}
	r.query = q
	return r, nil
}

// headerMap returns the request headers with lower-case keys, from headers
// or, when Envoy sends raw headers (encode_raw_headers), from header_map with
// repeated headers joined by commas.
func headerMap(h *authv3.AttributeContext_HttpRequest) map[string]string {
	if hm := h.GetHeaderMap(); hm != nil && len(h.GetHeaders()) == 0 {
		out := make(map[string]string, len(hm.GetHeaders()))
		for _, hv := range hm.GetHeaders() {
			k := strings.ToLower(hv.GetKey())
			v := string(hv.GetRawValue())
			if v == "" {
				v = hv.GetValue()
			}
			if prev, ok := out[k]; ok {
				v = prev + "," + v
			}
			out[k] = v
		}
		return out
	}
	out := make(map[string]string, len(h.GetHeaders()))
	for k, v := range h.GetHeaders() {
		out[strings.ToLower(k)] = v
	}
	return out
}

// buildInput returns the policy input document (see README "Policy input").
func buildInput(req *authv3.CheckRequest, r *request, tok *token.Token) (map[string]any, error) {
	attrs := req.GetAttributes()
	input := map[string]any{
		"request": map[string]any{
			"method":   r.method,
			"path":     r.path,
			"query":    valuesToInput(r.query),
			"headers":  stringMapToInput(r.headers),
			"host":     r.host,
			"scheme":   r.scheme,
			"protocol": r.protocol,
			"id":       r.id,
		},
		"source":             peerInput(attrs.GetSource()),
		"destination":        peerInput(attrs.GetDestination()),
		"context_extensions": stringMapToInput(attrs.GetContextExtensions()),
		"parsed_path":        parsedPath(r.path),
		"parsed_query":       valuesToInput(r.query),
		"version":            map[string]any{"ext_authz": "v3", "encoding": "protojson"},
	}
	if tok != nil {
		input["token"] = tokenInput(tok)
	}
	a, err := attributesInput(req)
	if err != nil {
		return nil, err
	}
	input["attributes"] = a
	return input, nil
}

func tokenInput(t *token.Token) map[string]any {
	header := make(map[string]any, len(t.Header))
	for k, v := range t.Header {
		header[k] = v
	}
	scopes := make([]any, len(t.Scopes))
	for i, s := range t.Scopes {
		scopes[i] = s
	}
	return map[string]any{
		"issuer": t.Issuer,
		"claims": t.Claims,
		"header": header,
		"scopes": scopes,
	}
}

func peerInput(p *authv3.AttributeContext_Peer) map[string]any {
	out := map[string]any{"address": "", "port": 0, "principal": p.GetPrincipal()}
	switch a := p.GetAddress().GetAddress().(type) {
	case *corev3.Address_SocketAddress:
		out["address"] = a.SocketAddress.GetAddress()
		out["port"] = int(a.SocketAddress.GetPortValue())
	case *corev3.Address_Pipe:
		out["address"] = a.Pipe.GetPath()
	}
	return out
}

// parsedPath splits a path into its unescaped segments as opa-envoy-plugin's
// input.parsed_path does: "/orders/1" → ["orders", "1"].
func parsedPath(p string) []any {
	segs := strings.Split(strings.TrimLeft(p, "/"), "/")
	out := make([]any, len(segs))
	for i, s := range segs {
		if u, err := url.PathUnescape(s); err == nil {
			s = u
		}
		out[i] = s
	}
	return out
}

func valuesToInput(v url.Values) map[string]any {
	out := make(map[string]any, len(v))
	for k, vs := range v {
		l := make([]any, len(vs))
		for i, s := range vs {
			l[i] = s
		}
		out[k] = l
	}
	return out
}

func stringMapToInput(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// attributesInput renders the CheckRequest attributes in the shape
// opa-envoy-plugin gives input.attributes (protojson field names), so its
// policies run unchanged.
func attributesInput(req *authv3.CheckRequest) (any, error) {
	b, err := protojson.Marshal(req.GetAttributes())
	if err != nil {
		return nil, fmt.Errorf("attributes: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("attributes: %w", err)
	}
	return v, nil
}
