//go:build !unix

package main

import "net"

// privately runs listen; the platform has no umask.
func privately(listen func() (net.Listener, error)) (net.Listener, error) { return listen() }
