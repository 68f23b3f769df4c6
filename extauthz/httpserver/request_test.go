package httpserver_test

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/claimcheck/claimcheck/extauthz/httpserver"
)

// TestForwardAuthMapsTheOriginalRequest checks, for each proxy flavour and
// trust situation, the CheckRequest the checker gets.
func TestForwardAuthMapsTheOriginalRequest(t *testing.T) {
	type want struct {
		method, path, host, scheme, source, id string
		dest                                   string
		headers                                map[string]string // must have these values
		absent                                 []string          // must not have these
	}
	tests := []struct {
		name   string
		prefix string
		req    fwdRequest
		want   want
	}{
		{
			name: "Envoy http_service without prefix, untrusted peer: the request is the original",
			req: fwdRequest{method: "POST", target: "/orders/1?a=b&a=c", host: "api.example.com", remote: "203.0.113.7:5000",
				headers: []hdr{{"Authorization", "Bearer t"}, {"X-Request-Id", "req-1"}}},
			want: want{method: "POST", path: "/orders/1?a=b&a=c", host: "api.example.com", scheme: "http", source: "203.0.113.7:5000", id: "req-1",
				headers: map[string]string{":authority": "api.example.com", ":method": "POST", ":path": "/orders/1?a=b&a=c", ":scheme": "http",
					"authorization": "Bearer t", "x-request-id": "req-1"},
				absent: []string{"host"}},
		},
		{
			name:   "Envoy http_service with prefix: the prefix is stripped, the query kept",
			prefix: "/authz",
			req: fwdRequest{method: "DELETE", target: "/authz/orders/1?x=1", host: "api.example.com", remote: "127.0.0.1:4000",
				headers: []hdr{{"X-Forwarded-Proto", "https"}, {"X-Forwarded-For", "203.0.113.7"}}},
			want: want{method: "DELETE", path: "/orders/1?x=1", host: "api.example.com", scheme: "https", source: "203.0.113.7:0",
				headers: map[string]string{":path": "/orders/1?x=1", ":scheme": "https", "x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.7"}},
		},
		{
			name:   "Envoy http_service with prefix: the prefix itself ending in a slash",
			prefix: "/authz/",
			req:    fwdRequest{target: "/authz//orders", host: "api", remote: "127.0.0.1:4000"},
			want:   want{method: "GET", path: "/orders", host: "api", scheme: "http", source: "127.0.0.1:4000"},
		},
		{
			name:   "under the prefix, forwarding headers from a trusted peer do not switch the mode",
			prefix: "/authz",
			req: fwdRequest{target: "/authz/orders/1", host: "api.example.com", remote: "127.0.0.1:4000",
				headers: []hdr{{"X-Forwarded-Method", "DELETE"}, {"X-Forwarded-Uri", "/admin"}, {"X-Forwarded-Host", "evil.example"},
					{"X-Original-URI", "/admin"}, {"X-Original-Method", "PUT"}}},
			want: want{method: "GET", path: "/orders/1", host: "api.example.com", scheme: "http", source: "127.0.0.1:4000",
				headers: map[string]string{"x-forwarded-uri": "/admin", "x-original-uri": "/admin", "x-forwarded-host": "evil.example"}},
		},
		{
			name: "Envoy http_service: a trusted Envoy's X-Forwarded-Host does not change the host",
			req: fwdRequest{target: "/orders", host: "api.example.com", remote: "10.1.2.3:4000",
				headers: []hdr{{"X-Forwarded-Host", "other.example"}}},
			want: want{method: "GET", path: "/orders", host: "api.example.com", scheme: "http", source: "10.1.2.3:4000"},
		},
		{
			name: "nginx auth_request",
			req: fwdRequest{target: "/", host: "claimcheck", remote: "127.0.0.1:4000",
				headers: []hdr{{"X-Original-URI", "/orders/1?expand=items"}, {"X-Original-Method", "POST"},
					{"X-Forwarded-Proto", "https"}, {"X-Forwarded-Host", "api.example.com"}, {"X-Forwarded-For", "203.0.113.7"},
					{"Authorization", "Bearer t"}, {"Connection", "close"}}},
			want: want{method: "POST", path: "/orders/1?expand=items", host: "api.example.com", scheme: "https", source: "203.0.113.7:0",
				headers: map[string]string{":authority": "api.example.com", ":method": "POST", ":path": "/orders/1?expand=items",
					"authorization": "Bearer t", "x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.7"},
				absent: []string{"x-original-uri", "x-original-method", "x-forwarded-host", "connection", "host"}},
		},
		{
			name: "nginx auth_request without X-Forwarded-Host: the Host header",
			req: fwdRequest{target: "/_claimcheck", host: "api.example.com", remote: "127.0.0.1:4000",
				headers: []hdr{{"X-Original-URI", "/orders"}, {"X-Original-Method", "GET"}}},
			want: want{method: "GET", path: "/orders", host: "api.example.com", scheme: "http", source: "127.0.0.1:4000"},
		},
		{
			name: "Traefik forwardAuth",
			req: fwdRequest{target: "/auth", host: "claimcheck:9192", remote: "10.0.0.5:4000",
				headers: []hdr{{"X-Forwarded-Method", "PUT"}, {"X-Forwarded-Proto", "https"}, {"X-Forwarded-Host", "api.example.com"},
					{"X-Forwarded-Uri", "/orders/7?force=true"}, {"X-Forwarded-For", "203.0.113.7"}, {"X-Forwarded-Port", "443"}}},
			want: want{method: "PUT", path: "/orders/7?force=true", host: "api.example.com", scheme: "https", source: "203.0.113.7:0",
				headers: map[string]string{":authority": "api.example.com", ":path": "/orders/7?force=true", "x-forwarded-port": "443"},
				absent:  []string{"x-forwarded-method", "x-forwarded-uri", "x-forwarded-host"}},
		},
		{
			name: "Traefik forwardAuth of a WebSocket request: wss is https",
			req: fwdRequest{target: "/auth", host: "claimcheck", remote: "10.0.0.5:4000",
				headers: []hdr{{"X-Forwarded-Method", "GET"}, {"X-Forwarded-Proto", "wss"}, {"X-Forwarded-Uri", "/ws"}}},
			want: want{method: "GET", path: "/ws", host: "claimcheck", scheme: "https", source: "10.0.0.5:4000",
				headers: map[string]string{":scheme": "https", "x-forwarded-proto": "wss"}},
		},
		{
			name: "Caddy forward_auth: the original Host is kept",
			req: fwdRequest{target: "/", host: "api.example.com", remote: "[::1]:4000",
				headers: []hdr{{"X-Forwarded-Method", "GET"}, {"X-Forwarded-Uri", "/orders/1"}, {"X-Forwarded-For", "2001:db8::7"},
					{"X-Forwarded-Proto", "https"}, {"X-Forwarded-Host", "api.example.com"}}},
			want: want{method: "GET", path: "/orders/1", host: "api.example.com", scheme: "https", source: "[2001:db8::7]:0"},
		},
		{
			name: "untrusted peer: X-Forwarded-Host, -Proto and -For are ordinary headers and do not change the request",
			req: fwdRequest{target: "/orders/1", host: "api.example.com", remote: "203.0.113.7:5000",
				headers: []hdr{{"X-Forwarded-Host", "evil.example"}, {"X-Forwarded-Proto", "https"}, {"X-Forwarded-For", "10.0.0.1"}}},
			want: want{method: "GET", path: "/orders/1", host: "api.example.com", scheme: "http", source: "203.0.113.7:5000",
				headers: map[string]string{":path": "/orders/1", "x-forwarded-host": "evil.example", "x-forwarded-for": "10.0.0.1"}},
		},
		{
			name: "X-Forwarded-For: walked from the right past trusted proxies",
			req: fwdRequest{target: "/", host: "api", remote: "10.0.0.5:4000",
				headers: []hdr{{"X-Forwarded-For", "198.51.100.1, 203.0.113.7, 10.0.0.9"}}},
			want: want{method: "GET", path: "/", host: "api", scheme: "http", source: "203.0.113.7:0"},
		},
		{
			name: "X-Forwarded-For: every entry trusted, the left-most",
			req: fwdRequest{target: "/", host: "api", remote: "10.0.0.5:4000",
				headers: []hdr{{"X-Forwarded-For", "10.0.0.3,10.0.0.4"}}},
			want: want{method: "GET", path: "/", host: "api", scheme: "http", source: "10.0.0.3:0"},
		},
		{
			name: "X-Forwarded-For: several lines are one list",
			req: fwdRequest{target: "/", host: "api", remote: "10.0.0.5:4000",
				headers: []hdr{{"X-Forwarded-For", "198.51.100.1"}, {"X-Forwarded-For", "203.0.113.7"}}},
			want: want{method: "GET", path: "/", host: "api", scheme: "http", source: "203.0.113.7:0",
				headers: map[string]string{"x-forwarded-for": "198.51.100.1,203.0.113.7"}},
		},
		{
			name: "X-Forwarded-For: bracketed IPv6 with a port, and IPv4 with one",
			req: fwdRequest{target: "/", host: "api", remote: "10.0.0.5:4000",
				headers: []hdr{{"X-Forwarded-For", "[2001:db8::1]:443, 10.0.0.8:80"}}},
			want: want{method: "GET", path: "/", host: "api", scheme: "http", source: "[2001:db8::1]:0"},
		},
		{
			name: "IPv4-mapped IPv6 peer counts as its IPv4 address",
			req: fwdRequest{target: "/", host: "claimcheck", remote: "[::ffff:10.0.0.5]:4000",
				headers: []hdr{{"X-Forwarded-Method", "GET"}, {"X-Forwarded-Uri", "/orders"}}},
			want: want{method: "GET", path: "/orders", host: "claimcheck", scheme: "http", source: "10.0.0.5:4000"},
		},
		{
			name: "unix-socket peer is trusted as loopback is",
			req: fwdRequest{target: "/", host: "claimcheck", remote: "@", local: &net.UnixAddr{Name: "/run/cc.sock", Net: "unix"},
				headers: []hdr{{"X-Original-URI", "/orders"}, {"X-Original-Method", "GET"}}},
			want: want{method: "GET", path: "/orders", host: "claimcheck", scheme: "http", source: "unix:@", dest: "unix:/run/cc.sock"},
		},
		{
			name: "destination is the accepting address",
			req: fwdRequest{target: "/", host: "api", remote: "203.0.113.7:5000",
				local: &net.TCPAddr{IP: net.ParseIP("192.0.2.10"), Port: 9192}},
			want: want{method: "GET", path: "/", host: "api", scheme: "http", source: "203.0.113.7:5000", dest: "192.0.2.10:9192"},
		},
		{
			name: "headers: repeated ones joined with commas, hop-by-hop ones left out",
			req: fwdRequest{target: "/", host: "api", remote: "203.0.113.7:5000",
				headers: []hdr{{"X-Trace", "a"}, {"X-Trace", "b"}, {"Connection", "keep-alive"}, {"Keep-Alive", "timeout=5"},
					{"Te", "trailers"}, {"Upgrade", "h2c"}, {"Cookie", "a=1"}}},
			want: want{method: "GET", path: "/", host: "api", scheme: "http", source: "203.0.113.7:5000",
				headers: map[string]string{"x-trace": "a,b", "cookie": "a=1"},
				absent:  []string{"connection", "keep-alive", "te", "upgrade"}},
		},
		{
			name: "two cookie lines joined with a semicolon, as Envoy joins them",
			req: fwdRequest{target: "/", host: "api", remote: "203.0.113.7:5000",
				headers: []hdr{{"Cookie", "a=1"}, {"Cookie", "at=tok; b=2"}, {"cookie", "c=3"}}},
			want: want{method: "GET", path: "/", host: "api", scheme: "http", source: "203.0.113.7:5000",
				headers: map[string]string{"cookie": "a=1; at=tok; b=2; c=3"}},
		},
		{
			name: "absolute-form request target: its path and query",
			req:  fwdRequest{target: "http://api.example.com/orders?x=1", host: "api.example.com", remote: "203.0.113.7:5000"},
			want: want{method: "GET", path: "/orders?x=1", host: "api.example.com", scheme: "http", source: "203.0.113.7:5000"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			h := httpserver.NewForwardAuth(rec, httpserver.Config{TrustedProxies: trusted, PathPrefix: tt.prefix}, nil)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, tt.req.build())
			if w.Code != http.StatusOK {
				t.Fatalf("status %d, body %s", w.Code, w.Body)
			}
			attrs := rec.only(t).GetAttributes()
			hr := attrs.GetRequest().GetHttp()
			got := want{method: hr.GetMethod(), path: hr.GetPath(), host: hr.GetHost(), scheme: hr.GetScheme(),
				source: addr(attrs.GetSource().GetAddress()), id: hr.GetId(), dest: addr(attrs.GetDestination().GetAddress())}
			w2 := tt.want
			if got.method != w2.method || got.path != w2.path || got.host != w2.host || got.scheme != w2.scheme ||
				got.source != w2.source || got.id != w2.id || got.dest != w2.dest {
				t.Errorf("got  method=%q path=%q host=%q scheme=%q source=%q id=%q dest=%q\nwant method=%q path=%q host=%q scheme=%q source=%q id=%q dest=%q",
					got.method, got.path, got.host, got.scheme, got.source, got.id, got.dest,
					w2.method, w2.path, w2.host, w2.scheme, w2.source, w2.id, w2.dest)
			}
			hs := hr.GetHeaders()
			// The pseudo-headers always agree with the fields.
			if hs[":method"] != got.method || hs[":path"] != got.path || hs[":authority"] != got.host || hs[":scheme"] != got.scheme {
				t.Errorf("pseudo-headers %q %q %q %q disagree with the request", hs[":method"], hs[":path"], hs[":authority"], hs[":scheme"])
			}
			for k, v := range w2.headers {
				if hs[k] != v {
					t.Errorf("header %s = %q, want %q", k, hs[k], v)
				}
			}
			for _, k := range w2.absent {
				if v, ok := hs[k]; ok {
					t.Errorf("header %s = %q, want it absent", k, v)
				}
			}
			for k := range hs {
				if k != strings.ToLower(k) {
					t.Errorf("header name %q is not lower-case", k)
				}
			}
			if attrs.GetRequest().GetTime() == nil {
				t.Error("request time not set")
			}
		})
	}
}

// TestForwardAuthRefusesBadRequests: what cannot be mapped is a clear 4xx
// with a JSON body and never reaches the checker.
func TestForwardAuthRefusesBadRequests(t *testing.T) {
	traefik := func(uri string) []hdr { return []hdr{{"X-Forwarded-Method", "GET"}, {"X-Forwarded-Uri", uri}} }
	tests := []struct {
		name   string
		prefix string
		req    fwdRequest
		status int
		desc   string // in error_description
		reason string // X-Claimcheck-Reason; default bad_request, or headers_too_large for 431
	}{
		// Forwarding headers from a peer that is not a trusted proxy are a
		// deployment mistake or a forgery; judging the auth request's own
		// path instead would answer for a request nobody asked about.
		{name: "X-Forwarded-Uri from an untrusted peer", req: fwdRequest{remote: "203.0.113.7:5000", headers: traefik("/admin")},
			status: 400, desc: "X-Forwarded-Uri and X-Forwarded-Method came from 203.0.113.7, which is not in http.trusted_proxies", reason: "forwarded_headers_untrusted"},
		{name: "X-Original-URI alone from an untrusted peer", req: fwdRequest{remote: "203.0.113.7:5000", headers: []hdr{{"X-Original-URI", "../admin"}}},
			status: 400, desc: "http.trusted_proxies", reason: "forwarded_headers_untrusted"},
		{name: "X-Original-Method from an untrusted peer, under the path prefix", prefix: "/authz",
			req:    fwdRequest{target: "/authz/orders", remote: "[2001:db8::1]:5000", headers: []hdr{{"X-Original-Method", "DELETE"}}},
			status: 400, desc: "X-Original-Method came from 2001:db8::1", reason: "forwarded_headers_untrusted"},
		{name: "X-Forwarded-Method from an untrusted peer", req: fwdRequest{remote: "198.51.100.1:1", headers: []hdr{{"X-Forwarded-Method", "GET"}}},
			status: 400, desc: "http.trusted_proxies", reason: "forwarded_headers_untrusted"},
		{"X-Forwarded-Uri twice", "", fwdRequest{headers: append(traefik("/a"), hdr{"X-Forwarded-Uri", "/b"})}, 400, "expected one value", ""},
		{"X-Forwarded-Method with a space", "", fwdRequest{headers: []hdr{{"X-Forwarded-Method", "GET /x"}, {"X-Forwarded-Uri", "/"}}}, 400, "not an HTTP method", ""},
		{"X-Forwarded-Method empty", "", fwdRequest{headers: []hdr{{"X-Forwarded-Method", ""}, {"X-Forwarded-Uri", "/"}}}, 400, "not an HTTP method", ""},
		{"X-Forwarded-Uri without X-Forwarded-Method", "", fwdRequest{headers: []hdr{{"X-Forwarded-Uri", "/"}}}, 400, "X-Forwarded-Method is required", ""},
		{"X-Forwarded-Method without X-Forwarded-Uri", "", fwdRequest{headers: []hdr{{"X-Forwarded-Method", "GET"}}}, 400, "X-Forwarded-Uri is required", ""},
		{"X-Original-URI without X-Original-Method", "", fwdRequest{headers: []hdr{{"X-Original-URI", "/orders"}}}, 400, "X-Original-Method is required", ""},
		{"both the nginx and the Traefik pair", "", fwdRequest{headers: append(traefik("/a"), hdr{"X-Original-URI", "/b"}, hdr{"X-Original-Method", "GET"})}, 400, "both", ""},
		{"X-Forwarded-Proto not http or https", "", fwdRequest{headers: append(traefik("/"), hdr{"X-Forwarded-Proto", "ftp"})}, 400, "X-Forwarded-Proto", ""},
		{"X-Forwarded-Proto a list", "", fwdRequest{headers: append(traefik("/"), hdr{"X-Forwarded-Proto", "https, http"})}, 400, "X-Forwarded-Proto", ""},
		{"X-Forwarded-Host with a path", "", fwdRequest{headers: append(traefik("/"), hdr{"X-Forwarded-Host", "evil.example/x"})}, 400, "not a host", ""},
		{"X-Forwarded-Host a list", "", fwdRequest{headers: append(traefik("/"), hdr{"X-Forwarded-Host", "a.example, b.example"})}, 400, "not a host", ""},
		{"X-Forwarded-For not an address", "", fwdRequest{headers: []hdr{{"X-Forwarded-For", "unknown"}}}, 400, "X-Forwarded-For", ""},
		{"X-Forwarded-For with an empty entry", "", fwdRequest{headers: []hdr{{"X-Forwarded-For", "203.0.113.7,,10.0.0.1"}}}, 400, "X-Forwarded-For", ""},
		{"Envoy path outside the prefix", "/authz", fwdRequest{target: "/orders"}, 400, "not under the path prefix", ""},
		{"Envoy path that only starts like the prefix", "/authz", fwdRequest{target: "/authzorders"}, 400, "not under the path prefix", ""},
		{"OPTIONS * with a prefix", "/authz", fwdRequest{method: "OPTIONS", target: "*"}, 400, "not under the path prefix", ""},
		{"header value that is not UTF-8", "", fwdRequest{headers: []hdr{{"X-Note", "caf\xe9"}}}, 400, "not UTF-8", ""},
		{"headers over 60 KiB", "", fwdRequest{headers: []hdr{{"Cookie", strings.Repeat("a", 61<<10)}}}, 431, "more than", ""},
		// The answer is logged too: a query string, which may carry a token, is never echoed.
		{"path outside the prefix, query hidden", "/authz", fwdRequest{target: "/orders?access_token=s3cr3t"}, 400, `"/orders?…" is not under the path prefix`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			h := httpserver.NewForwardAuth(rec, httpserver.Config{TrustedProxies: trusted, PathPrefix: tt.prefix}, nil)
			req := tt.req
			if req.target == "" {
				req.target = "/auth"
			}
			req.host = "claimcheck"
			if req.remote == "" {
				req.remote = "127.0.0.1:4000"
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req.build())
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d; body %s", w.Code, tt.status, w.Body)
			}
			if n := rec.calls(); n != 0 {
				t.Errorf("the checker was called %d times", n)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("content-type %q", ct)
			}
			want := tt.reason
			switch {
			case want != "":
			case tt.status == 431:
				want = "headers_too_large"
			default:
				want = "bad_request"
			}
			if r := w.Header().Get("X-Claimcheck-Reason"); r != want {
				t.Errorf("x-claimcheck-reason %q, want %q", r, want)
			}
			var body struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if body.Error != "invalid_request" || !strings.Contains(body.Description, tt.desc) {
				t.Errorf("body = %+v, want invalid_request mentioning %q", body, tt.desc)
			}
			if strings.Contains(body.Description, "s3cr3t") {
				t.Errorf("error_description %q echoes the query string", body.Description)
			}
		})
	}
}
