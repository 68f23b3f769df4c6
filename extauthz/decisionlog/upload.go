package decisionlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/logging"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/plugins"
	"github.com/open-policy-agent/opa/v1/plugins/logs"
	"github.com/open-policy-agent/opa/v1/server"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/claimcheck/claimcheck/policy"
)

// Upload defaults: OPA's decision log reporting delays, and a bound on the
// events kept in memory while the service cannot be reached.
const (
	DefaultUploadResource = "/logs"
	DefaultUploadMinDelay = 300 * time.Second
	DefaultUploadMaxDelay = 600 * time.Second

	uploadBufferLimitBytes = 64 << 20
	closeFlushTimeout      = 10 * time.Second
)

// UploadConfig says where decision events are uploaded.
type UploadConfig struct {
	// URL is the decision log service's base URL, e.g.
	// https://logs.example.com.
	URL string

	// Resource is the path events are POSTed to, relative to URL; default
	// "/logs".
	Resource string

	// BearerTokenFile optionally holds a token sent as
	// "Authorization: Bearer <token>"; it is re-read for every upload.
	BearerTokenFile string

	// MinDelay and MaxDelay bound the pause between uploads (default 300 s
	// and 600 s, OPA's). OPA counts them in whole seconds; shorter values
	// are rounded up.
	MinDelay, MaxDelay time.Duration
}

// Uploader sends decision events to an OPA-compatible decision log service
// with OPA's decision log plugin: events are buffered in memory (at most
// 64 MiB; the oldest are dropped beyond that) and POSTed periodically as
// gzip-compressed JSON arrays of OPA decision log events. It is safe for
// concurrent use.
type Uploader struct {
	manager *plugins.Manager
	plugin  *logs.Plugin
	closed  atomic.Bool
}

// NewUploader starts an Uploader. ctx bounds the start only. A nil log
// discards OPA's log output.
func NewUploader(ctx context.Context, cfg UploadConfig, log *slog.Logger) (*Uploader, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	raw, err := cfg.opaConfig()
	if err != nil {
		return nil, fmt.Errorf("decisionlog: upload: %w", err)
	}

	opaLog := logging.NewLoggerFromSlogHandler(log.Handler(), logging.Debug).
		WithFields(map[string]any{"component": "decision-log-upload"})
	manager, err := plugins.New(raw, "claimcheck", inmem.New(),
		plugins.Logger(opaLog), plugins.ConsoleLogger(opaLog))
	if err != nil {
		return nil, fmt.Errorf("decisionlog: upload: configuring OPA: %w", err)
	}
	parsed, err := logs.NewConfigBuilder().
		WithBytes(manager.Config.DecisionLogs).
		WithServices(manager.Services()).
		WithLogger(opaLog).
		Parse()
	if err != nil {
		manager.Stop(ctx)
		return nil, fmt.Errorf("decisionlog: upload: configuring OPA decision logs: %w", err)
	}
	plugin := logs.New(parsed, manager)
	manager.Register(logs.Name, plugin)
	if err := manager.Start(ctx); err != nil {
		// Start fails only before starting the plugin, which could then
		// not be stopped: the manager is left to the garbage collector.
		return nil, fmt.Errorf("decisionlog: upload: starting OPA decision logs: %w", err)
	}
	return &Uploader{manager: manager, plugin: plugin}, nil
}

// opaConfig returns the OPA configuration for cfg: one service and the
// decision log plugin reporting to it.
func (cfg UploadConfig) opaConfig() ([]byte, error) {
	resource := cfg.Resource
	if resource == "" {
		resource = DefaultUploadResource
	}
	if _, err := url.Parse(resource); err != nil {
		return nil, fmt.Errorf("resource: %w", err)
	}
	service, minDelay, maxDelay, err := policy.OPAService{
		URL: cfg.URL, BearerTokenFile: cfg.BearerTokenFile, MinDelay: cfg.MinDelay, MaxDelay: cfg.MaxDelay,
	}.Config(DefaultUploadMinDelay, DefaultUploadMaxDelay)
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"services": map[string]any{"decision-logs": service},
		"decision_logs": map[string]any{
			"service":  "decision-logs",
			"resource": resource,
			"reporting": map[string]any{
				"min_delay_seconds":       minDelay,
				"max_delay_seconds":       maxDelay,
				"buffer_size_limit_bytes": uploadBufferLimitBytes,
			},
		},
	})
}

// Log queues e for upload. It returns an error when the Uploader is closed
// or e cannot be encoded; upload failures are logged and retried by OPA.
func (u *Uploader) Log(ctx context.Context, e Event) error {
	if u.closed.Load() {
		return errors.New("decisionlog: upload: uploader closed")
	}
	info := &server.Info{
		DecisionID: e.DecisionID,
		Timestamp:  e.Time,
		Path:       e.Path,
		Revision:   e.Revision,
	}
	if e.Input != nil {
		var input any = e.Input
		info.Input = &input
	}
	if e.Result != nil {
		result := e.Result
		info.Results = &result
	}
	if e.Metrics != nil {
		info.Metrics = fixedMetrics{Metrics: metrics.New(), all: e.Metrics}
	}
	if err := u.plugin.Log(ctx, info); err != nil {
		return fmt.Errorf("decisionlog: upload: decision %s: %w", e.DecisionID, err)
	}
	return nil
}

// Close uploads the buffered events and stops the Uploader. It retries
// failed uploads until ctx is done (10 s when ctx has no deadline) and
// returns an error when events are known to be left unsent.
func (u *Uploader) Close(ctx context.Context) error {
	if u.closed.Swap(true) {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		// OPA's plugin flushes on stop only under a deadline.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, closeFlushTimeout)
		defer cancel()
	}
	u.manager.Stop(ctx)
	if _, left := u.plugin.BufferSize(); left > 0 {
		return fmt.Errorf("decisionlog: upload: %d bytes of decision events not uploaded", left)
	}
	return nil
}

// fixedMetrics hands OPA's plugin metrics already gathered; the plugin
// only reads them with All.
type fixedMetrics struct {
	metrics.Metrics
	all map[string]any
}

func (m fixedMetrics) All() map[string]any { return m.all }
