package httpserver_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/claimcheck/claimcheck/extauthz/httpserver"
)

func TestAdmin(t *testing.T) {
	ready := func() (bool, string) { return true, "" }
	notReady := func(reason string) func() (bool, string) { return func() (bool, string) { return false, reason } }
	tests := []struct {
		name         string
		ready        func() (bool, string)
		method, path string
		status       int
		body         string
	}{
		{"healthz answers ok", ready, "GET", "/healthz", 200, "ok"},
		{"healthz answers ok while not ready", notReady("keys"), "GET", "/healthz", 200, "ok"},
		{"healthz answers HEAD", ready, "HEAD", "/healthz", 200, ""},
		{"healthz refuses POST", ready, "POST", "/healthz", 405, ""},
		{"readyz when ready", ready, "GET", "/readyz", 200, "ok"},
		{"readyz when not ready gives the reason", notReady("the policy has not loaded yet"), "GET", "/readyz", 503, "the policy has not loaded yet"},
		{"readyz reason on one line", notReady("keys of\nhttps://id.example.com\r\nnot loaded"), "GET", "/readyz", 503, "keys of https://id.example.com not loaded"},
		{"readyz without a reason", notReady(""), "GET", "/readyz", 503, "not ready"},
		{"readyz when the check panics", func() (bool, string) { panic("boom") }, "GET", "/readyz", 503, "readiness check failed"},
		{"other paths 404", ready, "GET", "/metrics", 404, ""},
		{"no trailing-slash variant", ready, "GET", "/healthz/", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := httpserver.NewAdmin(tt.ready, nil)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, nil))
			if w.Code != tt.status {
				t.Errorf("status %d, want %d", w.Code, tt.status)
			}
			if tt.body != "" && w.Body.String() != tt.body {
				t.Errorf("body %q, want %q", w.Body, tt.body)
			}
		})
	}
}

func TestAdminMetricsAndPprofOnlyWhenAsked(t *testing.T) {
	ready := func() (bool, string) { return true, "" }
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "claimcheck_up 1\n") })
	tests := []struct {
		name   string
		opts   []httpserver.AdminOption
		path   string
		status int
		body   string // a substring
	}{
		{"metrics served with WithMetrics", []httpserver.AdminOption{httpserver.WithMetrics(metrics)}, "/metrics", 200, "claimcheck_up 1"},
		{"pprof off by default", []httpserver.AdminOption{httpserver.WithMetrics(metrics)}, "/debug/pprof/", 404, ""},
		{"pprof index with WithPprof", []httpserver.AdminOption{httpserver.WithPprof()}, "/debug/pprof/", 200, "goroutine"},
		{"pprof heap profile", []httpserver.AdminOption{httpserver.WithPprof()}, "/debug/pprof/heap?debug=1", 200, "heap profile"},
		{"pprof cmdline", []httpserver.AdminOption{httpserver.WithPprof()}, "/debug/pprof/cmdline", 200, ""},
		{"health still served with options", []httpserver.AdminOption{httpserver.WithPprof(), httpserver.WithMetrics(metrics)}, "/readyz", 200, "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			httpserver.NewAdmin(ready, nil, tt.opts...).ServeHTTP(w, httptest.NewRequest("GET", tt.path, nil))
			if w.Code != tt.status || !strings.Contains(w.Body.String(), tt.body) {
				t.Errorf("GET %s: %d %q, want %d with %q", tt.path, w.Code, w.Body, tt.status, tt.body)
			}
		})
	}
}
