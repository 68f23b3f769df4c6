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

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
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
)

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

// Option configures an Engine.
type Option func(*options)

type options struct {
	logger *slog.Logger
}

// WithLogger enables Rego print() calls and sends their output to l at info
// level, with the location of the print() call. Without a logger, print()
// calls are removed from the policy at compile time.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// Engine evaluates the decision rule of a loaded policy. It is safe for
// concurrent use.
type Engine struct {
	query    rego.PreparedEvalQuery
	decision ast.Ref
	revision string
}

// New loads the policy and data named by cfg, compiles it and prepares the
// decision query. Policies calling network built-ins (http.send,
// net.lookup_ip_addr) are rejected.
func New(ctx context.Context, cfg Config, opts ...Option) (*Engine, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}

	decision, err := parseDecision(cfg.Decision)
	if err != nil {
		return nil, err
	}

	caps := capabilities()
	loaded, err := load(cfg.Paths, caps)
	if err != nil {
		return nil, err
	}
	modules := loaded.ParsedModules()
	if errs := checkDisabledBuiltins(modules); len(errs) > 0 {
		return nil, fmt.Errorf("policy: compile: %w", errs)
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
	if len(compiler.GetRulesForVirtualDocument(decision)) == 0 {
		return nil, fmt.Errorf("policy: decision rule %v not defined in the loaded policy", decision)
	}

	revision, err := revisionOf(loaded)
	if err != nil {
		return nil, err
	}
	store, err := loaded.StoreWithOpts(inmem.OptReturnASTValuesOnRead(true))
	if err != nil {
		return nil, fmt.Errorf("policy: data: %w", err)
	}

	regoOpts := []func(*rego.Rego){
		rego.Query(decision.String()),
		rego.Compiler(compiler),
		rego.Store(store),
		rego.Capabilities(caps),
		rego.SetRegoVersion(ast.RegoV1),
		rego.EnablePrintStatements(o.logger != nil),
		rego.GenerateJSON(resultValue),
	}
	if o.logger != nil {
		regoOpts = append(regoOpts, rego.PrintHook(printHook{o.logger}))
	}
	query, err := rego.New(regoOpts...).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy: preparing %v: %w", decision, err)
	}

	return &Engine{query: query, decision: decision, revision: revision}, nil
}

// Eval evaluates the decision rule against input. A nil input leaves input
// undefined. Evaluation stops with an error when ctx is done.
func (e *Engine) Eval(ctx context.Context, input ast.Value) (Result, error) {
	var evalOpts []rego.EvalOption
	if input != nil {
		evalOpts = append(evalOpts, rego.EvalParsedInput(input))
	}
	rs, err := e.query.Eval(ctx, evalOpts...)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return Result{}, fmt.Errorf("policy: evaluating %v: %w: %w", e.decision, cerr, err)
		}
		return Result{}, fmt.Errorf("policy: evaluating %v: %w", e.decision, err)
	}

	switch {
	case len(rs) == 0:
		return Result{}, fmt.Errorf("policy: %v: %w", e.decision, ErrUndefined)
	case len(rs) > 1:
		return Result{}, fmt.Errorf("policy: %v: %w: %d results, want 1", e.decision, ErrBadResult, len(rs))
	case len(rs[0].Expressions) != 1:
		return Result{}, fmt.Errorf("policy: %v: %w: %d expressions, want 1", e.decision, ErrBadResult, len(rs[0].Expressions))
	}
	v, ok := rs[0].Expressions[0].Value.(ast.Value)
	if !ok {
		return Result{}, fmt.Errorf("policy: %v: %w: result is %T, want an AST value", e.decision, ErrBadResult, rs[0].Expressions[0].Value)
	}
	res, err := decodeResult(v)
	if err != nil {
		return Result{}, fmt.Errorf("policy: %v: %w", e.decision, err)
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

// printHook sends print() output to a logger.
type printHook struct {
	logger *slog.Logger
}

func (h printHook) Print(pctx print.Context, msg string) error {
	ctx := pctx.Context
	if ctx == nil {
		ctx = context.Background()
	}
	h.logger.LogAttrs(ctx, slog.LevelInfo, "policy print",
		slog.String("output", msg),
		slog.String("location", pctx.Location.String()),
	)
	return nil
}
