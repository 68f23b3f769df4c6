package decisionlog

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/claimcheck/claimcheck/extauthz"
	"github.com/claimcheck/claimcheck/extauthz/token"
)

const rawToken = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzdmMifQ.c2ln"

func decision() *extauthz.Decision {
	return &extauthz.Decision{
		Allowed: false, Status: 403, Reason: "policy_denied", ID: "d-1",
		Method: "GET", Host: "orders.internal", Path: "/orders/1",
		Rule: "claimcheck/authz/allow", Revision: "abc123", Latency: 1500 * time.Microsecond,
		Token: &token.Token{Issuer: "https://id.example.com", Claims: map[string]any{"sub": "svc", "client_id": "service-client-id"}},
		Input: map[string]any{
			"request": map[string]any{
				"headers": map[string]any{
					"authorization": "Bearer " + rawToken, "cookie": "at=" + rawToken, "x-api-token": rawToken,
					":path": "/orders/1?access_token=" + rawToken + "&page=2", "x-kept": "v",
				},
				"query": map[string]any{"access_token": []any{rawToken}, "page": []any{"2"}},
			},
			"parsed_query": map[string]any{"access_token": []any{rawToken}, "page": []any{"2"}},
			"attributes": map[string]any{"request": map[string]any{"http": map[string]any{
				"path":    "/orders/1?access_token=" + rawToken + "&page=2",
				"headers": map[string]any{"authorization": "Bearer " + rawToken, "x-kept": "v"},
			}}},
			"token": map[string]any{"claims": map[string]any{"sub": "svc"}},
		},
	}
}

type recordingSink struct{ events []Event }

func (s *recordingSink) Log(_ context.Context, e Event) error {
	s.events = append(s.events, e)
	return nil
}

func TestLoggerWritesOneLineWithTheDecision(t *testing.T) {
	var buf bytes.Buffer
	l := NewLogger(NewWriter(&buf, nil), nil, 1, Redactor{}, nil)
	l.nowFunc = func() time.Time { return time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC) }
	l.LogDecision(context.Background(), decision())
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d lines: %q", len(lines), buf.String())
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"decision_id": "d-1", "time": "2026-11-23T10:00:00Z", "issuer": "https://id.example.com",
		"sub": "svc", "client_id": "service-client-id",
		"request": map[string]any{"method": "GET", "host": "orders.internal", "path": "/orders/1"},
		"allowed": false, "reason": "policy_denied", "status": 403.0, "latency_ms": 1.5,
		"rule": "claimcheck/authz/allow", "policy_revision": "abc123",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("line =\n%v\nwant\n%v", got, want)
	}
	if strings.Contains(buf.String(), rawToken) {
		t.Error("the raw token reached the decision log")
	}
}

func TestUploadedInputIsRedacted(t *testing.T) {
	sink := &recordingSink{}
	l := NewLogger(nil, sink, 1, Redactor{Headers: []string{"x-api-token"}, Query: []string{"access_token"}}, nil)
	d := decision()
	l.LogDecision(context.Background(), d)
	if len(sink.events) != 1 {
		t.Fatalf("%d events", len(sink.events))
	}
	b, _ := json.Marshal(sink.events[0])
	if strings.Contains(string(b), rawToken) {
		t.Fatalf("the raw token reached the upload: %s", b)
	}
	for _, kept := range []string{`"x-kept":"v"`, `"page":["2"]`, `/orders/1?page=2`} {
		if !strings.Contains(string(b), kept) {
			t.Errorf("redaction dropped %s: %s", kept, b)
		}
	}
	// The decision's own input is left alone.
	if d.Input["request"].(map[string]any)["headers"].(map[string]any)["authorization"] == nil {
		t.Error("redaction changed the decision's input")
	}
	e := sink.events[0]
	if e.DecisionID != "d-1" || e.Path != "claimcheck/authz/allow" || e.Revision != "abc123" {
		t.Errorf("event = %+v", e)
	}
}

// TestRawHeadersAreRedacted: with Envoy's encode_raw_headers the headers
// come as input.attributes.request.http.headerMap, values base64-encoded.
func TestRawHeadersAreRedacted(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	sink := &recordingSink{}
	l := NewLogger(nil, sink, 1, Redactor{Headers: []string{"x-api-token"}, Query: []string{"access_token"}}, nil)
	d := decision()
	d.Input["attributes"] = map[string]any{"request": map[string]any{"http": map[string]any{
		"headerMap": map[string]any{"headers": []any{
			map[string]any{"key": "Authorization", "rawValue": b64("Bearer " + rawToken)},
			map[string]any{"key": "x-api-token", "value": rawToken},
			map[string]any{"key": ":path", "rawValue": b64("/orders/1?access_token=" + rawToken + "&page=2")},
			map[string]any{"key": ":path", "value": "/orders/1?access_token=" + rawToken},
			map[string]any{"key": "x-kept", "rawValue": b64("v")},
		}},
	}}}
	l.LogDecision(context.Background(), d)
	if len(sink.events) != 1 {
		t.Fatalf("%d events", len(sink.events))
	}
	out, _ := json.Marshal(sink.events[0])
	for _, leaked := range []string{rawToken, b64("Bearer " + rawToken), "Authorization"} {
		if strings.Contains(string(out), leaked) {
			t.Fatalf("%q reached the upload: %s", leaked, out)
		}
	}
	for _, kept := range []string{b64("v"), b64("/orders/1?page=2")} {
		if !strings.Contains(string(out), kept) {
			t.Errorf("redaction dropped %s: %s", kept, out)
		}
	}
}

func TestSamplingIsByDecisionID(t *testing.T) {
	var buf bytes.Buffer
	l := NewLogger(NewWriter(&buf, nil), nil, 0.25, Redactor{}, nil)
	kept := 0
	for i := range 4000 {
		d := decision()
		d.ID = fmt.Sprintf("decision-%d", i)
		before := buf.Len()
		l.LogDecision(context.Background(), d)
		if buf.Len() > before {
			kept++
			l.LogDecision(context.Background(), d)
			if strings.Count(buf.String()[before:], "\n") != 2 {
				t.Fatal("the same decision ID was sampled differently")
			}
		}
	}
	if kept < 800 || kept > 1200 {
		t.Errorf("kept %d of 4000 at rate 0.25", kept)
	}
}

func TestOpenAppendsToAPrivateFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "decisions.log")
	for range 2 {
		w, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(NewRecord(decision(), time.Now())); err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	b, _ := os.ReadFile(p)
	if n := strings.Count(string(b), "\n"); n != 2 {
		t.Errorf("%d lines after two opens, want 2", n)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v", fi.Mode().Perm())
	}
	if _, err := Open(filepath.Join(p, "not-a-dir", "x.log")); err == nil {
		t.Error("opening under a file succeeded")
	}
}
