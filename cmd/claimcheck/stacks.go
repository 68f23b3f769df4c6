package main

import (
	"os"
	"strings"
)

// keepGrownStacks turns off the Go runtime's shrinking of goroutine stacks
// (GODEBUG=gcshrinkstackoff=1) unless GODEBUG already says either way.
// OPA's evaluation needs a deep stack; the garbage collector halves the
// stacks of idle gRPC workers and the next Check grows them again by
// copying — about a tenth of the server's CPU under load, and a third
// without the workers (see README "Speed"). The cost is memory: each
// goroutine keeps the largest stack it has needed.
func keepGrownStacks() {
	cur := os.Getenv("GODEBUG")
	if strings.Contains(cur, "gcshrinkstackoff=") {
		return
	}
	v := "gcshrinkstackoff=1"
	if cur != "" {
		v = cur + "," + v
	}
	os.Setenv("GODEBUG", v) // the runtime re-reads GODEBUG when it is set
}
