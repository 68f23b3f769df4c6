package policy

import (
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// inputUse is what a compiled policy reads of input, two levels deep: the
// paths it names (input.request and input.request.method), the keys it
// reads whole (input.request as a value), or everything when it uses input
// whole or with a computed key at the top.
type inputUse struct {
	all   bool
	paths map[string]bool // "request", "request.method"
	whole map[string]bool // "request": every key below it may be read
}

// analyseInput walks every compiled module for references to input.
func analyseInput(modules map[string]*ast.Module) inputUse {
	u := inputUse{paths: map[string]bool{}, whole: map[string]bool{}}
	for _, m := range modules {
		refs, vars := 0, 0
		ast.WalkRefs(m, func(r ast.Ref) bool {
			if !r[0].Equal(ast.InputRootDocument) {
				return false
			}
			refs++
			u.add(r)
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

func (u *inputUse) add(r ast.Ref) {
	if len(r) < 2 {
		u.all = true
		return
	}
	k1, ok := r[1].Value.(ast.String)
	if !ok {
		u.all = true
		return
	}
	u.paths[string(k1)] = true
	if len(r) == 2 {
		u.whole[string(k1)] = true
		return
	}
	k2, ok := r[2].Value.(ast.String)
	if !ok {
		u.whole[string(k1)] = true
		return
	}
	u.paths[string(k1)+"."+string(k2)] = true
}

// UsesInput reports whether the policy may read input at path, given as
// one or two keys ("attributes"; "request", "headers"). It is false only when
// no rule can: claimcheck then skips building that part of the input.
func (e *Engine) UsesInput(path ...string) bool {
	u := e.inputs
	switch {
	case u.all:
		return true
	case len(path) == 1:
		return u.paths[path[0]]
	case len(path) == 2:
		return u.whole[path[0]] || u.paths[strings.Join(path, ".")]
	}
	return true
}
