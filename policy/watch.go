package policy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/loader"

	"github.com/claimcheck/claimcheck/extauthz/filewatch"
)

// reloadDelay is how long a Watcher waits after the last change it saw
// before reloading, so that a change made in several steps (several files,
// or a file written in several writes) is loaded once, whole.
const reloadDelay = 100 * time.Millisecond

// Watcher keeps an Engine current with the policy files it was loaded from.
// Changes are seen through the directories: every directory under a
// configured directory (including ones created later), and the directory
// holding each configured path, so that files replaced by a rename
// (editors' atomic save), Kubernetes ConfigMap volumes (whose ..data
// symlink is swapped) and a configured directory that is deleted and
// created again are all noticed. A change that does not load or compile
// keeps the current Engine. Watcher is safe for concurrent use.
type Watcher struct {
	engine   atomic.Pointer[Engine]
	build    buildFunc
	roots    []string // absolute
	log      *slog.Logger
	onReload func(rev string, err error)

	fw     *filewatch.Watcher
	ctx    context.Context // for reloads; cancelled by Close
	cancel context.CancelFunc

	dirRoots map[string]bool // roots that were directories at the last sync; owned by the watcher's goroutine
	once     sync.Once
	err      error // of closing fw
}

// buildFunc loads and compiles the policy. It returns nil and no error if
// the policy's revision is current.
type buildFunc func(ctx context.Context, current string) (*Engine, error)

// Watch loads the policy like New and keeps it current as its files change,
// until Close. An error loading it at first is returned; later, a change
// that fails to load or compile is logged (at error level, with the file
// and line OPA reports) and keeps the current Engine, and a change to a
// policy with a new revision replaces the Engine. ctx bounds the first load
// only.
func Watch(ctx context.Context, cfg Config, opts ...Option) (*Watcher, error) {
	if _, err := parseDecision(cfg.Decision); err != nil {
		return nil, err
	}
	if len(cfg.Paths) == 0 {
		return nil, errors.New("policy: no paths configured")
	}
	o := newOptions(opts)
	build := func(ctx context.Context, current string) (*Engine, error) {
		loaded, revision, err := load(cfg.Paths)
		if err != nil || revision == current {
			return nil, err
		}
		return compileLoaded(ctx, loaded, revision, cfg.Decision, o)
	}
	roots := make([]string, 0, len(cfg.Paths))
	for _, p := range cfg.Paths {
		_, p = loader.SplitPrefix(p)
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("policy: watch %s: %w", p, err)
		}
		roots = append(roots, abs)
	}
	return newWatcher(ctx, roots, build, o)
}

// newWatcher builds the first Engine and watches roots, files or
// directories, to rebuild it on changes.
func newWatcher(ctx context.Context, roots []string, build buildFunc, o options) (*Watcher, error) {
	log := o.logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	fw, err := filewatch.New("policy", reloadDelay, log)
	if err != nil {
		return nil, err
	}
	w := &Watcher{
		build:    build,
		roots:    roots,
		log:      log,
		onReload: o.onReload,
		fw:       fw,
	}
	// Watch first, so that a change during the first load is not missed.
	if err := w.sync(); err != nil {
		fw.Close()
		return nil, err
	}
	e, err := build(ctx, "")
	if err != nil {
		fw.Close()
		return nil, err
	}
	w.engine.Store(e)
	w.ctx, w.cancel = context.WithCancel(context.WithoutCancel(ctx))
	fw.Start(w.reload, w.relevant)
	return w, nil
}

// Engine returns the current Engine. An evaluation started on it finishes
// on it even if a reload replaces it meanwhile.
func (w *Watcher) Engine() *Engine {
	return w.engine.Load()
}

// Close stops watching. Engine keeps returning the last Engine.
func (w *Watcher) Close() error {
	w.once.Do(func() {
		w.cancel()
		w.err = w.fw.Close()
	})
	return w.err
}

// reload watches new directories, rebuilds the Engine and makes it current
// if it has a new revision.
func (w *Watcher) reload() {
	if err := w.sync(); err != nil {
		w.log.Warn("policy watch incomplete", "err", err)
	}
	cur := w.engine.Load()
	e, err := w.build(w.ctx, cur.Revision())
	switch {
	case err != nil && w.ctx.Err() != nil:
		return // closing
	case err != nil:
		w.log.Error("policy reload failed, keeping the current policy",
			"revision", cur.Revision(), "err", errorText(err))
		w.report(cur.Revision(), err)
	case e == nil:
		w.log.Debug("policy unchanged", "revision", cur.Revision())
	default:
		w.engine.Store(e)
		w.log.Info("policy reloaded", "old_revision", cur.Revision(), "revision", e.Revision())
		w.report(e.Revision(), nil)
	}
}

func (w *Watcher) report(rev string, err error) {
	if w.onReload != nil {
		w.onReload(rev, err)
	}
}

// relevant reports whether a change to the file or directory name may
// change the policy: name is a root or under a root that is a directory,
// or beside a root that is not (such as a ConfigMap's ..data symlink).
func (w *Watcher) relevant(name string) bool {
	for _, r := range w.roots {
		if name == r || within(r, name) || (!w.dirRoots[r] && filepath.Dir(name) == filepath.Dir(r)) {
			return true
		}
	}
	return false
}

// within reports whether path is strictly inside dir.
func within(dir, path string) bool {
	return strings.HasPrefix(path, strings.TrimSuffix(dir, string(filepath.Separator))+string(filepath.Separator))
}

// sync makes the directories watched those that watchDirs finds now. Errors
// other than a directory vanishing meanwhile are returned.
func (w *Watcher) sync() error {
	want, dirRoots := watchDirs(w.roots)
	w.dirRoots = dirRoots
	return w.fw.Sync(want)
}

// watchDirs returns the directories to watch for roots, and which roots are
// directories. The directory holding each root is watched, and every
// directory the loader would read under a root that is a directory:
// symlinks to directories are followed, hidden directories skipped.
func watchDirs(roots []string) (dirs, dirRoots map[string]bool) {
	dirs = make(map[string]bool)
	dirRoots = make(map[string]bool)
	seen := make(map[string]bool) // real paths, against symlink loops
	var walk func(dir string)
	walk = func(dir string) {
		real, err := filepath.EvalSymlinks(dir)
		if err != nil || seen[real] {
			return
		}
		seen[real] = true
		dirs[dir] = true
		entries, err := os.ReadDir(dir)
		if err != nil {
			return
		}
		for _, ent := range entries {
			if hidden(ent.Name()) {
				continue
			}
			p := filepath.Join(dir, ent.Name())
			isDir := ent.IsDir()
			if ent.Type()&fs.ModeSymlink != 0 {
				info, err := os.Stat(p)
				isDir = err == nil && info.IsDir()
			}
			if isDir {
				walk(p)
			}
		}
	}
	for _, r := range roots {
		dirs[filepath.Dir(r)] = true
		if info, err := os.Stat(r); err == nil && info.IsDir() {
			dirRoots[r] = true
			walk(r)
		}
	}
	return dirs, dirRoots
}

// errorText returns err's message on one line: the lines of OPA's
// multi-error messages are joined with "; " and the source excerpts they
// carry are dropped, keeping each error's file:line.
func errorText(err error) string {
	var b strings.Builder
	for line := range strings.Lines(err.Error()) {
		line = strings.TrimRight(line, "\r\n")
		if line == "" || strings.HasPrefix(line, "\t") {
			continue
		}
		if b.Len() > 0 {
			if strings.HasSuffix(b.String(), ":") {
				b.WriteString(" ")
			} else {
				b.WriteString("; ")
			}
		}
		b.WriteString(line)
	}
	return b.String()
}
