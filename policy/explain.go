package policy

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/topdown/lineage"
)

// Explain modes, as opa eval --explain.
const (
	ExplainNotes = "notes" // trace(...) notes and the expressions around them
	ExplainFails = "fails" // the expressions that failed
	ExplainFull  = "full"  // every evaluation step
)

// Explain evaluates rule (the configured decision when empty) on input with
// a tracer and returns the trace, filtered by mode, one line per step with
// file:row locations. It is for tools: it is slow and not for Checks.
func (e *Engine) Explain(ctx context.Context, rule string, input ast.Value, mode string) ([]string, error) {
	ref := e.decision
	if rule != "" {
		var err error
		if ref, err = parseDecision(rule); err != nil {
			return nil, err
		}
		if !e.defines(ref) {
			return nil, fmt.Errorf("policy: %w", unknownRuleError{ref})
		}
	}
	var filter func([]*topdown.Event) []*topdown.Event
	switch mode {
	case ExplainNotes:
		filter = lineage.Notes
	case ExplainFails:
		filter = lineage.Fails
	case ExplainFull:
		filter = lineage.Full
	default:
		return nil, fmt.Errorf("policy: explain mode %q: expected notes, fails or full", mode)
	}
	q, err := e.prepare(ctx, ref)
	if err != nil {
		return nil, err
	}
	tracer := topdown.NewBufferTracer()
	opts := []rego.EvalOption{rego.EvalQueryTracer(tracer)}
	if input != nil {
		opts = append(opts, rego.EvalParsedInput(input))
	}
	if _, err := q.Eval(ctx, opts...); err != nil {
		return nil, fmt.Errorf("policy: explaining %v: %w", ref, err)
	}
	var buf bytes.Buffer
	topdown.PrettyTraceWithLocation(&buf, filter(*tracer))
	return strings.Split(strings.TrimRight(buf.String(), "\n"), "\n"), nil
}
