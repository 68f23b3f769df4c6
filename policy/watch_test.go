package policy

import (
	"context"
	"errors"
	"fmt"
	"github.com/claimcheck/claimcheck/extauthz/tokentest"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// versionModule is version v of a policy that allows only the client named
// like v in lower case, and says which version it is.
func versionModule(v string) string {
	return authzModule(fmt.Sprintf(`decision := {
	"allowed": input.client == %q,
	"dynamic_metadata": {"version": %q},
}`, strings.ToLower(v), v))
}

// brokenModules are versions of the policy that must never become current,
// with a piece of the error each causes.
var brokenModules = []struct {
	name, content, wantMsg string
}{
	{"parse error", authzModule("decision := ]"), "policy.rego:3: rego_parse_error"},
	{"compile error", authzModule(`decision := {"allowed": x == 1}`), "policy.rego:3: rego_unsafe_var_error"},
	{"decision rule removed", authzModule(`other := true`), "decision rule data.claimcheck.authz.decision not defined"},
}

// revisionOfFiles returns the revision of a policy made of files.
func revisionOfFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	return newEngine(t, files, authzDecision).Revision()
}

// reloads records what a Watcher reports through OnReload.
type reloads struct {
	mu   sync.Mutex
	revs []string
	errs []error
}

func (r *reloads) record(rev string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.errs = append(r.errs, err)
	} else {
		r.revs = append(r.revs, rev)
	}
}

func (r *reloads) failures() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}

func (r *reloads) successes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.revs...)
}

// eventually polls cond until it holds, failing the test after a generous
// deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// watch starts a Watcher and closes it at the end of the test.
func watch(t *testing.T, paths []string, opts ...Option) *Watcher {
	t.Helper()
	w, err := Watch(context.Background(), Config{Paths: paths, Decision: authzDecision}, opts...)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return w
}

// writeAtomic replaces path with content by a rename, as editors save.
func writeAtomic(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	writeFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// configMapVersion writes files into a new hidden version directory of dir,
// as the kubelet does for a ConfigMap volume, and returns its name.
func configMapVersion(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	v, err := os.MkdirTemp(dir, "..version-")
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		writeFile(t, filepath.Join(v, name), content)
	}
	return filepath.Base(v)
}

// policyLayout is a way of laying out and changing a one-module policy on
// disk.
type policyLayout struct {
	name string
	// create lays out content in dir and returns the path to configure.
	create func(t *testing.T, dir, content string) string
	// change replaces the module's content.
	change func(t *testing.T, dir, content string)
}

var policyLayouts = []policyLayout{
	{
		name: "directory, module rewritten in place",
		create: func(t *testing.T, dir, content string) string {
			writeFile(t, filepath.Join(dir, "policy.rego"), content)
			return dir
		},
		change: func(t *testing.T, dir, content string) { writeFile(t, filepath.Join(dir, "policy.rego"), content) },
	},
	{
		name: "directory, module replaced by a rename",
		create: func(t *testing.T, dir, content string) string {
			writeFile(t, filepath.Join(dir, "policy.rego"), content)
			return dir
		},
		change: func(t *testing.T, dir, content string) { writeAtomic(t, filepath.Join(dir, "policy.rego"), content) },
	},
	{
		name: "directory, module in a subdirectory rewritten in place",
		create: func(t *testing.T, dir, content string) string {
			if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(dir, "a", "b", "policy.rego"), content)
			return dir
		},
		change: func(t *testing.T, dir, content string) {
			writeFile(t, filepath.Join(dir, "a", "b", "policy.rego"), content)
		},
	},
	{
		// As Kubernetes updates ConfigMap volumes: policy.rego is a
		// symlink to ..data/policy.rego, and ..data a symlink to a
		// versioned directory, replaced by renaming a new symlink over it.
		name: "directory, Kubernetes ConfigMap symlink swap",
		create: func(t *testing.T, dir, content string) string {
			configMap(t, dir, content)
			return dir
		},
		change: swapConfigMap,
	},
	{
		name: "single file rewritten in place",
		create: func(t *testing.T, dir, content string) string {
			path := filepath.Join(dir, "policy.rego")
			writeFile(t, path, content)
			return path
		},
		change: func(t *testing.T, dir, content string) { writeFile(t, filepath.Join(dir, "policy.rego"), content) },
	},
	{
		name: "single file replaced by a rename",
		create: func(t *testing.T, dir, content string) string {
			path := filepath.Join(dir, "policy.rego")
			writeFile(t, path, content)
			return path
		},
		change: func(t *testing.T, dir, content string) { writeAtomic(t, filepath.Join(dir, "policy.rego"), content) },
	},
	{
		name: "single file, Kubernetes ConfigMap symlink swap",
		create: func(t *testing.T, dir, content string) string {
			configMap(t, dir, content)
			return filepath.Join(dir, "policy.rego")
		},
		change: swapConfigMap,
	},
}

// configMap lays out a ConfigMap volume in dir holding policy.rego.
func configMap(t *testing.T, dir, content string) {
	t.Helper()
	v := configMapVersion(t, dir, map[string]string{"policy.rego": content})
	if err := errors.Join(
		os.Symlink(v, filepath.Join(dir, "..data")),
		os.Symlink(filepath.Join("..data", "policy.rego"), filepath.Join(dir, "policy.rego")),
	); err != nil {
		t.Fatal(err)
	}
}

// swapConfigMap updates a volume laid out by configMap.
func swapConfigMap(t *testing.T, dir, content string) {
	t.Helper()
	old, err := os.Readlink(filepath.Join(dir, "..data"))
	if err != nil {
		t.Fatal(err)
	}
	v := configMapVersion(t, dir, map[string]string{"policy.rego": content})
	tmp := filepath.Join(dir, "..data_tmp")
	if err := errors.Join(
		os.Symlink(v, tmp),
		os.Rename(tmp, filepath.Join(dir, "..data")),
		os.RemoveAll(filepath.Join(dir, old)),
	); err != nil {
		t.Fatal(err)
	}
}

// checkVersion evaluates e for clients a and b and reports an error unless
// its answers are those of version v.
func checkVersion(ctx context.Context, e *Engine, v string) error {
	for _, client := range []string{"a", "b"} {
		got, err := e.Eval(ctx, input(fmt.Sprintf(`{"client": %q}`, client)))
		if err != nil {
			return fmt.Errorf("revision %s, client %s: %w", e.Revision(), client, err)
		}
		if marker := got.DynamicMetadata["version"]; marker != v {
			return fmt.Errorf("revision %s, client %s: version %v, want %s", e.Revision(), client, marker, v)
		}
		if want := client == strings.ToLower(v); got.Allowed != want {
			return fmt.Errorf("revision %s, client %s: Allowed = %v under version %s, want %v", e.Revision(), client, got.Allowed, v, want)
		}
	}
	return nil
}

func TestWatchFollowsChanges(t *testing.T) {
	revA := revisionOfFiles(t, map[string]string{"policy.rego": versionModule("A")})
	revB := revisionOfFiles(t, map[string]string{"policy.rego": versionModule("B")})
	for _, layout := range policyLayouts {
		t.Run(layout.name, func(t *testing.T) {
			dir := t.TempDir()
			path := layout.create(t, dir, versionModule("A"))
			logs := &tokentest.SyncBuffer{}
			got := &reloads{}
			w := watch(t, []string{path},
				WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
				OnReload(got.record))
			if err := checkVersion(t.Context(), w.Engine(), "A"); err != nil {
				t.Fatal(err)
			}

			for i, broken := range brokenModules {
				layout.change(t, dir, broken.content)
				eventually(t, "the reload of the "+broken.name+" to fail", func() bool { return len(got.failures()) > i })
				i := len(got.failures()) - 1
				if err := checkVersion(t.Context(), w.Engine(), "A"); err != nil {
					t.Errorf("after a %s: %v", broken.name, err)
				}
				if err := got.failures()[i]; !strings.Contains(err.Error(), broken.wantMsg) {
					t.Errorf("OnReload error = %q, want it to contain %q", err, broken.wantMsg)
				}
				line := logLine(logs.String(), broken.wantMsg)
				for _, want := range []string{"level=ERROR", "policy reload failed, keeping the current policy", "revision=" + revA} {
					if !strings.Contains(line, want) {
						t.Errorf("log line %q, want it to contain %q", line, want)
					}
				}
			}
			if errs := got.failures(); !errors.Is(errs[len(errs)-1], ErrUnknownRule) {
				t.Errorf("OnReload error = %v, want it to wrap ErrUnknownRule", errs[len(errs)-1])
			}

			layout.change(t, dir, versionModule("B"))
			eventually(t, "version B", func() bool { return w.Engine().Revision() == revB })
			if err := checkVersion(t.Context(), w.Engine(), "B"); err != nil {
				t.Error(err)
			}
			if revs := got.successes(); len(revs) != 1 || revs[0] != revB {
				t.Errorf("OnReload successes = %v, want [%s]", revs, revB)
			}
			if line := logLine(logs.String(), "policy reloaded"); !strings.Contains(line, "level=INFO") ||
				!strings.Contains(line, "old_revision="+revA) || !strings.Contains(line, "revision="+revB) {
				t.Errorf("log line %q, want info with old_revision=%s revision=%s", line, revA, revB)
			}
		})
	}
}

// logLine returns the first line of logs containing s.
func logLine(logs, s string) string {
	for line := range strings.Lines(logs) {
		if strings.Contains(line, s) {
			return line
		}
	}
	return ""
}

// TestWatchReloadUnderConcurrentChecks reloads the policy over and over,
// between two versions and broken ones, while goroutines evaluate it
// without pause: every answer must be that of one whole good version.
func TestWatchReloadUnderConcurrentChecks(t *testing.T) {
	const goodVersions, evaluators = 12, 4
	dir := writeFiles(t, map[string]string{
		"policy.rego": versionModule("A"),
		"data.json":   `{"unused": true}`,
	})
	revs := map[string]string{
		revisionOfFiles(t, map[string]string{"policy.rego": versionModule("A"), "data.json": `{"unused": true}`}): "A",
		revisionOfFiles(t, map[string]string{"policy.rego": versionModule("B"), "data.json": `{"unused": true}`}): "B",
	}
	got := &reloads{}
	// No evaluation timeout: a busy machine must not turn scheduling
	// delays into errors here; timeouts are tested on their own.
	w := watch(t, []string{dir}, WithEvalTimeout(0), OnReload(got.record))

	var (
		stop     = make(chan struct{})
		wg       sync.WaitGroup
		seen     [2]atomic.Int64 // evaluations under A and B
		failures atomic.Int64
		firstErr = make(chan error, 1)
	)
	for range evaluators {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				e := w.Engine()
				v, ok := revs[e.Revision()]
				if !ok {
					v = "unknown revision " + e.Revision()
				}
				if err := checkVersion(context.Background(), e, v); err != nil {
					failures.Add(1)
					select {
					case firstErr <- err:
					default:
					}
					continue
				}
				seen[v[0]-'A'].Add(1)
			}
		})
	}

	path := filepath.Join(dir, "policy.rego")
	writes := []func(*testing.T, string, string){writeFile, writeAtomic}
	for i := range goodVersions {
		current, failed := w.Engine().Revision(), len(got.failures())
		broken := brokenModules[i%len(brokenModules)]
		writes[i%2](t, path, broken.content)
		eventually(t, "the reload of the "+broken.name+" to fail", func() bool { return len(got.failures()) > failed })
		if rev := w.Engine().Revision(); rev != current {
			t.Fatalf("after a %s, revision %s is current, want %s kept", broken.name, rev, current)
		}

		v := string(rune('A' + (i+1)%2))
		writes[(i/2)%2](t, path, versionModule(v))
		eventually(t, "version "+v, func() bool { return revs[w.Engine().Revision()] == v })
	}
	close(stop)
	wg.Wait()

	if n := failures.Load(); n > 0 {
		t.Errorf("%d evaluations answered wrongly; the first: %v", n, <-firstErr)
	}
	if a, b := seen[0].Load(), seen[1].Load(); a == 0 || b == 0 {
		t.Errorf("evaluations under A: %d, under B: %d; want both", a, b)
	}
	if n := len(got.successes()); n != goodVersions {
		t.Errorf("%d reloads swapped the policy, want %d", n, goodVersions)
	}
}

func TestWatchPicksUpNewFiles(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"policy.rego": authzModule(`decision := input.client in data.clients`),
		"probe.rego":  "package probe\n\nhas_n := data.lib.deep.n == 1\n",
		"data.json":   `{"clients": ["a"]}`,
	})
	w := watch(t, []string{dir})
	allows := func(client string) bool {
		got, err := w.Engine().Eval(t.Context(), input(fmt.Sprintf(`{"client": %q}`, client)))
		return err == nil && got.Allowed
	}
	if !allows("a") || allows("b") {
		t.Fatal("before changes: want a allowed, b not")
	}

	steps := []struct {
		name  string
		apply func(t *testing.T)
		done  func() bool
	}{
		{
			name:  "data.json changed",
			apply: func(t *testing.T) { writeFile(t, filepath.Join(dir, "data.json"), `{"clients": ["b"]}`) },
			done:  func() bool { return allows("b") && !allows("a") },
		},
		{
			name:  "module added",
			apply: func(t *testing.T) { writeFile(t, filepath.Join(dir, "extra.rego"), "package extra\n\non := true\n") },
			done:  func() bool { return w.Engine().HasRule("extra/on") },
		},
		{
			name: "module added in a new subdirectory",
			apply: func(t *testing.T) {
				if err := os.MkdirAll(filepath.Join(dir, "lib", "deep"), 0o755); err != nil {
					t.Fatal(err)
				}
				writeFile(t, filepath.Join(dir, "lib", "deep", "one.rego"), "package lib\n\none := true\n")
			},
			done: func() bool { return w.Engine().HasRule("lib/one") },
		},
		{
			// Seen only by watching the subdirectory created above.
			name: "module added in that subdirectory later",
			apply: func(t *testing.T) {
				writeFile(t, filepath.Join(dir, "lib", "deep", "two.rego"), "package lib\n\ntwo := true\n")
			},
			done: func() bool { return w.Engine().HasRule("lib/two") },
		},
		{
			name:  "data file added in that subdirectory",
			apply: func(t *testing.T) { writeFile(t, filepath.Join(dir, "lib", "deep", "data.json"), `{"n": 1}`) },
			done: func() bool {
				got, err := w.Engine().EvalRule(t.Context(), "probe/has_n", nil)
				return err == nil && got.Allowed
			},
		},
	}
	for _, step := range steps {
		step.apply(t)
		eventually(t, step.name+" to be picked up", step.done)
	}
}

func TestWatchDeletedFiles(t *testing.T) {
	main := authzModule("import data.claimcheck.lib\n\ndefault decision := false\n\ndecision if lib.allowed(input.client)")
	lib := "package claimcheck.lib\n\nallowed(c) if c in data.clients\n"
	tests := []struct {
		name   string
		delete []string
		// reloads is whether the deletion gives a new policy; if not, the
		// failed reload is logged with wantMsg.
		reloads bool
		wantMsg string
		check   func(t *testing.T, e *Engine)
	}{
		{
			name:    "unused module deleted",
			delete:  []string{"extra.rego"},
			reloads: true,
			check: func(t *testing.T, e *Engine) {
				if e.HasRule("extra/on") {
					t.Error("the deleted module's rule is still defined")
				}
			},
		},
		{
			name:    "data file deleted",
			delete:  []string{"data.json"},
			reloads: true,
			check: func(t *testing.T, e *Engine) {
				if got, err := e.Eval(t.Context(), input(`{"client": "a"}`)); err != nil || got.Allowed {
					t.Errorf("Eval = %+v, %v; want a denied without data", got, err)
				}
			},
		},
		{
			name:    "module the decision needs deleted",
			delete:  []string{"lib.rego"},
			wantMsg: "main.rego:7: rego_type_error: undefined function data.claimcheck.lib.allowed",
		},
		{
			name:    "every module deleted",
			delete:  []string{"main.rego", "lib.rego", "extra.rego"},
			wantMsg: "no .rego files",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{
				"main.rego":  main,
				"lib.rego":   lib,
				"extra.rego": "package extra\n\non := true\n",
				"data.json":  `{"clients": ["a"]}`,
			})
			logs := &tokentest.SyncBuffer{}
			got := &reloads{}
			w := watch(t, []string{dir}, WithLogger(slog.New(slog.NewTextHandler(logs, nil))), OnReload(got.record))
			before := w.Engine()

			for _, name := range tt.delete {
				if err := os.Remove(filepath.Join(dir, name)); err != nil {
					t.Fatal(err)
				}
			}
			if tt.reloads {
				eventually(t, "a reload", func() bool { return w.Engine() != before })
				tt.check(t, w.Engine())
				return
			}
			eventually(t, "a failed reload", func() bool { return len(got.failures()) > 0 })
			if w.Engine() != before {
				t.Errorf("Engine changed to revision %s, want %s kept", w.Engine().Revision(), before.Revision())
			}
			if line := logLine(logs.String(), tt.wantMsg); !strings.Contains(line, "level=ERROR") {
				t.Errorf("logs = %q, want an error line containing %q", logs.String(), tt.wantMsg)
			}
			if got, err := w.Engine().Eval(t.Context(), input(`{"client": "a"}`)); err != nil || !got.Allowed {
				t.Errorf("Eval = %+v, %v; want the kept policy to allow a", got, err)
			}
		})
	}
}

func TestWatchDirectoryReplacedWhole(t *testing.T) {
	root := filepath.Join(t.TempDir(), "policy")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "policy.rego"), versionModule("A"))
	got := &reloads{}
	w := watch(t, []string{root}, OnReload(got.record))

	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the reload of the removed directory to fail", func() bool { return len(got.failures()) > 0 })
	if err := got.failures()[0]; !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OnReload error = %v, want fs.ErrNotExist", err)
	}
	if err := checkVersion(t.Context(), w.Engine(), "A"); err != nil {
		t.Fatal(err)
	}

	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "policy.rego"), versionModule("B"))
	eventually(t, "version B", func() bool { return checkVersion(t.Context(), w.Engine(), "B") == nil })

	// The new directory is watched too.
	writeFile(t, filepath.Join(root, "policy.rego"), versionModule("A"))
	eventually(t, "version A", func() bool { return checkVersion(t.Context(), w.Engine(), "A") == nil })
}

func TestWatchIgnoresUnchangedPolicy(t *testing.T) {
	dir := writeFiles(t, map[string]string{"policy.rego": versionModule("A")})
	logs := &tokentest.SyncBuffer{}
	got := &reloads{}
	w := watch(t, []string{dir},
		WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		OnReload(got.record))
	before := w.Engine()

	writeFile(t, filepath.Join(dir, "policy.rego"), versionModule("A"))
	writeFile(t, filepath.Join(dir, "notes.txt"), "not policy")
	eventually(t, "the unchanged policy to be reloaded", func() bool { return logLine(logs.String(), "policy unchanged") != "" })
	if w.Engine() != before {
		t.Error("reloading an unchanged policy replaced the Engine")
	}
	if revs, errs := got.successes(), got.failures(); len(revs)+len(errs) > 0 {
		t.Errorf("reloading an unchanged policy reported reloads %v and failures %v", revs, errs)
	}

	writeFile(t, filepath.Join(dir, "policy.rego"), versionModule("B"))
	eventually(t, "version B", func() bool { return w.Engine() != before })
	if revs := got.successes(); len(revs) != 1 {
		t.Errorf("OnReload successes = %v, want one", revs)
	}
}

func TestWatchCloseStopsReloading(t *testing.T) {
	dir := writeFiles(t, map[string]string{"policy.rego": versionModule("A")})
	closedReloads := &reloads{}
	closed, err := Watch(context.Background(), Config{Paths: []string{dir}, Decision: authzDecision}, OnReload(closedReloads.record))
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	for range 2 {
		if err := closed.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	// A watcher left open shows when the change has been seen and
	// reloaded.
	open := watch(t, []string{dir})

	writeFile(t, filepath.Join(dir, "policy.rego"), versionModule("B"))
	eventually(t, "the open watcher to reload", func() bool { return checkVersion(t.Context(), open.Engine(), "B") == nil })
	if err := checkVersion(t.Context(), closed.Engine(), "A"); err != nil {
		t.Errorf("closed watcher: %v", err)
	}
	if revs, errs := closedReloads.successes(), closedReloads.failures(); len(revs)+len(errs) > 0 {
		t.Errorf("closed watcher reported reloads %v and failures %v", revs, errs)
	}
}

func TestWatchReturnsStartErrors(t *testing.T) {
	valid := map[string]string{"policy.rego": versionModule("A")}
	tests := []struct {
		name     string
		files    map[string]string
		paths    []string // relative to the directory holding files
		decision string
		wantIs   error
		wantMsg  string
	}{
		{"bad decision", valid, nil, "a.b", nil, "is not a Rego identifier"},
		{"decision rule not defined", valid, nil, "claimcheck/authz/nope", ErrUnknownRule, "decision rule data.claimcheck.authz.nope not defined"},
		{"broken policy", map[string]string{"policy.rego": brokenModules[0].content}, nil, authzDecision, nil, brokenModules[0].wantMsg},
		{"missing path", valid, []string{"nowhere"}, authzDecision, fs.ErrNotExist, "nowhere"},
		{"no paths", valid, []string{}, authzDecision, nil, "no paths configured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, tt.files)
			paths := pathsIn(dir, tt.paths)
			w, err := Watch(context.Background(), Config{Paths: paths, Decision: tt.decision})
			if err == nil {
				w.Close()
				t.Fatal("Watch succeeded, want an error")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("Watch error = %v, want errors.Is %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Watch error = %q, want it to contain %q", err, tt.wantMsg)
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a.rego": "package claimcheck.authz\n\ndecision := ]\n",
		"b.rego": "package claimcheck.authz\n\nother := ]\n",
	})
	_, err := New(context.Background(), Config{Paths: []string{dir}, Decision: authzDecision})
	if err == nil {
		t.Fatal("New succeeded, want parse errors")
	}
	got := errorText(err)
	if strings.ContainsAny(got, "\n\t") {
		t.Errorf("errorText = %q, want one line", got)
	}
	for _, want := range []string{"a.rego:3: rego_parse_error", "b.rego:3: rego_parse_error"} {
		if !strings.Contains(got, want) {
			t.Errorf("errorText = %q, want it to contain %q", got, want)
		}
	}
}
