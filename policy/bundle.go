package policy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/logging"
	"github.com/open-policy-agent/opa/v1/plugins"
	bundleplugin "github.com/open-policy-agent/opa/v1/plugins/bundle"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

// Bundle polling defaults.
const (
	DefaultBundleMinDelay = 30 * time.Second
	DefaultBundleMaxDelay = 120 * time.Second
)

// Names in the generated OPA configuration.
const (
	bundleName    = "claimcheck" // the one bundle, also in data.system.bundles
	bundleService = "bundles"
	bundleKeyID   = "claimcheck" // when BundleConfig.KeyID is empty
)

// BundleConfig pulls a policy bundle from an OPA-compatible bundle server.
type BundleConfig struct {
	// URL is the bundle service's base URL, e.g.
	// https://bundles.example.com.
	URL string

	// Resource is the bundle's path on the service, e.g.
	// bundles/authz.tar.gz.
	Resource string

	// Decision is the decision rule, as in Config.Decision.
	Decision string

	// MinDelay and MaxDelay bound the pause between polls (default 30 s
	// and 120 s). OPA counts them in whole seconds; shorter values are
	// rounded up.
	MinDelay, MaxDelay time.Duration

	// PublicKeyFile optionally holds a PEM public key (PUBLIC KEY, RSA
	// PUBLIC KEY or a CERTIFICATE) that bundles must be signed with, the
	// way "opa sign" signs them (.signatures.json). With it, an unsigned
	// bundle or one with a bad signature is refused. It is read once, by
	// NewBundle.
	PublicKeyFile string

	// KeyID names the key in OPA's configuration (default "claimcheck").
	// The configured key verifies every bundle, whatever key id its
	// signature names.
	KeyID string

	// Algorithm is the signature algorithm, e.g. RS256 or ES256. The
	// default follows from the key: RS256 for RSA, ES256, ES384 or ES512
	// for ECDSA by curve.
	Algorithm string

	// BearerTokenFile optionally holds a token sent as
	// "Authorization: Bearer <token>"; it is re-read for every request.
	BearerTokenFile string
}

// Bundle keeps an Engine current with a policy bundle served by an
// OPA-compatible bundle server. Downloading, polling, conditional requests
// (ETag) and signature verification are OPA's bundle plugin's; each bundle
// it activates is compiled again by this package, with network built-ins
// disabled, into a new Engine with its own copy of the bundle's data. A
// bundle that OPA or this package refuses never becomes current: the
// previous Engine keeps serving. Bundle is safe for concurrent use.
type Bundle struct {
	engine   atomic.Pointer[Engine]
	decision string
	opts     options
	log      *slog.Logger
	manager  *plugins.Manager

	ctx    context.Context // for builds; cancelled by Close
	cancel context.CancelFunc
	once   sync.Once
}

// NewBundle starts polling the bundle server. It does not wait for a
// bundle: Engine is nil until the first one is activated. ctx bounds the
// start only. With WithLogger, OPA's own log output goes to the logger
// too; OnReload reports every bundle that replaced the Engine and every
// attempt that failed (download, signature, compile).
func NewBundle(ctx context.Context, cfg BundleConfig, opts ...Option) (*Bundle, error) {
	if _, err := parseDecision(cfg.Decision); err != nil {
		return nil, err
	}
	raw, err := cfg.opaConfig()
	if err != nil {
		return nil, fmt.Errorf("policy: bundle: %w", err)
	}
	b := &Bundle{decision: cfg.Decision, opts: newOptions(opts)}
	b.log = b.opts.logger
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.ctx, b.cancel = context.WithCancel(context.WithoutCancel(ctx))

	opaLog := logging.NewLoggerFromSlogHandler(b.log.Handler(), logging.Debug).
		WithFields(map[string]any{"component": "policy-bundle"})
	b.manager, err = plugins.New(raw, "claimcheck",
		inmem.NewWithOpts(inmem.OptReturnASTValuesOnRead(true)),
		plugins.Logger(opaLog),
		plugins.ConsoleLogger(opaLog),
		plugins.WithParserOptions(ast.ParserOptions{RegoVersion: ast.RegoV1}),
	)
	if err != nil {
		b.cancel()
		return nil, fmt.Errorf("policy: bundle: configuring OPA: %w", err)
	}
	parsed, err := bundleplugin.NewConfigBuilder().
		WithBytes(b.manager.Config.Bundles).
		WithServices(b.manager.Services()).
		WithKeyConfigs(b.manager.PublicKeys()).
		Parse()
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("policy: bundle: configuring OPA bundles: %w", err)
	}
	plugin := bundleplugin.New(parsed, b.manager)
	b.manager.Register(bundleplugin.Name, plugin)
	plugin.Register(b, b.downloaded)
	b.manager.RegisterCompilerTrigger(b.activated)
	if err := b.manager.Start(ctx); err != nil {
		b.Close()
		return nil, fmt.Errorf("policy: bundle: starting OPA: %w", err)
	}
	return b, nil
}

// Engine returns the current Engine, nil until the first bundle has been
// activated. An evaluation started on it finishes on it even if a new
// bundle replaces it meanwhile.
func (b *Bundle) Engine() *Engine {
	return b.engine.Load()
}

// Ready reports whether a bundle has been activated.
func (b *Bundle) Ready() bool {
	return b.engine.Load() != nil
}

// Revision returns the revision of the current Engine: the bundle
// manifest's revision or, when it has none, a hash of its policy and data
// like Engine.Revision's. It is "" until a bundle has been activated.
func (b *Bundle) Revision() string {
	if e := b.engine.Load(); e != nil {
		return e.Revision()
	}
	return ""
}

// Close stops polling. Engine keeps returning the last Engine.
func (b *Bundle) Close() error {
	b.once.Do(func() {
		b.cancel()
		b.manager.Stop(context.Background())
	})
	return nil
}

// activated is the OPA manager's compiler trigger: it runs after OPA has
// activated a bundle, inside the committed transaction, and replaces the
// Engine with one built from that transaction's policy and data.
func (b *Bundle) activated(txn storage.Transaction) {
	if b.ctx.Err() != nil {
		return // closing
	}
	store := b.manager.Store
	names, err := bundle.ReadBundleNamesFromStore(b.ctx, store, txn)
	if err != nil && !storage.IsNotFound(err) {
		b.refused("", fmt.Errorf("policy: bundle: reading OPA's store: %w", err))
		return
	}
	if !slices.Contains(names, bundleName) {
		return // the manager's start, before any bundle
	}
	manifestRev, err := bundle.ReadBundleRevisionFromStore(b.ctx, store, txn, bundleName)
	if err != nil && !storage.IsNotFound(err) {
		b.refused("", fmt.Errorf("policy: bundle: reading revision: %w", err))
		return
	}
	cur := b.Revision()
	e, err := b.build(b.ctx, store, txn, manifestRev)
	switch {
	case err != nil && b.ctx.Err() != nil:
		return // closing
	case err != nil:
		b.refused(manifestRev, err)
	default:
		b.engine.Store(e)
		b.log.Info("policy bundle activated", "old_revision", cur, "revision", e.Revision())
		b.report(e.Revision(), nil)
	}
}

// refused logs and reports a bundle activated by OPA that does not become
// current.
func (b *Bundle) refused(bundleRev string, err error) {
	cur := b.Revision()
	b.log.Error("policy bundle refused, keeping the current policy",
		"bundle_revision", bundleRev, "revision", cur, "err", errorText(err))
	b.report(cur, err)
}

// downloaded is the bundle plugin's status listener, called after each
// download attempt; it reports the attempts that OPA failed (download,
// signature, OPA's compile). OPA logs them itself.
func (b *Bundle) downloaded(s bundleplugin.Status) {
	if s.Code == "" || b.ctx.Err() != nil {
		return
	}
	msg := s.Message
	for _, err := range s.Errors {
		msg += "\n" + err.Error()
	}
	b.report(b.Revision(), fmt.Errorf("policy: bundle: %s", msg))
}

func (b *Bundle) report(rev string, err error) {
	if b.opts.onReload != nil {
		b.opts.onReload(rev, err)
	}
}

// build compiles the policy and data in txn into an Engine with a store of
// its own, so that later bundles never change what it evaluates. Its
// revision is the manifest's revision, or a hash when that is empty.
func (b *Bundle) build(ctx context.Context, store storage.Store, txn storage.Transaction, revision string) (*Engine, error) {
	modules, sources, err := readModules(ctx, store, txn)
	if err != nil {
		return nil, err
	}
	v, err := store.Read(ctx, txn, storage.RootPath)
	if err != nil {
		return nil, fmt.Errorf("policy: bundle: reading data: %w", err)
	}
	data, err := jsonObject(v)
	if err != nil {
		return nil, fmt.Errorf("policy: bundle: reading data: %w", err)
	}

	if revision == "" {
		if revision, err = bundleRevision(sources, data); err != nil {
			return nil, err
		}
	}
	snapshot := inmem.NewFromObjectWithOpts(data, inmem.OptReturnASTValuesOnRead(true))
	return compile(ctx, modules, snapshot, b.decision, revision, b.opts)
}

// readModules parses the policies in the store, each with the Rego
// version OPA recorded for it (v1 unless noted) and this package's
// capabilities. It returns them and their sources by policy id.
func readModules(ctx context.Context, store storage.Store, txn storage.Transaction) (map[string]*ast.Module, map[string][]byte, error) {
	ids, err := store.ListPolicies(ctx, txn)
	if err != nil {
		return nil, nil, fmt.Errorf("policy: bundle: listing policies: %w", err)
	}
	versions, err := moduleRegoVersions(ctx, store, txn)
	if err != nil {
		return nil, nil, err
	}
	caps := capabilities()
	modules := make(map[string]*ast.Module, len(ids))
	sources := make(map[string][]byte, len(ids))
	for _, id := range ids {
		src, err := store.GetPolicy(ctx, txn, id)
		if err != nil {
			return nil, nil, fmt.Errorf("policy: bundle: reading policy %s: %w", id, err)
		}
		version := ast.RegoV1
		if v, ok := versions[strings.Trim(id, "/")]; ok {
			version = v
		}
		m, err := ast.ParseModuleWithOpts(id, string(src), ast.ParserOptions{
			RegoVersion:       version,
			Capabilities:      caps,
			ProcessAnnotation: true,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("policy: bundle: %w", err)
		}
		modules[id], sources[id] = m, src
	}
	return modules, sources, nil
}

// moduleRegoVersions reads the Rego versions OPA's bundle activation
// records for modules that are not of the runtime's version (v1).
func moduleRegoVersions(ctx context.Context, store storage.Store, txn storage.Transaction) (map[string]ast.RegoVersion, error) {
	v, err := store.Read(ctx, txn, bundle.ModulesInfoBasePath)
	if storage.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("policy: bundle: reading module versions: %w", err)
	}
	infos, err := jsonObject(v)
	if err != nil {
		return nil, fmt.Errorf("policy: bundle: reading module versions: %w", err)
	}
	versions := make(map[string]ast.RegoVersion, len(infos))
	for id, info := range infos {
		info, _ := info.(map[string]any)
		n, ok := info["rego_version"].(json.Number)
		if !ok {
			continue
		}
		i, err := n.Int64()
		if err != nil {
			return nil, fmt.Errorf("policy: bundle: module %s: rego_version %v: %w", id, n, err)
		}
		rv, err := ast.RegoVersionFromIntStrict(int(i))
		if err != nil {
			return nil, fmt.Errorf("policy: bundle: module %s: %w", id, err)
		}
		versions[id] = rv
	}
	return versions, nil
}

// jsonObject converts an object read from the store into a fresh
// map[string]any.
func jsonObject(v any) (map[string]any, error) {
	if av, ok := v.(ast.Value); ok {
		var err error
		if v, err = ast.JSON(av); err != nil {
			return nil, err
		}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("got %T, want an object", v)
	}
	return obj, nil
}

// bundleRevision hashes the policy sources and data like revisionOf,
// leaving out OPA's records about bundles and modules under data.system,
// which change with every download.
func bundleRevision(sources map[string][]byte, data map[string]any) (string, error) {
	res := &loader.Result{
		Modules:   make(map[string]*loader.RegoFile, len(sources)),
		Documents: data,
	}
	for id, src := range sources {
		res.Modules[id] = &loader.RegoFile{Name: id, Raw: src}
	}
	if sys, ok := data["system"].(map[string]any); ok {
		sys = maps.Clone(sys)
		delete(sys, "bundles")
		delete(sys, "modules")
		res.Documents = maps.Clone(data)
		if len(sys) == 0 {
			delete(res.Documents, "system")
		} else {
			res.Documents["system"] = sys
		}
	}
	return revisionOf(res)
}

// opaConfig returns the OPA configuration for cfg: one service, the
// bundle and, for signed bundles, the key.
func (cfg BundleConfig) opaConfig() ([]byte, error) {
	if cfg.Resource == "" {
		return nil, errors.New("resource: want the bundle's path on the service, e.g. bundles/authz.tar.gz")
	}
	service, minDelay, maxDelay, err := OPAService{
		URL: cfg.URL, BearerTokenFile: cfg.BearerTokenFile, MinDelay: cfg.MinDelay, MaxDelay: cfg.MaxDelay,
	}.Config(DefaultBundleMinDelay, DefaultBundleMaxDelay)
	if err != nil {
		return nil, err
	}
	source := map[string]any{
		"service":  bundleService,
		"resource": cfg.Resource,
		"persist":  false,
		"polling": map[string]any{
			"min_delay_seconds": minDelay,
			"max_delay_seconds": maxDelay,
		},
	}
	conf := map[string]any{
		"services": map[string]any{bundleService: service},
		"bundles":  map[string]any{bundleName: source},
	}

	switch {
	case cfg.PublicKeyFile != "":
		pemData, err := os.ReadFile(cfg.PublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("public key file: %w", err)
		}
		alg, err := signatureAlgorithm(pemData, cfg.Algorithm)
		if err != nil {
			return nil, fmt.Errorf("public key file %s: %w", cfg.PublicKeyFile, err)
		}
		keyID := cfg.KeyID
		if keyID == "" {
			keyID = bundleKeyID
		}
		conf["keys"] = map[string]any{keyID: map[string]any{"key": string(pemData), "algorithm": alg}}
		source["signing"] = map[string]any{"keyid": keyID}
	case cfg.KeyID != "" || cfg.Algorithm != "":
		return nil, errors.New("key id and algorithm need a public key file")
	}
	return json.Marshal(conf)
}

// signatureAlgorithm checks that pemData holds one RSA or ECDSA public key
// and returns the JWS algorithm to verify signatures with: alg, which must
// fit the key, or the key's default.
func signatureAlgorithm(pemData []byte, alg string) (string, error) {
	block, rest := pem.Decode(pemData)
	if block == nil {
		return "", errors.New("no PEM block")
	}
	if next, _ := pem.Decode(rest); next != nil {
		return "", errors.New("more than one PEM block, want one public key")
	}
	var (
		pub any
		err error
	)
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	default:
		return "", fmt.Errorf("PEM block %q: want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE", block.Type)
	}
	if err != nil {
		return "", err
	}

	var fits []string // algorithms for the key, the default first
	switch k := pub.(type) {
	case *rsa.PublicKey:
		fits = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			fits = []string{"ES256"}
		case elliptic.P384():
			fits = []string{"ES384"}
		case elliptic.P521():
			fits = []string{"ES512"}
		default:
			return "", fmt.Errorf("unsupported curve %s", k.Curve.Params().Name)
		}
	default:
		return "", fmt.Errorf("%T keys cannot verify OPA bundle signatures, want RSA or ECDSA", pub)
	}
	switch {
	case alg == "":
		return fits[0], nil
	case slices.Contains(fits, alg):
		return alg, nil
	}
	return "", fmt.Errorf("algorithm %q does not fit the key, want one of %s", alg, strings.Join(fits, ", "))
}
