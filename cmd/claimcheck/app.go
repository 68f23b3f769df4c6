package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"go.opentelemetry.io/otel/trace"

	"github.com/claimcheck/claimcheck/extauthz"
	"github.com/claimcheck/claimcheck/extauthz/config"
	"github.com/claimcheck/claimcheck/extauthz/decisionlog"
	"github.com/claimcheck/claimcheck/extauthz/keys"
	"github.com/claimcheck/claimcheck/extauthz/metrics"
	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/policy"
)

// app is everything a loaded configuration builds.
type app struct {
	authorizer *extauthz.Authorizer
	policy     extauthz.PolicySource
	bundle     *policy.Bundle // when the policy comes from a bundle server
	remotes    []remoteKeys   // fetched key sets, for readiness
	closers    []io.Closer
	cache      *token.Cache // nil when token.cache is off
	offline    bool
	stopping   atomic.Bool      // set at shutdown: no longer ready
	metrics    *metrics.Metrics // nil when metrics are not exported
}

// buildOptions says what a command needs of the app.
type buildOptions struct {
	watch       bool // reload policy files on change
	decisionLog bool // record decisions as configured
	offline     bool // fetch nothing: no remote keys, no bundles (validate)

	metrics *metrics.Metrics     // export metrics here; nil for none
	tracer  trace.TracerProvider // trace Checks; nil for none
}

// build loads keys and policy for cfg. Remote key sets and bundles load in
// the background; ready reports when all have.
func build(ctx context.Context, cfg *config.Config, log *slog.Logger, o buildOptions) (*app, error) {
	a := &app{offline: o.offline, metrics: o.metrics}
	issuers := make([]token.Issuer, 0, len(cfg.Issuers))
	for _, ic := range cfg.Issuers {
		src, err := a.keySource(ctx, ic, log)
		if err != nil {
			a.close()
			return nil, err
		}
		issuers = append(issuers, token.Issuer{
			Issuer:         ic.Issuer,
			Audiences:      ic.Audiences,
			Algorithms:     ic.Algorithms,
			ClockSkew:      time.Duration(ic.ClockSkew),
			RequireTyp:     ic.RequireTyp,
			MaxKidlessKeys: ic.KidlessKeys(),
			Keys:           src,
		})
	}
	v, err := token.NewVerifier(issuers, token.WithMaxSize(cfg.Token.MaxSize))
	if err != nil {
		a.close()
		return nil, err
	}
	var verifier extauthz.Verifier = v
	if tc := cfg.Token.Cache; tc.On() {
		a.cache = token.NewCache(v, token.CacheConfig{
			MaxEntries:  tc.MaxEntries,
			MaxBytes:    tc.MaxBytes,
			MaxTTL:      time.Duration(tc.MaxTTL),
			NegativeTTL: tc.Negative(),
		})
		verifier = a.cache
		a.observeCache()
	}
	verifier, userinfo, err := withIntrospection(cfg, verifier, log)
	if err != nil {
		a.close()
		return nil, err
	}
	if a.policy, err = a.policySource(ctx, cfg, log, o.watch); err != nil {
		a.close()
		return nil, err
	}
	var dlog extauthz.DecisionLogger
	if o.decisionLog {
		if dlog, err = a.decisionLogger(ctx, cfg, log); err != nil {
			a.close()
			return nil, err
		}
	}
	sources := make([]extauthz.TokenSource, len(cfg.Token.Sources))
	for i, s := range cfg.Token.Sources {
		sources[i] = extauthz.TokenSource{Header: s.Header, Prefix: s.Prefix, Query: s.Query, Cookie: s.Cookie,
			Strip: s.Strips(cfg.Forward.StripToken)}
	}
	a.authorizer, err = extauthz.New(extauthz.Config{
		Sources:       sources,
		TokenRequired: cfg.TokenRequired(),
		Realm:         cfg.Token.Realm,
		ForwardClaims: cfg.Forward.Claims,

		DryRun:            cfg.Policy.DryRun,
		AllowPublicRoutes: cfg.Routes.AllowPublic,
		AllowDryRunRoutes: cfg.Routes.AllowDryRun,
		DecisionLog:       dlog,
		DefaultRule:       cfg.Policy.Decision,
		Userinfo:          userinfo,
		Observer:          a.observer(),
		TracerProvider:    o.tracer,

		MaxHeaders:     cfg.Limits.MaxHeaders,
		MaxHeaderBytes: cfg.Limits.MaxHeaderBytes,
		MaxBodyBytes:   maxBodyBytes(cfg.Limits),
		CheckTimeout:   time.Duration(cfg.Limits.CheckTimeout),

		PathNormalization: cfg.HTTP.PathMode(),
	}, verifier, a.policy, log)
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
	case ic.Keyless():
		flog.Info("no key source: only opaque tokens are accepted, by introspection; JWTs naming this issuer are refused (key_unknown)")
		return token.NoKeys, nil
	default:
		return a.remote(ctx, ic, log)
	}
	if err != nil {
		return nil, fmt.Errorf("issuer %s: %w", ic.Issuer, err)
	}
	a.closers = append(a.closers, f)
	a.observeKeys(ic.Issuer, f)
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
	if a.offline {
		return unfetchedKeys{}, nil
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
		OnRefresh:         a.jwksObserver(ic.Issuer),
	})
	if err != nil {
		return nil, fmt.Errorf("issuer %s: %w", ic.Issuer, err)
	}
	a.observeKeys(ic.Issuer, r)
	a.remotes = append(a.remotes, remoteKeys{issuer: ic.Issuer, remote: r, required: ic.RequireKeysAtStart,
		wait: requiredKeysTries * time.Duration(ic.FetchTimeout)})
	a.closers = append(a.closers, r)
	return r, nil
}

// unfetchedKeys stands in for a fetched key set when nothing may be fetched.
type unfetchedKeys struct{}

func (unfetchedKeys) Keys(context.Context) (jwk.Set, error) {
	return nil, fmt.Errorf("%w: not fetched (offline)", token.ErrKeysUnavailable)
}

func (u unfetchedKeys) Refresh(ctx context.Context) (jwk.Set, error) { return u.Keys(ctx) }

// remoteKeys is an issuer's fetched key set; a required one must load
// within wait before serving starts.
type remoteKeys struct {
	issuer   string
	remote   *keys.Remote
	required bool
	wait     time.Duration
}

// requiredKeysTries is how many fetch timeouts serve waits for the keys of
// an issuer with require_keys_at_start.
const requiredKeysTries = 3

// waitRequired waits for the key sets of issuers with require_keys_at_start
// and names the first that did not load in time.
func (a *app) waitRequired(ctx context.Context) error {
	for _, rk := range a.remotes {
		if !rk.required {
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, rk.wait)
		err := rk.remote.WaitReady(wctx)
		cancel()
		if err != nil {
			return fmt.Errorf("issuer %s: keys not loaded (require_keys_at_start): %w", rk.issuer, err)
		}
	}
	return nil
}

// policySource loads the policy: from a bundle server, from files watched
// for changes, or from files once.
func (a *app) policySource(ctx context.Context, cfg *config.Config, log *slog.Logger, watch bool) (extauthz.PolicySource, error) {
	opts := []policy.Option{policy.WithLogger(log), policy.WithEvalTimeout(time.Duration(cfg.Policy.Timeout))}
	if cfg.Policy.AllowNetwork {
		opts = append(opts, policy.WithNetwork())
	}
	if a.metrics != nil {
		opts = append(opts, policy.OnReload(a.metrics.PolicyReloaded))
		a.metrics.SetPolicy(a.activeRevision)
	}
	files := policy.Config{Paths: cfg.Policy.Paths, Decision: cfg.Policy.Decision}
	switch {
	case cfg.Policy.Bundle != nil && a.offline:
		return extauthz.StaticPolicy(nil), nil
	case cfg.Policy.Bundle != nil:
		bc := cfg.Policy.Bundle
		b, err := policy.NewBundle(ctx, policy.BundleConfig{
			URL:             bc.URL,
			Resource:        bc.Resource,
			Decision:        cfg.Policy.Decision,
			MinDelay:        time.Duration(bc.MinDelay),
			MaxDelay:        time.Duration(bc.MaxDelay),
			PublicKeyFile:   bc.PublicKeyFile,
			KeyID:           bc.KeyID,
			Algorithm:       bc.Algorithm,
			BearerTokenFile: bc.BearerTokenFile,
		}, opts...)
		if err != nil {
			return nil, err
		}
		a.bundle = b
		a.closers = append(a.closers, b)
		return engineSource(b.Engine), nil
	case watch && cfg.WatchPolicy():
		w, err := policy.Watch(ctx, files, opts...)
		if err != nil {
			return nil, err
		}
		a.closers = append(a.closers, w)
		return engineSource(w.Engine), nil
	default:
		e, err := policy.New(ctx, files, opts...)
		if err != nil {
			return nil, err
		}
		return extauthz.StaticPolicy(e), nil
	}
}

// engineSource adapts a policy holder to extauthz.PolicySource.
type engineSource func() *policy.Engine

func (f engineSource) Policy() extauthz.Policy {
	if e := f(); e != nil {
		return e
	}
	return nil
}

// revision is the revision of the policy in force, or "none".
func (a *app) revision() string {
	if p := a.policy.Policy(); p != nil {
		return p.Revision()
	}
	return "none"
}

// decisionLogger records decisions as cfg.DecisionLog says; nil when it
// says nothing.
func (a *app) decisionLogger(ctx context.Context, cfg *config.Config, log *slog.Logger) (extauthz.DecisionLogger, error) {
	dc := cfg.DecisionLog
	if dc.Output == "" && dc.Upload == nil {
		return nil, nil
	}
	var w *decisionlog.Writer
	if dc.Output != "" {
		var err error
		if w, err = decisionlog.Open(dc.Output); err != nil {
			return nil, err
		}
		a.closers = append(a.closers, w)
	}
	var sink decisionlog.Sink
	if u := dc.Upload; u != nil {
		up, err := decisionlog.NewUploader(ctx, decisionlog.UploadConfig{
			URL:             u.URL,
			Resource:        u.Resource,
			BearerTokenFile: u.BearerTokenFile,
			MinDelay:        time.Duration(u.MinDelay),
			MaxDelay:        time.Duration(u.MaxDelay),
		}, log)
		if err != nil {
			return nil, err
		}
		sink = up
		a.closers = append(a.closers, flushOnClose{up})
	}
	var r decisionlog.Redactor
	for _, s := range cfg.Token.Sources {
		if s.Header != "" {
			r.Headers = append(r.Headers, s.Header)
		}
		if s.Query != "" {
			r.Query = append(r.Query, s.Query)
		}
	}
	return decisionlog.NewLogger(w, sink, dc.Rate(), r, log), nil
}

// flushOnClose flushes pending uploads, for at most uploadFlushTimeout.
type flushOnClose struct{ u *decisionlog.Uploader }

const uploadFlushTimeout = 10 * time.Second

func (f flushOnClose) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), uploadFlushTimeout)
	defer cancel()
	return f.u.Close(ctx)
}

// ready reports whether every issuer's keys, and the policy, have loaded.
func (a *app) ready() bool {
	ok, _ := a.readiness()
	return ok
}

// readiness is ready with the reason when not ready.
func (a *app) readiness() (bool, string) {
	if a.stopping.Load() {
		return false, "shutting down"
	}
	if a.policy.Policy() == nil {
		return false, "the policy has not loaded yet"
	}
	for _, r := range a.remotes {
		if !r.remote.Ready() {
			return false, fmt.Sprintf("keys of issuer %s have not loaded yet", r.issuer)
		}
	}
	return true, ""
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
