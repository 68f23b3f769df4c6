// Package demo holds the policy `claimcheck demo` runs, embedded so the
// demo works from any directory and from an installed binary.
package demo

import "embed"

// Policy is policy/authz.rego and policy/data.json (the tests stay out).
//
//go:embed policy/authz.rego policy/data.json
var Policy embed.FS
