// Package examples holds claimcheck's example configurations and policies;
// its tests keep them working.
package examples

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// opaCLI finds the real opa binary. Outside CI a missing binary skips the
// test; in CI (CI set) it fails it, since .ci/run installs opa.
func opaCLI(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("opa"); err == nil {
		return p
	}
	if gopath, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "opa")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	msg := "the opa CLI is not installed: go install github.com/open-policy-agent/opa@$(go list -m -f '{{.Version}}' github.com/open-policy-agent/opa)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// policyDirs returns every directory under examples/ that holds .rego files.
func policyDirs(t *testing.T) []string {
	t.Helper()
	seen := map[string]bool{}
	var dirs []string
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".rego") && !seen[filepath.Dir(p)] {
			seen[filepath.Dir(p)] = true
			dirs = append(dirs, filepath.Dir(p))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		t.Fatal("no shipped policies found")
	}
	return dirs
}

// TestShippedPoliciesPassOPATest runs the real `opa test` on every shipped
// policy, exactly as a team would in its own CI.
func TestShippedPoliciesPassOPATest(t *testing.T) {
	opa := opaCLI(t)
	for _, dir := range policyDirs(t) {
		t.Run(dir, func(t *testing.T) {
			out, err := exec.Command(opa, "test", "--verbose", dir).CombinedOutput()
			if err != nil {
				t.Fatalf("opa test %s: %v\n%s", dir, err, out)
			}
			if !strings.Contains(string(out), "PASS") {
				t.Fatalf("opa test %s ran no tests:\n%s", dir, out)
			}
		})
	}
}
