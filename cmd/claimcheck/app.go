package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/claimcheck/claimcheck/extauthz"
	"github.com/claimcheck/claimcheck/extauthz/config"
	"github.com/claimcheck/claimcheck/extauthz/keys"
	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/policy"
)

// app is everything a loaded configuration builds.
type app struct {
	authorizer *extauthz.Authorizer
	policy     *policy.Engine
	remotes    []*keys.Remote // fetched key sets, for readiness
	required   []requiredKeys
	closers    []io.Closer
}

// build loads keys and policy for cfg. Remote key sets load in the
// background; ready reports when all have.
func build(ctx context.Context, cfg *config.Config, log *slog.Logger) (*app, error) {
	a := &app{}
	issuers := make([]token.Issuer, 0, len(cfg.Issuers))
	for _, ic := range cfg.Issuers {
		src, err := a.keySource(ctx, ic, log)
		if err != nil {
			a.close()
			return nil, err
		}
		issuers = append(issuers, token.Issuer{
			Issuer:     ic.Issuer,
			Audiences:  ic.Audiences,
			Algorithms: ic.Algorithms,
			ClockSkew:  time.Duration(ic.ClockSkew),
			Keys:       src,
		})
	}
	v, err := token.NewVerifier(issuers, token.WithMaxSize(cfg.Token.MaxSize))
	if err != nil {
		a.close()
		return nil, err
	}
	a.policy, err = policy.New(ctx, policy.Config{Paths: cfg.Policy.Paths, Decision: cfg.Policy.Decision}, policy.WithLogger(log))
	if err != nil {
		a.close()
		return nil, err
	}
	sources := make([]extauthz.TokenSource, len(cfg.Token.Sources))
	for i, s := range cfg.Token.Sources {
		sources[i] = extauthz.TokenSource(s)
	}
	a.authorizer, err = extauthz.New(extauthz.Config{
		Sources:       sources,
		TokenRequired: cfg.TokenRequired(),
		Realm:         cfg.Token.Realm,
		ForwardClaims: cfg.Forward.Claims,
		StripToken:    cfg.Forward.StripToken,
	}, v, a.policy, log)
	if err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

func (a *app) keySource(ctx context.Context, ic config.Issuer, log *slog.Logger) (token.KeySource, error) {
	flog := log.With("issuer", ic.Issuer)
	var f *keys.File
	var err error
	switch {
	case ic.JWKSFile != "":
		f, err = keys.NewFile(ic.JWKSFile, flog)
	case ic.PublicKeyFile != "":
		f, err = keys.NewPublicKeyFile(ic.PublicKeyFile, flog)
	case ic.HMACSecretFile != "":
		f, err = keys.NewHMACFile(ic.HMACSecretFile, ic.HMACMinLength(), flog)
	default:
		return a.remote(ctx, ic, log)
	}
	if err != nil {
		return nil, fmt.Errorf("issuer %s: %w", ic.Issuer, err)
	}
	a.closers = append(a.closers, f)
	return f, nil
}

func (a *app) remote(ctx context.Context, ic config.Issuer, log *slog.Logger) (token.KeySource, error) {
	client, err := keys.NewHTTPClient(keys.FetchOptions{
		Timeout:           time.Duration(ic.FetchTimeout),
		CAFile:            ic.CAFile,
		UserAgent:         "claimcheck/" + version(),
		AllowInsecureHTTP: ic.AllowInsecureHTTP,
	})
	if err != nil {
		return nil, fmt.Errorf("issuer %s: %w", ic.Issuer, err)
	}
	r, err := keys.NewRemote(ctx, keys.RemoteConfig{
		Issuer:            ic.Issuer,
		JWKSURI:           ic.JWKSURI,
		Discovery:         ic.Discovery,
		HTTPClient:        client,
		MinRefresh:        time.Duration(ic.MinRefresh),
		MaxRefresh:        time.Duration(ic.MaxRefresh),
		AllowInsecureHTTP: ic.AllowInsecureHTTP,
		Logger:            log,
	})
	if err != nil {
		return nil, fmt.Errorf("issuer %s: %w", ic.Issuer, err)
	}
	a.remotes = append(a.remotes, r)
	a.closers = append(a.closers, r)
	if ic.RequireKeysAtStart {
		a.required = append(a.required, requiredKeys{issuer: ic.Issuer, remote: r, wait: requiredKeysTries * time.Duration(ic.FetchTimeout)})
	}
	return r, nil
}

// requiredKeys is a remote key set that must load before serving starts,
// within wait.
type requiredKeys struct {
	issuer string
	remote *keys.Remote
	wait   time.Duration
}

// requiredKeysTries is how many fetch timeouts serve waits for the keys of
// an issuer with require_keys_at_start.
const requiredKeysTries = 3

// waitRequired waits for the key sets of issuers with require_keys_at_start
// and names the first that did not load in time.
func (a *app) waitRequired(ctx context.Context) error {
	for _, rk := range a.required {
		wctx, cancel := context.WithTimeout(ctx, rk.wait)
		err := rk.remote.WaitReady(wctx)
		cancel()
		if err != nil {
			return fmt.Errorf("issuer %s: keys not loaded (require_keys_at_start): %w", rk.issuer, err)
		}
	}
	return nil
}

// ready reports whether every issuer's keys have loaded.
func (a *app) ready() bool {
	for _, r := range a.remotes {
		if !r.Ready() {
			return false
		}
	}
	return true
}

// waitReady polls ready until it is true or ctx is done.
func (a *app) waitReady(ctx context.Context) bool {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for !a.ready() {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}

func (a *app) close() {
	for _, c := range a.closers {
		c.Close()
	}
}
