//go:build race

package main

// raceEnabled: the tests run with -race, and so does the binary the fault
// test builds.
const raceEnabled = true
