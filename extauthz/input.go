package extauthz

import (
	"fmt"
	"net/url"
	"reflect"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/extauthz/urlpath"
)

// request is the part of a CheckRequest the decision path reads, normalised once.
type request struct {
	method, host, scheme, protocol, id string
	// path is the canonical path (see package urlpath); rawPath is the
	// path as sent, rawQuery the query as sent.
	path, rawPath, rawQuery string
	headers                 map[string]string // lower-case keys
	query                   url.Values
}

// parseRequest normalises the HTTP attributes of a CheckRequest, the path
// by mode. The error says what is wrong with a request Envoy would not send
// (no HTTP attributes, an unparsable query, a header sent twice in two
// spellings); it wraps urlpath.ErrInvalid
// for a path that is refused.
func parseRequest(req *authv3.CheckRequest, mode urlpath.Mode) (*request, error) {
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
	}
	var err error
	if r.headers, err = headerMap(h); err != nil {
		return nil, err
	}
	t, err := urlpath.Canonical(h.GetPath(), mode)
	if err != nil {
		return nil, err
	}
	r.path, r.rawPath, r.rawQuery = t.Path, t.RawPath, t.RawQuery
	q, err := url.ParseQuery(r.rawQuery)
	if err != nil {
		return nil, fmt.Errorf("query string: %w", err)
	}
	r.query = q
	return r, nil
}

// headerMap returns the request headers with lower-case names.
//
// From headers, Envoy's map (lower-case names, repeated headers already
// joined), two names that differ only in case are an error naming the
// header: a map has no order, so which value the policy and the token
// extraction would see is chance. Envoy never sends that; a caller that
// does is asking for a coin toss.
//
// From header_map (encode_raw_headers), a list in request order, the entries
// of one name are joined as Envoy joins repeated headers into its own
// headers map (JoinHeaderValues), whatever their spelling: Envoy sends
// lower-case names anyway, the order is the request's and nothing is left to
// chance, and a repeated header is legitimate there (two x-trace lines, two
// cookie lines).
func headerMap(h *authv3.AttributeContext_HttpRequest) (map[string]string, error) {
	if hm := h.GetHeaderMap(); hm != nil && len(h.GetHeaders()) == 0 {
		out := make(map[string]string, len(hm.GetHeaders()))
		for _, hv := range hm.GetHeaders() {
			k := lowerASCII(hv.GetKey())
			v := string(hv.GetRawValue())
			if v == "" {
				v = hv.GetValue()
			}
			if prev, ok := out[k]; ok {
				v = prev + headerSeparator(k) + v
			}
			out[k] = v
		}
		return out, nil
	}
	hs := h.GetHeaders()
	if lowerKeys(hs) {
		return hs, nil // Envoy sends lower-case names; the map is only read
	}
	out := make(map[string]string, len(hs))
	spelled := make(map[string]string, len(hs))
	for k, v := range hs {
		l := lowerASCII(k)
		if other, ok := spelled[l]; ok {
			a, b := min(k, other), max(k, other)
			return nil, fmt.Errorf("header %q is sent twice, as %q and %q: header names are case-insensitive, so which value counts would be chance", l, a, b)
		}
		spelled[l] = k
		out[l] = v
	}
	return out, nil
}

// JoinHeaderValues joins the values of a repeated request header, name in
// lower case, into one as Envoy does: cookie lines with "; " (RFC 9113
// §8.2.3, RFC 6265 §5.4: a Cookie header is a ";"-separated list, and
// "," would glue the last cookie of one line to the first of the next),
// every other header with "," (RFC 9110 §5.3). Both adapters join with it,
// so the policy gets the same input from either.
func JoinHeaderValues(name string, values []string) string {
	return strings.Join(values, headerSeparator(name))
}

func headerSeparator(name string) string {
	if name == "cookie" {
		return "; "
	}
	return ","
}

// lowerKeys reports whether lowerASCII would leave every key of m unchanged.
func lowerKeys(m map[string]string) bool {
	for k := range m {
		if hasUpperASCII(k) {
			return false
		}
	}
	return true
}

// lowerASCII lower-cases the ASCII letters of a header name only: HTTP
// names are ASCII and case-insensitive in ASCII alone, and strings.ToLower
// would turn a non-ASCII name such as "\u212Aey" (the Kelvin sign) into
// "key".
func lowerASCII(s string) string {
	if !hasUpperASCII(s) {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func hasUpperASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return true
		}
	}
	return false
}

// Key terms of the input document, shared by every input (terms are
// immutable once built).
var (
	kRequest, kSource, kDestination = ast.StringTerm("request"), ast.StringTerm("source"), ast.StringTerm("destination")
	kContextExtensions, kParsedPath = ast.StringTerm("context_extensions"), ast.StringTerm("parsed_path")
	kParsedQuery, kVersion, kToken  = ast.StringTerm("parsed_query"), ast.StringTerm("version"), ast.StringTerm("token")
	kAttributes, kMethod, kPath     = ast.StringTerm("attributes"), ast.StringTerm("method"), ast.StringTerm("path")
	kQuery, kHeaders, kHost         = ast.StringTerm("query"), ast.StringTerm("headers"), ast.StringTerm("host")
	kScheme, kProtocol, kID         = ast.StringTerm("scheme"), ast.StringTerm("protocol"), ast.StringTerm("id")
	kAddress, kPort, kPrincipal     = ast.StringTerm("address"), ast.StringTerm("port"), ast.StringTerm("principal")
	kIssuer, kClaims, kHeader       = ast.StringTerm("issuer"), ast.StringTerm("claims"), ast.StringTerm("header")
	kScopes, kKind, kUserinfo       = ast.StringTerm("scopes"), ast.StringTerm("kind"), ast.StringTerm("userinfo")
	kRawPath                        = ast.StringTerm("raw_path")

	versionTerm = ast.ObjectTerm(
		[2]*ast.Term{ast.StringTerm("ext_authz"), ast.StringTerm("v3")},
		[2]*ast.Term{ast.StringTerm("encoding"), ast.StringTerm("protojson")},
	)
)

// buildInput returns the policy input document (see README "Policy input")
// as an ast.Object, built directly from the request and the verified token:
// no JSON round trip and no ast.InterfaceToValue. Decision.Input, the same
// document as Go values, is derived from it only when something reads it
// (see Authorizer.needInput).
// inputParts says which parts of the input to build: a policy that cannot
// read a part does not get it. input.request and input.token are always
// built.
type inputParts struct {
	attributes        bool // input.attributes, opa-envoy-plugin's shape
	headers           bool // input.request.headers
	query             bool // input.request.query
	source            bool
	destination       bool
	contextExtensions bool
	parsedPath        bool
	parsedQuery       bool
	version           bool
	userinfo          bool       // input.token.userinfo: fetched only for policies that read it
	body              *bodyInput // input.parsed_body and input.truncated_body; nil: absent
}

// allParts is the whole input, for tools and decision log uploads.
var allParts = inputParts{
	attributes: true, headers: true, query: true, source: true, destination: true,
	contextExtensions: true, parsedPath: true, parsedQuery: true, version: true,
}

// policyParts memoises the input parts of one policy.
type policyParts struct {
	p     Policy
	parts inputParts
}

// partsFor returns the parts of the input p may read, remembered for the
// last policy seen (a policy changes only on reload).
func (a *Authorizer) partsFor(p Policy) inputParts {
	comparable := reflect.TypeOf(p).Comparable()
	if m := a.parts.Load(); m != nil && comparable && m.p == p {
		return m.parts
	}
	parts := inputParts{
		attributes:        p.UsesInput("attributes"),
		headers:           p.UsesInput("request", "headers"),
		query:             p.UsesInput("request", "query"),
		source:            p.UsesInput("source"),
		destination:       p.UsesInput("destination"),
		contextExtensions: p.UsesInput("context_extensions"),
		parsedPath:        p.UsesInput("parsed_path"),
		parsedQuery:       p.UsesInput("parsed_query"),
		version:           p.UsesInput("version"),
		userinfo:          p.UsesInput("token", "userinfo"),
	}
	if comparable {
		a.parts.Store(&policyParts{p, parts})
	}
	return parts
}

// buildInput's userinfo, when not nil, becomes input.token.userinfo.
func buildInput(req *authv3.CheckRequest, r *request, tok *token.Token, userinfo map[string]any, parts inputParts) (ast.Object, error) {
	attrs := req.GetAttributes()
	var query *ast.Term
	if parts.query || parts.parsedQuery {
		query = valuesTerm(r.query)
	}
	request := make([][2]*ast.Term, 0, 9)
	request = append(request,
		[2]*ast.Term{kMethod, ast.StringTerm(r.method)},
		[2]*ast.Term{kPath, ast.StringTerm(r.path)},
		[2]*ast.Term{kRawPath, ast.StringTerm(r.rawPath)},
		[2]*ast.Term{kHost, ast.StringTerm(r.host)},
		[2]*ast.Term{kScheme, ast.StringTerm(r.scheme)},
		[2]*ast.Term{kProtocol, ast.StringTerm(r.protocol)},
		[2]*ast.Term{kID, ast.StringTerm(r.id)},
	)
	if parts.query {
		request = append(request, [2]*ast.Term{kQuery, query})
	}
	if parts.headers {
		request = append(request, [2]*ast.Term{kHeaders, stringMapTerm(r.headers)})
	}
	pairs := make([][2]*ast.Term, 0, 11)
	pairs = append(pairs, [2]*ast.Term{kRequest, ast.ObjectTerm(request...)})
	if parts.source {
		pairs = append(pairs, [2]*ast.Term{kSource, peerTerm(attrs.GetSource())})
	}
	if parts.destination {
		pairs = append(pairs, [2]*ast.Term{kDestination, peerTerm(attrs.GetDestination())})
	}
	if parts.contextExtensions {
		pairs = append(pairs, [2]*ast.Term{kContextExtensions, stringMapTerm(attrs.GetContextExtensions())})
	}
	if parts.parsedPath {
		pairs = append(pairs, [2]*ast.Term{kParsedPath, parsedPath(r.path)})
	}
	if parts.parsedQuery {
		pairs = append(pairs, [2]*ast.Term{kParsedQuery, query})
	}
	if parts.version {
		pairs = append(pairs, [2]*ast.Term{kVersion, versionTerm})
	}
	if tok != nil {
		t, err := memoTokenTerm(tok)
		if err != nil {
			return nil, fmt.Errorf("policy input: token: %w", err)
		}
		if userinfo != nil {
			if t, err = withUserinfo(t, userinfo); err != nil {
				return nil, fmt.Errorf("policy input: token.userinfo: %w", err)
			}
		}
		pairs = append(pairs, [2]*ast.Term{kToken, t})
	}
	if b := parts.body; b != nil {
		pairs = append(pairs, [2]*ast.Term{kParsedBody, b.parsed}, [2]*ast.Term{kTruncatedBody, ast.InternedTerm(b.truncated)})
	}
	if parts.attributes {
		a, err := attributesTerm(attrs)
		if err != nil {
			return nil, err
		}
		pairs = append(pairs, [2]*ast.Term{kAttributes, a})
	}
	return ast.NewObject(pairs...), nil
}

// memoTokenTerm is tokenTerm computed once per verified token: a cache hit
// returns the same *token.Token, and OPA only reads input values.
func memoTokenTerm(t *token.Token) (*ast.Term, error) {
	type result struct {
		term *ast.Term
		err  error
	}
	r := t.Memo(func() any {
		term, err := tokenTerm(t)
		return result{term, err}
	}).(result)
	return r.term, r.err
}

func tokenTerm(t *token.Token) (*ast.Term, error) {
	claims, err := jsonTerm(t.Claims)
	if err != nil {
		return nil, err
	}
	header, err := jsonTerm(t.Header)
	if err != nil {
		return nil, err
	}
	scopes := make([]*ast.Term, len(t.Scopes))
	for i, s := range t.Scopes {
		scopes[i] = ast.StringTerm(s)
	}
	return ast.ObjectTerm(
		[2]*ast.Term{kKind, ast.StringTerm(t.Kind)},
		[2]*ast.Term{kIssuer, ast.StringTerm(t.Issuer)},
		[2]*ast.Term{kClaims, claims},
		[2]*ast.Term{kHeader, header},
		[2]*ast.Term{kScopes, ast.ArrayTerm(scopes...)},
	), nil
}

// withUserinfo returns the token term t, shared by cache hits and so left
// as it is, with a userinfo member added.
func withUserinfo(t *ast.Term, userinfo map[string]any) (*ast.Term, error) {
	info, err := jsonTerm(userinfo)
	if err != nil {
		return nil, err
	}
	obj := t.Value.(ast.Object)
	pairs := make([][2]*ast.Term, 0, obj.Len()+1)
	obj.Foreach(func(k, v *ast.Term) { pairs = append(pairs, [2]*ast.Term{k, v}) })
	return ast.ObjectTerm(append(pairs, [2]*ast.Term{kUserinfo, info})...), nil
}

func peerTerm(p *authv3.AttributeContext_Peer) *ast.Term {
	addr, port := "", 0
	switch a := p.GetAddress().GetAddress().(type) {
	case *corev3.Address_SocketAddress:
		addr, port = a.SocketAddress.GetAddress(), int(a.SocketAddress.GetPortValue())
	case *corev3.Address_Pipe:
		addr = a.Pipe.GetPath()
	}
	return ast.ObjectTerm(
		[2]*ast.Term{kAddress, ast.StringTerm(addr)},
		[2]*ast.Term{kPort, ast.InternedTerm(port)},
		[2]*ast.Term{kPrincipal, ast.StringTerm(p.GetPrincipal())},
	)
}

// parsedPath splits a path into its unescaped segments as opa-envoy-plugin's
// input.parsed_path does: "/orders/1" → ["orders", "1"].
func parsedPath(p string) *ast.Term {
	segs := strings.Split(strings.TrimLeft(p, "/"), "/")
	out := make([]*ast.Term, len(segs))
	for i, s := range segs {
		if u, err := url.PathUnescape(s); err == nil {
			s = u
		}
		out[i] = ast.StringTerm(s)
	}
	return ast.ArrayTerm(out...)
}

func valuesTerm(v url.Values) *ast.Term {
	pairs := make([][2]*ast.Term, 0, len(v))
	for k, vs := range v {
		l := make([]*ast.Term, len(vs))
		for i, s := range vs {
			l[i] = ast.StringTerm(s)
		}
		pairs = append(pairs, [2]*ast.Term{ast.StringTerm(k), ast.ArrayTerm(l...)})
	}
	return ast.ObjectTerm(pairs...)
}

func stringMapTerm(m map[string]string) *ast.Term {
	pairs := make([][2]*ast.Term, 0, len(m))
	terms := make([]ast.Term, 2*len(m)) // one allocation for all the terms
	for k, v := range m {
		i := 2 * len(pairs)
		terms[i].Value, terms[i+1].Value = ast.String(k), ast.String(v)
		pairs = append(pairs, [2]*ast.Term{&terms[i], &terms[i+1]})
	}
	return ast.ObjectTerm(pairs...)
}

// attributesTerm renders the CheckRequest attributes in the shape
// opa-envoy-plugin gives input.attributes (protojson.Marshal, protojson
// field names), so its policies run unchanged.
func attributesTerm(attrs *authv3.AttributeContext) (*ast.Term, error) {
	if attrs == nil {
		return ast.ObjectTerm(), nil
	}
	t, err := protoTerm(attrs.ProtoReflect())
	if err != nil {
		return nil, fmt.Errorf("attributes: %w", err)
	}
	return t, nil
}

// inputMap returns the input document as Go values (json.Number numbers),
// the form of Decision.Input.
func inputMap(v ast.Object) map[string]any {
	if v == nil {
		return nil
	}
	m, err := ast.JSON(v)
	if err != nil {
		return nil
	}
	out, _ := m.(map[string]any)
	return out
}
