// Package decisionlog records claimcheck's decisions: one JSON line per
// decision to stdout or a file, and optionally an upload to an
// OPA-compatible decision log service. Neither ever holds a raw token or an
// Authorization, Cookie or token-carrying header or query parameter.
package decisionlog

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/claimcheck/claimcheck/extauthz"
)

// Record is one decision log line.
type Record struct {
	DecisionID string    `json:"decision_id"`
	Time       time.Time `json:"time"`
	Issuer     string    `json:"issuer,omitempty"`
	Subject    string    `json:"sub,omitempty"`
	ClientID   string    `json:"client_id,omitempty"`
	Request    Request   `json:"request"`
	// Allowed is what claimcheck answered; with DryRun, Reason and Status
	// are the decision it would have made.
	Allowed   bool    `json:"allowed"`
	DryRun    bool    `json:"dry_run,omitempty"`
	Reason    string  `json:"reason"`
	Status    int     `json:"status"`
	LatencyMS float64 `json:"latency_ms"`
	Rule      string  `json:"rule,omitempty"`
	Revision  string  `json:"policy_revision,omitempty"`
}

// Request is the request a decision was about; the path has no query.
type Request struct {
	Method string `json:"method"`
	Host   string `json:"host"`
	Path   string `json:"path"`
}

// NewRecord summarises d.
func NewRecord(d *extauthz.Decision, now time.Time) Record {
	r := Record{
		DecisionID: d.ID,
		Time:       now.UTC(),
		Request:    Request{Method: d.Method, Host: d.Host, Path: d.Path},
		Allowed:    d.Allowed,
		DryRun:     d.DryRun,
		Reason:     d.Reason,
		Status:     d.Status,
		LatencyMS:  float64(d.Latency.Microseconds()) / 1000,
		Rule:       d.Rule,
		Revision:   d.Revision,
	}
	if t := d.Token; t != nil {
		r.Issuer = t.Issuer
		r.Subject, _ = t.Claims["sub"].(string)
		r.ClientID, _ = t.Claims["client_id"].(string)
	}
	return r
}

// Writer writes Records as JSON lines. It is safe for concurrent use.
type Writer struct {
	mu  sync.Mutex
	enc *json.Encoder
	c   io.Closer // nil for stdout and stderr
}

// Open returns a Writer to "stdout", "stderr" or the file at output
// (appended to, created with mode 0600).
func Open(output string) (*Writer, error) {
	switch output {
	case "stdout":
		return NewWriter(os.Stdout, nil), nil
	case "stderr":
		return NewWriter(os.Stderr, nil), nil
	}
	f, err := os.OpenFile(output, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("decision log: %w", err)
	}
	return NewWriter(f, f), nil
}

// NewWriter returns a Writer to w; c, if not nil, is closed by Close.
func NewWriter(w io.Writer, c io.Closer) *Writer {
	return &Writer{enc: json.NewEncoder(w), c: c}
}

// Write writes r as one line.
func (w *Writer) Write(r Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.enc.Encode(r)
}

// Close closes the underlying file, if any.
func (w *Writer) Close() error {
	if w.c == nil {
		return nil
	}
	return w.c.Close()
}

// Sink receives the decisions a Logger keeps, besides its Writer.
type Sink interface {
	Log(ctx context.Context, e Event) error
}

// Logger is an extauthz.DecisionLogger: it samples decisions and writes
// each kept one to a Writer and a Sink (either may be nil).
type Logger struct {
	writer  *Writer
	sink    Sink
	rate    float64
	redact  Redactor
	log     *slog.Logger
	nowFunc func() time.Time
}

// NewLogger returns a Logger keeping the fraction rate of decisions (1 =
// all). Sampling is by decision ID, so a decision is kept or dropped the
// same way everywhere it is logged.
func NewLogger(w *Writer, sink Sink, rate float64, redact Redactor, log *slog.Logger) *Logger {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Logger{writer: w, sink: sink, rate: rate, redact: redact, log: log, nowFunc: time.Now}
}

// NeedsInput reports whether decisions must carry their input document: only
// uploads send it.
func (l *Logger) NeedsInput() bool { return l.sink != nil }

// LogDecision implements extauthz.DecisionLogger.
func (l *Logger) LogDecision(ctx context.Context, d *extauthz.Decision) {
	if !l.sampled(d.ID) {
		return
	}
	rec := NewRecord(d, l.nowFunc())
	if l.writer != nil {
		if err := l.writer.Write(rec); err != nil {
			l.log.Error("decision log write failed", "err", err)
		}
	}
	if l.sink != nil {
		if err := l.sink.Log(ctx, l.event(rec, d)); err != nil {
			l.log.Error("decision log upload failed", "decision_id", d.ID, "err", err)
		}
	}
}

func (l *Logger) event(rec Record, d *extauthz.Decision) Event {
	return Event{
		DecisionID: rec.DecisionID,
		Time:       rec.Time,
		Path:       rec.Rule,
		Input:      l.redact.Input(d.Input),
		Result: map[string]any{
			"allowed": rec.Allowed, "dry_run": rec.DryRun, "reason": rec.Reason, "http_status": rec.Status,
		},
		Revision: rec.Revision,
		Metrics:  map[string]any{"timer_claimcheck_check_ns": d.Latency.Nanoseconds()},
	}
}

// sampled reports whether the decision with id is kept.
func (l *Logger) sampled(id string) bool {
	if l.rate >= 1 {
		return true
	}
	h := fnv.New64a()
	h.Write([]byte(id))
	return float64(h.Sum64()%1_000_000) < l.rate*1_000_000
}
