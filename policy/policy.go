// Package policy loads a Rego policy and evaluates the authorization decision
// for a request. Decisions have the shape used by opa-envoy-plugin: either a
// boolean or an object with an "allowed" key and optional headers, body,
// status and dynamic metadata.
package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown/print"
)

var (
	// ErrUndefined is returned by Eval when the decision rule is undefined
	// for the input.
	ErrUndefined = errors.New("decision undefined")

	// ErrBadResult is returned by Eval when the decision value does not have
	// the shape of a boolean or a decision object. It is wrapped with a
	// message naming the offending key and the expected type.
	ErrBadResult = errors.New("decision has an unexpected shape")

	// ErrUnknownRule is wrapped by the errors of New, Watch and EvalRule for
	// a decision rule that the policy does not define.
	ErrUnknownRule = errors.New("decision rule not defined in the loaded policy")
)

// unknownRuleError names the rule that is not defined; it is ErrUnknownRule.
type unknownRuleError struct {
	rule ast.Ref
}

func (e unknownRuleError) Error() string {
	return fmt.Sprintf("decision rule %v not defined in the loaded policy", e.rule)
}

func (e unknownRuleError) Is(target error) bool { return target == ErrUnknownRule }

// Policies from other sources than files (bundle*.go) are compiled with
// compile, defined after New:
//
//	compile(ctx, modules, store, decision, revision, newOptions(opts)) (*Engine, error)
//
// Its doc comment is the contract.

// Header is one HTTP header to set; several Headers with the same Key mean
// several values.
type Header struct {
	Key, Value string
}

// Config says where the policy comes from and which rule decides.
type Config struct {
	// Paths are .rego files and data .json/.yaml/.yml files, or directories
	// of them (searched recursively). Data files are placed under data the
	// way "opa eval -d" places them. Files ending in _test.rego and hidden
	// files and directories inside a directory are skipped.
	Paths []string

	// Decision is the path of the decision rule with slashes, e.g.
	// "claimcheck/authz/allow" for data.claimcheck.authz.allow. A leading
	// "/" or "data/" is allowed.
	Decision string
}

// Result is the decision for one request.
type Result struct {
	// Allowed reports whether the request is allowed.
	Allowed bool

	// Headers are added to the upstream request when the request is
	// allowed, and sent to the client when it is denied.
	Headers []Header

	// ResponseHeadersToAdd are added to the response sent back to the
	// client when the request is allowed.
	ResponseHeadersToAdd []Header

	// RequestHeadersToRemove are header names removed from the upstream
	// request when the request is allowed.
	RequestHeadersToRemove []string

	// Body is the response body sent to the client when the request is
	// denied.
	Body string

	// HTTPStatus is the status sent to the client when the request is
	// denied; 0 when the policy did not set one.
	HTTPStatus int

	// DynamicMetadata is the decision's dynamic_metadata object as plain Go
	// values: map[string]any, []any (for arrays and sets), string, bool, nil
	// and json.Number for numbers.
	DynamicMetadata map[string]any
}

// DefaultEvalTimeout is how long one evaluation may take unless
// WithEvalTimeout says otherwise.
const DefaultEvalTimeout = 100 * time.Millisecond

// Option configures an Engine or a Watcher.
type Option func(*options)

type options struct {
	logger      *slog.Logger
	evalTimeout time.Duration
	onReload    func(rev string, err error)
	network     bool
}

// newOptions applies opts over the defaults.
func newOptions(opts []Option) options {
	o := options{evalTimeout: DefaultEvalTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithNetwork lets policies call the network built-ins http.send and
// net.lookup_ip_addr, which are disabled by default so that decisions stay
// fast and local.
func WithNetwork() Option {
	return func(o *options) { o.network = true }
}

// WithLogger enables Rego print() calls and sends their output to l at info
// level, with the location of the print() call. Without a logger, print()
// calls are removed from the policy at compile time. A Watcher logs its
// reloads to l too.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithEvalTimeout bounds each evaluation by Eval, EvalRule and
// EvalInterface to d (default DefaultEvalTimeout); an evaluation still
// running then fails with an error wrapping context.DeadlineExceeded.
// Zero or less means no bound other than the caller's context.
func WithEvalTimeout(d time.Duration) Option {
	return func(o *options) { o.evalTimeout = max(d, 0) }
}

// OnReload has a Watcher call f after each reload that replaced the Engine
// (rev is the new revision, err nil) and each that failed (rev is the
// revision kept, err why). Reloads that find the policy unchanged are not
// reported. f runs on the watcher's goroutine and must not block. New
// ignores this option.
func OnReload(f func(rev string, err error)) Option {
	return func(o *options) { o.onReload = f }
}

// Engine evaluates the decision rule of a loaded policy, or other rules of
// it with EvalRule. It is safe for concurrent use.
type Engine struct {
	compiler *ast.Compiler
	store    storage.Store
	decision ast.Ref
	query    rego.PreparedEvalQuery
	revision string
	timeout  time.Duration
	logger   *slog.Logger
	caps     *ast.Capabilities
	inputs   inputUse

	mu    sync.RWMutex
	rules map[string]*ruleQuery // by EvalRule's rule argument
}

// New loads the policy and data named by cfg, compiles it and prepares the
// decision query. Policies calling network built-ins (http.send,
// net.lookup_ip_addr) are rejected unless WithNetwork is given. A decision rule the policy does not
// define is an error wrapping ErrUnknownRule.
func New(ctx context.Context, cfg Config, opts ...Option) (*Engine, error) {
	if _, err := parseDecision(cfg.Decision); err != nil {
		return nil, err
	}
	loaded, revision, err := load(cfg.Paths)
	if err != nil {
		return nil, err
	}
	return compileLoaded(ctx, loaded, revision, cfg.Decision, newOptions(opts))
}

// compileLoaded compiles policy and data read by load.
func compileLoaded(ctx context.Context, loaded *loader.Result, revision, decision string, o options) (*Engine, error) {
	store, err := loaded.StoreWithOpts(inmem.OptReturnASTValuesOnRead(true))
	if err != nil {
		return nil, fmt.Errorf("policy: data: %w", err)
	}
	return compile(ctx, loaded.ParsedModules(), store, decision, revision, o)
}

// compile is the constructor behind New for policies from any source, such
// as bundles. The contract:
//
//   - modules are parsed modules by name (the name appears in error
//     locations), parsed with ast.RegoV1 unless the source says otherwise
//     (a module's own Rego version is respected) and with the
//     capabilities() of this package, so that disabled built-ins are
//     reported as such. There must be at least one. compile does not
//     modify them.
//   - store holds the data documents. Create it with
//     inmem.NewFromObjectWithOpts(data, inmem.OptReturnASTValuesOnRead(true))
//     (AST reads keep evaluation fast); nil means no data. The Engine reads
//     it and never writes it: do not write to it afterwards.
//   - decision is the rule path in Config.Decision syntax
//     ("claimcheck/authz/allow").
//   - revision is what Engine.Revision returns; Watch compares revisions
//     to skip reloads of an unchanged policy, so it must change whenever
//     modules or data do.
//   - o comes from newOptions(opts), which applies the defaults
//     (DefaultEvalTimeout).
//
// Errors are prefixed "policy: "; compile errors carry OPA's file:line
// locations; an undefined decision rule wraps ErrUnknownRule.
func compile(ctx context.Context, modules map[string]*ast.Module, store storage.Store, decision string, revision string, o options) (*Engine, error) {
	ref, err := parseDecision(decision)
	if err != nil {
		return nil, err
	}
	if len(modules) == 0 {
		return nil, errors.New("policy: compile: no modules")
	}
	caps := capabilities()
	if o.network {
		caps = ast.CapabilitiesForThisVersion()
	} else if errs := checkDisabledBuiltins(modules); len(errs) > 0 {
		return nil, fmt.Errorf("policy: compile: %w", errs)
	}
	if store == nil {
		store = inmem.NewWithOpts(inmem.OptReturnASTValuesOnRead(true))
	}

	compiler := ast.NewCompiler().
		WithCapabilities(caps).
		WithDefaultRegoVersion(ast.RegoV1).
		WithEnablePrintStatements(o.logger != nil).
		WithUseTypeCheckAnnotations(true)
	compiler.Compile(modules)
	if compiler.Failed() {
		return nil, fmt.Errorf("policy: compile: %w", compiler.Errors)
	}

	e := &Engine{
		compiler: compiler,
		store:    store,
		decision: ref,
		revision: revision,
		timeout:  o.evalTimeout,
		caps:     caps,
		inputs:   analyseInput(compiler.Modules),
		logger:   o.logger,
		rules:    make(map[string]*ruleQuery),
	}
	if !e.defines(ref) {
		return nil, fmt.Errorf("policy: %w", unknownRuleError{ref})
	}
	if e.query, err = e.prepare(ctx, ref); err != nil {
		return nil, err
	}
	return e, nil
}

// prepare prepares the query for the rule ref.
func (e *Engine) prepare(ctx context.Context, ref ast.Ref) (rego.PreparedEvalQuery, error) {
	opts := []func(*rego.Rego){
		rego.Query(ref.String()),
		rego.Compiler(e.compiler),
		rego.Store(e.store),
		rego.Capabilities(e.caps),
		rego.SetRegoVersion(ast.RegoV1),
		rego.EnablePrintStatements(e.logger != nil),
		rego.GenerateJSON(resultValue),
	}
	if e.logger != nil {
		opts = append(opts, rego.PrintHook(printHook{e.logger}))
	}
	q, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return rego.PreparedEvalQuery{}, fmt.Errorf("policy: preparing %v: %w", ref, err)
	}
	return q, nil
}

// defines reports whether the compiled policy has rules for ref.
func (e *Engine) defines(ref ast.Ref) bool {
	return len(e.compiler.GetRulesForVirtualDocument(ref)) > 0
}

// Eval evaluates the decision rule against input. A nil input leaves input
// undefined. Evaluation stops with an error when ctx is done or the
// evaluation timeout passes.
func (e *Engine) Eval(ctx context.Context, input ast.Value) (Result, error) {
	return e.eval(ctx, e.query, e.decision, input)
}

// eval evaluates the prepared query q for the rule ref and decodes its
// result.
func (e *Engine) eval(ctx context.Context, q rego.PreparedEvalQuery, ref ast.Ref, input ast.Value) (Result, error) {
	parent := ctx
	if e.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.timeout)
		defer cancel()
	}
	// Nothing reads OPA's per-evaluation metrics; the no-op set saves a
	// map and timers on every Check.
	evalOpts := []rego.EvalOption{rego.EvalMetrics(metrics.NoOp())}
	if input != nil {
		evalOpts = append(evalOpts, rego.EvalParsedInput(input))
	}
	rs, err := q.Eval(ctx, evalOpts...)
	if err != nil {
		cerr := ctx.Err()
		switch {
		case cerr != nil && parent.Err() == nil:
			return Result{}, fmt.Errorf("policy: evaluating %v: timed out after %v: %w: %w", ref, e.timeout, cerr, err)
		case cerr != nil:
			return Result{}, fmt.Errorf("policy: evaluating %v: %w: %w", ref, cerr, err)
		}
		return Result{}, fmt.Errorf("policy: evaluating %v: %w", ref, err)
	}

	switch {
	case len(rs) == 0:
		return Result{}, fmt.Errorf("policy: %v: %w", ref, ErrUndefined)
	case len(rs) > 1:
		return Result{}, fmt.Errorf("policy: %v: %w: %d results, want 1", ref, ErrBadResult, len(rs))
	case len(rs[0].Expressions) != 1:
		return Result{}, fmt.Errorf("policy: %v: %w: %d expressions, want 1", ref, ErrBadResult, len(rs[0].Expressions))
	}
	v, ok := rs[0].Expressions[0].Value.(ast.Value)
	if !ok {
		return Result{}, fmt.Errorf("policy: %v: %w: result is %T, want an AST value", ref, ErrBadResult, rs[0].Expressions[0].Value)
	}
	res, err := decodeResult(v)
	if err != nil {
		return Result{}, fmt.Errorf("policy: %v: %w", ref, err)
	}
	return res, nil
}

// EvalInterface is like Eval for an input given as plain Go values, as
// accepted by ast.InterfaceToValue.
func (e *Engine) EvalInterface(ctx context.Context, input any) (Result, error) {
	v, err := ast.InterfaceToValue(input)
	if err != nil {
		return Result{}, fmt.Errorf("policy: converting input: %w", err)
	}
	return e.Eval(ctx, v)
}

// Revision returns a short identifier of the loaded policy: the first 12 hex
// digits of a SHA-256 over the sorted module sources and the data.
func (e *Engine) Revision() string {
	return e.revision
}

// resultValue keeps query results as AST values, so that decoding sees the
// exact Rego types (sets, numbers) instead of their JSON forms.
func resultValue(t *ast.Term, _ *rego.EvalContext) (any, error) {
	return t.Value, nil
}

// printHook sends print() output to a logger, with credentials hidden (see
// hideCredentials).
type printHook struct {
	logger *slog.Logger
}

var (
	// jwtShaped matches a compact JWS or JWE: base64url segments, the
	// first a JSON object ("eyJ"), separated by dots.
	jwtShaped = regexp.MustCompile(`eyJ[A-Za-z0-9_-]*(\.[A-Za-z0-9_-]*){2,4}`)
	// credentialHeader matches a credential-carrying header as print()
	// renders an object holding it: "cookie": "…".
	credentialHeader = regexp.MustCompile(`(?i)("(?:authorization|proxy-authorization|cookie|set-cookie)":\s*")(?:[^"\\]|\\.)*"`)
	// authScheme matches an HTTP authentication scheme and its credentials.
	authScheme = regexp.MustCompile(`(?i)\b(Basic|Bearer|Digest|Negotiate|Token)\s+[A-Za-z0-9._~+/=-]{8,}`)
)

// hideCredentials replaces what looks like a credential in print() output:
// a policy printing its input would otherwise log the token, the
// Authorization header and the cookies. A value printed on its own is
// recognised only if it is JWT-shaped or follows an authentication scheme.
func hideCredentials(s string) string {
	s = credentialHeader.ReplaceAllString(s, `${1}[hidden]"`)
	s = authScheme.ReplaceAllString(s, "$1 [hidden]")
	return jwtShaped.ReplaceAllLiteralString(s, "[token]")
}

func (h printHook) Print(pctx print.Context, msg string) error {
	ctx := pctx.Context
	if ctx == nil {
		ctx = context.Background()
	}
	h.logger.LogAttrs(ctx, slog.LevelInfo, "policy print",
		slog.String("output", hideCredentials(msg)),
		slog.String("location", pctx.Location.String()),
	)
	return nil
}
