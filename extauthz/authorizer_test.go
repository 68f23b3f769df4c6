package extauthz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/claimcheck/claimcheck/extauthz/reason"
	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/extauthz/urlpath"
	"github.com/claimcheck/claimcheck/policy"
)

// fakeVerifier accepts the tokens it knows and returns err for the others.
type fakeVerifier struct {
	tokens map[string]*token.Token
	err    error
}

func (f fakeVerifier) Verify(_ context.Context, raw string) (*token.Token, error) {
	if t, ok := f.tokens[raw]; ok {
		return t, nil
	}
	if f.err != nil {
		return nil, f.err
	}
	return nil, fmt.Errorf("%w: unknown test token", token.ErrSignature)
}

// fakePolicy records its input and the rule asked for, and answers with fn.
// Rules other than "" and those in rules are unknown.
type fakePolicy struct {
	fn    func(input map[string]any) (policy.Result, error)
	rules map[string]func(input map[string]any) (policy.Result, error)
	input map[string]any
	rule  string
	reads map[string]bool // nil: every key
}

func (f *fakePolicy) Eval(ctx context.Context, v ast.Value) (policy.Result, error) {
	return f.EvalRule(ctx, "", v)
}

func (f *fakePolicy) EvalRule(_ context.Context, rule string, v ast.Value) (policy.Result, error) {
	var m map[string]any
	if err := ast.As(v, &m); err != nil {
		return policy.Result{}, err
	}
	f.input, f.rule = m, rule
	if rule == "" {
		return f.fn(m)
	}
	fn, ok := f.rules[rule]
	if !ok {
		return policy.Result{}, fmt.Errorf("%w: %s", policy.ErrUnknownRule, rule)
	}
	return fn(m)
}

func (f *fakePolicy) Revision() string { return "rev-1" }

// UsesInput is true unless the test names the paths the policy reads
// ("attributes", "request.headers").
func (f *fakePolicy) UsesInput(path ...string) bool {
	return f.reads == nil || f.reads[strings.Join(path, ".")]
}

func allowAll(map[string]any) (policy.Result, error) { return policy.Result{Allowed: true}, nil }

var goodToken = &token.Token{
	Kind:   token.KindJWT,
	Issuer: "https://id.example.com",
	Header: map[string]any{"alg": "ES256", "kid": "k1", "typ": "at+jwt"},
	Claims: map[string]any{
		"iss": "https://id.example.com", "sub": "svc", "client_id": "service-client-id",
		"aud": "orders-api", "exp": json.Number("2000000000"), "scope": "orders:read orders:write",
	},
	Scopes: []string{"orders:read", "orders:write"},
	KeyID:  "k1",
}

// httpRequest returns a CheckRequest for method and path with headers.
func httpRequest(method, path string, headers map[string]string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address: "10.0.0.7", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 41000}}}},
			Principal: "spiffe://cluster.local/ns/shop/sa/checkout",
		},
		Destination: &authv3.AttributeContext_Peer{
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address: "10.0.0.9", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 8080}}}},
		},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "req-1", Method: method, Path: path, Host: "orders.internal", Scheme: "https",
			Protocol: "HTTP/2", Headers: headers,
		}},
		ContextExtensions: map[string]string{"route": "orders"},
	}}
}

func bearer(raw string) map[string]string { return map[string]string{"authorization": "Bearer " + raw} }

func header(hs []policy.Header, key string) (string, bool) {
	for _, h := range hs {
		if h.Key == key {
			return h.Value, true
		}
	}
	return "", false
}

func newAuthorizer(t *testing.T, cfg Config, v Verifier, p Policy) *Authorizer {
	t.Helper()
	a, err := New(cfg, v, StaticPolicy(p), nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestCheckDecisions(t *testing.T) {
	verifier := fakeVerifier{tokens: map[string]*token.Token{"good": goodToken}}
	tests := []struct {
		name       string
		cfg        Config
		verifier   Verifier
		policy     func(map[string]any) (policy.Result, error)
		req        *authv3.CheckRequest
		allowed    bool
		status     int
		reason     string
		oauthError string // "error" member of the JSON body, for generated bodies
		challenge  string // substring of WWW-Authenticate; "" = header absent
	}{
		{name: "missing token is 401 with a Bearer challenge", cfg: Config{TokenRequired: true},
			req: httpRequest("GET", "/orders", nil), status: 401, reason: reason.MissingToken,
			oauthError: "unauthorized", challenge: `Bearer realm="claimcheck"`},
		{name: "basic credentials are not a bearer token", cfg: Config{TokenRequired: true},
			req: httpRequest("GET", "/orders", map[string]string{"authorization": "Basic dXNlcjpwdw=="}), status: 401,
			reason: reason.MissingToken, oauthError: "unauthorized", challenge: `Bearer realm="claimcheck"`},
		{name: "expired token is 401 invalid_token", cfg: Config{TokenRequired: true},
			verifier: fakeVerifier{err: fmt.Errorf("%w at 2026-01-01T00:00:00Z", token.ErrExpired)},
			req:      httpRequest("GET", "/orders", bearer("old")), status: 401, reason: "token_expired",
			oauthError: "invalid_token", challenge: `error="invalid_token", error_description="token expired at 2026-01-01T00:00:00Z"`},
		{name: "bad signature is 401 invalid_token", cfg: Config{TokenRequired: true},
			req: httpRequest("GET", "/orders", bearer("forged")), status: 401, reason: "signature_invalid",
			oauthError: "invalid_token", challenge: `error="invalid_token"`},
		{name: "keys never loaded is 503", cfg: Config{TokenRequired: true},
			verifier: fakeVerifier{err: fmt.Errorf("%w: issuer x", token.ErrKeysUnavailable)},
			req:      httpRequest("GET", "/orders", bearer("any")), status: 503, reason: "issuer_keys_unavailable",
			oauthError: "temporarily_unavailable"},
		{name: "unexpected verifier error is 503, never an allow", cfg: Config{TokenRequired: true},
			verifier: fakeVerifier{err: errors.New("boom")},
			req:      httpRequest("GET", "/orders", bearer("any")), status: 503, reason: reason.Internal,
			oauthError: "temporarily_unavailable"},
		{name: "policy allow", cfg: Config{TokenRequired: true}, policy: allowAll,
			req: httpRequest("GET", "/orders", bearer("good")), allowed: true, status: 200, reason: reason.Allowed},
		{name: "policy deny is 403", cfg: Config{TokenRequired: true},
			policy: func(map[string]any) (policy.Result, error) { return policy.Result{}, nil },
			req:    httpRequest("GET", "/orders", bearer("good")), status: 403, reason: reason.PolicyDenied, oauthError: "access_denied"},
		{name: "policy undefined is 403", cfg: Config{TokenRequired: true},
			policy: func(map[string]any) (policy.Result, error) { return policy.Result{}, policy.ErrUndefined },
			req:    httpRequest("GET", "/orders", bearer("good")), status: 403, reason: reason.PolicyUndefined, oauthError: "access_denied"},
		{name: "policy error is 503", cfg: Config{TokenRequired: true},
			policy: func(map[string]any) (policy.Result, error) {
				return policy.Result{Allowed: true}, errors.New("eval_conflict_error")
			},
			req: httpRequest("GET", "/orders", bearer("good")), status: 503, reason: reason.PolicyError, oauthError: "temporarily_unavailable"},
		{name: "policy panic is a deny", cfg: Config{TokenRequired: true},
			policy: func(map[string]any) (policy.Result, error) { panic("policy bug") },
			req:    httpRequest("GET", "/orders", bearer("good")), status: 503, reason: reason.Internal, oauthError: "temporarily_unavailable"},
		{name: "request without HTTP attributes is 400", cfg: Config{TokenRequired: true},
			req: &authv3.CheckRequest{}, status: 400, reason: reason.BadRequest, oauthError: "invalid_request"},
		{name: "nil request is 400", cfg: Config{TokenRequired: true},
			req: nil, status: 400, reason: reason.BadRequest, oauthError: "invalid_request"},
		{name: "malformed query is 400", cfg: Config{TokenRequired: true},
			req: httpRequest("GET", "/orders?a=%zz", bearer("good")), status: 400, reason: reason.BadRequest, oauthError: "invalid_request"},
		{name: "optional token: policy may allow without one", cfg: Config{TokenRequired: false}, policy: allowAll,
			req: httpRequest("GET", "/public", nil), allowed: true, status: 200, reason: reason.Allowed},
		{name: "optional token: a policy deny without one asks for credentials", cfg: Config{TokenRequired: false},
			policy: func(map[string]any) (policy.Result, error) { return policy.Result{}, nil },
			req:    httpRequest("GET", "/orders", nil), status: 401, reason: reason.MissingToken,
			oauthError: "unauthorized", challenge: `Bearer realm="claimcheck"`},
		{name: "optional token: a present but bad token is still 401", cfg: Config{TokenRequired: false}, policy: allowAll,
			req: httpRequest("GET", "/orders", bearer("forged")), status: 401, reason: "signature_invalid",
			oauthError: "invalid_token", challenge: `error="invalid_token"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.verifier
			if v == nil {
				v = verifier
			}
			fn := tt.policy
			if fn == nil {
				fn = func(map[string]any) (policy.Result, error) {
					t.Error("policy must not be evaluated")
					return policy.Result{Allowed: true}, nil
				}
			}
			d := newAuthorizer(t, tt.cfg, v, &fakePolicy{fn: fn}).Check(context.Background(), tt.req)
			if d.Allowed != tt.allowed || d.Status != tt.status || d.Reason != tt.reason {
				t.Fatalf("got allowed=%v status=%d reason=%q (%s), want %v %d %q",
					d.Allowed, d.Status, d.Reason, d.Description, tt.allowed, tt.status, tt.reason)
			}
			if meta, _ := d.DynamicMetadata["claimcheck"].(map[string]any); meta["reason"] != tt.reason {
				t.Errorf("dynamic metadata reason = %v, want %q", meta["reason"], tt.reason)
			}
			if tt.allowed {
				return
			}
			var body struct{ Error, ErrorDescription string }
			if err := json.Unmarshal([]byte(d.Body), &body); err != nil {
				t.Fatalf("deny body %q is not JSON: %v", d.Body, err)
			}
			if body.Error != tt.oauthError {
				t.Errorf("body error = %q, want %q", body.Error, tt.oauthError)
			}
			if ct, _ := header(d.DenyHeaders, "content-type"); ct != "application/json" {
				t.Errorf("content-type = %q", ct)
			}
			ch, ok := header(d.DenyHeaders, "www-authenticate")
			if tt.challenge == "" && ok {
				t.Errorf("unexpected WWW-Authenticate %q", ch)
			}
			if tt.challenge != "" && !strings.Contains(ch, tt.challenge) {
				t.Errorf("WWW-Authenticate = %q, want it to contain %q", ch, tt.challenge)
			}
		})
	}
}

func TestPolicyObjectResultIsPassedThrough(t *testing.T) {
	p := &fakePolicy{fn: func(map[string]any) (policy.Result, error) {
		return policy.Result{
			Allowed:                true,
			Headers:                []policy.Header{{Key: "x-tenant", Value: "shop"}},
			ResponseHeadersToAdd:   []policy.Header{{Key: "x-authz", Value: "claimcheck"}},
			RequestHeadersToRemove: []string{"x-debug"},
			DynamicMetadata:        map[string]any{"tenant": "shop"},
		}, nil
	}}
	d := newAuthorizer(t, Config{TokenRequired: true}, fakeVerifier{tokens: map[string]*token.Token{"good": goodToken}}, p).
		Check(context.Background(), httpRequest("GET", "/orders", bearer("good")))
	if !d.Allowed {
		t.Fatalf("denied: %s", d.Description)
	}
	if v, _ := header(d.UpstreamHeaders, "x-tenant"); v != "shop" {
		t.Errorf("upstream headers = %v", d.UpstreamHeaders)
	}
	if !reflect.DeepEqual(d.ResponseHeaders, []policy.Header{{Key: "x-authz", Value: "claimcheck"}}) {
		t.Errorf("response headers = %v", d.ResponseHeaders)
	}
	if !reflect.DeepEqual(d.RemoveHeaders, []string{"x-debug"}) {
		t.Errorf("remove headers = %v", d.RemoveHeaders)
	}
	meta := d.DynamicMetadata
	if meta["tenant"] != "shop" {
		t.Errorf("policy metadata lost: %v", meta)
	}
	cc := meta["claimcheck"].(map[string]any)
	if cc["client_id"] != "service-client-id" || cc["issuer"] != "https://id.example.com" || cc["sub"] != "svc" {
		t.Errorf("claimcheck metadata = %v", cc)
	}
}

func TestPolicyDenyWithStatusBodyAndHeaders(t *testing.T) {
	p := &fakePolicy{fn: func(map[string]any) (policy.Result, error) {
		return policy.Result{
			HTTPStatus: http.StatusTeapot,
			Body:       "no tea for you",
			Headers:    []policy.Header{{Key: "x-reason", Value: "teapot"}},
		}, nil
	}}
	d := newAuthorizer(t, Config{TokenRequired: true}, fakeVerifier{tokens: map[string]*token.Token{"good": goodToken}}, p).
		Check(context.Background(), httpRequest("GET", "/orders", bearer("good")))
	if d.Allowed || d.Status != http.StatusTeapot || d.Body != "no tea for you" || d.Reason != reason.PolicyDenied {
		t.Fatalf("decision = %+v", d)
	}
	if !reflect.DeepEqual(d.DenyHeaders, []policy.Header{{Key: "x-reason", Value: "teapot"}}) {
		t.Errorf("deny headers = %v", d.DenyHeaders)
	}
}

// TestPolicyDenyNeverCarriesASuccessStatus: a deny with a 1xx or 2xx
// http_status is sent as 403 by both adapters (a forward-auth proxy would
// read 2xx as an allow); 3xx, such as a login redirect, is kept.
func TestPolicyDenyNeverCarriesASuccessStatus(t *testing.T) {
	for status, want := range map[int]int{100: 403, 200: 403, 204: 403, 302: 302, 401: 401} {
		p := &fakePolicy{fn: func(map[string]any) (policy.Result, error) { return policy.Result{HTTPStatus: status}, nil }}
		d := newAuthorizer(t, Config{TokenRequired: true}, fakeVerifier{tokens: map[string]*token.Token{"good": goodToken}}, p).
			Check(context.Background(), httpRequest("GET", "/orders", bearer("good")))
		if d.Allowed || d.Status != want {
			t.Errorf("http_status %d: allowed %v status %d, want a %d deny", status, d.Allowed, d.Status, want)
		}
	}
}

func TestForwardClaimsAndStripToken(t *testing.T) {
	cfg := Config{
		TokenRequired: true,
		ForwardClaims: map[string]string{"client_id": "x-client-id", "sub": "x-subject", "tenant": "x-tenant", "scope": "x-scope"},
		Sources:       []TokenSource{{Header: "authorization", Prefix: "Bearer ", Strip: true}},
	}
	d := newAuthorizer(t, cfg, fakeVerifier{tokens: map[string]*token.Token{"good": goodToken}}, &fakePolicy{fn: allowAll}).
		Check(context.Background(), httpRequest("GET", "/orders", map[string]string{
			"authorization": "Bearer good",
			"x-tenant":      "spoofed-by-client",
		}))
	if !d.Allowed {
		t.Fatalf("denied: %s", d.Description)
	}
	want := []policy.Header{
		{Key: "x-client-id", Value: "service-client-id"},
		{Key: "x-scope", Value: "orders:read orders:write"},
		{Key: "x-subject", Value: "svc"},
	}
	if !reflect.DeepEqual(d.UpstreamHeaders, want) {
		t.Errorf("upstream headers = %v, want %v", d.UpstreamHeaders, want)
	}
	// The absent claim's header is removed so a client cannot supply it, and
	// the token's header is stripped.
	if !reflect.DeepEqual(d.RemoveHeaders, []string{"x-tenant", "authorization"}) {
		t.Errorf("remove headers = %v", d.RemoveHeaders)
	}
}

func TestClaimHeaderValue(t *testing.T) {
	tok := &token.Token{Claims: map[string]any{
		"s": "plain", "n": json.Number("42"), "b": true, "l": []any{"a", "b"},
		"mixed": []any{"a", json.Number("1")}, "obj": map[string]any{"k": "v"},
		"crlf": "a\r\nx-injected: 1", "null": nil,
	}}
	tests := []struct {
		claim string
		want  string
		ok    bool
	}{
		{"s", "plain", true}, {"n", "42", true}, {"b", "true", true}, {"l", "a,b", true},
		{"mixed", `["a",1]`, true}, {"obj", `{"k":"v"}`, true},
		{"crlf", "", false}, {"null", "", false}, {"absent", "", false},
	}
	for _, tt := range tests {
		got, ok := claimHeaderValue(tok, tt.claim)
		if got != tt.want || ok != tt.ok {
			t.Errorf("claimHeaderValue(%q) = %q, %v; want %q, %v", tt.claim, got, ok, tt.want, tt.ok)
		}
	}
}

func TestTokenSources(t *testing.T) {
	sources := []TokenSource{{Header: "authorization", Prefix: "Bearer "}, {Header: "x-api-token"}, {Query: "access_token"}, {Cookie: "at"}}
	tests := []struct {
		name    string
		path    string
		headers map[string]string
		want    string
	}{
		{name: "bearer header", path: "/", headers: bearer("good"), want: "good"},
		{name: "scheme is case-insensitive", path: "/", headers: map[string]string{"authorization": "bearer good"}, want: "good"},
		{name: "header without prefix", path: "/", headers: map[string]string{"x-api-token": "good"}, want: "good"},
		{name: "query parameter", path: "/orders?access_token=good&x=1", want: "good"},
		{name: "cookie", path: "/", headers: map[string]string{"cookie": "theme=dark; at=good"}, want: "good"},
		{name: "first source wins", path: "/?access_token=other", headers: bearer("good"), want: "good"},
		{name: "basic auth falls through to the next source", path: "/?access_token=good", headers: map[string]string{"authorization": "Basic abc"}, want: "good"},
		{name: "nothing", path: "/", headers: map[string]string{"cookie": "theme=dark"}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseRequest(httpRequest("GET", tt.path, tt.headers), urlpath.Reject)
			if err != nil {
				t.Fatal(err)
			}
			f, ok := extractToken(sources, r.headers, r.query)
			if ok != (tt.want != "") || f.raw != tt.want {
				t.Errorf("got %+v %v, want raw %q", f, ok, tt.want)
			}
		})
	}
}

func TestInputDocument(t *testing.T) {
	p := &fakePolicy{fn: allowAll}
	req := httpRequest("POST", "/orders/%7eme/a%2cb/items?limit=10&tag=x&tag=y", map[string]string{
		"authorization": "Bearer good", "X-Custom": "v", ":path": "/orders/%7eme/a%2cb/items?limit=10&tag=x&tag=y",
	})
	d := newAuthorizer(t, Config{TokenRequired: true}, fakeVerifier{tokens: map[string]*token.Token{"good": goodToken}}, p).
		Check(context.Background(), req)
	if !d.Allowed {
		t.Fatalf("denied: %s", d.Description)
	}
	in := p.input
	want := map[string]any{
		// The canonical path decodes unreserved escapes and upper-cases the
		// rest; raw_path and the :path header stay as sent.
		"method": "POST", "path": "/orders/~me/a%2Cb/items", "raw_path": "/orders/%7eme/a%2cb/items",
		"host": "orders.internal", "scheme": "https",
		"protocol": "HTTP/2", "id": "req-1",
		"query": map[string]any{"limit": []any{"10"}, "tag": []any{"x", "y"}},
		"headers": map[string]any{
			"authorization": "Bearer good", "x-custom": "v", ":path": "/orders/%7eme/a%2cb/items?limit=10&tag=x&tag=y",
		},
	}
	if !reflect.DeepEqual(in["request"], want) {
		t.Errorf("input.request =\n%v\nwant\n%v", in["request"], want)
	}
	if got := in["source"]; !reflect.DeepEqual(got, map[string]any{"address": "10.0.0.7", "port": json.Number("41000"), "principal": "spiffe://cluster.local/ns/shop/sa/checkout"}) {
		t.Errorf("input.source = %v", got)
	}
	if got := in["destination"].(map[string]any)["port"]; got != json.Number("8080") {
		t.Errorf("input.destination.port = %v", got)
	}
	if got := in["context_extensions"]; !reflect.DeepEqual(got, map[string]any{"route": "orders"}) {
		t.Errorf("input.context_extensions = %v", got)
	}
	if got := in["parsed_path"]; !reflect.DeepEqual(got, []any{"orders", "~me", "a,b", "items"}) {
		t.Errorf("input.parsed_path = %v", got)
	}
	if got := in["parsed_query"]; !reflect.DeepEqual(got, want["query"]) {
		t.Errorf("input.parsed_query = %v", got)
	}
	tok := in["token"].(map[string]any)
	if tok["issuer"] != "https://id.example.com" ||
		!reflect.DeepEqual(tok["scopes"], []any{"orders:read", "orders:write"}) ||
		!reflect.DeepEqual(tok["header"], map[string]any{"alg": "ES256", "kid": "k1", "typ": "at+jwt"}) ||
		tok["claims"].(map[string]any)["client_id"] != "service-client-id" {
		t.Errorf("input.token = %v", tok)
	}
	// opa-envoy-plugin compatible attributes, protojson field names.
	http := in["attributes"].(map[string]any)["request"].(map[string]any)["http"].(map[string]any)
	if http["method"] != "POST" || http["headers"].(map[string]any)["X-Custom"] != "v" {
		t.Errorf("input.attributes.request.http = %v", http)
	}
	sock := in["attributes"].(map[string]any)["source"].(map[string]any)["address"].(map[string]any)["socketAddress"].(map[string]any)
	if sock["address"] != "10.0.0.7" || sock["portValue"] != json.Number("41000") {
		t.Errorf("input.attributes.source.address.socketAddress = %v", sock)
	}
	if in["attributes"].(map[string]any)["contextExtensions"].(map[string]any)["route"] != "orders" {
		t.Errorf("input.attributes.contextExtensions missing")
	}
}

func TestInputWithoutTokenHasNoTokenKey(t *testing.T) {
	p := &fakePolicy{fn: allowAll}
	newAuthorizer(t, Config{TokenRequired: false}, fakeVerifier{}, p).Check(context.Background(), httpRequest("GET", "/", nil))
	if _, ok := p.input["token"]; ok {
		t.Errorf("input.token present without a token: %v", p.input["token"])
	}
}

func TestRawHeaderMapIsRead(t *testing.T) {
	req := httpRequest("GET", "/orders", nil)
	req.Attributes.Request.Http.HeaderMap = &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
		{Key: "Authorization", RawValue: []byte("Bearer good")},
		{Key: "x-multi", RawValue: []byte("a")},
		{Key: "x-multi", RawValue: []byte("b")},
	}}
	p := &fakePolicy{fn: allowAll}
	d := newAuthorizer(t, Config{TokenRequired: true}, fakeVerifier{tokens: map[string]*token.Token{"good": goodToken}}, p).
		Check(context.Background(), req)
	if !d.Allowed {
		t.Fatalf("token in header_map not found: %s", d.Reason)
	}
	if got := p.input["request"].(map[string]any)["headers"].(map[string]any)["x-multi"]; got != "a,b" {
		t.Errorf("repeated raw header = %v, want a,b", got)
	}
}

func TestChallengeTextIsSafe(t *testing.T) {
	if got := challengeText("kid \"x\\y\"\n\u00e9"); got != "kid 'x'y'??" {
		t.Errorf("challengeText = %q", got)
	}
}

func TestExplainSetsInputForEarlyDenies(t *testing.T) {
	a := newAuthorizer(t, Config{TokenRequired: true}, fakeVerifier{}, &fakePolicy{fn: allowAll})
	req := httpRequest("GET", "/orders", bearer("forged"))
	if d := a.Check(context.Background(), req); d.Input != nil {
		t.Error("Check built an input for a token rejection")
	}
	d := a.Explain(context.Background(), req)
	if d.Allowed || d.Reason != "signature_invalid" || d.Input == nil {
		t.Fatalf("Explain = %+v", d)
	}
	if _, ok := d.Input["token"]; ok {
		t.Error("a rejected token reached input.token")
	}
}

// recordingLog keeps the decisions logged.
type recordingLog struct{ decisions []Decision }

func (r *recordingLog) LogDecision(_ context.Context, d *Decision) {
	r.decisions = append(r.decisions, *d)
}

func withExtensions(req *authv3.CheckRequest, ext map[string]string) *authv3.CheckRequest {
	req.Attributes.ContextExtensions = ext
	return req
}

func TestPerRouteRules(t *testing.T) {
	deny := func(map[string]any) (policy.Result, error) { return policy.Result{}, nil }
	p := &fakePolicy{fn: deny, rules: map[string]func(map[string]any) (policy.Result, error){"orders/allow": allowAll}}
	verifier := fakeVerifier{tokens: map[string]*token.Token{"good": goodToken}}
	tests := []struct {
		name    string
		cfg     Config
		ext     map[string]string
		headers map[string]string
		allowed bool
		status  int
		reason  string
		rule    string
	}{
		{name: "default rule", cfg: Config{TokenRequired: true, DefaultRule: "claimcheck/authz/allow"}, headers: bearer("good"),
			status: 403, reason: reason.PolicyDenied, rule: "claimcheck/authz/allow"},
		{name: "route chooses its rule", cfg: Config{TokenRequired: true}, ext: map[string]string{ExtDecision: "orders/allow"}, headers: bearer("good"),
			allowed: true, status: 200, reason: reason.Allowed, rule: "orders/allow"},
		{name: "unknown rule is a deny with a clear reason", cfg: Config{TokenRequired: true}, ext: map[string]string{ExtDecision: "nope/allow"}, headers: bearer("good"),
			status: 503, reason: reason.RuleUnknown, rule: "nope/allow"},
		{name: "public route without permission still needs a token", cfg: Config{TokenRequired: true},
			ext: map[string]string{ExtPublic: "true", ExtDecision: "orders/allow"}, status: 401, reason: reason.MissingToken},
		{name: "public route permitted by config", cfg: Config{TokenRequired: true, AllowPublicRoutes: true},
			ext: map[string]string{ExtPublic: "true", ExtDecision: "orders/allow"}, allowed: true, status: 200, reason: reason.Allowed, rule: "orders/allow"},
		{name: "public route still rejects a bad token", cfg: Config{TokenRequired: true, AllowPublicRoutes: true},
			ext: map[string]string{ExtPublic: "true", ExtDecision: "orders/allow"}, headers: bearer("forged"), status: 401, reason: "signature_invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAuthorizer(t, tt.cfg, verifier, p)
			d := a.Check(context.Background(), withExtensions(httpRequest("GET", "/orders", tt.headers), tt.ext))
			if d.Allowed != tt.allowed || d.Status != tt.status || d.Reason != tt.reason || d.Rule != tt.rule {
				t.Fatalf("got allowed=%v status=%d reason=%q rule=%q (%s)", d.Allowed, d.Status, d.Reason, d.Rule, d.Description)
			}
		})
	}
}

func TestDryRunAllowsButKeepsTheRealDecision(t *testing.T) {
	deny := func(map[string]any) (policy.Result, error) { return policy.Result{}, nil }
	verifier := fakeVerifier{tokens: map[string]*token.Token{"good": goodToken}}
	forward := map[string]string{"client_id": "x-client-id"}
	tests := []struct {
		name    string
		cfg     Config
		ext     map[string]string
		headers map[string]string
		dryRun  bool
		reason  string
		status  int
		upClID  string // x-client-id sent upstream
		fn      func(map[string]any) (policy.Result, error)
		path    string // default /orders
	}{
		{name: "global dry-run, policy error stays a deny", cfg: Config{TokenRequired: true, DryRun: true}, headers: bearer("good"),
			fn: func(map[string]any) (policy.Result, error) { return policy.Result{}, errors.New("eval failed") }, reason: reason.PolicyError, status: 503},
		{name: "global dry-run, panic stays a deny", cfg: Config{TokenRequired: true, DryRun: true}, headers: bearer("good"),
			fn: func(map[string]any) (policy.Result, error) { panic("policy bug") }, reason: reason.Internal, status: 503},
		{name: "route dry-run, policy error stays a deny", cfg: Config{TokenRequired: true, AllowDryRunRoutes: true}, ext: map[string]string{ExtDryRun: "true"},
			headers: bearer("good"), fn: func(map[string]any) (policy.Result, error) { return policy.Result{}, errors.New("eval failed") },
			reason: reason.PolicyError, status: 503},
		{name: "global dry-run, policy deny", cfg: Config{TokenRequired: true, DryRun: true, ForwardClaims: forward}, headers: bearer("good"),
			dryRun: true, reason: reason.PolicyDenied, status: 403, upClID: "service-client-id"},
		{name: "global dry-run, bad token: no claims forwarded", cfg: Config{TokenRequired: true, DryRun: true, ForwardClaims: forward},
			headers: map[string]string{"authorization": "Bearer forged", "x-client-id": "spoofed"}, dryRun: true, reason: "signature_invalid", status: 401},
		{name: "route dry-run ignored without permission", cfg: Config{TokenRequired: true}, ext: map[string]string{ExtDryRun: "true"}, headers: bearer("good"),
			reason: reason.PolicyDenied, status: 403},
		{name: "route dry-run permitted", cfg: Config{TokenRequired: true, AllowDryRunRoutes: true}, ext: map[string]string{ExtDryRun: "true"}, headers: bearer("good"),
			dryRun: true, reason: reason.PolicyDenied, status: 403}, // What the upstream could read another way is never let through.
		{name: "global dry-run, bad path stays a deny", cfg: Config{TokenRequired: true, DryRun: true}, headers: bearer("good"),
			path: "/orders/../admin", reason: reason.PathInvalid, status: 400},
		{name: "global dry-run, bad query stays a deny", cfg: Config{TokenRequired: true, DryRun: true}, headers: bearer("good"),
			path: "/orders?a=%zz", reason: reason.BadRequest, status: 400},
		{name: "global dry-run, too many headers stays a deny", cfg: Config{TokenRequired: true, DryRun: true, MaxHeaders: 1},
			headers: map[string]string{"authorization": "Bearer good", "x-a": "1"}, reason: reason.HeadersTooLarge, status: 431},
		{name: "global dry-run, missing token", cfg: Config{TokenRequired: true, DryRun: true}, dryRun: true, reason: reason.MissingToken, status: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recordingLog{}
			tt.cfg.DecisionLog = rec
			fn := deny
			if tt.fn != nil {
				fn = tt.fn
			}
			path := tt.path
			if path == "" {
				path = "/orders"
			}
			d := newAuthorizer(t, tt.cfg, verifier, &fakePolicy{fn: fn}).Check(context.Background(), withExtensions(httpRequest("GET", path, tt.headers), tt.ext))
			if d.Allowed != tt.dryRun || d.DryRun != tt.dryRun || d.Reason != tt.reason || d.Status != tt.status {
				t.Fatalf("got allowed=%v dry_run=%v reason=%q status=%d", d.Allowed, d.DryRun, d.Reason, d.Status)
			}
			if len(rec.decisions) != 1 || rec.decisions[0].Reason != tt.reason || rec.decisions[0].DryRun != tt.dryRun {
				t.Errorf("decision log = %+v", rec.decisions)
			}
			if !tt.dryRun {
				return
			}
			if d.Body != "" || len(d.DenyHeaders) != 0 {
				t.Errorf("a dry-run allow carries deny parts: %q %v", d.Body, d.DenyHeaders)
			}
			got, _ := header(d.UpstreamHeaders, "x-client-id")
			if got != tt.upClID {
				t.Errorf("x-client-id upstream = %q, want %q", got, tt.upClID)
			}
			if tt.upClID == "" && len(tt.cfg.ForwardClaims) > 0 && !slices.Contains(d.RemoveHeaders, "x-client-id") {
				t.Errorf("spoofable x-client-id not removed: %v", d.RemoveHeaders)
			}
			if meta := d.DynamicMetadata["claimcheck"].(map[string]any); meta["dry_run"] != true || meta["reason"] != tt.reason {
				t.Errorf("dynamic metadata = %v", meta)
			}
		})
	}
}

func TestNoPolicyLoadedIs503(t *testing.T) {
	a, err := New(Config{TokenRequired: true}, fakeVerifier{tokens: map[string]*token.Token{"good": goodToken}}, nilSource{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := a.Check(context.Background(), httpRequest("GET", "/", bearer("good")))
	if d.Allowed || d.Status != 503 || d.Reason != reason.NoPolicy {
		t.Fatalf("decision = %+v", d)
	}
}

type nilSource struct{}

func (nilSource) Policy() Policy { return nil }

func TestDecisionCarriesRequestAndID(t *testing.T) {
	rec := &recordingLog{}
	a := newAuthorizer(t, Config{TokenRequired: true, DecisionLog: rec, DefaultRule: "x/allow"}, fakeVerifier{tokens: map[string]*token.Token{"good": goodToken}}, &fakePolicy{fn: allowAll})
	d := a.Check(context.Background(), httpRequest("POST", "/orders/1?secret=x", bearer("good")))
	if d.ID != "req-1" || d.Method != "POST" || d.Host != "orders.internal" || d.Path != "/orders/1" || d.Revision != "rev-1" || d.Rule != "x/allow" {
		t.Errorf("decision = id %q %s %s %s rev %q rule %q", d.ID, d.Method, d.Host, d.Path, d.Revision, d.Rule)
	}
	req := httpRequest("GET", "/", nil)
	req.Attributes.Request.Http.Id = ""
	if d := a.Check(context.Background(), req); len(d.ID) != 32 {
		t.Errorf("generated decision id = %q", d.ID)
	}
	if len(rec.decisions) != 2 {
		t.Errorf("logged %d decisions, want 2", len(rec.decisions))
	}
}

func TestInputPartsBuiltOnlyForPoliciesThatReadThem(t *testing.T) {
	optional := []string{"attributes", "source", "destination", "context_extensions", "parsed_path", "parsed_query", "version"}
	readers := []map[string]bool{{"token": true}, {"request.headers": true}, {"request.query": true}, nil}
	for _, k := range optional {
		readers = append(readers, map[string]bool{k: true})
	}
	for _, reads := range readers {
		p := &fakePolicy{fn: allowAll, reads: reads}
		d := newAuthorizer(t, Config{TokenRequired: true}, fakeVerifier{tokens: map[string]*token.Token{"good": goodToken}}, p).
			Check(context.Background(), httpRequest("GET", "/orders", bearer("good")))
		if !d.Allowed {
			t.Fatalf("denied: %s", d.Reason)
		}
		for _, k := range optional {
			_, built := p.input[k]
			if want := reads == nil || reads[k]; built != want {
				t.Errorf("policy reading %v: input.%s built = %v, want %v", reads, k, built, want)
			}
		}
		if _, ok := p.input["token"]; !ok {
			t.Errorf("policy reading %v: input.token missing", reads)
		}
		req, ok := p.input["request"].(map[string]any)
		if !ok || req["method"] != "GET" {
			t.Fatalf("policy reading %v: input.request = %v", reads, p.input["request"])
		}
		for _, k := range []string{"headers", "query"} {
			_, built := req[k]
			if want := reads == nil || reads["request."+k]; built != want {
				t.Errorf("policy reading %v: input.request.%s built = %v, want %v", reads, k, built, want)
			}
		}
	}
}

// nilVerifier accepts every token without returning one: a broken verifier.
type nilVerifier struct{}

func (nilVerifier) Verify(context.Context, string) (*token.Token, error) { return nil, nil }

// TestVerifierReturningNothingIsADeny: a token the verifier neither
// accepts nor rejects never reaches a policy that allows anonymous calls.
func TestVerifierReturningNothingIsADeny(t *testing.T) {
	d := newAuthorizer(t, Config{TokenRequired: false}, nilVerifier{}, &fakePolicy{fn: allowAll}).
		Check(context.Background(), httpRequest("GET", "/orders", bearer("anything")))
	if d.Allowed || d.Status != 503 || d.Reason != reason.Internal {
		t.Fatalf("allowed %v status %d reason %q, want a 503 internal_error deny", d.Allowed, d.Status, d.Reason)
	}
}

type panickingLog struct{}

func (panickingLog) LogDecision(context.Context, *Decision) { panic("log backend bug") }

// TestDecisionLoggerPanicLeavesTheDecision: a broken decision logger neither
// crashes the Check nor changes its answer.
func TestDecisionLoggerPanicLeavesTheDecision(t *testing.T) {
	v := fakeVerifier{tokens: map[string]*token.Token{"good": goodToken}}
	deny := func(map[string]any) (policy.Result, error) { return policy.Result{}, nil }
	for _, tt := range []struct {
		fn      func(map[string]any) (policy.Result, error)
		allowed bool
	}{{allowAll, true}, {deny, false}} {
		a := newAuthorizer(t, Config{TokenRequired: true, DecisionLog: panickingLog{}}, v, &fakePolicy{fn: tt.fn})
		d := a.Check(context.Background(), httpRequest("GET", "/orders", bearer("good")))
		if d.Allowed != tt.allowed {
			t.Errorf("allowed = %v, want %v (reason %q)", d.Allowed, tt.allowed, d.Reason)
		}
	}
}

// TestRealPolicySeesTheInputPartsItReads: with the real engine's analysis,
// a policy gets every part it reads, however it spells the reference.
func TestRealPolicySeesTheInputPartsItReads(t *testing.T) {
	rules := map[string]string{
		"dotted":             `allow if input.source.address == "10.0.0.7"`,
		"bracketed":          `allow if input["destination"].port == 8080`,
		"iterated":           `allow if { some k, _ in input.context_extensions; k == "route" }`,
		"parsed path":        `allow if input.parsed_path == ["orders", "1"]`,
		"parsed query":       `allow if input.parsed_query.verbose == ["true"]`,
		"request query":      `allow if input.request.query.verbose == ["true"]`,
		"request headers":    `allow if input.request.headers["user-agent"] == "t/1"`,
		"version via a copy": `allow if { x := input; x.version.ext_authz == "v3" }`,
		"dynamic key":        `allow if { k := "parsed_path"; count(input[k]) == 2 }`,
		"attributes":         `allow if input.attributes.contextExtensions.route == "orders"`,
	}
	for name, rule := range rules {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			src := "package x\n\ndefault allow := false\n\n" + rule + "\n"
			if err := os.WriteFile(filepath.Join(dir, "x.rego"), []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			p, err := policy.New(context.Background(), policy.Config{Paths: []string{dir}, Decision: "x/allow"})
			if err != nil {
				t.Fatal(err)
			}
			a := newAuthorizer(t, Config{TokenRequired: true}, fakeVerifier{tokens: map[string]*token.Token{"good": goodToken}}, p)
			h := bearer("good")
			h["user-agent"] = "t/1"
			if d := a.Check(context.Background(), httpRequest("GET", "/orders/1?verbose=true", h)); !d.Allowed {
				t.Errorf("denied (%s: %s); the policy did not see the part it reads", d.Reason, d.Description)
			}
		})
	}
}
