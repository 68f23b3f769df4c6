package main

import (
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

// TestServeStripsQueryAndCookieTokens runs the real binary with a query and
// a cookie source (stripped by default) and one that says strip: false,
// and checks over gRPC what each CheckResponse takes out of the upstream
// request: exactly the credentials, the Authorization header (not stripped
// without forward.strip_token) left alone. A headers map that spells
// Authorization twice is a 400.
func TestServeStripsQueryAndCookieTokens(t *testing.T) {
	key := tokentest.NewRSAKey(t, "rsa-1")
	idp := tokentest.NewJWKSServer(t, key)
	config := fmt.Sprintf(`
listen: {grpc: "{{LISTEN}}"}
issuers:
  - issuer: %s
    audiences: [orders-api]
    jwks_uri: %s
token:
  sources:
    - {header: authorization, prefix: "Bearer "}
    - {query: access_token}
    - {cookie: at}
    - {query: kept_token, strip: false}
policy:
  paths: [%s]
  decision: claimcheck/authz/allow
`, idp.URL, idp.JWKSURI(), quickstartPolicy(t))
	s := startServer(t, config, freeAddr(t))
	s.waitHealth(t, healthpb.HealthCheckResponse_SERVING)
	claims := tokentest.Claims(idp.URL, "orders-api", time.Hour)
	claims["client_id"] = "service-client-id"
	tok := tokentest.Mint(t, key, claims)
	q := url.QueryEscape(tok)

	tests := []struct {
		name       string
		path       string
		headers    map[string]string
		wantQuery  []string // query_parameters_to_remove
		wantCookie string   // the cookie header set; "" for none
		wantRemove []string // headers_to_remove
	}{
		{name: "query token twice, in two spellings", path: "/orders?access_token=" + q + "&page=2&ACCESS_TOKEN=x&access%5Ftoken=" + q,
			wantQuery: []string{"access_token", "ACCESS_TOKEN", "access%5Ftoken"}},
		{name: "the token also in another parameter", path: "/orders?state=" + q + "&access_token=" + q,
			wantQuery: []string{"access_token"}},
		{name: "cookie token among others", path: "/orders", headers: map[string]string{"cookie": `theme="dark blue"; at=` + tok + `;  lang=en; at=again`},
			wantCookie: `theme="dark blue"; lang=en`},
		{name: "cookie token alone", path: "/orders", headers: map[string]string{"cookie": "at=" + tok},
			wantRemove: []string{"cookie"}},
		{name: "header token, a forged one in the cookie and the query", path: "/orders?access_token=forged",
			headers:   map[string]string{"authorization": "Bearer " + tok, "cookie": "at=forged; a=1"},
			wantQuery: []string{"access_token"}, wantCookie: "a=1"},
		{name: "a source with strip: false", path: "/orders?kept_token=" + q},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := s.check(t, request("GET", tt.path, tt.headers))
			ok := resp.GetOkResponse()
			if ok == nil {
				t.Fatalf("denied: %s %v", reason(resp), resp.GetDeniedResponse())
			}
			if !slices.Equal(ok.GetQueryParametersToRemove(), tt.wantQuery) {
				t.Errorf("query_parameters_to_remove %q, want %q", ok.GetQueryParametersToRemove(), tt.wantQuery)
			}
			if got := headerValue(resp, false, "cookie"); got != tt.wantCookie {
				t.Errorf("cookie set to %q, want %q", got, tt.wantCookie)
			}
			if !slices.Equal(ok.GetHeadersToRemove(), tt.wantRemove) {
				t.Errorf("headers_to_remove %q, want %q", ok.GetHeadersToRemove(), tt.wantRemove)
			}
		})
	}

	resp := s.check(t, request("GET", "/orders", map[string]string{"Authorization": "Bearer " + tok, "authorization": "Bearer forged"}))
	if d := resp.GetDeniedResponse(); d.GetStatus().GetCode() != 400 || reason(resp) != "bad_request" {
		t.Errorf("two spellings of Authorization: %v, want a 400 bad_request", resp)
	}
}
