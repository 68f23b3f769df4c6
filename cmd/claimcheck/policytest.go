package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// Exit codes of policy test, as opa test's.
const (
	testsFailed = 2
	testsNotRun = 1
)

const policyUsage = `usage: claimcheck policy test [-v] [--coverage [--threshold N]] [--run REGEX] [--format pretty|json] PATH...

Runs the Rego unit tests (rules named test_*) in the .rego files and data
files under PATH, exactly as 'opa test PATH...' does, with OPA's own test
runner. Exit status: 0 all passed, 2 a test failed or coverage is below the
threshold, 1 the policies could not be loaded or compiled.
`

func policyCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "test" {
		fmt.Fprint(stderr, policyUsage)
		return exitUsage
	}
	fs := flag.NewFlagSet("policy test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, policyUsage); fs.PrintDefaults() }
	verbose := fs.Bool("v", false, "verbose: print every test, with print() output and failure notes")
	coverage := fs.Bool("coverage", false, "report coverage as JSON (like opa test --coverage)")
	threshold := fs.Float64("threshold", 0, "fail when coverage is below this percentage (implies --coverage)")
	run := fs.String("run", "", "run only tests whose names match this regular expression")
	format := fs.String("format", "pretty", "pretty or json")
	timeout := fs.Duration("timeout", 5*time.Second, "timeout for each test")
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	if fs.NArg() == 0 || (*format != "pretty" && *format != "json") || *threshold < 0 || *threshold > 100 {
		fmt.Fprint(stderr, policyUsage)
		return exitUsage
	}
	return runPolicyTests(ctx, fs.Args(), policyTestOptions{
		verbose: *verbose, coverage: *coverage || *threshold > 0, threshold: *threshold,
		run: *run, json: *format == "json", timeout: *timeout,
	}, stdout, stderr)
}

type policyTestOptions struct {
	verbose, coverage, json bool
	threshold               float64
	run                     string
	timeout                 time.Duration
}

func runPolicyTests(ctx context.Context, paths []string, o policyTestOptions, stdout, stderr io.Writer) int {
	modules, store, err := tester.LoadWithParserOptions(paths, hidden, ast.ParserOptions{ProcessAnnotation: true})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return testsNotRun
	}
	txn, err := store.NewTransaction(ctx, storage.WriteParams)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return testsNotRun
	}
	defer store.Abort(ctx, txn)

	compiler := ast.NewCompiler().
		WithPathConflictsCheck(storage.NonEmpty(ctx, store, txn)).
		WithEnablePrintStatements(true).
		WithUseTypeCheckAnnotations(true)
	var cov *cover.Cover
	var coverTracer topdown.QueryTracer
	if o.coverage {
		cov = cover.New()
		coverTracer = cov
	}
	runner := tester.NewRunner().
		SetCompiler(compiler).
		SetStore(store).
		CapturePrintOutput(true).
		EnableTracing(o.verbose).
		StackTraces(true).
		SetCoverageQueryTracer(coverTracer).
		SetModules(modules).
		SetTimeout(o.timeout).
		Filter(o.run)

	var reporter tester.Reporter
	switch {
	case o.coverage:
		reporter = tester.JSONCoverageReporter{Cover: cov, Modules: modules, Output: stdout, Threshold: o.threshold, Verbose: o.verbose}
	case o.json:
		reporter = tester.JSONReporter{Output: stdout}
	default:
		reporter = tester.PrettyReporter{Output: stdout, Verbose: o.verbose}
	}

	ch, err := runner.RunTests(ctx, txn)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return testsNotRun
	}
	code, ran := exitOK, false
	results := make(chan *tester.Result)
	go func() {
		defer close(results)
		for r := range ch {
			ran = true
			if !r.Pass() {
				code = testsFailed
			}
			results <- r
		}
	}()
	if err := reporter.Report(results); err != nil {
		fmt.Fprintln(stderr, err)
		if _, ok := errors.AsType[*cover.CoverageThresholdError](err); ok {
			return testsFailed
		}
		return testsNotRun
	}
	if !ran {
		fmt.Fprintln(stderr, "no tests were run")
		return testsNotRun
	}
	return code
}

// hidden skips hidden files and directories, as claimcheck's policy loader does.
func hidden(_ string, info fs.FileInfo, _ int) bool {
	return len(info.Name()) > 1 && info.Name()[0] == '.'
}
