package policy

import "github.com/open-policy-agent/opa/v1/ast"

// inputUse is what a compiled policy reads of input: the top-level keys it
// names, or everything when it uses input whole or with a computed key.
type inputUse struct {
	all  bool
	keys map[string]bool
}

// analyseInput walks every compiled module for references to input.
func analyseInput(modules map[string]*ast.Module) inputUse {
	u := inputUse{keys: map[string]bool{}}
	for _, m := range modules {
		refs, vars := 0, 0
		ast.WalkRefs(m, func(r ast.Ref) bool {
			if !r[0].Equal(ast.InputRootDocument) {
				return false
			}
			refs++
			if len(r) == 1 {
				u.all = true
			} else if s, ok := r[1].Value.(ast.String); ok {
				u.keys[string(s)] = true
			} else {
				u.all = true
			}
			return false
		})
		ast.WalkVars(m, func(v ast.Var) bool {
			if v.Equal(ast.InputRootDocument.Value) {
				vars++
			}
			return false
		})
		// input as a bare term (passed to a function, bound to a variable)
		// shows up as a variable that is not the head of a reference.
		if vars > refs {
			u.all = true
		}
	}
	return u
}

// UsesInput reports whether the policy may read input[key]. It is false only
// when no rule can: claimcheck then skips building that part of the input.
func (e *Engine) UsesInput(key string) bool {
	return e.inputs.all || e.inputs.keys[key]
}
