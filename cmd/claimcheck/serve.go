package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"syscall"
	"time"

	"github.com/claimcheck/claimcheck/extauthz/config"
	"github.com/claimcheck/claimcheck/extauthz/grpcserver"
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

	a, err := build(ctx, cfg, log, buildOptions{watch: true, decisionLog: true})
	if err != nil {
		log.Error("start-up failed", "err", err)
		return exitUsage
	}
	defer a.close()
	if err := a.waitRequired(ctx); err != nil {
		log.Error("start-up failed", "err", err)
		return exitDeny
	}

	l, err := grpcserver.Listen(cfg.Listen.GRPC)
	if err != nil {
		log.Error("start-up failed", "err", err)
		return exitDeny
	}
	srv := grpcserver.New(a.authorizer, log)
	log.Info("claimcheck serving", "version", version(), "grpc", l.Addr().String(),
		"issuers", len(cfg.Issuers), "policy_revision", a.revision(), "decision", cfg.Policy.Decision)

	go func() {
		if a.waitReady(ctx) {
			srv.SetReady(true)
			log.Info("ready: keys and policy loaded")
		}
	}()

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		log.Error("server stopped", "err", err)
		return exitDeny
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight checks")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	srv.Stop(sctx)
	if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
		log.Debug("serve returned", "err", err)
	}
	log.Info("stopped")
	return exitOK
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
	a, err := build(ctx, cfg, slog.New(slog.DiscardHandler), buildOptions{})
	if err != nil {
		fmt.Fprintf(stderr, "claimcheck: config %s: %v\n", *cfgPath, err)
		return exitUsage
	}
	a.close()
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
