package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/claimcheck/claimcheck/extauthz/config"
	"github.com/claimcheck/claimcheck/extauthz/grpcserver"
	"github.com/claimcheck/claimcheck/extauthz/httpserver"
)

// shutdownGrace bounds how long in-flight Checks may take after SIGTERM.
const shutdownGrace = 20 * time.Second

func serveCmd(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration file (YAML)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *cfgPath == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: claimcheck serve --config FILE")
		return exitUsage
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "claimcheck: %v\n", err)
		return exitUsage
	}
	log := newLogger(cfg.Log, stderr)

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	tp, err := startTracing(ctx, cfg.Tracing)
	if err != nil {
		log.Error("start-up failed", "err", err)
		return exitUsage
	}
	o := buildOptions{watch: true, decisionLog: true, metrics: newMetrics(cfg)}
	if tp != nil {
		defer stopTracing(tp, log)
		o.tracer = tp
	}
	a, err := build(ctx, cfg, log, o)
	if err != nil {
		log.Error("start-up failed", "err", err)
		return exitUsage
	}
	defer a.close()
	if err := a.waitRequired(ctx); err != nil {
		log.Error("start-up failed", "err", err)
		return exitDeny
	}

	srv, err := startServers(cfg, a, log)
	if err != nil {
		log.Error("start-up failed", "err", err)
		srv.stop(context.Background())
		return exitDeny
	}
	log.Info("claimcheck serving", append(srv.addrs, "version", version(),
		"issuers", len(cfg.Issuers), "policy_revision", a.revision(), "decision", cfg.Policy.Decision,
		"config", cfg)...)

	go func() {
		if a.waitReady(ctx) {
			if srv.grpc != nil {
				srv.grpc.SetReady(true)
			}
			log.Info("ready: keys and policy loaded")
		}
	}()

	select {
	case err := <-srv.errc:
		log.Error("server stopped", "err", err)
		srv.stop(context.Background())
		return exitDeny
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight checks")
	a.stopping.Store(true)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	srv.stop(sctx)
	if a.cache != nil {
		st := a.cache.Stats()
		log.Info("token cache", "hits", st.Hits, "misses", st.Misses, "negative_hits", st.NegativeHits,
			"evictions", st.Evictions, "entries", st.Entries, "bytes", st.Bytes)
	}
	log.Info("stopped")
	return exitOK
}

// servers are the listeners serve runs.
type servers struct {
	grpc    *grpcserver.Server
	https   []*http.Server
	errc    chan error // an unexpected end of serving
	addrs   []any      // for the start-up log line
	closers []io.Closer
	// maxHeader is limits.max_header_bytes, for the HTTP servers.
	maxHeader int
}

// startServers opens every configured listener and serves on it. On error,
// what was started is in the result, for stop.
func startServers(cfg *config.Config, a *app, log *slog.Logger) (*servers, error) {
	s := &servers{errc: make(chan error, 3), maxHeader: cfg.Limits.MaxHeaderBytes}
	tlsr, err := serverTLS(cfg, log)
	if err != nil {
		return s, err
	}
	if tlsr != nil {
		s.closers = append(s.closers, tlsr)
	}
	perm := cfg.Listen.SocketPerm()
	if cfg.Listen.GRPC != "" {
		l, err := listen(cfg.Listen.GRPC, perm)
		if err != nil {
			return s, err
		}
		s.grpc = grpcserver.New(a.authorizer, log, grpcOptions(cfg, tlsr)...)
		s.addrs = append(s.addrs, "grpc", l.Addr().String())
		go func() {
			if err := s.grpc.Serve(l); err != nil {
				s.errc <- err
			}
		}()
	}
	if cfg.Listen.HTTP != "" {
		hc := httpserver.Config{
			TrustedProxies: cfg.HTTP.Prefixes(),
			PathPrefix:     cfg.HTTP.PathPrefix,
			MaxHeaderBytes: cfg.Limits.MaxHeaderBytes,
			MaxBodyBytes:   maxBodyBytes(cfg.Limits),
		}
		h := httpserver.NewForwardAuth(a.authorizer, hc, log)
		if err := s.serveHTTP("http", cfg.Listen.HTTP, h, log, perm, listenerTLS(cfg, tlsr, "http", "h2", "http/1.1")); err != nil {
			return s, err
		}
	}
	if cfg.Listen.Admin != config.AdminOff {
		admin := httpserver.NewAdmin(a.readiness, log, adminOptions(cfg, a, log)...)
		if err := s.serveHTTP("admin", cfg.Listen.Admin, admin, log, perm, nil); err != nil {
			return s, err
		}
	}
	return s, nil
}

// serveHTTP serves h on addr, over TLS when tc is set.
func (s *servers) serveHTTP(name, addr string, h http.Handler, log *slog.Logger, perm fs.FileMode, tc *tls.Config) error {
	l, err := listen(addr, perm)
	if err != nil {
		return err
	}
	if tc != nil {
		l = tls.NewListener(l, tc)
	}
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		// Above the forward-auth limit, so that a request over it gets
		// claimcheck's own 431 rather than net/http's.
		MaxHeaderBytes: max(http.DefaultMaxHeaderBytes, 2*s.maxHeader),
	}
	s.https = append(s.https, hs)
	s.addrs = append(s.addrs, name, l.Addr().String())
	go func() {
		if err := hs.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			s.errc <- fmt.Errorf("%s: %w", name, err)
		}
	}()
	return nil
}

// stop stops accepting on every listener and waits for in-flight requests
// until ctx is done.
func (s *servers) stop(ctx context.Context) {
	var wg sync.WaitGroup
	if s.grpc != nil {
		wg.Go(func() { s.grpc.Stop(ctx) })
	}
	for _, hs := range s.https {
		wg.Go(func() {
			if err := hs.Shutdown(ctx); err != nil {
				hs.Close()
			}
		})
	}
	wg.Wait()
	for _, c := range s.closers {
		c.Close()
	}
}

func validateCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration file (YAML)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *cfgPath == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: claimcheck validate --config FILE")
		return exitUsage
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "claimcheck: %v\n", err)
		return exitUsage
	}
	// Remote keys are not fetched: validate checks the files, not the network.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := build(ctx, cfg, slog.New(slog.DiscardHandler), buildOptions{offline: true})
	if err != nil {
		fmt.Fprintf(stderr, "claimcheck: config %s: %v\n", *cfgPath, err)
		return exitUsage
	}
	a.close()
	// The TLS files must load, not just exist.
	tlsr, err := serverTLS(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintf(stderr, "claimcheck: config %s: listen.tls: %v\n", *cfgPath, err)
		return exitUsage
	}
	if tlsr != nil {
		tlsr.Close()
	}
	fmt.Fprintf(stdout, "%s: OK (%d issuer(s), policy revision %s, decision %s)\n",
		*cfgPath, len(cfg.Issuers), a.revision(), cfg.Policy.Decision)
	return exitOK
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
