package filewatch

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestABurstOfChangesIsReportedOnce(t *testing.T) {
	dir := t.TempDir()
	w, err := New("test", 300*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Add(dir); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	w.Start(func() { calls.Add(1) }, nil)

	for i := range 5 {
		write(t, filepath.Join(dir, "f"), strings.Repeat("x", i+1))
	}
	waitFor(t, "the change to be reported", func() bool { return calls.Load() > 0 })
	time.Sleep(600 * time.Millisecond) // two settle periods: no second call may come
	if n := calls.Load(); n != 1 {
		t.Errorf("changed was called %d times for one burst, want 1", n)
	}
}

func TestIrrelevantChangesAreIgnored(t *testing.T) {
	dir := t.TempDir()
	w, err := New("test", 10*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Add(dir); err != nil {
		t.Fatal(err)
	}
	var names atomic.Int32
	relevant := func(name string) bool { return filepath.Base(name) == "wanted" }
	w.Start(func() { names.Add(1) }, relevant)

	write(t, filepath.Join(dir, "other"), "x")
	write(t, filepath.Join(dir, "wanted"), "x")
	waitFor(t, "the relevant change", func() bool { return names.Load() == 1 })
	write(t, filepath.Join(dir, "other"), "y")
	time.Sleep(200 * time.Millisecond)
	if n := names.Load(); n != 1 {
		t.Errorf("changed was called %d times, want 1 (only for the relevant file)", n)
	}
}

func TestSyncAddsAndRemovesDirectories(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	w, err := New("test", 10*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	gone := filepath.Join(t.TempDir(), "gone")
	if err := w.Sync(map[string]bool{a: true, gone: true}); err != nil {
		t.Fatalf("Sync with a missing directory: %v", err)
	}
	var calls atomic.Int32
	w.Start(func() { calls.Add(1) }, nil)

	write(t, filepath.Join(a, "f"), "x")
	waitFor(t, "a change in a", func() bool { return calls.Load() == 1 })

	if err := w.Sync(map[string]bool{b: true}); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(a, "f"), "y")
	time.Sleep(200 * time.Millisecond)
	if n := calls.Load(); n != 1 {
		t.Fatalf("a change in an unwatched directory was reported (%d calls)", n)
	}
	write(t, filepath.Join(b, "f"), "x")
	waitFor(t, "a change in b", func() bool { return calls.Load() == 2 })
}

func TestSyncReportsDirectoriesItCannotWatch(t *testing.T) {
	w, err := New("thing", 10*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	file := filepath.Join(t.TempDir(), "file")
	write(t, file, "x")
	err = w.Sync(map[string]bool{filepath.Join(file, "sub"): true})
	if err == nil || !strings.HasPrefix(err.Error(), "thing: watch ") {
		t.Errorf("Sync of a path under a file = %v, want an error naming the watcher", err)
	}
}

func TestCloseStopsCallsAndIsIdempotent(t *testing.T) {
	dir := t.TempDir()
	unstarted, err := New("test", 10*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := unstarted.Close(); err != nil {
		t.Errorf("Close before Start: %v", err)
	}

	w, err := New("test", 10*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(dir); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	w.Start(func() { calls.Add(1) }, nil)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	write(t, filepath.Join(dir, "f"), "x")
	time.Sleep(100 * time.Millisecond)
	if n := calls.Load(); n != 0 {
		t.Errorf("changed called %d times after Close", n)
	}
}
