package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"golang.org/x/net/http2"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

// limitsPolicy allows /pay for small amounts in a JSON body, and /slow after
// seconds of work that the evaluation deadline interrupts.
const limitsPolicy = `package lim

default allow := false

allow if {
	input.request.path == "/pay"
	input.parsed_body.amount < 10
}

allow if {
	input.request.path == "/slow"
	count([1 | some x in numbers.range(1, 5000); some y in numbers.range(1, 5000); x == y]) > 0
}
`

// limitsServer starts the binary with the limits policy and extra config
// lines; decisions are logged to the returned file.
func limitsServer(t *testing.T, extra string) (*server, *tokentest.Key, string) {
	t.Helper()
	key := tokentest.NewECKey(t, "k1")
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "policy"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "policy", "lim.rego"), limitsPolicy)
	decisions := filepath.Join(dir, "decisions.log")
	config := fmt.Sprintf(`
listen: {grpc: "{{LISTEN}}"}
issuers:
  - {issuer: https://id.example.com, audiences: [orders-api], jwks_file: %s}
decision_log: {output: %s}
%s`, tokentest.WriteJWKSFile(t, dir, key), decisions, extra)
	config = strings.Replace(config, "{{POLICY}}", filepath.Join(dir, "policy"), 1)
	s := startServer(t, config, freeAddr(t))
	s.waitHealth(t, healthpb.HealthCheckResponse_SERVING)
	return s, key, decisions
}

// checkCtx sends req with ctx and returns the answer or the gRPC error.
func (s *server) checkCtx(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return authv3.NewAuthorizationClient(s.conn).Check(ctx, req)
}

// loggedDecision waits for the decision log line of request id.
func loggedDecision(t *testing.T, path, id string) (allowed bool, reason string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		f, err := os.Open(path)
		if err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				var rec struct {
					ID      string `json:"decision_id"`
					Allowed bool   `json:"allowed"`
					Reason  string `json:"reason"`
				}
				if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.ID == id {
					f.Close()
					return rec.Allowed, rec.Reason
				}
			}
			f.Close()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no decision logged for %s", id)
	return false, ""
}

// TestLimitsEndToEnd drives every limit of the limits section through the
// real binary over real gRPC.
func TestLimitsEndToEnd(t *testing.T) {
	s, key, decisions := limitsServer(t, `policy: {paths: ["{{POLICY}}"], decision: lim/allow, timeout: 5s}
token: {max_size: 4096}
limits:
  grpc_max_receive_bytes: 65536
  grpc_max_concurrent_streams: 7
  max_headers: 30
  max_header_bytes: 8192
  request_body: {max_bytes: 64}
  check_timeout: 1s
`)
	tok := tokentest.Mint(t, key, tokentest.Claims("https://id.example.com", "orders-api", time.Hour))
	withHeaders := func(path string, extra map[string]string) *authv3.CheckRequest {
		h := bearer(tok)
		for k, v := range extra {
			h[k] = v
		}
		return request("POST", path, h)
	}
	pay := func(body string) *authv3.CheckRequest {
		req := withHeaders("/pay", map[string]string{"content-type": "application/json"})
		req.Attributes.Request.Http.Body = body
		return req
	}
	many := map[string]string{}
	for i := range 30 {
		many[fmt.Sprintf("x-h%d", i)] = "v"
	}

	t.Run("message size", func(t *testing.T) {
		_, err := s.checkCtx(context.Background(), withHeaders("/pay", map[string]string{"x-big": strings.Repeat("a", 70<<10)}))
		if grpcstatus.Code(err) != codes.ResourceExhausted {
			t.Errorf("a 70 KiB CheckRequest: %v, want ResourceExhausted", err)
		}
	})
	for _, tt := range []struct {
		name   string
		req    *authv3.CheckRequest
		code   codes.Code
		status int32
		reason string
	}{
		{"too many headers", withHeaders("/pay", many), codes.PermissionDenied, 431, "headers_too_large"},
		{"too many header bytes", withHeaders("/pay", map[string]string{"x-big": strings.Repeat("a", 9000)}), codes.PermissionDenied, 431, "headers_too_large"},
		{"body the policy allows", pay(`{"amount": 5}`), codes.OK, 0, "allowed"},
		{"body the policy refuses", pay(`{"amount": 50}`), codes.PermissionDenied, 403, "policy_denied"},
		{"body over the limit", pay(`{"amount": 5, "pad": "` + strings.Repeat("x", 64) + `"}`), codes.PermissionDenied, 413, "body_too_large"},
		{"body that is not JSON", pay(`{"amount": `), codes.InvalidArgument, 400, "bad_request"},
		{"check timeout passes", withHeaders("/slow", nil), codes.Unavailable, 503, "deadline_exceeded"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := s.check(t, tt.req)
			if got := codes.Code(resp.GetStatus().GetCode()); got != tt.code || reason(resp) != tt.reason {
				t.Fatalf("answer %v %s, want %v %s", got, reason(resp), tt.code, tt.reason)
			}
			if got := resp.GetDeniedResponse().GetStatus().GetCode(); tt.status != 0 && int32(got) != tt.status {
				t.Errorf("HTTP status %d, want %d", got, tt.status)
			}
		})
	}

	t.Run("caller's deadline", func(t *testing.T) {
		req := withHeaders("/slow", nil)
		req.Attributes.Request.Http.Id = "slow-caller"
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if _, err := s.checkCtx(ctx, req); grpcstatus.Code(err) != codes.DeadlineExceeded {
			t.Fatalf("Check with a 200ms deadline on a slow policy: %v", err)
		}
		// The caller has gone; what claimcheck decided is in the log.
		if allowed, reason := loggedDecision(t, decisions, "slow-caller"); allowed || reason != "deadline_exceeded" {
			t.Errorf("logged decision: allowed %v, reason %s", allowed, reason)
		}
	})

	t.Run("concurrent streams", func(t *testing.T) {
		if n := maxConcurrentStreams(t, strings.TrimPrefix(s.conn.CanonicalTarget(), "passthrough:///")); n != 7 {
			t.Errorf("SETTINGS_MAX_CONCURRENT_STREAMS = %d, want 7", n)
		}
	})
}

// TestPolicyTimeoutEndToEnd: policy.timeout stops an evaluation: a 503
// policy_error, well before the caller's deadline.
func TestPolicyTimeoutEndToEnd(t *testing.T) {
	s, key, _ := limitsServer(t, `policy: {paths: ["{{POLICY}}"], decision: lim/allow, timeout: 200ms}`)
	req := request("GET", "/slow", bearer(tokentest.Mint(t, key, tokentest.Claims("https://id.example.com", "orders-api", time.Hour))))
	resp := s.check(t, req)
	if codes.Code(resp.GetStatus().GetCode()) != codes.Unavailable || reason(resp) != "policy_error" {
		t.Errorf("slow policy: %v %s, want Unavailable policy_error", codes.Code(resp.GetStatus().GetCode()), reason(resp))
	}
	// The log reaches the test through a pipe: give it a moment.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(s.stderr.String(), "timed out after 200ms"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the log does not say the evaluation timed out:\n%s", s.stderr)
		}
	}
}

// maxConcurrentStreams reads the SETTINGS frame a gRPC server at addr
// sends to a new HTTP/2 (cleartext) connection.
func maxConcurrentStreams(t *testing.T, addr string) uint32 {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading the server's SETTINGS: %v", err)
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
			v, ok := sf.Value(http2.SettingMaxConcurrentStreams)
			if !ok {
				t.Fatal("the server's SETTINGS has no MAX_CONCURRENT_STREAMS")
			}
			return v
		}
	}
}
