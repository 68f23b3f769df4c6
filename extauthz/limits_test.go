package extauthz

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/claimcheck/claimcheck/extauthz/reason"
	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/policy"
)

func manyHeaders(n int) map[string]string {
	h := bearer("good")
	for i := len(h); i < n; i++ {
		h[fmt.Sprintf("x-h%03d", i)] = "v"
	}
	return h
}

func TestHeaderLimitsDenyWholeRequests(t *testing.T) {
	verifier := fakeVerifier{tokens: map[string]*token.Token{"good": goodToken}}
	big := bearer("good")
	big["x-big"] = strings.Repeat("a", 1000)
	tests := []struct {
		name    string
		cfg     Config
		headers map[string]string
		status  int
		reason  string
	}{
		{"at the count limit", Config{MaxHeaders: 20}, manyHeaders(20), 200, reason.Allowed},
		{"one header over the count", Config{MaxHeaders: 20}, manyHeaders(21), 431, reason.HeadersTooLarge},
		{"under the byte limit", Config{MaxHeaderBytes: 2000}, big, 200, reason.Allowed},
		{"over the byte limit", Config{MaxHeaderBytes: 1000}, big, 431, reason.HeadersTooLarge},
		{"no limits", Config{}, manyHeaders(500), 200, reason.Allowed},
		{"over the limit without a token: 431, not 401", Config{MaxHeaderBytes: 1000, TokenRequired: true},
			map[string]string{"x-a": strings.Repeat("b", 5000)}, 431, reason.HeadersTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &fakePolicy{fn: allowAll}
			a := newAuthorizer(t, tt.cfg, verifier, p)
			for range 3 { // the same request always gets the same answer
				d := a.Check(context.Background(), httpRequest("GET", "/", tt.headers))
				if d.Status != tt.status || d.Reason != tt.reason {
					t.Fatalf("decision = %d %s (%s), want %d %s", d.Status, d.Reason, d.Description, tt.status, tt.reason)
				}
				if tt.status != 200 && (d.Allowed || p.input != nil) {
					t.Fatal("a request over a limit reached the policy")
				}
			}
		})
	}
}

// inputOf checks req with cfg and a policy that allows, and returns what the
// policy saw.
func inputOf(t *testing.T, cfg Config, headers map[string]string, body string) (Decision, map[string]any) {
	t.Helper()
	p := &fakePolicy{fn: allowAll}
	a := newAuthorizer(t, cfg, fakeVerifier{tokens: map[string]*token.Token{"good": goodToken}}, p)
	req := httpRequest("POST", "/orders", headers)
	req.Attributes.Request.Http.Body = body
	return a.Check(context.Background(), req), p.input
}

func TestRequestBodyIsLeftOutUnlessConfigured(t *testing.T) {
	h := bearer("good")
	h["content-type"] = "application/json"
	d, in := inputOf(t, Config{}, h, `{"amount": 5}`)
	if !d.Allowed {
		t.Fatalf("decision = %+v", d)
	}
	if _, ok := in["parsed_body"]; ok {
		t.Error("input.parsed_body is set without a configured body size")
	}
	httpAttrs := in["attributes"].(map[string]any)["request"].(map[string]any)["http"].(map[string]any)
	if _, ok := httpAttrs["body"]; ok {
		t.Error("input.attributes.request.http.body is set without a configured body size")
	}
}

func TestRequestBodyInInput(t *testing.T) {
	form := "--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n" +
		"--XyZ\r\nContent-Disposition: form-data; name=\"meta\"\r\nContent-Type: application/json\r\n\r\n{\"k\":1}\r\n" +
		"--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nagain\r\n--XyZ--\r\n"
	tests := []struct {
		name      string
		headers   map[string]string
		body      string
		parsed    any
		truncated bool
	}{
		{"json", map[string]string{"content-type": "application/json; charset=utf-8"}, `{"amount": 5, "items": ["a"]}`,
			map[string]any{"amount": json.Number("5"), "items": []any{"a"}}, false},
		{"form", map[string]string{"content-type": "application/x-www-form-urlencoded"}, "a=1&a=2&b=x",
			map[string]any{"a": []any{"1", "2"}, "b": []any{"x"}}, false},
		{"multipart", map[string]string{"content-type": "multipart/form-data; boundary=XyZ"}, form,
			map[string]any{"note": []any{"hello", "again"}, "meta": []any{map[string]any{"k": json.Number("1")}}}, false},
		{"other content type", map[string]string{"content-type": "text/plain"}, "hi", nil, false},
		{"no content type", map[string]string{}, `{"a":1}`, nil, false},
		{"shorter than content-length", map[string]string{"content-type": "application/json", "content-length": "100"}, `{"a":`, nil, true},
		{"marked partial by envoy", map[string]string{"content-type": "application/json", "x-envoy-auth-partial-body": "true"}, `{"a":1}`, nil, true},
		{"empty", map[string]string{"content-type": "application/json"}, "", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := bearer("good")
			for k, v := range tt.headers {
				h[k] = v
			}
			d, in := inputOf(t, Config{MaxBodyBytes: 1024}, h, tt.body)
			if !d.Allowed {
				t.Fatalf("decision = %d %s (%s)", d.Status, d.Reason, d.Description)
			}
			if got := in["parsed_body"]; !reflect.DeepEqual(got, tt.parsed) {
				t.Errorf("parsed_body = %#v, want %#v", got, tt.parsed)
			}
			if got := in["truncated_body"]; got != tt.truncated {
				t.Errorf("truncated_body = %v, want %v", got, tt.truncated)
			}
			httpAttrs := in["attributes"].(map[string]any)["request"].(map[string]any)["http"].(map[string]any)
			if tt.body != "" && httpAttrs["body"] != tt.body {
				t.Errorf("attributes.request.http.body = %v", httpAttrs["body"])
			}
		})
	}
}

func TestRequestBodyRefusals(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
		status      int
		reason      string
	}{
		{"larger than the limit", "text/plain", strings.Repeat("x", 101), http.StatusRequestEntityTooLarge, reason.BodyTooLarge},
		{"invalid json", "application/json", `{"a":`, http.StatusBadRequest, reason.BadRequest},
		{"json with trailing data", "application/json", `{"a":1} {}`, http.StatusBadRequest, reason.BadRequest},
		{"multipart without its end", "multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nv", http.StatusBadRequest, reason.BadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := bearer("good")
			h["content-type"] = tt.contentType
			d, in := inputOf(t, Config{MaxBodyBytes: 100}, h, tt.body)
			if d.Allowed || d.Status != tt.status || d.Reason != tt.reason {
				t.Fatalf("decision = %v %d %s (%s), want %d %s", d.Allowed, d.Status, d.Reason, d.Description, tt.status, tt.reason)
			}
			if in != nil {
				t.Error("the policy was evaluated")
			}
		})
	}
	h := bearer("good")
	h["content-length"] = "lots"
	if d, _ := inputOf(t, Config{MaxBodyBytes: 100}, h, "x"); d.Status != http.StatusBadRequest {
		t.Errorf("a bad content-length: %d %s", d.Status, d.Reason)
	}
}

// latePolicy answers once ctx is done — an evaluation that finishes just
// after the deadline: an allow, or err when set.
type latePolicy struct {
	fakePolicy
	err error
}

func (p *latePolicy) Eval(ctx context.Context, _ ast.Value) (policy.Result, error) {
	<-ctx.Done()
	return policy.Result{Allowed: p.err == nil}, p.err
}

// slowVerifier rejects "slow-forged" once ctx is done, and otherwise
// verifies as fakeVerifier.
type slowVerifier struct{ fakeVerifier }

func (v slowVerifier) Verify(ctx context.Context, raw string) (*token.Token, error) {
	if raw == "slow-forged" {
		<-ctx.Done()
		return nil, fmt.Errorf("%w: forged", token.ErrSignature)
	}
	return v.fakeVerifier.Verify(ctx, raw)
}

func TestNoAllowAfterTheDeadline(t *testing.T) {
	verifier := slowVerifier{fakeVerifier{tokens: map[string]*token.Token{"good": goodToken}}}
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	tests := []struct {
		name   string
		cfg    Config
		ctx    func() (context.Context, context.CancelFunc)
		policy Policy
		token  string
		reason string
	}{
		{"caller's deadline passes during evaluation", Config{}, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}, &latePolicy{}, "good", reason.Deadline},
		{"check timeout passes during evaluation", Config{CheckTimeout: 50 * time.Millisecond}, nil, &latePolicy{}, "good", reason.Deadline},
		{"dry-run does not allow after the deadline", Config{CheckTimeout: 50 * time.Millisecond, DryRun: true}, nil, &latePolicy{}, "good", reason.Deadline},
		{"caller's deadline passed before the check started", Config{}, func() (context.Context, context.CancelFunc) { return expired, func() {} },
			&fakePolicy{fn: allowAll}, "good", reason.Deadline},
		{"a token rejected as the deadline passes keeps its reason", Config{CheckTimeout: 50 * time.Millisecond},
			nil, &fakePolicy{fn: allowAll}, "slow-forged", "signature_invalid"},
		{"a policy error past the deadline is put down to it", Config{CheckTimeout: 50 * time.Millisecond}, nil,
			&latePolicy{err: context.DeadlineExceeded}, "good", reason.Deadline},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if tt.ctx != nil {
				ctx, cancel = tt.ctx()
			}
			defer cancel()
			a := newAuthorizer(t, tt.cfg, verifier, tt.policy)
			d := a.Check(ctx, httpRequest("GET", "/", bearer(tt.token)))
			if d.Allowed || d.Reason != tt.reason {
				t.Fatalf("decision = allowed %v, %d %s, want a deny with %s", d.Allowed, d.Status, d.Reason, tt.reason)
			}
			if tt.reason == reason.Deadline && (d.Status != 503 || d.DryRun || len(d.UpstreamHeaders) > 0) {
				t.Errorf("deadline deny = %+v", d)
			}
			if meta := d.DynamicMetadata["claimcheck"].(map[string]any); meta["reason"] != tt.reason {
				t.Errorf("metadata reason = %v", meta["reason"])
			}
		})
	}
}
