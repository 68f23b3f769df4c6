package httpserver

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"runtime/debug"
	"strings"
)

// NewAdmin returns the admin handler: GET /healthz (200 "ok" while the
// process runs), GET /readyz (200 when ready() is true, else 503 with a
// one-line reason), and what opts add. Other paths 404; other methods on
// these paths 405. A nil logger discards logs.
func NewAdmin(ready func() (bool, string), log *slog.Logger, opts ...AdminOption) http.Handler {
	if ready == nil {
		panic("httpserver: NewAdmin needs a readiness function")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, reason := readiness(ready, log)
		if ok {
			writeText(w, http.StatusOK, "ok")
			return
		}
		writeText(w, http.StatusServiceUnavailable, oneLine(reason))
	})
	for _, o := range opts {
		o(mux)
	}
	return mux
}

// AdminOption adds endpoints to the admin handler.
type AdminOption func(*http.ServeMux)

// WithMetrics serves h, the Prometheus metrics, at GET /metrics.
func WithMetrics(h http.Handler) AdminOption {
	return func(mux *http.ServeMux) { mux.Handle("GET /metrics", h) }
}

// WithPprof serves Go's profiler under /debug/pprof/: the index, cmdline,
// profile (CPU), symbol, trace and the named profiles (heap, allocs,
// goroutine, block, mutex, threadcreate).
func WithPprof() AdminOption {
	return func(mux *http.ServeMux) {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
}

// readiness calls ready; a panic is not ready.
func readiness(ready func() (bool, string), log *slog.Logger) (ok bool, reason string) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("readiness check panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			ok, reason = false, "readiness check failed"
		}
	}()
	return ready()
}

// oneLine makes reason a single non-empty line.
func oneLine(reason string) string {
	reason = strings.Join(strings.Fields(reason), " ")
	if reason == "" {
		return "not ready"
	}
	return reason
}

func writeText(w http.ResponseWriter, status int, line string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, line)
}
