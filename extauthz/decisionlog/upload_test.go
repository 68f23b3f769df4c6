package decisionlog

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// logService is an OPA-compatible decision log service: it accepts
// gzip-compressed JSON arrays of events POSTed to one path.
type logService struct {
	t      *testing.T
	path   string
	status int // answered to uploads; 0 means 204

	mu     sync.Mutex
	events []map[string]any
	auth   []string
}

func newLogService(t *testing.T, path string) (*logService, *httptest.Server) {
	s := &logService{t: t, path: path}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

func (s *logService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != s.path {
		s.t.Errorf("upload: %s %s, want POST %s", r.Method, r.URL.Path, s.path)
		http.Error(w, "wrong endpoint", http.StatusNotFound)
		return
	}
	if got := r.Header.Get("Content-Encoding"); got != "gzip" {
		s.t.Errorf("upload: Content-Encoding %q, want gzip", got)
	}
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		s.t.Errorf("upload: Content-Type %q, want application/json", got)
	}
	s.mu.Lock()
	status := s.status
	s.mu.Unlock()
	if status != 0 {
		http.Error(w, "unavailable", status)
		return
	}
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		s.t.Errorf("upload: body is not gzip: %v", err)
		return
	}
	var batch []map[string]any
	dec := json.NewDecoder(zr)
	dec.UseNumber()
	if err := dec.Decode(&batch); err != nil {
		s.t.Errorf("upload: body is not a JSON array of events: %v", err)
		return
	}
	s.mu.Lock()
	s.events = append(s.events, batch...)
	s.auth = append(s.auth, r.Header.Get("Authorization"))
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// received returns the events and Authorization headers received so far.
func (s *logService) received() ([]map[string]any, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.events...), append([]string(nil), s.auth...)
}

// waitEvents polls until n events have arrived.
func (s *logService) waitEvents(n int) []map[string]any {
	s.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		events, _ := s.received()
		if len(events) >= n {
			return events
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("received %d events, want %d", len(events), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func event(id string) Event {
	return Event{
		DecisionID: id,
		Time:       time.Date(2025, 3, 4, 5, 6, 7, 8000, time.UTC),
		Path:       "claimcheck/authz/allow",
		Input: map[string]any{
			"request": map[string]any{"method": "GET", "path": "/orders/42"},
			"token":   map[string]any{"claims": map[string]any{"client_id": "svc"}},
		},
		Result:   map[string]any{"allowed": true, "reason": "allowed"},
		Revision: "rev-1",
		Metrics:  map[string]any{"timer_claimcheck_check_ns": 1234},
	}
}

func newUploader(t *testing.T, cfg UploadConfig) *Uploader {
	t.Helper()
	u, err := NewUploader(t.Context(), cfg, nil)
	if err != nil {
		t.Fatalf("NewUploader: %v", err)
	}
	t.Cleanup(func() { u.Close(context.Background()) })
	return u
}

// jsonValue is v as it reads back from JSON.
func jsonValue(t *testing.T, v any) any {
	t.Helper()
	bs, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	dec := json.NewDecoder(strings.NewReader(string(bs)))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestUploaderSendsOPADecisionLogEvents(t *testing.T) {
	svc, srv := newLogService(t, "/v1/decisions")
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	u := newUploader(t, UploadConfig{
		URL:             srv.URL,
		Resource:        "/v1/decisions",
		BearerTokenFile: tokenFile,
		MinDelay:        time.Second,
		MaxDelay:        time.Second,
	})

	want := []Event{event("d-1"), event("d-2")}
	for _, e := range want {
		if err := u.Log(t.Context(), e); err != nil {
			t.Fatalf("Log(%s): %v", e.DecisionID, err)
		}
	}

	got := svc.waitEvents(len(want))
	if len(got) != len(want) {
		t.Fatalf("received %d events, want %d", len(got), len(want))
	}
	for i, e := range want {
		fields := map[string]any{
			"decision_id": e.DecisionID,
			"timestamp":   "2025-03-04T05:06:07.000008Z",
			"path":        e.Path,
			"input":       jsonValue(t, e.Input),
			"result":      jsonValue(t, e.Result),
			"revision":    e.Revision,
			"metrics":     jsonValue(t, e.Metrics),
		}
		for name, wantValue := range fields {
			if !reflect.DeepEqual(got[i][name], wantValue) {
				t.Errorf("event %d: %s = %#v, want %#v", i, name, got[i][name], wantValue)
			}
		}
		if labels, _ := got[i]["labels"].(map[string]any); labels["id"] != "claimcheck" {
			t.Errorf("event %d: labels = %v, want id claimcheck", i, got[i]["labels"])
		}
	}
	if _, auth := svc.received(); len(auth) == 0 || auth[0] != "Bearer s3cret" {
		t.Errorf("Authorization headers %q, want Bearer s3cret", auth)
	}
}

func TestUploaderCloseFlushes(t *testing.T) {
	svc, srv := newLogService(t, DefaultUploadResource)
	// Far apart uploads: only Close sends the events.
	u, err := NewUploader(t.Context(), UploadConfig{URL: srv.URL, MinDelay: time.Hour, MaxDelay: time.Hour}, nil)
	if err != nil {
		t.Fatalf("NewUploader: %v", err)
	}
	for _, id := range []string{"d-1", "d-2", "d-3"} {
		if err := u.Log(t.Context(), event(id)); err != nil {
			t.Fatalf("Log(%s): %v", id, err)
		}
	}

	if err := u.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	got, _ := svc.received()
	var ids []string
	for _, e := range got {
		ids = append(ids, e["decision_id"].(string))
	}
	if want := []string{"d-1", "d-2", "d-3"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("after Close, received decisions %q, want %q", ids, want)
	}
	if err := u.Log(t.Context(), event("d-4")); err == nil {
		t.Error("Log after Close: no error")
	}
}

func TestUploaderCloseReportsUnsentEvents(t *testing.T) {
	svc, srv := newLogService(t, DefaultUploadResource)
	svc.mu.Lock()
	svc.status = http.StatusServiceUnavailable
	svc.mu.Unlock()
	u, err := NewUploader(t.Context(), UploadConfig{URL: srv.URL, MinDelay: time.Hour, MaxDelay: time.Hour}, nil)
	if err != nil {
		t.Fatalf("NewUploader: %v", err)
	}
	if err := u.Log(t.Context(), event("d-1")); err != nil {
		t.Fatalf("Log: %v", err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	if err := u.Close(ctx); err == nil || !strings.Contains(err.Error(), "not uploaded") {
		t.Errorf("Close with the service down: error %v, want events not uploaded", err)
	}
}

func TestNewUploaderRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  UploadConfig
		want string
	}{
		{"no URL", UploadConfig{}, "want an http:// or https:// URL"},
		{"URL without scheme", UploadConfig{URL: "logs.example.com"}, "want an http:// or https:// URL"},
		{"not HTTP", UploadConfig{URL: "ftp://logs.example.com"}, "want an http:// or https:// URL"},
		{"max delay under min delay", UploadConfig{URL: "https://logs.example.com", MinDelay: time.Minute, MaxDelay: time.Second}, "min_delay"},
		{"negative delay", UploadConfig{URL: "https://logs.example.com", MinDelay: -time.Second}, "min_delay"},
		{"missing token file", UploadConfig{URL: "https://logs.example.com", BearerTokenFile: filepath.Join(t.TempDir(), "nope")}, "bearer token file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := NewUploader(t.Context(), tt.cfg, nil)
			if err == nil {
				u.Close(context.Background())
				t.Fatal("NewUploader: no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewUploader: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
