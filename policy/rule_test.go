package policy

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// rulesPolicy has several decision rules besides the configured one.
var rulesPolicy = map[string]string{
	"authz.rego": authzModule(`decision := {"allowed": input.client == "a", "headers": {"x-rule": "decision"}}

admin := input.client == "root"

only_get if input.method == "GET"

bad_shape := "yes"`),
	"other.rego":   "package claimcheck.other\n\nallow := {\"allowed\": true, \"http_status\": 200}\n",
	"refhead.rego": "package claimcheck\n\nrefhead.x.allow := true\n",
	"data.json":    `{"claimcheck": {"flag": {"on": true}}}`,
}

func TestEvalRule(t *testing.T) {
	e := newEngine(t, rulesPolicy, authzDecision)
	tests := []struct {
		name  string
		rule  string
		input string
		want  Result
	}{
		{"configured decision rule", authzDecision, `{"client": "a"}`, Result{Allowed: true, Headers: []Header{{"x-rule", "decision"}}}},
		{"other rule of the same package allows", "claimcheck/authz/admin", `{"client": "root"}`, Result{Allowed: true}},
		{"other rule of the same package denies", "claimcheck/authz/admin", `{"client": "a"}`, Result{Allowed: false}},
		{"rule of another package", "claimcheck/other/allow", `{}`, Result{Allowed: true, HTTPStatus: 200}},
		{"leading slash and data", "/data/claimcheck/other/allow", `{}`, Result{Allowed: true, HTTPStatus: 200}},
		{"rule defined by a ref head", "claimcheck/refhead/x/allow", `{}`, Result{Allowed: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Twice: preparing the query, then from the cache.
			for i := range 2 {
				got, err := e.EvalRule(context.Background(), tt.rule, input(tt.input))
				if err != nil {
					t.Fatalf("EvalRule #%d: %v", i, err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("EvalRule #%d = %+v, want %+v", i, got, tt.want)
				}
			}
		})
	}
}

func TestEvalRuleErrors(t *testing.T) {
	e := newEngine(t, rulesPolicy, authzDecision)
	tests := []struct {
		name    string
		rule    string
		input   string
		wantIs  error
		wantNot []error
		wantMsg string
	}{
		{
			name:    "rule not defined",
			rule:    "claimcheck/authz/nope",
			wantIs:  ErrUnknownRule,
			wantMsg: "decision rule data.claimcheck.authz.nope not defined in the loaded policy",
		},
		{
			name:    "package is not a rule",
			rule:    "claimcheck/authz",
			wantIs:  ErrUnknownRule,
			wantMsg: "decision rule data.claimcheck.authz not defined",
		},
		{
			name:    "data document is not a rule",
			rule:    "claimcheck/flag/on",
			wantIs:  ErrUnknownRule,
			wantMsg: "decision rule data.claimcheck.flag.on not defined",
		},
		{
			name:    "bad rule syntax",
			rule:    "claimcheck.authz.admin",
			wantNot: []error{ErrUnknownRule},
			wantMsg: "is not a Rego identifier",
		},
		{
			name:    "defined rule undefined for the input",
			rule:    "claimcheck/authz/only_get",
			input:   `{"method": "POST"}`,
			wantIs:  ErrUndefined,
			wantNot: []error{ErrUnknownRule},
			wantMsg: "data.claimcheck.authz.only_get",
		},
		{
			name:    "result of the wrong shape",
			rule:    "claimcheck/authz/bad_shape",
			wantIs:  ErrBadResult,
			wantNot: []error{ErrUnknownRule},
			wantMsg: "data.claimcheck.authz.bad_shape: decision has an unexpected shape",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := input(`{}`)
			if tt.input != "" {
				in = input(tt.input)
			}
			got, err := e.EvalRule(context.Background(), tt.rule, in)
			if err == nil {
				t.Fatalf("EvalRule = %+v, want an error", got)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("EvalRule error = %v, want errors.Is %v", err, tt.wantIs)
			}
			for _, not := range tt.wantNot {
				if errors.Is(err, not) {
					t.Errorf("EvalRule error = %v, must not be %v", err, not)
				}
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("EvalRule error = %q, want it to contain %q", err, tt.wantMsg)
			}
		})
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	for _, rule := range []string{"claimcheck/authz/nope", "claimcheck/authz", "claimcheck/flag/on", "claimcheck.authz.admin"} {
		if _, ok := e.rules[rule]; ok {
			t.Errorf("rule %q that failed to resolve is cached", rule)
		}
	}
}

func TestHasRule(t *testing.T) {
	e := newEngine(t, rulesPolicy, authzDecision)
	tests := []struct {
		rule string
		want bool
	}{
		{authzDecision, true},
		{"claimcheck/authz/admin", true},
		{"/data/claimcheck/other/allow", true},
		{"claimcheck/refhead/x/allow", true},
		{"claimcheck/authz/nope", false},
		{"claimcheck/authz", false},
		{"claimcheck/flag/on", false},
		{"claimcheck.authz.admin", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := e.HasRule(tt.rule); got != tt.want {
			t.Errorf("HasRule(%q) = %v, want %v", tt.rule, got, tt.want)
		}
	}
}

// manyRules returns a policy whose rules r0 … r{n-1} each allow only the
// client of the same name.
func manyRules(n int) map[string]string {
	var b strings.Builder
	b.WriteString("decision := false\n")
	for i := range n {
		fmt.Fprintf(&b, "r%d := input.client == \"r%d\"\n", i, i)
	}
	return map[string]string{"policy.rego": authzModule(b.String())}
}

func TestEvalRuleCacheIsBounded(t *testing.T) {
	const n = maxCachedRules + 20
	e := newEngine(t, manyRules(n), authzDecision)
	for round := range 2 {
		for i := range n {
			rule := fmt.Sprintf("claimcheck/authz/r%d", i)
			got, err := e.EvalRule(context.Background(), rule, input(fmt.Sprintf(`{"client": "r%d"}`, i)))
			if err != nil || !got.Allowed {
				t.Fatalf("round %d: EvalRule(%s) = %+v, %v; want allowed", round, rule, got, err)
			}
		}
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	if len(e.rules) != maxCachedRules {
		t.Errorf("%d rules cached, want %d", len(e.rules), maxCachedRules)
	}
}

func TestEvalRuleIsSafeForConcurrentUse(t *testing.T) {
	const rules, goroutines = 16, 8
	e := newEngine(t, manyRules(rules), authzDecision)
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*rules*2)
	for g := range goroutines {
		wg.Go(func() {
			// Every goroutine asks for every rule, in different orders, so
			// that first preparations race each other and cached lookups.
			for i := range rules {
				r := (g + i) % rules
				for _, client := range []int{r, r + 1} {
					got, err := e.EvalRule(context.Background(), fmt.Sprintf("claimcheck/authz/r%d", r), input(fmt.Sprintf(`{"client": "r%d"}`, client)))
					if err != nil {
						errs <- err
						continue
					}
					if want := client == r; got.Allowed != want {
						errs <- fmt.Errorf("rule r%d, client r%d: Allowed = %v, want %v", r, client, got.Allowed, want)
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
