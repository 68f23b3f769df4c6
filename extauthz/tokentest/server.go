package tokentest

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Mode selects what the JWKS endpoint of a JWKSServer answers.
type Mode int

const (
	// ServeKeys serves the JWKS.
	ServeKeys Mode = iota
	// ServeGarbage answers 200 with a body that is not JSON.
	ServeGarbage
	// ServeOversized answers 200 with the JWKS padded with whitespace to
	// more than 1 MiB.
	ServeOversized
	// ServeHangup closes the connection without an answer, as a server
	// that crashed mid-request would.
	ServeHangup
)

// Served is one answer of the JWKS endpoint that carried keys.
type Served struct {
	At   time.Time
	KIDs []string // the kid of each key served
}

// faults are the failures a test server can be told to stage; the
// servers embed them.
type faults struct {
	mu    sync.Mutex
	fail  bool
	mode  Mode
	delay time.Duration
}

// Fail makes the server's endpoints answer 500 while fail is true.
func (f *faults) Fail(fail bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = fail
}

// SetMode changes what a JWKSServer's JWKS endpoint, or both of an
// IntrospectionServer's endpoints, answer: garbage (ServeGarbage), an
// oversized body (ServeOversized), or the real answer (ServeKeys); a
// JWKSServer can also hang up (ServeHangup).
func (f *faults) SetMode(m Mode) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mode = m
}

// SetDelay makes the server's endpoints wait d before answering (or until
// the client gives up).
func (f *faults) SetDelay(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.delay = d
}

func (f *faults) get() (fail bool, mode Mode, delay time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fail, f.mode, f.delay
}

// JWKSServer is an issuer stand-in: an HTTP server on the loopback interface
// that serves a JWKS at /jwks.json and the issuer's discovery document,
// both for OpenID Connect (at {issuer}/.well-known/openid-configuration)
// and for RFC 8414 (/.well-known/oauth-authorization-server followed by the
// issuer's path). Its behaviour can be changed while it runs, to stand in
// for a failing or slow issuer. It is closed when the test ends.
type JWKSServer struct {
	// URL is the server's base URL and, unless SetIssuer changes it, the
	// issuer named in the discovery document.
	URL string

	tb  testing.TB
	srv *httptest.Server
	faults

	mu        sync.Mutex
	jwks      []byte
	kids      []string
	served    []Served
	issuer    string
	jwksURI   string
	metadata  map[string]string
	header    http.Header
	etag      string
	allReqs   int
	jwksReqs  int
	discoReqs int
	condReqs  int
	userAgent string
}

// NewJWKSServer starts a server publishing the public halves of keys.
func NewJWKSServer(tb testing.TB, keys ...*Key) *JWKSServer {
	tb.Helper()
	return newJWKSServer(tb, (*httptest.Server).Start, keys)
}

// NewTLSJWKSServer is NewJWKSServer over https, with a certificate that
// clients do not trust unless given WriteCAFile's file.
func NewTLSJWKSServer(tb testing.TB, keys ...*Key) *JWKSServer {
	tb.Helper()
	return newJWKSServer(tb, (*httptest.Server).StartTLS, keys)
}

func newJWKSServer(tb testing.TB, start func(*httptest.Server), keys []*Key) *JWKSServer {
	tb.Helper()
	s := &JWKSServer{tb: tb, jwks: JWKS(tb, keys...), kids: kids(keys), header: http.Header{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /jwks.json", s.serveJWKS)
	mux.HandleFunc("GET /", s.serveDiscovery)
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.allReqs++
		s.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	// Clients that refuse the certificate are what tests look at; the
	// server's complaints about them are noise.
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	start(s.srv)
	tb.Cleanup(s.srv.Close)
	s.URL = s.srv.URL
	s.issuer = s.srv.URL
	return s
}

// JWKSURI returns the URL of the JWKS document.
func (s *JWKSServer) JWKSURI() string { return s.URL + "/jwks.json" }

// WriteCAFile writes the PEM certificate of a server from NewTLSJWKSServer
// to a new file in dir and returns its path.
func (s *JWKSServer) WriteCAFile(dir string) string {
	s.tb.Helper()
	cert := s.srv.Certificate()
	if cert == nil {
		s.tb.Fatal("tokentest: WriteCAFile: not a TLS server")
	}
	path := filepath.Join(dir, "jwks-server-ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		s.tb.Fatalf("tokentest: %v", err)
	}
	return path
}

// SetKeys replaces the published keys.
func (s *JWKSServer) SetKeys(keys ...*Key) {
	s.tb.Helper()
	b := JWKS(s.tb, keys...)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jwks, s.kids = b, kids(keys)
}

func kids(keys []*Key) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.KID
	}
	return out
}

// ServedKeys returns every answer of the JWKS endpoint that carried keys
// (a 200 in ServeKeys mode), oldest first.
func (s *JWKSServer) ServedKeys() []Served {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Served(nil), s.served...)
}

// SetIssuer changes the "issuer" the discovery document names, and so
// where it is served if iss has a path.
func (s *JWKSServer) SetIssuer(iss string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issuer = iss
}

// SetJWKSURI changes the "jwks_uri" the discovery document names; empty
// means JWKSURI().
func (s *JWKSServer) SetJWKSURI(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jwksURI = u
}

// SetMetadata adds member name with value to the discovery document, e.g.
// "introspection_endpoint"; an empty value removes it.
func (s *JWKSServer) SetMetadata(name, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.metadata == nil {
		s.metadata = map[string]string{}
	}
	if value == "" {
		delete(s.metadata, name)
	} else {
		s.metadata[name] = value
	}
}

// SetHeader makes JWKS responses, 304s included, carry the header name
// with value, e.g. "Cache-Control" "max-age=600"; an empty value removes
// it.
func (s *JWKSServer) SetHeader(name, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if value == "" {
		s.header.Del(name)
	} else {
		s.header.Set(name, value)
	}
}

// SetETag makes JWKS responses carry ETag etag (a quoted string, e.g.
// `"v1"`) and answers a request whose If-None-Match names it with 304 Not
// Modified, whatever the keys are. An empty etag turns ETags off.
func (s *JWKSServer) SetETag(etag string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.etag = etag
}

// Requests reports how many JWKS requests the server has received,
// failed ones included.
func (s *JWKSServer) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jwksReqs
}

// AllRequests reports how many requests the server has received, for any
// path: a server standing in for an attacker's must see none.
func (s *JWKSServer) AllRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.allReqs
}

// ConditionalRequests reports how many JWKS requests had an If-None-Match
// header.
func (s *JWKSServer) ConditionalRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.condReqs
}

// UserAgent returns the User-Agent header of the latest JWKS request.
func (s *JWKSServer) UserAgent() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.userAgent
}

// DiscoveryRequests reports how many discovery requests the server has
// received, failed ones included.
func (s *JWKSServer) DiscoveryRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.discoReqs
}

func (s *JWKSServer) serveJWKS(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.jwksReqs++
	inm := r.Header.Get("If-None-Match")
	if inm != "" {
		s.condReqs++
	}
	s.userAgent = r.UserAgent()
	body, kids, etag := s.jwks, s.kids, s.etag
	header := s.header.Clone()
	s.mu.Unlock()
	fail, mode, delay := s.faults.get()

	if !wait(r, delay) {
		return
	}
	if fail {
		http.Error(w, "tokentest: failing on purpose", http.StatusInternalServerError)
		return
	}
	for name, v := range header {
		w.Header()[name] = v
	}
	if etag != "" {
		w.Header().Set("ETag", etag)
		if matches(inm, etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	switch mode {
	case ServeGarbage:
		body = []byte("tokentest: this is not a JWKS")
	case ServeOversized:
		body = append([]byte(`{"keys":`+strings.Repeat(" ", 1<<20)), bytes.TrimPrefix(body, []byte(`{"keys":`))...)
	case ServeHangup:
		hangUp(w)
		return
	}
	if _, err := w.Write(body); err == nil && mode == ServeKeys {
		s.mu.Lock()
		s.served = append(s.served, Served{At: time.Now(), KIDs: kids})
		s.mu.Unlock()
	}
}

// hangUp closes the connection under w without writing anything.
func hangUp(w http.ResponseWriter) {
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		conn.Close()
	}
}

// matches reports whether an If-None-Match header value names etag.
func matches(inm, etag string) bool {
	for t := range strings.SplitSeq(inm, ",") {
		if t = strings.TrimSpace(t); t == etag || t == "*" {
			return true
		}
	}
	return false
}

// wait sleeps d or until the request is abandoned, reporting whether d
// passed.
func wait(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

func (s *JWKSServer) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	var path string
	if u, err := url.Parse(s.issuer); err == nil {
		path = strings.TrimSuffix(u.Path, "/")
	}
	if r.URL.Path != path+"/.well-known/openid-configuration" && r.URL.Path != "/.well-known/oauth-authorization-server"+path {
		s.mu.Unlock()
		http.NotFound(w, r)
		return
	}
	s.discoReqs++
	iss, jwksURI := s.issuer, s.jwksURI
	doc := map[string]string{}
	for k, v := range s.metadata {
		doc[k] = v
	}
	s.mu.Unlock()
	fail, _, delay := s.faults.get()
	if jwksURI == "" {
		jwksURI = s.JWKSURI()
	}

	if !wait(r, delay) {
		return
	}
	if fail {
		http.Error(w, "tokentest: failing on purpose", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	doc["issuer"], doc["jwks_uri"] = iss, jwksURI
	json.NewEncoder(w).Encode(doc)
}
