//go:build unix

package main

import (
	"net"
	"syscall"
)

// privately runs listen with umask 0177, so that a unix socket is born
// owner-only and no other user can connect before it is given its mode.
// The umask is process-wide: files other goroutines create meanwhile are
// only ever more private than asked.
func privately(listen func() (net.Listener, error)) (net.Listener, error) {
	old := syscall.Umask(0o177)
	defer syscall.Umask(old)
	return listen()
}
