package tokentest

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// ClientAuth is how a client authenticated at an IntrospectionServer.
type ClientAuth struct {
	// Method is "client_secret_basic" or "client_secret_post".
	Method string
	// Username and Password are the Basic credentials exactly as sent,
	// still form-urlencoded (RFC 6749 §2.3.1); empty for client_secret_post.
	Username, Password string
	// ClientID and Secret are the decoded credentials, by either method.
	ClientID, Secret string
}

// IntrospectionServer is an issuer's RFC 7662 introspection endpoint (at
// /introspect) and OpenID Connect userinfo endpoint (at /userinfo), on the
// loopback interface. Introspection requires client authentication as the
// client it was made with, by client_secret_basic or client_secret_post
// (never both); it answers {"active": true, …} with the claims given to
// SetActive, or whatever SetAnswer (or, byte for byte, SetRawAnswer) gave,
// and {"active": false} for any other token. Userinfo answers a bearer token
// given to SetUserinfo (or SetRawUserinfo), and 401 for any other. Its behaviour can be changed while it runs, to stand in for a
// failing or slow issuer. It is closed when the test ends.
type IntrospectionServer struct {
	// URL is the server's base URL.
	URL string

	tb       testing.TB
	srv      *httptest.Server
	clientID string
	secret   string
	faults

	mu           sync.Mutex
	answers      map[string]map[string]any
	userinfo     map[string]map[string]any
	raw          map[string]string // introspection bodies, by token
	rawUserinfo  map[string]string // userinfo bodies, by token
	gate         chan struct{}     // while non-nil, requests wait for it to close
	requests     int
	infoRequests int
	lastAuth     ClientAuth
}

// NewIntrospectionServer starts a server that accepts the client clientID
// with secret.
func NewIntrospectionServer(tb testing.TB, clientID, secret string) *IntrospectionServer {
	tb.Helper()
	s := &IntrospectionServer{
		tb: tb, clientID: clientID, secret: secret,
		answers: map[string]map[string]any{}, userinfo: map[string]map[string]any{},
		raw: map[string]string{}, rawUserinfo: map[string]string{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /introspect", s.serveIntrospection)
	mux.HandleFunc("GET /userinfo", s.serveUserinfo)
	s.srv = httptest.NewUnstartedServer(mux)
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.Start()
	tb.Cleanup(s.srv.Close)
	s.URL = s.srv.URL
	return s
}

// IntrospectionEndpoint returns the introspection endpoint's URL.
func (s *IntrospectionServer) IntrospectionEndpoint() string { return s.URL + "/introspect" }

// UserinfoEndpoint returns the userinfo endpoint's URL.
func (s *IntrospectionServer) UserinfoEndpoint() string { return s.URL + "/userinfo" }

// SetActive makes introspection answer {"active": true} plus claims for
// tok.
func (s *IntrospectionServer) SetActive(tok string, claims map[string]any) {
	answer := map[string]any{"active": true}
	for k, v := range claims {
		answer[k] = v
	}
	s.SetAnswer(tok, answer)
}

// SetAnswer makes introspection answer exactly answer for tok; nil forgets
// tok, which is then inactive.
func (s *IntrospectionServer) SetAnswer(tok string, answer map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if answer == nil {
		delete(s.answers, tok)
		return
	}
	s.answers[tok] = answer
}

// SetRawAnswer makes introspection answer body, as it is, for tok: JSON
// no encoder writes, such as a repeated member name.
func (s *IntrospectionServer) SetRawAnswer(tok, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.raw[tok] = body
}

// SetRawUserinfo makes userinfo answer body, as it is, for the bearer token
// tok.
func (s *IntrospectionServer) SetRawUserinfo(tok, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rawUserinfo[tok] = body
}

// SetUserinfo makes userinfo answer info for the bearer token tok; nil
// forgets tok, which is then refused with 401.
func (s *IntrospectionServer) SetUserinfo(tok string, info map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if info == nil {
		delete(s.userinfo, tok)
		return
	}
	s.userinfo[tok] = info
}

// Hold makes requests wait (after being counted) until the returned
// function is called, or the client gives up.
func (s *IntrospectionServer) Hold() (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	gate := make(chan struct{})
	s.gate = gate
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			if s.gate == gate {
				s.gate = nil
			}
			s.mu.Unlock()
			close(gate)
		})
	}
}

// Requests reports how many introspection requests the server has
// received, failed ones included.
func (s *IntrospectionServer) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// UserinfoRequests reports how many userinfo requests the server has
// received, failed ones included.
func (s *IntrospectionServer) UserinfoRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.infoRequests
}

// LastAuth returns how the latest introspection request authenticated.
func (s *IntrospectionServer) LastAuth() ClientAuth {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastAuth
}

// begin counts a request and returns what to do with it; ok is false when
// the client gave up waiting.
func (s *IntrospectionServer) begin(r *http.Request, count *int) (fail bool, mode Mode, ok bool) {
	s.mu.Lock()
	*count++
	gate := s.gate
	s.mu.Unlock()
	fail, mode, delay := s.faults.get()
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return false, 0, false
		}
	}
	return fail, mode, wait(r, delay)
}

// write answers v as JSON, or as mode says.
func write(w http.ResponseWriter, mode Mode, v any) {
	w.Header().Set("Content-Type", "application/json")
	switch mode {
	case ServeGarbage:
		io.WriteString(w, "tokentest: this is not JSON")
	case ServeOversized:
		io.WriteString(w, `{"active":true,"pad":"`+strings.Repeat("x", 1<<20)+`"}`)
	default:
		json.NewEncoder(w).Encode(v)
	}
}

// writeRaw answers body as JSON, as it is.
func writeRaw(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, body)
}

func (s *IntrospectionServer) serveIntrospection(w http.ResponseWriter, r *http.Request) {
	// Reading the body first lets the server notice a client that gives up.
	formErr := r.ParseForm()
	fail, mode, ok := s.begin(r, &s.requests)
	if !ok {
		return
	}
	if fail {
		http.Error(w, "tokentest: failing on purpose", http.StatusInternalServerError)
		return
	}
	if formErr != nil {
		w.WriteHeader(http.StatusBadRequest)
		write(w, ServeKeys, map[string]string{"error": "invalid_request"})
		return
	}
	auth, ok := clientAuth(r)
	s.mu.Lock()
	s.lastAuth = auth
	answer, active := s.answers[r.PostForm.Get("token")]
	raw, isRaw := s.raw[r.PostForm.Get("token")]
	s.mu.Unlock()
	switch {
	case !ok:
		w.WriteHeader(http.StatusBadRequest)
		write(w, ServeKeys, map[string]string{"error": "invalid_request", "error_description": "one client authentication method"})
		return
	case auth.ClientID != s.clientID || auth.Secret != s.secret:
		w.Header().Set("WWW-Authenticate", `Basic realm="tokentest"`)
		w.WriteHeader(http.StatusUnauthorized)
		write(w, ServeKeys, map[string]string{"error": "invalid_client"})
		return
	case isRaw:
		writeRaw(w, raw)
		return
	case !active:
		answer = map[string]any{"active": false}
	}
	write(w, mode, answer)
}

// clientAuth reads the client's credentials; ok is false when it used no
// method or both.
func clientAuth(r *http.Request) (ClientAuth, bool) {
	user, pass, basic := r.BasicAuth()
	_, post := r.PostForm["client_secret"]
	if basic == post {
		return ClientAuth{}, false
	}
	if post {
		return ClientAuth{Method: "client_secret_post", ClientID: r.PostForm.Get("client_id"), Secret: r.PostForm.Get("client_secret")}, true
	}
	a := ClientAuth{Method: "client_secret_basic", Username: user, Password: pass}
	var err1, err2 error
	a.ClientID, err1 = url.QueryUnescape(user)
	a.Secret, err2 = url.QueryUnescape(pass)
	return a, err1 == nil && err2 == nil
}

func (s *IntrospectionServer) serveUserinfo(w http.ResponseWriter, r *http.Request) {
	fail, mode, ok := s.begin(r, &s.infoRequests)
	if !ok {
		return
	}
	if fail {
		http.Error(w, "tokentest: failing on purpose", http.StatusInternalServerError)
		return
	}
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	info, known := s.userinfo[tok]
	raw, isRaw := s.rawUserinfo[tok]
	s.mu.Unlock()
	if isRaw {
		writeRaw(w, raw)
		return
	}
	if !known {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	write(w, mode, info)
}
