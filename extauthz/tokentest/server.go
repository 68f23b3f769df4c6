package tokentest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// JWKSServer is an issuer stand-in: an HTTP server on the loopback interface
// that serves a JWKS at /jwks.json and an OpenID Connect discovery document
// at /.well-known/openid-configuration. It is closed when the test ends.
type JWKSServer struct {
	// URL is the server's base URL and, unless SetIssuer changes it, the
	// issuer named in the discovery document.
	URL string

	tb        testing.TB
	mu        sync.Mutex
	jwks      []byte
	issuer    string
	fail      bool
	jwksReqs  int
	discoReqs int
}

// NewJWKSServer starts a server publishing the public halves of keys.
func NewJWKSServer(tb testing.TB, keys ...*Key) *JWKSServer {
	tb.Helper()
	s := &JWKSServer{tb: tb, jwks: JWKS(tb, keys...)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /jwks.json", s.serveJWKS)
	mux.HandleFunc("GET /.well-known/openid-configuration", s.serveDiscovery)
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	s.URL = srv.URL
	s.issuer = srv.URL
	return s
}

// JWKSURI returns the URL of the JWKS document.
func (s *JWKSServer) JWKSURI() string { return s.URL + "/jwks.json" }

// SetKeys replaces the published keys.
func (s *JWKSServer) SetKeys(keys ...*Key) {
	s.tb.Helper()
	b := JWKS(s.tb, keys...)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jwks = b
}

// SetIssuer changes the "issuer" the discovery document names.
func (s *JWKSServer) SetIssuer(iss string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issuer = iss
}

// Fail makes both endpoints answer 500 while fail is true.
func (s *JWKSServer) Fail(fail bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = fail
}

// Requests reports how many JWKS requests the server has received,
// failed ones included.
func (s *JWKSServer) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jwksReqs
}

// DiscoveryRequests reports how many discovery requests the server has
// received, failed ones included.
func (s *JWKSServer) DiscoveryRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.discoReqs
}

func (s *JWKSServer) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	s.jwksReqs++
	fail, body := s.fail, s.jwks
	s.mu.Unlock()
	if fail {
		http.Error(w, "tokentest: failing on purpose", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Write(body)
}

func (s *JWKSServer) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	s.discoReqs++
	fail, iss := s.fail, s.issuer
	s.mu.Unlock()
	if fail {
		http.Error(w, "tokentest: failing on purpose", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{
		"issuer":   iss,
		"jwks_uri": s.JWKSURI(),
	})
}
