package httpserver_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/claimcheck/claimcheck/extauthz"
	"github.com/claimcheck/claimcheck/extauthz/httpserver"
	"github.com/claimcheck/claimcheck/extauthz/reason"
	"github.com/claimcheck/claimcheck/extauthz/tokentest"
	"github.com/claimcheck/claimcheck/policy"
)

// edgesRego allows a verified token and, as the query says, sets a header
// (where=headers, response_headers_to_add, deny_headers) or removes one
// (where=request_headers_to_remove) whose name and value come from the
// query, decoded: a way to have a policy hand back CR, LF or NUL through
// either adapter.
const edgesRego = `package edges

q(k) := input.request.query[k][0]

default decision := {"allowed": false}

decision := {"allowed": true} if not input.request.query.where

decision := {"allowed": true, "headers": {q("name"): q("value")}} if q("where") == "headers"

decision := {"allowed": true, "response_headers_to_add": {q("name"): q("value")}} if q("where") == "response_headers_to_add"

decision := {"allowed": true, "request_headers_to_remove": [q("name")]} if q("where") == "request_headers_to_remove"

decision := {"allowed": false, "http_status": 418, "headers": {q("name"): q("value")}} if q("where") == "deny_headers"
`

// edgesRig serves an Authorizer with edgesRego and sources (every kind
// when nil) over gRPC and forward-auth, logging to log (nowhere when nil).
func edgesRig(t *testing.T, sources []extauthz.TokenSource, log io.Writer) *pathRig {
	t.Helper()
	if sources == nil {
		sources = []extauthz.TokenSource{{Header: "authorization", Prefix: "Bearer "}, {Query: "access_token"}, {Cookie: "at"}}
	}
	var logger *slog.Logger
	if log != nil {
		logger = slog.New(slog.NewTextHandler(log, nil))
	}
	a, err := extauthz.New(extauthz.Config{TokenRequired: true, Sources: sources}, twoClients{},
		extauthz.StaticPolicy(regoEngine(t, edgesRego, "edges/decision")), logger)
	if err != nil {
		t.Fatal(err)
	}
	return serveAdapters(t, a)
}

// checkGRPC sends req to the rig's gRPC server.
func (r *pathRig) checkGRPC(t *testing.T, req *authv3.CheckRequest) *authv3.CheckResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := r.grpc.Check(ctx, req)
	if err != nil {
		t.Fatalf("gRPC Check: %v", err)
	}
	return resp
}

// grpcRequest is a CheckRequest for GET target with these headers (names
// as given) or, with raw, these header_map entries.
func grpcRequest(target string, headers map[string]string, raw [][2]string) *authv3.CheckRequest {
	req := envoyCheckRequest(original{method: "GET", uri: target, host: "api.example.com", scheme: "https",
		clientIP: "203.0.113.7", clientPort: 40000}, nil)
	h := req.Attributes.Request.Http
	for k, v := range headers {
		h.Headers[k] = v
	}
	if raw != nil {
		hm := &corev3.HeaderMap{}
		for k, v := range h.Headers {
			hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: k, RawValue: []byte(v)})
		}
		for _, e := range raw {
			hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: e[0], RawValue: []byte(e[1])})
		}
		h.Headers, h.HeaderMap = nil, hm
	}
	return req
}

func grpcReason(resp *authv3.CheckResponse) string {
	reason, _ := resp.GetDynamicMetadata().AsMap()["claimcheck"].(map[string]any)["reason"].(string)
	return reason
}

// TestCollidingHeaderNamesOverGRPC: over a real gRPC connection, a
// CheckRequest whose headers map spells one name twice is a 400
// bad_request naming it, whichever spelling carries the token; in
// header_map, where order is the request's, repeated cookie lines are
// joined and the token cookie is found in any of them.
func TestCollidingHeaderNamesOverGRPC(t *testing.T) {
	r := edgesRig(t, nil, nil)
	tests := []struct {
		name    string
		headers map[string]string
		raw     [][2]string
		status  int
		reason  string
		names   string // in the deny's body
	}{
		{name: "Authorization and authorization", headers: map[string]string{"Authorization": "Bearer most", "authorization": "Bearer orders"},
			status: 400, reason: "bad_request", names: "authorization"},
		{name: "one token, one empty", headers: map[string]string{"AUTHORIZATION": "Bearer most", "authorization": ""},
			status: 400, reason: "bad_request", names: "authorization"},
		{name: "Cookie and cookie", headers: map[string]string{"authorization": "Bearer most", "Cookie": "at=x", "cookie": "a=1"},
			status: 400, reason: "bad_request", names: "cookie"},
		{name: "X-Forwarded-For twice", headers: map[string]string{"authorization": "Bearer most", "X-Forwarded-For": "10.0.0.1", "x-forwarded-for": "203.0.113.7"},
			status: 400, reason: "bad_request", names: "x-forwarded-for"},
		{name: "header_map: token cookie in the second cookie line", raw: [][2]string{{"cookie", "theme=dark"}, {"cookie", "a=1; at=most"}},
			status: 200, reason: "allowed"},
		{name: "header_map: token cookie in the first of two spellings", raw: [][2]string{{"Cookie", "at=most"}, {"cookie", "a=1"}},
			status: 200, reason: "allowed"},
		{name: "header_map: two authorization entries are joined, not picked from", raw: [][2]string{{"authorization", "Bearer most"}, {"Authorization", "Bearer orders"}},
			status: 401, reason: "signature_invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 10 { // map order varies: the answer must not
				resp := r.checkGRPC(t, grpcRequest("/orders/1", tt.headers, tt.raw))
				status := http.StatusOK
				if d := resp.GetDeniedResponse(); d != nil {
					status = int(d.GetStatus().GetCode())
				}
				if status != tt.status || grpcReason(resp) != tt.reason {
					t.Fatalf("got %d %s, want %d %s", status, grpcReason(resp), tt.status, tt.reason)
				}
				if tt.names != "" && !strings.Contains(resp.GetDeniedResponse().GetBody(), `\"`+tt.names+`\"`) {
					t.Fatalf("body %s does not name %q", resp.GetDeniedResponse().GetBody(), tt.names)
				}
			}
		})
	}
}

// TestPolicyHeadersThatCouldSplitAreRefusedByEveryAdapter: a decision
// whose headers, response_headers_to_add, request_headers_to_remove or deny
// headers carry CR, LF, NUL or another control character in a value, or a
// name that is not an HTTP token, is a 503 policy_error — logged — over a
// real gRPC connection and over forward-auth alike; tab and text beyond
// ASCII are fine.
func TestPolicyHeadersThatCouldSplitAreRefusedByEveryAdapter(t *testing.T) {
	var log tokentest.SyncBuffer
	r := edgesRig(t, nil, &log)
	hostile := []struct{ name, value string }{
		{"x-a", "1\r\nx-injected: 1"},
		{"x-a", "1\nx-injected: 1"},
		{"x-a", "1\rx-injected: 1"},
		{"x-a", "1\x00"},
		{"x-a", "\x00"},
		{"x-a", "1\x7f"},
		{"x-a", "1\x0b"},
		{"x-a", "\r\n\r\nHTTP/1.1 200 OK"},
		{"x-a\r\nx-injected", "1"},
		{"x-a: 1\r\nx-b", "1"},
		{"x a", "1"},
		{"x-a\x00", "1"},
		{"x-\u00e9", "1"},
		{":authority", "evil.example"},
		{"x-a:", "1"},
		{"(x)", "1"},
	}
	for _, where := range []string{"headers", "response_headers_to_add", "request_headers_to_remove", "deny_headers"} {
		for _, h := range hostile {
			if where == "request_headers_to_remove" && policy.IsToken(h.name) {
				continue // the value plays no part
			}
			target := "/orders/1?" + url.Values{"where": {where}, "name": {h.name}, "value": {h.value}}.Encode()
			t.Run(fmt.Sprintf("%s %q: %q", where, h.name, h.value), func(t *testing.T) {
				resp := r.checkGRPC(t, grpcRequest(target, map[string]string{"authorization": "Bearer most"}, nil))
				if resp.GetOkResponse() != nil || resp.GetDeniedResponse().GetStatus().GetCode() != 503 || grpcReason(resp) != reason.PolicyError {
					t.Errorf("gRPC: %v, want a 503 policy_error deny", resp)
				}
				status, code, header := r.forwardAuth(t, target, "Bearer most")
				if status != 503 || code != reason.PolicyError {
					t.Errorf("forward-auth: %d %s, want 503 policy_error", status, code)
				}
				for k := range header {
					if strings.EqualFold(k, "x-injected") || strings.EqualFold(k, "x-a") {
						t.Errorf("forward-auth answer carries %s", k)
					}
				}
			})
		}
	}
	if !strings.Contains(log.String(), "policy evaluation failed") || !strings.Contains(log.String(), "is not a header name") ||
		!strings.Contains(log.String(), "the value has a control character") {
		t.Errorf("the refusals are not logged:\n%s", log.String())
	}
	// Header text that only looks odd passes on both.
	for _, where := range []string{"headers", "response_headers_to_add"} {
		target := "/orders/1?" + url.Values{"where": {where}, "name": {"x-a"}, "value": {"a\tb caf\u00e9"}}.Encode()
		if resp := r.checkGRPC(t, grpcRequest(target, map[string]string{"authorization": "Bearer most"}, nil)); resp.GetOkResponse() == nil {
			t.Errorf("%s: gRPC denied a tab and UTF-8: %v", where, resp)
		}
		if status, _, header := r.forwardAuth(t, target, "Bearer most"); status != 200 || header.Get("x-a") != "a\tb caf\u00e9" {
			t.Errorf("%s: forward-auth %d, x-a %q", where, status, header.Get("x-a"))
		}
	}
}

// forwardAuth asks the rig's forward-auth listener as Caddy does for GET
// target with this Authorization header, and returns the answer's status,
// reason and headers.
func (r *pathRig) forwardAuth(t *testing.T, target, authorization string, headers ...hdr) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+r.http+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-Method", "GET")
	req.Header.Set("X-Forwarded-Uri", target)
	req.Header.Set("X-Forwarded-Host", "api.example.com")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	for _, h := range headers {
		req.Header.Add(h.name, h.value)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get(httpserver.HeaderReason), resp.Header
}

// envoyUpstream is the request Envoy sends upstream after an allow: ok's
// headers set (OVERWRITE) or appended, then its headers removed, then its
// query parameters removed by their names as sent, as Envoy's ext_authz
// filter applies them.
func envoyUpstream(target string, headers map[string]string, ok *authv3.OkHttpResponse) (string, map[string]string) {
	up := make(map[string]string, len(headers))
	for k, v := range headers {
		up[strings.ToLower(k)] = v
	}
	for _, o := range ok.GetHeaders() {
		k := strings.ToLower(o.GetHeader().GetKey())
		if prev, exists := up[k]; exists && o.GetAppendAction() == corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD {
			up[k] = prev + "," + o.GetHeader().GetValue()
		} else {
			up[k] = o.GetHeader().GetValue()
		}
	}
	for _, k := range ok.GetHeadersToRemove() {
		delete(up, strings.ToLower(k))
	}
	path, query, hasQuery := strings.Cut(target, "?")
	if !hasQuery || len(ok.GetQueryParametersToRemove()) == 0 {
		return target, up
	}
	var kept []string
	for seg := range strings.SplitSeq(query, "&") {
		name, _, _ := strings.Cut(seg, "=")
		if !slices.Contains(ok.GetQueryParametersToRemove(), name) {
			kept = append(kept, seg)
		}
	}
	if len(kept) == 0 {
		return path, up
	}
	return path + "?" + strings.Join(kept, "&"), up
}

// stripSources are the default kinds of sources as serve configures them
// with forward.strip_token unset: the header kept, query and cookie
// stripped.
var stripSources = []extauthz.TokenSource{
	{Header: "authorization", Prefix: "Bearer "},
	{Query: "access_token", Strip: true},
	{Cookie: "at", Strip: true},
}

// stripCases are requests carrying a credential in hostile ways, and what
// the upstream must get: exactly the request without the credentials.
var stripCases = []struct {
	name          string
	target        string
	authorization string   // the Authorization header; none when empty
	cookies       []string // cookie lines, sent as header_map entries
	wantTarget    string   // what the upstream gets
	wantCookie    string   // the upstream's cookie header
	noCookie      bool     // the upstream gets no cookie header
	wantQuery     []string // query_parameters_to_remove
}{
	{name: "query token", target: "/orders/1?access_token=most&page=2",
		wantTarget: "/orders/1?page=2", noCookie: true, wantQuery: []string{"access_token"}},
	{name: "query token alone", target: "/orders/1?access_token=most",
		wantTarget: "/orders/1", noCookie: true, wantQuery: []string{"access_token"}},
	{name: "query token twice", target: "/orders/1?access_token=most&x=1&access_token=most",
		wantTarget: "/orders/1?x=1", noCookie: true, wantQuery: []string{"access_token"}},
	{name: "query token twice, the second forged", target: "/orders/1?access_token=most&access_token=forged",
		wantTarget: "/orders/1", noCookie: true, wantQuery: []string{"access_token"}},
	{name: "a name in another case is stripped too", target: "/orders/1?ACCESS_TOKEN=forged&access_token=most&Access_Token=x&b=2",
		wantTarget: "/orders/1?b=2", noCookie: true, wantQuery: []string{"ACCESS_TOKEN", "access_token", "Access_Token"}},
	{name: "the token also in another parameter stays there", target: "/orders/1?redirect=most&access_token=most&state=most",
		wantTarget: "/orders/1?redirect=most&state=most", noCookie: true, wantQuery: []string{"access_token"}},
	{name: "percent-encoded name", target: "/orders/1?access%5Ftoken=most&a=1&access%5ftoken=x",
		wantTarget: "/orders/1?a=1", noCookie: true, wantQuery: []string{"access%5Ftoken", "access%5ftoken"}},
	{name: "lookalike names stay", target: "/orders/1?access_token=most&access_token_hint=1&xaccess_token=2&access+token=3&access_token%20=4",
		wantTarget: "/orders/1?access_token_hint=1&xaccess_token=2&access+token=3&access_token%20=4", noCookie: true, wantQuery: []string{"access_token"}},
	{name: "empty parameter value next to a header token", target: "/orders/1?x=1&access_token=&y=2", authorization: "Bearer most",
		wantTarget: "/orders/1?x=1&y=2", noCookie: true, wantQuery: []string{"access_token"}},
	{name: "header token, a second one in the query", target: "/orders/1?access_token=forged", authorization: "Bearer most",
		wantTarget: "/orders/1", noCookie: true, wantQuery: []string{"access_token"}},
	{name: "cookie token", target: "/orders/1", cookies: []string{"theme=dark; at=most; lang=en"},
		wantTarget: "/orders/1", wantCookie: "theme=dark; lang=en"},
	{name: "cookie token alone", target: "/orders/1", cookies: []string{"at=most"},
		wantTarget: "/orders/1", noCookie: true},
	{name: "token cookie twice", target: "/orders/1", cookies: []string{"at=most; theme=dark; at=other"},
		wantTarget: "/orders/1", wantCookie: "theme=dark"},
	{name: "token cookie in two cookie lines", target: "/orders/1", cookies: []string{"at=most; a=1", "b=2; at=most"},
		wantTarget: "/orders/1", wantCookie: "a=1; b=2"},
	{name: "token cookie in the second cookie line", target: "/orders/1", cookies: []string{"a=1", "at=most"},
		wantTarget: "/orders/1", wantCookie: "a=1"},
	{name: "spaces and quotes", target: "/orders/1", cookies: []string{`  theme="dark blue" ;at="most";  lang=en  `},
		wantTarget: "/orders/1", wantCookie: `theme="dark blue"; lang=en`},
	{name: "empty token cookie next to a header token", target: "/orders/1", authorization: "Bearer most", cookies: []string{"at=; theme=dark"},
		wantTarget: "/orders/1", wantCookie: "theme=dark"},
	{name: "token cookie in other cases and with a space", target: "/orders/1", authorization: "Bearer most", cookies: []string{"AT=x; theme=dark; At=y; at =z"},
		wantTarget: "/orders/1", wantCookie: "theme=dark"},
	{name: "lookalike cookies stay", target: "/orders/1", cookies: []string{"att=1; at=most; xat=2; at_=3; at"},
		wantTarget: "/orders/1", wantCookie: "att=1; xat=2; at_=3; at"},
	{name: "cookies without the token cookie are restated as they came", target: "/orders/1", authorization: "Bearer most", cookies: []string{"theme=dark;;lang=en "},
		wantTarget: "/orders/1", wantCookie: "theme=dark;;lang=en "},
	{name: "query and cookie at once", target: "/orders/1?access_token=most&q=1", cookies: []string{"at=other; s=1"},
		wantTarget: "/orders/1?q=1", wantCookie: "s=1", wantQuery: []string{"access_token"}},
}

// TestStripRemovesExactlyTheCredentialOverGRPC: over a real gRPC
// connection, the CheckResponse of an allow takes every query and cookie
// credential out of what Envoy sends upstream and leaves everything else
// as it came, the Authorization header (not stripped here) included.
func TestStripRemovesExactlyTheCredentialOverGRPC(t *testing.T) {
	r := edgesRig(t, stripSources, nil)
	for _, tt := range stripCases {
		t.Run(tt.name, func(t *testing.T) {
			headers := map[string]string{"x-other": "kept"}
			if tt.authorization != "" {
				headers["authorization"] = tt.authorization
			}
			raw := [][2]string{}
			for _, c := range tt.cookies {
				raw = append(raw, [2]string{"cookie", c})
			}
			req := grpcRequest(tt.target, headers, raw)
			lines := map[string][]string{}
			for _, e := range req.GetAttributes().GetRequest().GetHttp().GetHeaderMap().GetHeaders() {
				lines[e.GetKey()] = append(lines[e.GetKey()], string(e.GetRawValue()))
			}
			sent := map[string]string{}
			for k, vs := range lines {
				sent[k] = extauthz.JoinHeaderValues(k, vs)
			}
			resp := r.checkGRPC(t, req)
			ok := resp.GetOkResponse()
			if ok == nil {
				t.Fatalf("denied: %v", resp)
			}
			target, up := envoyUpstream(tt.target, sent, ok)
			if target != tt.wantTarget {
				t.Errorf("upstream target %q, want %q", target, tt.wantTarget)
			}
			if !slices.Equal(ok.GetQueryParametersToRemove(), tt.wantQuery) {
				t.Errorf("query_parameters_to_remove %q, want %q", ok.GetQueryParametersToRemove(), tt.wantQuery)
			}
			if c, has := up["cookie"]; has == tt.noCookie || c != tt.wantCookie {
				t.Errorf("upstream cookie %q (sent: %v), want %q", c, has, tt.wantCookie)
			}
			if up["authorization"] != tt.authorization || up["x-other"] != "kept" || up[":path"] != tt.target {
				t.Errorf("upstream headers %q: something else was touched", up)
			}
		})
	}
}

// TestStripRestatesTheCookieOverForwardAuth: forward-auth cannot change the
// query (README: a documented limitation), but its 200 carries the cookie
// header the upstream should get, for the proxy to copy: the cookies less
// the token cookie, or none with x-envoy-auth-headers-to-remove: cookie
// when no cookie remains.
func TestStripRestatesTheCookieOverForwardAuth(t *testing.T) {
	r := edgesRig(t, stripSources, nil)
	for _, tt := range stripCases {
		t.Run(tt.name, func(t *testing.T) {
			var headers []hdr
			for _, c := range tt.cookies {
				headers = append(headers, hdr{"Cookie", c})
			}
			status, code, answer := r.forwardAuth(t, tt.target, tt.authorization, headers...)
			if status != 200 || code != reason.Allowed {
				t.Fatalf("%d %s, want 200 allowed", status, code)
			}
			removed := slices.Contains(strings.Split(answer.Get(httpserver.HeaderRemove), ", "), "cookie")
			switch {
			case len(tt.cookies) == 0:
				if answer.Values("Cookie") != nil || removed {
					t.Errorf("a request without cookies: Cookie %q, removed %v", answer.Values("Cookie"), removed)
				}
			case tt.noCookie:
				if answer.Values("Cookie") != nil || !removed {
					t.Errorf("no cookie should remain: Cookie %q, removed %v", answer.Values("Cookie"), removed)
				}
			default:
				// Go's server trims the space around a header value.
				if got := answer.Values("Cookie"); len(got) != 1 || got[0] != strings.TrimSpace(tt.wantCookie) || removed {
					t.Errorf("Cookie %q, removed %v; want %q", got, removed, tt.wantCookie)
				}
			}
			if strings.Contains(answer.Get(httpserver.HeaderRemove), "authorization") {
				t.Errorf("the unstripped Authorization header is removed: %q", answer.Get(httpserver.HeaderRemove))
			}
		})
	}
}

// TestStripLeavesAPolicysOwnCookie: a decision that sets or removes the
// cookie header itself keeps it; the token cookie goes either way, as the
// policy's header replaces the request's.
func TestStripLeavesAPolicysOwnCookie(t *testing.T) {
	r := edgesRig(t, stripSources, nil)
	for _, tt := range []struct {
		where      string
		wantCookie string
		noCookie   bool
	}{
		{where: "headers", wantCookie: "chosen=1"},
		{where: "request_headers_to_remove", noCookie: true},
	} {
		target := "/orders/1?" + url.Values{"where": {tt.where}, "name": {"cookie"}, "value": {"chosen=1"}}.Encode()
		req := grpcRequest(target, nil, [][2]string{{"cookie", "theme=dark; at=most"}})
		ok := r.checkGRPC(t, req).GetOkResponse()
		if ok == nil {
			t.Fatalf("%s: denied", tt.where)
		}
		_, up := envoyUpstream(target, map[string]string{"cookie": "theme=dark; at=most"}, ok)
		if c, has := up["cookie"]; has == tt.noCookie || c != tt.wantCookie {
			t.Errorf("%s: upstream cookie %q (%v), want %q", tt.where, c, has, tt.wantCookie)
		}
	}
}

// TestStripTokenStillStripsTheHeader: a header source that strips (as
// forward.strip_token makes it) has its header removed over both
// adapters, and only when it holds a bearer token.
func TestStripTokenStillStripsTheHeader(t *testing.T) {
	r := edgesRig(t, []extauthz.TokenSource{{Header: "authorization", Prefix: "Bearer ", Strip: true}, {Query: "access_token", Strip: true}}, nil)
	ok := r.checkGRPC(t, grpcRequest("/orders/1", map[string]string{"authorization": "Bearer most"}, nil)).GetOkResponse()
	if ok == nil || !slices.Equal(ok.GetHeadersToRemove(), []string{"authorization"}) {
		t.Errorf("gRPC: %v, want authorization removed", ok)
	}
	if _, _, answer := r.forwardAuth(t, "/orders/1", "Bearer most"); answer.Get(httpserver.HeaderRemove) != "authorization" {
		t.Errorf("forward-auth: %s: %q, want authorization", httpserver.HeaderRemove, answer.Get(httpserver.HeaderRemove))
	}
	// Basic credentials are not a bearer token: they stay.
	ok = r.checkGRPC(t, grpcRequest("/orders/1?access_token=most", map[string]string{"authorization": "Basic eDp5"}, nil)).GetOkResponse()
	if ok == nil || len(ok.GetHeadersToRemove()) != 0 || !slices.Equal(ok.GetQueryParametersToRemove(), []string{"access_token"}) {
		t.Errorf("gRPC with Basic credentials: %v", ok)
	}
}
