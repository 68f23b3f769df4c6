package policy

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

const (
	bundlePath     = "/bundles/authz.tar.gz"
	bundleDecision = "claimcheck/authz/decision"
)

// bundleServer is an OPA-compatible bundle server for one bundle, with
// ETags: it answers 304 to a request naming the current ETag, and 404
// until a bundle is set.
type bundleServer struct {
	mu          sync.Mutex
	body        []byte
	etag        string
	notModified int
}

func newBundleServer(t *testing.T) (*bundleServer, *httptest.Server) {
	s := &bundleServer{}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

// set serves body from now on, with an ETag derived from it.
func (s *bundleServer) set(body []byte) {
	sum := sha256.Sum256(body)
	s.setWithETag(body, `"`+hex.EncodeToString(sum[:8])+`"`)
}

func (s *bundleServer) setWithETag(body []byte, etag string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body, s.etag = body, etag
}

func (s *bundleServer) notModifiedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.notModified
}

func (s *bundleServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Method != http.MethodGet || r.URL.Path != bundlePath || s.body == nil {
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("If-None-Match") == s.etag {
		s.notModified++
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("ETag", s.etag)
	w.Header().Set("Content-Type", "application/gzip")
	w.Write(s.body)
}

// testBundle describes a bundle to build.
type testBundle struct {
	revision string
	modules  map[string]string // path => source
	data     map[string]any
	sign     func(*bundle.Bundle) error
	tamper   func(*bundle.Bundle) // after signing
}

// build writes the bundle as a .tar.gz with OPA's bundle writer.
func (tb testBundle) build(t *testing.T) []byte {
	t.Helper()
	b := bundle.Bundle{Manifest: bundle.Manifest{Revision: tb.revision}, Data: tb.data}
	if b.Data == nil {
		b.Data = map[string]any{}
	}
	for path, src := range tb.modules {
		b.Modules = append(b.Modules, bundle.ModuleFile{URL: "/" + path, Path: "/" + path, Raw: []byte(src)})
	}
	if tb.sign != nil {
		if err := tb.sign(&b); err != nil {
			t.Fatalf("signing the bundle: %v", err)
		}
	}
	if tb.tamper != nil {
		tb.tamper(&b)
	}
	var buf bytes.Buffer
	if err := bundle.Write(&buf, b); err != nil {
		t.Fatalf("writing the bundle: %v", err)
	}
	return buf.Bytes()
}

// clientsPolicy allows the clients listed in data.claimcheck.clients.
const clientsPolicy = `package claimcheck.authz

default decision := false

decision if input.client in data.claimcheck.clients
`

func clientsBundle(revision string, clients ...string) testBundle {
	return testBundle{
		revision: revision,
		modules:  map[string]string{"claimcheck/authz.rego": clientsPolicy},
		data:     map[string]any{"claimcheck": map[string]any{"clients": clients}},
	}
}

func (r *reloads) counts() (activations, failures int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.revs), len(r.errs)
}

func (r *reloads) lastError() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) == 0 {
		return nil
	}
	return r.errs[len(r.errs)-1]
}

// newTestBundle starts a Bundle polling srv every second.
func newTestBundle(t *testing.T, srv *httptest.Server, cfg BundleConfig, opts ...Option) *Bundle {
	t.Helper()
	cfg.URL = srv.URL
	cfg.Resource = bundlePath
	cfg.Decision = bundleDecision
	cfg.MinDelay, cfg.MaxDelay = time.Second, time.Second
	b, err := NewBundle(t.Context(), cfg, opts...)
	if err != nil {
		t.Fatalf("NewBundle: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// allows evaluates the decision for client on e.
func allows(t *testing.T, e *Engine, client string) bool {
	t.Helper()
	res, err := e.EvalInterface(t.Context(), map[string]any{"client": client})
	if err != nil {
		t.Fatalf("Eval for client %q: %v", client, err)
	}
	return res.Allowed
}

func TestBundleActivatesAndReplacesEngine(t *testing.T) {
	srv, hs := newBundleServer(t)
	var reports reloads
	var logs tokentest.SyncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b := newTestBundle(t, hs, BundleConfig{}, OnReload(reports.record), WithLogger(logger))

	if b.Engine() != nil || b.Ready() || b.Revision() != "" {
		t.Fatalf("before any bundle: Engine %v, Ready %v, Revision %q; want nil, false, empty", b.Engine(), b.Ready(), b.Revision())
	}

	srv.set(clientsBundle("v1", "alice").build(t))
	eventually(t, "the first bundle is activated", b.Ready)
	first := b.Engine()
	if got := b.Revision(); got != "v1" {
		t.Errorf("Revision = %q, want v1", got)
	}
	if got := first.Revision(); got != "v1" {
		t.Errorf("Engine().Revision() = %q, want v1", got)
	}
	if !allows(t, first, "alice") || allows(t, first, "bob") {
		t.Error("v1 engine: want alice allowed, bob denied")
	}

	// Unchanged bundle: OPA's plugin asks with If-None-Match, gets 304, and
	// the Engine stays.
	eventually(t, "a conditional request is answered 304", func() bool { return srv.notModifiedCount() > 0 })
	if b.Engine() != first {
		t.Error("Engine replaced by a 304")
	}

	srv.set(clientsBundle("v2", "bob").build(t))
	eventually(t, "the second bundle is activated", func() bool { return b.Revision() == "v2" })
	second := b.Engine()
	if !allows(t, second, "bob") || allows(t, second, "alice") {
		t.Error("v2 engine: want bob allowed, alice denied")
	}
	// The replaced Engine still evaluates with its own bundle's data.
	if !allows(t, first, "alice") || allows(t, first, "bob") {
		t.Error("v1 engine after the swap: want alice allowed, bob denied")
	}
	// Failures were reported too: the 404s before the first bundle.
	reports.mu.Lock()
	revs := reports.revs
	reports.mu.Unlock()
	if want := []string{"v1", "v2"}; !slices.Equal(revs, want) {
		t.Errorf("OnReload reported activations %q, want %q", revs, want)
	}
	for _, want := range []string{"policy bundle activated", "Bundle loaded and activated successfully"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

func TestBundleRevisionWithoutManifestRevision(t *testing.T) {
	srv, hs := newBundleServer(t)
	var reports reloads
	b := newTestBundle(t, hs, BundleConfig{}, OnReload(reports.record))

	body := clientsBundle("", "alice").build(t)
	srv.set(body)
	eventually(t, "the bundle is activated", b.Ready)
	rev := b.Revision()
	if !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(rev) {
		t.Fatalf("Revision = %q, want 12 hex digits", rev)
	}

	// The same policy and data again, in a bundle with another ETag: OPA's
	// records (ETag) change, the revision does not.
	srv.setWithETag(body, `"another"`)
	eventually(t, "the bundle is activated again", func() bool { act, _ := reports.counts(); return act == 2 })
	if got := b.Revision(); got != rev {
		t.Errorf("Revision after re-activating the same content = %q, want %q", got, rev)
	}

	srv.set(clientsBundle("", "bob").build(t))
	eventually(t, "the changed bundle is activated", func() bool { act, _ := reports.counts(); return act == 3 })
	if got := b.Revision(); got == rev {
		t.Errorf("Revision after a data change = %q, want another", got)
	}
}

func TestBundleKeepsEngineWhenBundleIsRefused(t *testing.T) {
	tests := []struct {
		name    string
		body    func(t *testing.T) []byte
		wantErr string
	}{
		{
			name: "syntax error",
			body: func(t *testing.T) []byte {
				return testBundle{revision: "bad", modules: map[string]string{"x.rego": "package claimcheck.authz\n\ndecision if {"}}.build(t)
			},
			wantErr: "rego_parse_error",
		},
		{
			name: "compile error",
			body: func(t *testing.T) []byte {
				return testBundle{revision: "bad", modules: map[string]string{"x.rego": "package claimcheck.authz\n\ndecision if nope(input)\n"}}.build(t)
			},
			wantErr: "undefined function nope",
		},
		{
			name: "decision rule missing",
			body: func(t *testing.T) []byte {
				return testBundle{revision: "bad", modules: map[string]string{"x.rego": "package claimcheck.authz\n\nother := true\n"}}.build(t)
			},
			wantErr: "not defined",
		},
		{
			name: "http.send",
			body: func(t *testing.T) []byte {
				return testBundle{revision: "bad", modules: map[string]string{"x.rego": `package claimcheck.authz

decision if http.send({"method": "GET", "url": "http://127.0.0.1:1/"}).status_code == 200
`}}.build(t)
			},
			wantErr: "http.send is disabled",
		},
		{
			name: "net.lookup_ip_addr",
			body: func(t *testing.T) []byte {
				return testBundle{revision: "bad", modules: map[string]string{"x.rego": `package claimcheck.authz

decision if count(net.lookup_ip_addr("example.com")) > 0
`}}.build(t)
			},
			wantErr: "net.lookup_ip_addr is disabled",
		},
		{
			name:    "not a bundle",
			body:    func(*testing.T) []byte { return []byte("this is not a tarball") },
			wantErr: "gzip",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, hs := newBundleServer(t)
			srv.set(clientsBundle("v1", "alice").build(t))
			var reports reloads
			b := newTestBundle(t, hs, BundleConfig{}, OnReload(reports.record))
			eventually(t, "the good bundle is activated", b.Ready)
			good := b.Engine()

			srv.set(tt.body(t))
			eventually(t, "the bad bundle is refused", func() bool { _, fail := reports.counts(); return fail > 0 })
			err := reports.lastError()
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("reported error %q, want it to contain %q", err, tt.wantErr)
			}
			t.Logf("refused: %v", err)
			if b.Engine() != good || b.Revision() != "v1" {
				t.Errorf("after a refused bundle: revision %q, want the v1 Engine kept", b.Revision())
			}
			if !allows(t, b.Engine(), "alice") {
				t.Error("the kept Engine no longer allows alice")
			}
		})
	}
}

// pemFile writes a PEM block to a new file and returns its path.
func pemFile(t *testing.T, blockType string, der []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// signingKey is a key pair in the PEM forms OPA's signing and this
// package's configuration use.
type signingKey struct {
	alg        string
	privatePEM string
	publicFile string
}

func newSigningKey(t *testing.T, alg string) signingKey {
	t.Helper()
	var priv any
	var err error
	switch alg {
	case "RS256", "PS384":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		t.Fatalf("no key for %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(priv.(crypto.Signer).Public())
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{
		alg:        alg,
		privatePEM: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})),
		publicFile: pemFile(t, "PUBLIC KEY", pubDER),
	}
}

// signer signs a bundle the way "opa sign" does, naming kid.
func (k signingKey) signer(kid string) func(*bundle.Bundle) error {
	return func(b *bundle.Bundle) error {
		return b.GenerateSignature(bundle.NewSigningConfig(k.privatePEM, k.alg, ""), kid, true)
	}
}

func TestBundleSignatures(t *testing.T) {
	rsaKey := newSigningKey(t, "RS256")
	psKey := newSigningKey(t, "PS384")
	ecKey := newSigningKey(t, "ES256")
	otherKey := newSigningKey(t, "RS256")

	signed := func(k signingKey) testBundle {
		tb := clientsBundle("signed", "alice")
		tb.sign = k.signer("any-kid")
		return tb
	}
	tampered := signed(rsaKey)
	tampered.tamper = func(b *bundle.Bundle) {
		b.Modules[0].Raw = []byte(strings.Replace(clientsPolicy, "default decision := false", "default decision := true", 1))
	}

	tests := []struct {
		name    string
		cfg     BundleConfig
		bundle  testBundle
		wantErr string // "" for a bundle that activates
	}{
		{"RSA signature", BundleConfig{PublicKeyFile: rsaKey.publicFile}, signed(rsaKey), ""},
		{"RSA signature with key id", BundleConfig{PublicKeyFile: rsaKey.publicFile, KeyID: "global_key"}, signed(rsaKey), ""},
		{"RSA-PSS signature", BundleConfig{PublicKeyFile: psKey.publicFile, Algorithm: "PS384"}, signed(psKey), ""},
		{"ECDSA signature", BundleConfig{PublicKeyFile: ecKey.publicFile}, signed(ecKey), ""},
		{"unsigned", BundleConfig{PublicKeyFile: rsaKey.publicFile}, clientsBundle("signed", "alice"), ".signatures.json"},
		{"signed with another key", BundleConfig{PublicKeyFile: rsaKey.publicFile}, signed(otherKey), "verify"},
		{"changed after signing", BundleConfig{PublicKeyFile: rsaKey.publicFile}, tampered, "digest mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, hs := newBundleServer(t)
			srv.set(tt.bundle.build(t))
			var reports reloads
			b := newTestBundle(t, hs, tt.cfg, OnReload(reports.record))

			if tt.wantErr == "" {
				eventually(t, "the bundle is activated", b.Ready)
				if got := b.Revision(); got != "signed" {
					t.Errorf("Revision = %q, want signed", got)
				}
				return
			}
			eventually(t, "the bundle is refused", func() bool { _, fail := reports.counts(); return fail > 0 })
			if b.Ready() {
				t.Errorf("bundle activated (revision %q), want it refused", b.Revision())
			}
			if err := reports.lastError(); !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("reported error %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestNewBundleRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	rsaKey := newSigningKey(t, "RS256")
	ecKey := newSigningKey(t, "ES256")
	privateKeyFile := filepath.Join(dir, "private.pem")
	if err := os.WriteFile(privateKeyFile, []byte(rsaKey.privatePEM), 0o600); err != nil {
		t.Fatal(err)
	}
	ok := BundleConfig{URL: "https://bundles.example.com", Resource: "bundles/authz.tar.gz", Decision: bundleDecision}
	with := func(f func(*BundleConfig)) BundleConfig {
		c := ok
		f(&c)
		return c
	}

	tests := []struct {
		name string
		cfg  BundleConfig
		want string
	}{
		{"bad decision", with(func(c *BundleConfig) { c.Decision = "claimcheck/authz/not-a-rule" }), "not a Rego identifier"},
		{"no URL", with(func(c *BundleConfig) { c.URL = "" }), "want an http:// or https:// URL"},
		{"not HTTP", with(func(c *BundleConfig) { c.URL = "file:///srv/bundles" }), "want an http:// or https:// URL"},
		{"no resource", with(func(c *BundleConfig) { c.Resource = "" }), "resource"},
		{"max delay under min delay", with(func(c *BundleConfig) { c.MinDelay, c.MaxDelay = time.Minute, time.Second }), "min_delay"},
		{"missing token file", with(func(c *BundleConfig) { c.BearerTokenFile = filepath.Join(dir, "nope") }), "bearer token file"},
		{"missing key file", with(func(c *BundleConfig) { c.PublicKeyFile = filepath.Join(dir, "nope") }), "public key file"},
		{"private key", with(func(c *BundleConfig) { c.PublicKeyFile = privateKeyFile }), `PEM block "PRIVATE KEY"`},
		{"algorithm not fitting the key", with(func(c *BundleConfig) { c.PublicKeyFile, c.Algorithm = ecKey.publicFile, "RS256" }), "does not fit the key"},
		{"HMAC algorithm", with(func(c *BundleConfig) { c.PublicKeyFile, c.Algorithm = rsaKey.publicFile, "HS256" }), "does not fit the key"},
		{"key id without key", with(func(c *BundleConfig) { c.KeyID = "k" }), "need a public key file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := NewBundle(t.Context(), tt.cfg)
			if err == nil {
				b.Close()
				t.Fatal("NewBundle: no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewBundle: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestBundleEngineOutlivesClose(t *testing.T) {
	srv, hs := newBundleServer(t)
	b := newTestBundle(t, hs, BundleConfig{})
	srv.set(clientsBundle("v1", "alice").build(t))
	eventually(t, "the bundle is activated", b.Ready)
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if e := b.Engine(); e == nil || !allows(t, e, "alice") {
		t.Error("after Close, Engine no longer evaluates the last bundle")
	}
}
