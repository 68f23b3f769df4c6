package main

import (
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
)

// listen opens addr: "host:port" or "unix:///path". A unix socket is
// created with permission perm (see privately); a stale socket file left by
// a previous run is replaced, a live one is an error.
func listen(addr string, perm fs.FileMode) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix://"); ok {
		if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
			if conn, err := net.Dial("unix", path); err == nil {
				conn.Close()
				return nil, fmt.Errorf("listen %s: another process is serving on it", addr)
			}
			os.Remove(path)
		}
		l, err := privately(func() (net.Listener, error) { return net.Listen("unix", path) })
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		if err := os.Chmod(path, perm); err != nil {
			l.Close()
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		return l, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return l, nil
}
