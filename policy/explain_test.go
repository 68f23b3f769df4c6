package policy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

func TestExplainTracesTheDecision(t *testing.T) {
	dir := t.TempDir()
	rego := `package ex

default allow := false

allow if {
	trace("checking the client")
	count(input.client) > 100
}

other if input.client == "other"
`
	if err := os.WriteFile(filepath.Join(dir, "ex.rego"), []byte(rego), 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := New(context.Background(), Config{Paths: []string{dir}, Decision: "ex/allow"})
	if err != nil {
		t.Fatal(err)
	}
	input := ast.MustParseTerm(`{"client": "nobody"}`).Value
	tests := []struct {
		mode, rule string
		want       []string
	}{
		{ExplainNotes, "", []string{"Note \"checking the client\"", "ex.rego:"}},
		{ExplainFails, "", []string{"Fail gt(__local", "ex.rego:7"}},
		{ExplainFull, "", []string{"Enter data.ex.allow", "Eval trace(\"checking the client\")"}},
		{ExplainFull, "ex/other", []string{"Enter data.ex.other"}},
	}
	for _, tt := range tests {
		t.Run(tt.mode+tt.rule, func(t *testing.T) {
			lines, err := e.Explain(context.Background(), tt.rule, input, tt.mode)
			if err != nil {
				t.Fatal(err)
			}
			text := strings.Join(lines, "\n")
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("trace does not contain %q:\n%s", w, text)
				}
			}
		})
	}
	if _, err := e.Explain(context.Background(), "", input, "everything"); err == nil {
		t.Error("an unknown mode was accepted")
	}
	if _, err := e.Explain(context.Background(), "ex/missing", input, ExplainFull); !errors.Is(err, ErrUnknownRule) {
		t.Errorf("unknown rule: err = %v", err)
	}
}
