// Package issuer is an OAuth 2.0 authorization server for the
// client-credentials grant only: the token issuer of `claimcheck issuer`
// and `claimcheck demo`.
//
// It serves, under the issuer URL's path:
//
//   - /.well-known/openid-configuration and (RFC 8414)
//     /.well-known/oauth-authorization-server{path}: the metadata;
//   - /jwks.json: the public signing keys;
//   - /token: access tokens for authenticated clients (RFC 6749 §4.4), as
//     RFC 9068 JWTs or as opaque random strings, per client;
//   - /introspect: RFC 7662 introspection, for clients allowed to.
//
// Clients authenticate with HTTP Basic (client_secret_basic) or with
// client_id and client_secret in the form body (client_secret_post), never
// both; secrets are held only as bcrypt hashes. Failed authentications are
// rate-limited per client_id and per remote address. Signing keys are
// generated on first start, kept in one file at mode 0600, and rotated
// with an overlap, so a replaced key is published until its last token
// has expired. Tokens, secrets and hashes are never logged.
package issuer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jws"
	"golang.org/x/crypto/bcrypt"

	"github.com/claimcheck/claimcheck/extauthz/token"
)

// Config configures a Server.
type Config struct {
	// Issuer is the issuer identifier (an http or https URL without a
	// trailing slash): the tokens' iss and the base of every endpoint.
	Issuer string
	// KeyDir holds the signing key file, KeyFile.
	KeyDir string
	// Algorithm signs JWTs: RS256, PS256, ES256, ES384, ES512 or EdDSA.
	Algorithm string
	// RotationInterval is the signing key's lifetime; 0 never rotates.
	RotationInterval time.Duration
	// RotationOverlap is how long a replaced key stays published; at least
	// the longest client TTL.
	RotationOverlap time.Duration
	// MaxOpaqueTokens bounds the opaque tokens held in memory.
	MaxOpaqueTokens int
	// FailedAuthBurst failed authentications in a row are answered
	// normally, per client_id and per remote address; then one more every
	// FailedAuthEvery. Beyond that the answer is 429.
	FailedAuthBurst int
	FailedAuthEvery time.Duration
	Clients         []Client
}

// Client is one registered client.
type Client struct {
	ID string
	// SecretHash is the bcrypt hash of the client secret.
	SecretHash string
	// Scopes the client may request; a request without scope gets all.
	Scopes []string
	// Audiences are the tokens' aud.
	Audiences []string
	// Opaque issues opaque tokens instead of JWTs.
	Opaque bool
	// TTL is the tokens' lifetime.
	TTL time.Duration
	// Claims are added to the tokens; registered claims win over them.
	Claims map[string]any
	// Introspect allows calls to the introspection endpoint.
	Introspect bool
	// ClientCredentials allows the client_credentials grant.
	ClientCredentials bool
}

// Option configures a Server.
type Option func(*Server)

// WithClock sets the clock for token times, rotation and rate limits.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// Server is the authorization server; it is an http.Handler.
type Server struct {
	issuer    string
	clients   map[string]*client
	ring      *keyRing
	opaque    *opaqueStore
	failures  *failureLimiter
	verifier  *token.Verifier // checks our own JWTs for introspection
	dummyHash []byte
	metadata  []byte
	mux       *http.ServeMux
	now       func() time.Time
	log       *slog.Logger
}

// client is a Client with its hash decoded.
type client struct {
	Client
	secretHash []byte
}

// maxTrackedKeys bounds the failure buckets (client_ids and addresses).
const maxTrackedKeys = 10_000

// maxFormBytes bounds a token or introspection request body.
const maxFormBytes = 64 << 10

// New opens (or creates) the signing keys in cfg.KeyDir and returns the
// server.
func New(cfg Config, opts ...Option) (*Server, error) {
	s := &Server{issuer: cfg.Issuer, clients: map[string]*client{}, now: time.Now, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(s)
	}
	u, err := url.Parse(cfg.Issuer)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || strings.HasSuffix(u.Path, "/") {
		return nil, fmt.Errorf("issuer: %q is not an http(s) URL without a trailing slash", cfg.Issuer)
	}
	if len(cfg.Clients) == 0 {
		return nil, errors.New("issuer: no clients")
	}
	if cfg.FailedAuthBurst < 1 || cfg.FailedAuthEvery <= 0 || cfg.MaxOpaqueTokens < 1 {
		return nil, errors.New("issuer: failed-authentication limit and opaque token bound must be positive")
	}
	audiences := map[string]bool{}
	var scopes []string
	maxCost, maxTTL := bcrypt.MinCost, time.Duration(0)
	for _, c := range cfg.Clients {
		if _, dup := s.clients[c.ID]; dup || c.ID == "" {
			return nil, fmt.Errorf("issuer: client %q is empty or configured twice", c.ID)
		}
		cost, err := bcrypt.Cost([]byte(c.SecretHash))
		if err != nil {
			return nil, fmt.Errorf("issuer: client %s: secret hash: %w", c.ID, err)
		}
		if c.ClientCredentials && (len(c.Audiences) == 0 || c.TTL <= 0) {
			return nil, fmt.Errorf("issuer: client %s: tokens need an audience and a positive TTL", c.ID)
		}
		maxCost, maxTTL = max(maxCost, cost), max(maxTTL, c.TTL)
		for _, a := range c.Audiences {
			audiences[a] = true
		}
		for _, sc := range c.Scopes {
			if !slices.Contains(scopes, sc) {
				scopes = append(scopes, sc)
			}
		}
		s.clients[c.ID] = &client{Client: c, secretHash: []byte(c.SecretHash)}
	}
	if cfg.RotationOverlap < maxTTL {
		return nil, fmt.Errorf("issuer: rotation overlap %s is shorter than the longest token TTL %s", cfg.RotationOverlap, maxTTL)
	}
	// An unknown client_id is checked against this, at the cost of the
	// dearest real hash, so it takes as long as a known one.
	if s.dummyHash, err = bcrypt.GenerateFromPassword([]byte("no such client"), maxCost); err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	if s.ring, err = openKeyRing(cfg.KeyDir, cfg.Algorithm, cfg.RotationInterval, cfg.RotationOverlap, s.log); err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	if _, err := s.ring.signer(s.now()); err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	if len(audiences) > 0 {
		auds := make([]string, 0, len(audiences))
		for a := range audiences {
			auds = append(auds, a)
		}
		s.verifier, err = token.NewVerifier([]token.Issuer{{Issuer: cfg.Issuer, Audiences: auds, Keys: ringKeys{s.ring, s.now}}},
			token.WithClock(s.now))
		if err != nil {
			return nil, fmt.Errorf("issuer: %w", err)
		}
	}
	s.opaque = newOpaqueStore(cfg.MaxOpaqueTokens)
	s.failures = newFailureLimiter(cfg.FailedAuthEvery, cfg.FailedAuthBurst, maxTrackedKeys+len(cfg.Clients))
	slices.Sort(scopes)
	if s.metadata, err = json.Marshal(s.metadataDoc(scopes)); err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}

	path := u.EscapedPath()
	s.mux = http.NewServeMux()
	s.mux.HandleFunc(path+"/.well-known/openid-configuration", s.serveMetadata)
	s.mux.HandleFunc("/.well-known/oauth-authorization-server"+path, s.serveMetadata)
	s.mux.HandleFunc(path+"/jwks.json", s.serveJWKS)
	s.mux.HandleFunc(path+"/token", s.serveToken)
	s.mux.HandleFunc(path+"/introspect", s.serveIntrospect)
	return s, nil
}

// Endpoint paths, relative to the issuer URL.
const (
	TokenPath      = "/token"
	JWKSPath       = "/jwks.json"
	IntrospectPath = "/introspect"
)

func (s *Server) metadataDoc(scopes []string) map[string]any {
	methods := []string{authBasic, authPost}
	doc := map[string]any{
		"issuer":                                s.issuer,
		"token_endpoint":                        s.issuer + TokenPath,
		"jwks_uri":                              s.issuer + JWKSPath,
		"introspection_endpoint":                s.issuer + IntrospectPath,
		"grant_types_supported":                 []string{"client_credentials"},
		"response_types_supported":              []string{},
		"token_endpoint_auth_methods_supported": methods,
		"introspection_endpoint_auth_methods_supported": methods,
	}
	if len(scopes) > 0 {
		doc["scopes_supported"] = scopes
	}
	return doc
}

// ServeHTTP serves the issuer's endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) serveMetadata(w http.ResponseWriter, r *http.Request) {
	if !getOnly(w, r) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Write(s.metadata)
}

// jwksMaxAge lets verifiers cache the JWKS briefly; a verifier that meets
// a new kid refetches at once (claimcheck does).
const jwksMaxAge = 5 * time.Minute

func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request) {
	if !getOnly(w, r) {
		return
	}
	set, err := s.ring.jwks(s.now())
	if err != nil {
		s.log.Error("jwks", "err", err)
		http.Error(w, "signing keys unavailable", http.StatusServiceUnavailable)
		return
	}
	b, err := json.Marshal(set)
	if err != nil {
		s.log.Error("jwks", "err", err)
		http.Error(w, "signing keys unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(int(jwksMaxAge.Seconds())))
	w.Write(b)
}

func getOnly(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

// serveToken answers the client-credentials grant (RFC 6749 §4.4).
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	form, oerr := readForm(w, r)
	if oerr == nil && form.Get("grant_type") == "" {
		oerr = &oauthError{status: http.StatusBadRequest, code: "invalid_request", desc: "grant_type is required"}
	}
	var c *client
	if oerr == nil {
		c, oerr = s.authenticate(r, form)
	}
	if oerr == nil {
		oerr = grantAllowed(c, form.Get("grant_type"))
	}
	var scopes []string
	if oerr == nil {
		scopes, oerr = grantedScopes(c, form.Get("scope"))
	}
	if oerr != nil {
		oerr.write(w)
		return
	}
	resp, err := s.issue(c, scopes)
	if err != nil {
		s.log.Error("token not issued", "client_id", c.ID, "err", err)
		(&oauthError{status: http.StatusInternalServerError, code: "server_error", desc: "the token could not be issued"}).write(w)
		return
	}
	noStore(w)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

func grantAllowed(c *client, grant string) *oauthError {
	if grant != "client_credentials" {
		return &oauthError{status: http.StatusBadRequest, code: "unsupported_grant_type",
			desc: fmt.Sprintf("only client_credentials is supported, not %q", clip(grant))}
	}
	if !c.ClientCredentials {
		return &oauthError{status: http.StatusBadRequest, code: "unauthorized_client",
			desc: "this client may not use the client_credentials grant"}
	}
	return nil
}

// grantedScopes checks the requested scope against the client's; none
// requested means all of the client's.
func grantedScopes(c *client, requested string) ([]string, *oauthError) {
	if strings.TrimSpace(requested) == "" {
		return c.Scopes, nil
	}
	var out []string
	for _, sc := range strings.Split(requested, " ") {
		switch {
		case sc == "" || slices.Contains(out, sc):
		case !slices.Contains(c.Scopes, sc):
			return nil, &oauthError{status: http.StatusBadRequest, code: "invalid_scope",
				desc: fmt.Sprintf("scope %q is not allowed for this client", clip(sc))}
		default:
			out = append(out, sc)
		}
	}
	return out, nil
}

// tokenResponse is RFC 6749 §5.1's successful answer.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}

// issue mints a token for c with scopes: a JWT (RFC 9068) or an opaque one.
func (s *Server) issue(c *client, scopes []string) (*tokenResponse, error) {
	now := s.now()
	iat := now.Unix()
	exp := time.Unix(iat, 0).Add(c.TTL)
	claims := make(map[string]any, len(c.Claims)+8)
	for k, v := range c.Claims {
		claims[k] = v
	}
	claims["iss"] = s.issuer
	claims["sub"] = c.ID
	claims["client_id"] = c.ID
	if len(c.Audiences) == 1 {
		claims["aud"] = c.Audiences[0]
	} else {
		claims["aud"] = c.Audiences
	}
	claims["iat"] = iat
	claims["exp"] = exp.Unix()
	claims["jti"] = newJTI()
	scope := strings.Join(scopes, " ")
	if scope != "" {
		claims["scope"] = scope
	}

	var tok, format string
	if c.Opaque {
		format = "opaque"
		tok = s.opaque.issue(claims, exp, now)
	} else {
		format = "jwt"
		var err error
		if tok, err = s.sign(claims, now); err != nil {
			return nil, err
		}
	}
	s.log.Info("token issued", "client_id", c.ID, "format", format, "scope", scope, "jti", claims["jti"], "exp", exp.UTC())
	return &tokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int64(c.TTL / time.Second), Scope: scope}, nil
}

// sign makes an RFC 9068 JWT of claims with the current signing key.
func (s *Server) sign(claims map[string]any, now time.Time) (string, error) {
	k, err := s.ring.signer(now)
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("claims: %w", err)
	}
	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.TypeKey, "at+jwt"); err != nil {
		return "", err
	}
	if err := hdr.Set(jws.KeyIDKey, k.kid); err != nil {
		return "", err
	}
	b, err := jws.Sign(payload, jws.WithKey(k.alg, k.private, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return "", fmt.Errorf("sign with %s: %w", k.kid, err)
	}
	return string(b), nil
}

// serveIntrospect answers RFC 7662 introspection requests from clients
// allowed to make them.
func (s *Server) serveIntrospect(w http.ResponseWriter, r *http.Request) {
	form, oerr := readForm(w, r)
	var c *client
	if oerr == nil {
		c, oerr = s.authenticate(r, form)
	}
	if oerr == nil && !c.Introspect {
		oerr = &oauthError{status: http.StatusForbidden, code: "unauthorized_client", desc: "this client may not introspect tokens"}
	}
	if oerr == nil && form.Get("token") == "" {
		oerr = &oauthError{status: http.StatusBadRequest, code: "invalid_request", desc: "token is required"}
	}
	if oerr != nil {
		oerr.write(w)
		return
	}
	resp := map[string]any{"active": false}
	if claims := s.introspect(r.Context(), form.Get("token")); claims != nil {
		for k, v := range claims {
			resp[k] = v
		}
		resp["active"] = true
		resp["token_type"] = "Bearer"
	}
	noStore(w)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

// introspect returns the claims of an active token this issuer issued, or
// nil: JWTs are checked by claimcheck's own verifier against the published
// keys, opaque tokens looked up by hash.
func (s *Server) introspect(ctx context.Context, tok string) map[string]any {
	now := s.now()
	if strings.Count(tok, ".") != 2 {
		return s.opaque.lookup(tok, now)
	}
	if s.verifier == nil {
		return nil
	}
	t, err := s.verifier.Verify(ctx, tok)
	if err != nil {
		return nil
	}
	return t.Claims
}

// readForm reads a POSTed application/x-www-form-urlencoded body. Client
// secrets in the URL and repeated parameters are refused (RFC 6749 §2.3.1,
// §3.2).
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, *oauthError) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		return nil, &oauthError{status: http.StatusMethodNotAllowed, code: "invalid_request", desc: "use POST"}
	}
	if r.URL.Query().Has("client_secret") {
		return nil, &oauthError{status: http.StatusBadRequest, code: "invalid_request",
			desc: "client credentials must not be sent in the URL; use HTTP Basic or the form body"}
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, &oauthError{status: http.StatusBadRequest, code: "invalid_request",
			desc: "the body must be application/x-www-form-urlencoded"}
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return nil, &oauthError{status: http.StatusBadRequest, code: "invalid_request", desc: "the form body could not be read"}
	}
	for name, vs := range r.PostForm {
		if len(vs) > 1 {
			return nil, &oauthError{status: http.StatusBadRequest, code: "invalid_request",
				desc: fmt.Sprintf("parameter %q is given more than once", clip(name))}
		}
	}
	return r.PostForm, nil
}

func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
}

// oauthError is an RFC 6749 §5.2 error answer.
type oauthError struct {
	status     int
	code       string
	desc       string
	challenge  bool          // add WWW-Authenticate: Basic (client_secret_basic)
	retryAfter time.Duration // add Retry-After
}

func (e *oauthError) write(w http.ResponseWriter) {
	noStore(w)
	if e.challenge {
		w.Header().Set("WWW-Authenticate", `Basic realm="claimcheck-issuer", charset="UTF-8"`)
	}
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.retryAfter+time.Second-1)/time.Second)))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	json.NewEncoder(w).Encode(map[string]string{"error": e.code, "error_description": e.desc})
}
