package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/claimcheck/claimcheck/extauthz/config"
	"github.com/claimcheck/claimcheck/extauthz/issuer"
)

const issuerUsage = `usage: claimcheck issuer --config FILE
       claimcheck issuer hash-secret [--cost 12] < secret

The first form serves an OAuth 2.0 authorization server for the
client-credentials grant (metadata, JWKS, /token, /introspect) as FILE
configures it. hash-secret reads a client secret from standard input (one
line) and prints its bcrypt hash for client_secret_hash.
`

func issuerCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "hash-secret" {
		return hashSecretCmd(args[1:], stdin, stdout, stderr)
	}
	fs := flag.NewFlagSet("issuer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, issuerUsage) }
	cfgPath := fs.String("config", "", "issuer configuration file (YAML)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *cfgPath == "" || fs.NArg() > 0 {
		fmt.Fprint(stderr, issuerUsage)
		return exitUsage
	}
	cfg, err := config.LoadIssuerServer(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "claimcheck: %v\n", err)
		return exitUsage
	}
	log := newLogger(cfg.Log, stderr)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	srv, err := newIssuer(cfg, log)
	if err != nil {
		log.Error("start-up failed", "err", err)
		return exitUsage
	}
	l, err := listen(cfg.Listen, config.DefaultSocketMode.Perm())
	if err != nil {
		log.Error("start-up failed", "err", err)
		return exitDeny
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	log.Info("issuer serving", "listen", l.Addr().String(), "issuer", cfg.Issuer, "clients", len(cfg.Clients),
		"algorithm", cfg.Algorithm, "version", version())
	select {
	case err := <-errc:
		log.Error("issuer stopped", "err", err)
		return exitDeny
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close()
	}
	log.Info("stopped")
	return exitOK
}

// newIssuer builds the issuer a validated configuration describes.
func newIssuer(cfg *config.IssuerServer, log *slog.Logger) (*issuer.Server, error) {
	ic := issuer.Config{
		Issuer:           cfg.Issuer,
		KeyDir:           cfg.KeyDir,
		Algorithm:        cfg.Algorithm,
		RotationInterval: cfg.RotationInterval(),
		RotationOverlap:  time.Duration(cfg.Rotation.Overlap),
		MaxOpaqueTokens:  cfg.MaxOpaqueTokens,
		FailedAuthBurst:  cfg.FailedAuth.Burst,
		FailedAuthEvery:  time.Duration(cfg.FailedAuth.Every),
	}
	for _, c := range cfg.Clients {
		if cost, _ := bcrypt.Cost([]byte(c.ClientSecretHash)); cost < bcrypt.DefaultCost {
			log.Warn("weak client secret hash: use cost 10 or more", "client_id", c.ClientID, "cost", cost)
		}
		ic.Clients = append(ic.Clients, issuer.Client{
			ID:                c.ClientID,
			SecretHash:        c.ClientSecretHash,
			Scopes:            c.Scopes,
			Audiences:         c.Audiences,
			Opaque:            c.TokenFormat == config.TokenFormatOpaque,
			TTL:               time.Duration(c.TokenTTL),
			Claims:            c.Claims,
			Introspect:        c.Introspect,
			ClientCredentials: len(c.GrantTypes) > 0,
		})
	}
	return issuer.New(ic, issuer.WithLogger(log))
}

// defaultSecretCost is hash-secret's bcrypt cost: about a quarter of a
// second per check on current hardware.
const defaultSecretCost = 12

func hashSecretCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("issuer hash-secret", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cost := fs.Int("cost", defaultSecretCost, fmt.Sprintf("bcrypt cost, %d to %d", bcrypt.MinCost, bcrypt.MaxCost))
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprint(stderr, issuerUsage)
		return exitUsage
	}
	h, err := hashSecret(stdin, *cost)
	if err != nil {
		fmt.Fprintf(stderr, "claimcheck: issuer hash-secret: %v\n", err)
		return exitUsage
	}
	fmt.Fprintln(stdout, h)
	return exitOK
}

// hashSecret hashes the first line of r.
func hashSecret(r io.Reader, cost int) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	secret := strings.TrimRight(line, "\r\n")
	switch {
	case secret == "":
		return "", errors.New("expected the secret on standard input, got nothing")
	case len(secret) > 72:
		return "", fmt.Errorf("the secret is %d bytes; bcrypt uses at most 72", len(secret))
	case cost < bcrypt.MinCost || cost > bcrypt.MaxCost:
		return "", fmt.Errorf("--cost: expected %d to %d, got %d", bcrypt.MinCost, bcrypt.MaxCost, cost)
	}
	b, err := bcrypt.GenerateFromPassword([]byte(secret), cost)
	if err != nil {
		return "", err
	}
	return string(b), nil
}
