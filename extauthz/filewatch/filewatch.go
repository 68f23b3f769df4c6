// Package filewatch tells its owner, once things settle, that something
// changed in the directories it watches.
//
// claimcheck re-reads several kinds of files when they change: key files,
// policy files, TLS certificates. Each watches the directories holding its
// files rather than the files themselves, so that a file replaced by a
// rename (editors' atomic save) or a symlink swapped in the same directory
// (Kubernetes ConfigMap and Secret volumes) is noticed, and each waits for
// a short quiet period so that a change made in several steps is read once,
// whole. This package is that shared loop.
package filewatch

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watcher watches directories and, after a change in one of them, calls its
// owner's function once no further change has been seen for the settle
// time. Watch errors (such as a lost event queue) are logged and treated as
// a change, since events may have been lost. Create it with New, add
// directories, then Start it; Close stops it.
type Watcher struct {
	fsw    *fsnotify.Watcher
	settle time.Duration
	what   string // for log messages, e.g. "policy"
	log    *slog.Logger

	stop    chan struct{}
	done    chan struct{}
	started bool
	once    sync.Once
	err     error // of closing fsw
}

// New returns a Watcher that waits settle after the last change. what names
// the watched thing in log messages ("policy", "keys file"); a nil log
// discards them. Nothing is watched until Add or Sync.
func New(what string, settle time.Duration, log *slog.Logger) (*Watcher, error) {
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("%s: watch: %w", what, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Watcher{fsw: fsw, settle: settle, what: what, log: log, stop: make(chan struct{}), done: make(chan struct{})}, nil
}

// Add watches dir.
func (w *Watcher) Add(dir string) error {
	if err := w.fsw.Add(dir); err != nil {
		return fmt.Errorf("%s: watch %s: %w", w.what, dir, err)
	}
	return nil
}

// Sync makes the watched directories exactly want. A directory that does
// not exist (any more) is not an error; other failures to watch are.
func (w *Watcher) Sync(want map[string]bool) error {
	have := make(map[string]bool)
	for _, d := range w.fsw.WatchList() {
		have[d] = true
		if !want[d] {
			_ = w.fsw.Remove(d) // fails when d is gone, which is fine
		}
	}
	var errs []error
	for d := range want {
		if have[d] {
			continue
		}
		if err := w.fsw.Add(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("%s: watch %s: %w", w.what, d, err))
		}
	}
	return errors.Join(errs...)
}

// Start calls changed, on one goroutine and never concurrently, each time
// things settle after a change for which relevant (nil: any) reports true.
// relevant gets the changed path. Call Start once.
func (w *Watcher) Start(changed func(), relevant func(name string) bool) {
	w.started = true
	go w.run(changed, relevant)
}

func (w *Watcher) run(changed func(), relevant func(string) bool) {
	defer close(w.done)
	t := time.NewTimer(0)
	t.Stop()
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			if relevant == nil || relevant(ev.Name) {
				t.Reset(w.settle)
			}
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			w.log.Warn(w.what+" watch error", "err", err)
			t.Reset(w.settle) // events may have been lost
		case <-t.C:
			changed()
		}
	}
}

// Close stops watching and waits for a call of changed in progress to
// return. It is safe to call more than once, and before Start.
func (w *Watcher) Close() error {
	w.once.Do(func() {
		close(w.stop)
		if err := w.fsw.Close(); err != nil {
			w.err = fmt.Errorf("%s: watch: %w", w.what, err)
		}
		if w.started {
			<-w.done
		}
	})
	return w.err
}
