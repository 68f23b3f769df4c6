package httpserver_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/claimcheck/claimcheck/extauthz"
	"github.com/claimcheck/claimcheck/extauthz/httpserver"
	"github.com/claimcheck/claimcheck/extauthz/reason"
	"github.com/claimcheck/claimcheck/extauthz/tokentest"
	"github.com/claimcheck/claimcheck/policy"
)

// FuzzForwardAuth sends arbitrary forward-auth requests — method, request
// target, header block (X-Original-*, X-Forwarded-*, tokens in the
// Authorization header, query or cookie) and peer address — through the
// real HTTP adapter, Authorizer, token verifier and a Rego policy that
// allows any request with a verified token. The token is optional in the
// configuration, so only the policy requires it. The request bytes are
// parsed by net/http as the server would. Nothing may panic or fail to
// decide (the adapter and the Authorizer turn both into 503
// internal_error, which fails the target); every answer carries a reason;
// and a 200 is only ever the genuine token's, with its verified client_id
// forwarded.
func FuzzForwardAuth(f *testing.F) {
	const iss, aud = "https://id.fuzz.example", "orders-api"
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	key := tokentest.FixedECKey(f, 3, "ec-1", "ES256")
	v := tokentest.NewVerifier(f, iss, aud, now, key)
	dir := f.TempDir()
	rego := "package fa\n\nallow if {\n\tinput.token.issuer == \"" + iss + "\"\n\tis_object(input.request.headers)\n\tis_object(input.attributes)\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "fa.rego"), []byte(rego), 0o644); err != nil {
		f.Fatal(err)
	}
	engine, err := policy.New(context.Background(), policy.Config{Paths: []string{filepath.Join(dir, "fa.rego")}, Decision: "fa/allow"})
	if err != nil {
		f.Fatal(err)
	}
	a, err := extauthz.New(extauthz.Config{
		TokenRequired: false,
		Sources:       []extauthz.TokenSource{{Header: "authorization", Prefix: "Bearer ", Strip: true}, {Query: "access_token", Strip: true}, {Cookie: "at", Strip: true}},
		ForwardClaims: map[string]string{"client_id": "x-client-id"},
	}, v, extauthz.StaticPolicy(engine), nil)
	if err != nil {
		f.Fatal(err)
	}
	handlers := map[bool]http.Handler{
		false: httpserver.NewForwardAuth(a, httpserver.Config{TrustedProxies: trusted}, nil),
		true:  httpserver.NewForwardAuth(a, httpserver.Config{TrustedProxies: trusted, PathPrefix: "/authz"}, nil),
	}

	genuine := tokentest.Mint(f, key, map[string]any{
		"iss": iss, "aud": aud, "sub": "svc", "client_id": "fuzz-client", "jti": "genuine",
		"iat": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
	})
	forged := tokentest.Mint(f, tokentest.FixedECKey(f, 4, "ec-1", "ES256"), map[string]any{"iss": iss, "aud": aud, "client_id": "admin", "exp": now.Add(time.Hour).Unix()})
	auth := "Authorization: Bearer " + genuine + "\r\n"
	for _, s := range []struct {
		method, target, headers, remote string
		prefixed                        bool
	}{
		{"GET", "/orders/1", auth, "203.0.113.9:4000", false},
		{"GET", "/authz/orders?access_token=" + url.QueryEscape(genuine), "", "203.0.113.9:4000", true},
		{"GET", "/auth", "X-Original-URI: /orders?x=1\r\nX-Original-Method: DELETE\r\nX-Forwarded-Host: api.example.com\r\n" + auth, "127.0.0.1:5000", false},
		{"GET", "/", "X-Forwarded-Method: POST\r\nX-Forwarded-Uri: /orders/%2e%2e/admin\r\nX-Forwarded-Proto: wss\r\nX-Forwarded-For: 198.51.100.1, 10.0.0.2\r\n" + auth, "10.1.2.3:1", false},
		{"POST", "/", "X-Forwarded-Method: GET\r\nX-Forwarded-Uri: /\r\nX-Original-URI: /\r\nCookie: a=1; at=" + genuine + "\r\n", "[::1]:80", false},
		{"GET", "/orders", "Authorization: Bearer " + forged + "\r\nX-Client-Id: admin\r\n", "127.0.0.1:1", false},
		{"GET", "/orders", "X-Client-Id: admin\r\nX-Forwarded-Uri: /orders\r\n", "203.0.113.9:4000", false},
		{"GET", "/orders", "Authorization: bearer  " + genuine + " \r\nAuthorization: Bearer x\r\n", "127.0.0.1:1", false},
		{"OPTIONS", "*", auth, "127.0.0.1:1", false},
		{"GET", "http://evil.example/orders", auth, "unix", false},
	} {
		f.Add(s.method, s.target, s.headers, s.remote, s.prefixed)
	}
	for _, at := range tokentest.Attacks(f, tokentest.Target{
		Issuer: iss, Audience: aud, RSA: tokentest.NewRSAKey(f, "rsa-1"), EC: []*tokentest.Key{key},
		Other: tokentest.NewRSAKey(f, "other-1"), AttackerURL: "https://attacker.invalid", Now: now,
	}) {
		f.Add("GET", "/orders", "Authorization: Bearer "+at.Token+"\r\n", "127.0.0.1:1", false)
	}
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9192}
	serve := func(method, target, headers, remote string, prefixed bool) (*httptest.ResponseRecorder, string, bool) {
		raw := method + " " + target + " HTTP/1.1\r\nHost: api.example.com\r\n" + headers + "\r\n\r\n"
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			return nil, raw, false // net/http's server would have refused it
		}
		r.RemoteAddr = remote
		r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, net.Addr(local)))
		w := httptest.NewRecorder()
		handlers[prefixed].ServeHTTP(w, r)
		return w, raw, true
	}
	if w, _, _ := serve("GET", "/orders/1", auth, "203.0.113.9:4000", false); w.Code != http.StatusOK {
		f.Fatalf("the genuine token is denied: %d %s", w.Code, w.Body)
	}

	f.Fuzz(func(t *testing.T, method, target, headers, remote string, prefixed bool) {
		w, raw, ok := serve(method, target, headers, remote, prefixed)
		if !ok {
			return
		}
		code := w.Header().Get(httpserver.HeaderReason)
		if code == "" || code == reason.Internal {
			t.Fatalf("status %d code %q for %q", w.Code, code, raw)
		}
		switch {
		case w.Code == http.StatusOK:
			if ids := w.Header().Values("X-Client-Id"); code != reason.Allowed || len(ids) != 1 || ids[0] != "fuzz-client" {
				t.Fatalf("allowed without the genuine token: code %q, X-Client-Id %q, request %q", code, ids, raw)
			}
		case w.Code < 400 || w.Code > 599:
			t.Fatalf("status %d for %q", w.Code, raw)
		}
	})
}
