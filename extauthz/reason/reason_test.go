package reason_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/claimcheck/claimcheck/extauthz/reason"
	cctoken "github.com/claimcheck/claimcheck/extauthz/token"
)

// codeConstants returns the values of the string constants reason.go declares.
func codeConstants(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "reason.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, sp := range g.Specs {
			for i, n := range sp.(*ast.ValueSpec).Names {
				lit, ok := sp.(*ast.ValueSpec).Values[i].(*ast.BasicLit)
				if ok && n.IsExported() {
					v, _ := strconv.Unquote(lit.Value)
					out = append(out, v)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestTableHoldsEveryCode: the exported constants and the table are the same
// set, with a status fitting each code.
func TestTableHoldsEveryCode(t *testing.T) {
	consts, all := codeConstants(t), reason.All()
	if !slices.Equal(consts, all) {
		t.Errorf("constants %v\ntable     %v", consts, all)
	}
	for _, c := range all {
		info, _ := reason.Lookup(c)
		switch {
		case c == reason.Allowed:
			if info.Status != 200 {
				t.Errorf("%s: status %d", c, info.Status)
			}
		case info.Status < 400 || info.Status > 599 || info.OAuthError == "":
			t.Errorf("%s: status %d, OAuth error %q: a deny needs a 4xx or 5xx and an error", c, info.Status, info.OAuthError)
		}
	}
	if _, ok := reason.Lookup("made_up"); ok {
		t.Error("Lookup found a code that is not in the table")
	}
	if reason.Of("made_up") != reason.Of(reason.Internal) {
		t.Error("an unknown code is not answered as internal_error")
	}
}

// TestTokenCodesAreInTheTable: every code token.Reason can return.
func TestTokenCodesAreInTheTable(t *testing.T) {
	for _, c := range cctoken.Reasons() {
		if _, ok := reason.Lookup(c); !ok {
			t.Errorf("token.Reason can return %q, which the table lacks", c)
		}
	}
}

// TestREADMEDocumentsEveryCode: the README's reason-code table lists every
// code, and nothing else.
func TestREADMEDocumentsEveryCode(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	start := strings.Index(s, "\n## Responses and reason codes")
	if start < 0 {
		t.Fatal(`README has no "Responses and reason codes" section`)
	}
	section := s[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	documented := map[string]bool{}
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first := strings.Split(line, "|")[1]
		for _, m := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(first, -1) {
			documented[m[1]] = true
		}
	}
	for _, c := range reason.All() {
		if !documented[c] {
			t.Errorf("README's reason-code table does not list %q", c)
		}
		delete(documented, c)
	}
	for c := range documented {
		t.Errorf("README's reason-code table lists %q, which is not a code", c)
	}
}

// TestNoReasonLiteralsOutsideTheTable: no non-test Go file sets a Decision's
// Reason, or calls Refuse, with a string literal: every code comes from this
// package, so the table is every code the program can answer with.
func TestNoReasonLiteralsOutsideTheTable(t *testing.T) {
	root := "../.."
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || strings.HasSuffix(path, filepath.Join("reason", "reason.go")) {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.KeyValueExpr:
				if k, ok := n.Key.(*ast.Ident); ok && k.Name == "Reason" && isString(n.Value) {
					t.Errorf("%s: Reason: %s", path, n.Value.(*ast.BasicLit).Value)
				}
			case *ast.AssignStmt:
				for i, l := range n.Lhs {
					if sel, ok := l.(*ast.SelectorExpr); ok && sel.Sel.Name == "Reason" && i < len(n.Rhs) && isString(n.Rhs[i]) {
						t.Errorf("%s: .Reason = %s", path, n.Rhs[i].(*ast.BasicLit).Value)
					}
				}
			case *ast.CallExpr:
				// a.denial(code, desc) and a.Refuse(ctx, req, code, desc).
				sel, ok := n.Fun.(*ast.SelectorExpr)
				switch {
				case ok && sel.Sel.Name == "denial" && len(n.Args) == 2 && isString(n.Args[0]):
					t.Errorf("%s: denial(%s, …)", path, n.Args[0].(*ast.BasicLit).Value)
				case ok && sel.Sel.Name == "Refuse" && len(n.Args) == 4 && isString(n.Args[2]):
					t.Errorf("%s: Refuse(…, %s, …)", path, n.Args[2].(*ast.BasicLit).Value)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func isString(e ast.Expr) bool {
	lit, ok := e.(*ast.BasicLit)
	return ok && lit.Kind == token.STRING
}
