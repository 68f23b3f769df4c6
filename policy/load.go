package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/loader"
)

// identifier matches one segment of a decision path.
var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// parseDecision turns a slash-separated rule path into a ref under data.
func parseDecision(s string) (ast.Ref, error) {
	p := strings.TrimPrefix(s, "/")
	p = strings.TrimPrefix(p, "data/")
	if p == "" || p == "data" {
		return nil, fmt.Errorf("policy: decision %q: empty rule path", s)
	}
	ref := ast.Ref{ast.DefaultRootDocument}
	for seg := range strings.SplitSeq(p, "/") {
		if !identifier.MatchString(seg) {
			return nil, fmt.Errorf("policy: decision %q: segment %q is not a Rego identifier (want slash-separated identifiers, e.g. \"claimcheck/authz/allow\")", s, seg)
		}
		ref = append(ref, ast.StringTerm(seg))
	}
	return ref, nil
}

// disabledBuiltin reports whether the built-in function name is not
// available to policies because it reaches the network.
func disabledBuiltin(name string) bool {
	switch name {
	case ast.HTTPSend.Name, ast.NetLookupIPAddr.Name:
		return true
	}
	return false
}

// capabilities returns the capabilities of this OPA version without the
// disabled built-ins.
func capabilities() *ast.Capabilities {
	caps := ast.CapabilitiesForThisVersion()
	caps.Builtins = slices.DeleteFunc(caps.Builtins, func(b *ast.Builtin) bool {
		return disabledBuiltin(b.Name)
	})
	return caps
}

// checkDisabledBuiltins reports every call to a disabled built-in. The
// compiler rejects them too, as undefined functions; this check says why.
func checkDisabledBuiltins(modules map[string]*ast.Module) ast.Errors {
	var errs ast.Errors
	check := func(op ast.Ref, loc *ast.Location) {
		if name := op.String(); disabledBuiltin(name) {
			errs = append(errs, ast.NewError(ast.CompileErr, loc,
				"%s is disabled: policies may not use network built-ins", name))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(modules)) {
		ast.NewGenericVisitor(func(x any) bool {
			switch x := x.(type) {
			case *ast.Expr:
				if x.IsCall() {
					check(x.Operator(), x.Location)
				}
			case ast.Call:
				if op, ok := x[0].Value.(ast.Ref); ok {
					check(op, x[0].Location)
				}
			}
			return false
		}).Walk(modules[name])
	}
	errs.Sort()
	return errs
}

// skipFile excludes unit-test modules, and hidden files and directories
// found while walking a directory.
func skipFile(_ string, info fs.FileInfo, depth int) bool {
	name := info.Name()
	if depth > 0 && hidden(name) {
		return true
	}
	return !info.IsDir() && strings.HasSuffix(name, "_test.rego")
}

// hidden reports whether a file or directory name is hidden.
func hidden(name string) bool { return strings.HasPrefix(name, ".") }

// load reads the modules and data files named by paths and returns them
// with their revision.
func load(paths []string) (*loader.Result, string, error) {
	if len(paths) == 0 {
		return nil, "", errors.New("policy: no paths configured")
	}
	res, err := loader.NewFileLoader().
		WithRegoVersion(ast.RegoV1).
		WithCapabilities(capabilities()).
		WithProcessAnnotation(true).
		Filtered(paths, skipFile)
	if err != nil {
		var errs loader.Errors
		if errors.As(err, &errs) {
			err = errors.Join(errs...)
		}
		return nil, "", fmt.Errorf("policy: loading: %w", err)
	}
	if len(res.Modules) == 0 {
		return nil, "", fmt.Errorf("policy: no .rego files in paths %s", strings.Join(paths, ", "))
	}
	revision, err := revisionOf(res)
	if err != nil {
		return nil, "", err
	}
	return res, revision, nil
}

// revisionOf hashes the sorted module sources and the data documents.
func revisionOf(res *loader.Result) (string, error) {
	sources := make([][]byte, 0, len(res.Modules))
	for _, m := range res.Modules {
		sources = append(sources, m.Raw)
	}
	slices.SortFunc(sources, bytes.Compare)

	h := sha256.New()
	for _, src := range sources {
		fmt.Fprintf(h, "%d\n", len(src))
		h.Write(src)
	}
	data, err := json.Marshal(res.Documents)
	if err != nil {
		return "", fmt.Errorf("policy: hashing data: %w", err)
	}
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}
