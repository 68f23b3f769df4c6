// Command claimcheck is an Envoy ext_authz sidecar that verifies bearer
// tokens and decides with Rego policy.
//
// Usage:
//
//	claimcheck serve    --config FILE          serve ext_authz gRPC and health
//	claimcheck validate --config FILE          check a config and its policy without serving
//	claimcheck check    --config FILE [flags]  make one decision and print it as JSON
//	claimcheck policy test [-v] [--coverage] PATH...
//	claimcheck token mint   --key FILE --claims JSON
//	claimcheck token keygen --alg ES256 --kid ID --private FILE --jwks FILE
//	claimcheck issuer --config FILE          serve a client-credentials token issuer
//	claimcheck issuer hash-secret < secret   print a client secret's bcrypt hash
//	claimcheck demo [--run]                  issuer, claimcheck and an API on loopback
//	claimcheck version
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

// Exit codes.
const (
	exitOK    = 0
	exitDeny  = 1 // check: the request was denied; serve: a runtime failure
	exitUsage = 2 // bad flags or configuration
)

const usage = `claimcheck — verify bearer tokens and decide with Rego, as an Envoy ext_authz sidecar.

Commands:
  serve    --config FILE           serve envoy.service.auth.v3.Authorization and grpc.health.v1.Health
  validate --config FILE           check a config file and its policy, then exit
  check    --config FILE [flags]   decide one request offline (or --server ADDR) and print JSON
  policy test [-v] [--coverage] PATH...   run Rego unit tests, as opa test does
  token mint   --key FILE --claims JSON [--ttl 1h]    sign a token (development and tests)
  token keygen --alg ES256 --kid ID --private FILE --jwks FILE
  issuer --config FILE             serve an OAuth 2.0 client-credentials token issuer
  issuer hash-secret < SECRET      print the bcrypt hash of a client secret
  demo [--run]                     run an issuer, claimcheck and a protected API on loopback
  version                          print the version

Run 'claimcheck COMMAND -h' for a command's flags.
`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "serve":
		return serveCmd(ctx, args[1:], stderr)
	case "validate":
		return validateCmd(args[1:], stdout, stderr)
	case "check":
		return checkCmd(ctx, args[1:], stdin, stdout, stderr)
	case "token":
		return tokenCmd(args[1:], stdout, stderr)
	case "policy":
		return policyCmd(ctx, args[1:], stdout, stderr)
	case "issuer":
		return issuerCmd(ctx, args[1:], stdin, stdout, stderr)
	case "demo":
		return demoCmd(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "claimcheck", version())
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "claimcheck: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

// buildVersion is set at link time, as the Dockerfile does
// (-ldflags "-X main.buildVersion=v1.2.3"); empty means the module version
// that Go recorded in the build info.
var buildVersion string

func version() string {
	if buildVersion != "" {
		return buildVersion
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
