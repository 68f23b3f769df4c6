package main

import (
	"os"
	"testing"
)

func TestKeepGrownStacksLeavesAnExplicitChoice(t *testing.T) {
	tests := []struct{ env, want string }{
		{"", "gcshrinkstackoff=1"},
		{"madvdontneed=1", "madvdontneed=1,gcshrinkstackoff=1"},
		{"gcshrinkstackoff=0", "gcshrinkstackoff=0"},
		{"x=1,gcshrinkstackoff=1", "x=1,gcshrinkstackoff=1"},
	}
	for _, tt := range tests {
		t.Setenv("GODEBUG", tt.env)
		keepGrownStacks()
		if got := os.Getenv("GODEBUG"); got != tt.want {
			t.Errorf("GODEBUG %q: became %q, want %q", tt.env, got, tt.want)
		}
	}
}
