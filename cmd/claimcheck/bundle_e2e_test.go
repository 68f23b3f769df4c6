package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

// bundleServer serves one OPA bundle whose policy allows one client_id.
type bundleServer struct {
	*httptest.Server
	mu   sync.Mutex
	body []byte
	etag string
}

func newBundleServer(t *testing.T) *bundleServer {
	t.Helper()
	bs := &bundleServer{}
	bs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bs.mu.Lock()
		body, etag := bs.body, bs.etag
		bs.mu.Unlock()
		if r.URL.Path != "/bundles/authz.tar.gz" {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		w.Write(body)
	}))
	t.Cleanup(bs.Close)
	return bs
}

// serve publishes a bundle at revision rev allowing client.
func (bs *bundleServer) serve(t *testing.T, rev, client string) {
	t.Helper()
	rego := fmt.Sprintf("package fleet\n\ndefault allow := false\n\nallow if input.token.claims.client_id == %q\n", client)
	b := bundle.Bundle{
		Manifest: bundle.Manifest{Revision: rev},
		Modules:  []bundle.ModuleFile{{URL: "/fleet.rego", Path: "/fleet.rego", Raw: []byte(rego), Parsed: ast.MustParseModule(rego)}},
		Data:     map[string]any{},
	}
	var buf bytes.Buffer
	if err := bundle.NewWriter(&buf).Write(b); err != nil {
		t.Fatal(err)
	}
	bs.mu.Lock()
	bs.body, bs.etag = buf.Bytes(), `"`+rev+`"`
	bs.mu.Unlock()
}

// logServer is an OPA-compatible decision log service that keeps what it
// receives.
type logServer struct {
	*httptest.Server
	mu     sync.Mutex
	events []map[string]any
	raw    bytes.Buffer
}

func newLogServer(t *testing.T) *logServer {
	t.Helper()
	ls := &logServer{}
	ls.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := io.Reader(r.Body)
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		b, _ := io.ReadAll(body)
		var events []map[string]any
		if err := json.Unmarshal(b, &events); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ls.mu.Lock()
		ls.events = append(ls.events, events...)
		ls.raw.Write(b)
		ls.mu.Unlock()
	}))
	t.Cleanup(ls.Close)
	return ls
}

// TestBundleAndDecisionLogUpload runs the binary with its policy from an
// OPA bundle server and its decisions uploaded to an OPA decision log
// service: health waits for the bundle, a new bundle revision changes
// decisions, and the decisions arrive, flushed at stop, without the token.
func TestBundleAndDecisionLogUpload(t *testing.T) {
	key := tokentest.NewECKey(t, "k1")
	jwks := tokentest.WriteJWKSFile(t, t.TempDir(), key)
	bundles, logs := newBundleServer(t), newLogServer(t)
	bundles.serve(t, "r1", "alpha")
	config := fmt.Sprintf(`
listen: {grpc: "{{LISTEN}}"}
issuers: [{issuer: https://id.example.com, audiences: [orders-api], jwks_file: %s}]
policy:
  decision: fleet/allow
  bundle: {url: %s, resource: bundles/authz.tar.gz, min_delay: 1s, max_delay: 1s}
decision_log:
  upload: {url: %s, min_delay: 60s, max_delay: 120s}
`, jwks, bundles.URL, logs.URL)
	s := startServer(t, config, freeAddr(t))
	s.waitHealth(t, healthpb.HealthCheckResponse_SERVING)

	tokenFor := func(client string) string {
		c := tokentest.Claims("https://id.example.com", "orders-api", time.Hour)
		c["client_id"] = client
		return tokentest.Mint(t, key, c)
	}
	alpha, beta := request("GET", "/", bearer(tokenFor("alpha"))), request("GET", "/", bearer(tokenFor("beta")))
	if got := codes.Code(s.check(t, alpha).GetStatus().GetCode()); got != codes.OK {
		t.Fatalf("bundle r1: alpha = %v", got)
	}
	bundles.serve(t, "r2", "beta")
	deadline := time.Now().Add(30 * time.Second)
	for codes.Code(s.check(t, beta).GetStatus().GetCode()) != codes.OK {
		if time.Now().After(deadline) {
			t.Fatal("bundle r2 never took effect")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := codes.Code(s.check(t, alpha).GetStatus().GetCode()); got != codes.PermissionDenied {
		t.Errorf("bundle r2: alpha = %v", got)
	}

	if c := s.stop(t); c != 0 {
		t.Fatalf("exit code %d", c)
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if len(logs.events) < 3 {
		t.Fatalf("%d decision events uploaded, want at least 3", len(logs.events))
	}
	revs := map[string]bool{}
	for _, e := range logs.events {
		if e["decision_id"] == "" || e["path"] != "fleet/allow" {
			t.Errorf("event = %v", e)
		}
		rev, _ := e["revision"].(string)
		revs[rev] = true
	}
	if !revs["r1"] || !revs["r2"] {
		t.Errorf("revisions in the events = %v, want r1 and r2", revs)
	}
	if bytes.Contains(logs.raw.Bytes(), []byte("eyJ")) {
		t.Error("a token reached the decision log service")
	}
}
