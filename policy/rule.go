package policy

import (
	"context"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// maxCachedRules bounds the prepared queries an Engine keeps for EvalRule.
const maxCachedRules = 256

// ruleQuery is a rule's prepared query.
type ruleQuery struct {
	ref   ast.Ref
	query rego.PreparedEvalQuery
}

// EvalRule is like Eval for another rule of the same policy, named like
// Config.Decision. A rule the policy does not define is an error wrapping
// ErrUnknownRule. The query for each rule is prepared on first use and
// kept; past 256 distinct rule names, further rules are prepared on every
// call, which works but is slower.
func (e *Engine) EvalRule(ctx context.Context, rule string, input ast.Value) (Result, error) {
	e.mu.RLock()
	rq, ok := e.rules[rule]
	e.mu.RUnlock()
	if ok {
		return e.eval(ctx, rq.query, rq.ref, input)
	}

	ref, err := parseDecision(rule)
	if err != nil {
		return Result{}, err
	}
	if !e.defines(ref) {
		return Result{}, fmt.Errorf("policy: %w", unknownRuleError{ref})
	}
	rq = &ruleQuery{ref: ref, query: e.query}
	if !ref.Equal(e.decision) {
		if rq.query, err = e.prepare(ctx, ref); err != nil {
			return Result{}, err
		}
	}
	e.mu.Lock()
	if cached, ok := e.rules[rule]; ok {
		rq = cached
	} else if len(e.rules) < maxCachedRules {
		e.rules[rule] = rq
	}
	e.mu.Unlock()
	return e.eval(ctx, rq.query, rq.ref, input)
}

// HasRule reports whether the policy defines rule, named like
// Config.Decision.
func (e *Engine) HasRule(rule string) bool {
	ref, err := parseDecision(rule)
	return err == nil && e.defines(ref)
}
