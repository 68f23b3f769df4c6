package main

import (
	"net"
	"os"
	"testing"
)

func TestListenRefusesASocketInUse(t *testing.T) {
	path := "unix://" + t.TempDir() + "/cc.sock"
	l, err := listen(path, 0o660)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := listen(path, 0o660); err == nil {
		t.Fatal("a second Listen on a live socket succeeded")
	}
}

func TestListenReplacesAStaleSocket(t *testing.T) {
	path := t.TempDir() + "/cc.sock"
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("test setup: stale socket missing: %v", err)
	}
	l2, err := listen("unix://"+path, 0o660)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	l2.Close()
}
