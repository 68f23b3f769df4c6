// Command bench is claimcheck's load harness: it builds and starts a real
// `claimcheck serve` with two issuers (RS256 and ES256, keys from JWKS
// files) and the quickstart policy, starts an in-process null ext_authz
// server that answers OK without doing anything, and drives both over gRPC
// with the same client, alternately, so that claimcheck's throughput and
// latency can be read against the cost of the gRPC round trip itself.
//
//	go run ./examples/bench [-duration 5s] [-rounds 2] [-concurrency 32] [-conns 4]
//
// See README.md in this directory.
package main

import (
	"bufio"
	"bytes"
	"context"
	"debug/buildinfo"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

var allScenarios = []string{"warm", "cold", "es256-cold", "deny", "notoken", "rate"}

type options struct {
	claimcheck  string
	policy      string
	duration    time.Duration
	warmup      time.Duration
	rounds      int
	concurrency int
	conns       int
	rate        float64
	coldPool    int
	scenarios   []string
	nullProcess bool
	pprof       bool
}

func main() {
	var o options
	var scenarios string
	flag.StringVar(&o.claimcheck, "claimcheck", "", "claimcheck binary to run (default: build ./cmd/claimcheck of this repository)")
	flag.StringVar(&o.policy, "policy", "", "policy directory (default: examples/quickstart/policy of this repository)")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "length of each timed run")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "untimed warm-up (warm tokens) before each timed run; 0 for none")
	flag.IntVar(&o.rounds, "rounds", 2, "timed runs per scenario and target, alternating null and claimcheck")
	flag.IntVar(&o.concurrency, "concurrency", 32, "workers, each with one Check in flight at a time")
	flag.IntVar(&o.conns, "conns", 4, "gRPC connections per target; workers are spread over them")
	flag.Float64Var(&o.rate, "rate", 0, "requests/s of the fixed-rate (open-loop) step; 0: half of claimcheck's measured warm saturation")
	flag.IntVar(&o.coldPool, "cold-pool", 0, "distinct tokens pre-minted for each cold scenario; 0: 1.2 × warm claimcheck req/s × duration × rounds")
	flag.StringVar(&scenarios, "scenarios", strings.Join(allScenarios, ","), "comma-separated scenarios to run (always in this order): "+strings.Join(allScenarios, ", "))
	flag.BoolVar(&o.pprof, "pprof", false, "serve claimcheck's /debug/pprof on its admin address (printed), to profile it under load")
	flag.BoolVar(&o.nullProcess, "null-process", false, "run the null server in a child process, so that both targets pay the same cross-process cost")
	serveNull := flag.Bool("serve-null", false, "internal: serve the null ext_authz server and print its address (used by -null-process)")
	flag.Parse()
	if *serveNull {
		os.Exit(runNullServer())
	}
	var asked []string
	for s := range strings.SplitSeq(scenarios, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !contains(allScenarios, s) {
			fmt.Fprintf(os.Stderr, "bench: unknown scenario %q (have %s)\n", s, strings.Join(allScenarios, ", "))
			os.Exit(2)
		}
		asked = append(asked, s)
	}
	for _, s := range allScenarios { // always in this order: warm first, rate last
		if contains(asked, s) {
			o.scenarios = append(o.scenarios, s)
		}
	}
	if o.rounds < 1 || o.concurrency < 1 || o.conns < 1 || o.duration <= 0 || o.rate < 0 || o.coldPool < 0 {
		fmt.Fprintln(os.Stderr, "bench: -rounds, -concurrency, -conns and -duration must be positive; -rate and -cold-pool not negative")
		os.Exit(2)
	}
	if contains(o.scenarios, "rate") && o.rate == 0 && !contains(o.scenarios, "warm") {
		fmt.Fprintln(os.Stderr, "bench: the rate step needs the warm scenario (for its saturation) or -rate")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := bench(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		stop()
		os.Exit(1)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// logf reports progress on standard error; the results go to standard output.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func bench(ctx context.Context, o options) (err error) {
	dir, err := os.MkdirTemp("", "claimcheck-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	root, rootErr := repoRoot()
	bin := o.claimcheck
	if bin == "" {
		if rootErr != nil {
			return fmt.Errorf("finding the repository to build claimcheck (or pass -claimcheck): %w", rootErr)
		}
		bin = filepath.Join(dir, "claimcheck")
		logf("building claimcheck from %s", root)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/claimcheck")
		cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build ./cmd/claimcheck: %w", err)
		}
	}
	if o.policy == "" {
		if rootErr != nil {
			return fmt.Errorf("finding the quickstart policy (or pass -policy): %w", rootErr)
		}
		o.policy = filepath.Join(root, "examples", "quickstart", "policy")
	}
	if o.policy, err = filepath.Abs(o.policy); err != nil {
		return err
	}

	// Keys: one RS256 issuer, one ES256 issuer, each with its JWKS file; and
	// a stranger's RSA key claiming the RS256 issuer's kid.
	rs, err := newRSAKey("bench-rs256", rsIssuer)
	if err != nil {
		return err
	}
	es, err := newECKey("bench-es256", esIssuer)
	if err != nil {
		return err
	}
	stranger, err := newRSAKey(rs.kid, rsIssuer)
	if err != nil {
		return err
	}
	rsJWKS, esJWKS := filepath.Join(dir, "rs256.jwks.json"), filepath.Join(dir, "es256.jwks.json")
	if err := writeJWKS(rsJWKS, rs); err != nil {
		return err
	}
	if err := writeJWKS(esJWKS, es); err != nil {
		return err
	}

	// claimcheck
	grpcAddr, err := freeAddr()
	if err != nil {
		return err
	}
	adminAddr, err := freeAddr()
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	cfg := fmt.Sprintf(`listen:
  grpc: %q
  admin: %q
  pprof: %t
issuers:
  - issuer: %s
    audiences: [%s]
    jwks_file: %s
    algorithms: [RS256]
  - issuer: %s
    audiences: [%s]
    jwks_file: %s
    algorithms: [ES256]
policy:
  paths: [%s]
  decision: claimcheck/authz/allow
forward:
  claims: {client_id: x-client-id, sub: x-subject}
  strip_token: true
log:
  level: warn
`, grpcAddr, adminAddr, o.pprof, rsIssuer, audience, rsJWKS, esIssuer, audience, esJWKS, o.policy)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return err
	}
	cc, err := startClaimcheck(ctx, bin, cfgPath, grpcAddr)
	if err != nil {
		return err
	}
	if o.pprof {
		logf("claimcheck profiles: go tool pprof http://%s/debug/pprof/profile?seconds=10", adminAddr)
	}
	defer func() {
		if stopErr := cc.stop(); stopErr != nil && err == nil {
			err = stopErr
		}
	}()

	// The null server, in this process or in a child.
	nullAddr, stopNull, err := startNull(o.nullProcess)
	if err != nil {
		return err
	}
	defer stopNull()

	targets := make([]*target, 2)
	for i, t := range []struct {
		name, addr string
		claimcheck bool
	}{{"null", nullAddr, false}, {"claimcheck", grpcAddr, true}} {
		tg := &target{name: t.name, claimcheck: t.claimcheck}
		for range o.conns {
			conn, err := grpc.NewClient("passthrough:///"+t.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				return err
			}
			defer conn.Close()
			conn.Connect()
			tg.clients = append(tg.clients, authv3.NewAuthorizationClient(conn))
		}
		targets[i] = tg
	}

	b := &benchmark{o: o, targets: targets, results: map[string]map[string]*summary{}}
	warmTokens, err := rs.mintMany(4, allowedClient)
	if err != nil {
		return err
	}
	b.warm = &scenario{name: "warm", pool: warmTokens, want: expectation{allow: true}}
	for _, name := range o.scenarios {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var sc *scenario
		switch name {
		case "warm":
			sc = b.warm
		case "cold", "es256-cold":
			key := rs
			if name == "es256-cold" {
				key = es
			}
			n := b.coldPoolSize()
			logf("%s: minting %d distinct %s tokens", name, n, key.alg)
			t0 := time.Now()
			pool, err := key.mintMany(n, allowedClient)
			if err != nil {
				return err
			}
			logf("%s: minted in %v", name, time.Since(t0).Round(time.Millisecond))
			sc = &scenario{name: name, pool: pool, distinct: true, want: expectation{allow: true}}
		case "deny":
			pool, err := stranger.mintMany(4, allowedClient)
			if err != nil {
				return err
			}
			sc = &scenario{name: name, pool: pool, want: expectation{status: 401, reason: "signature_invalid"}}
		case "notoken":
			sc = &scenario{name: name, want: expectation{status: 401, reason: "missing_token"}}
		case "rate":
			if err := b.rateStep(ctx); err != nil {
				return err
			}
			continue
		}
		if err := b.saturate(ctx, sc); err != nil {
			return err
		}
	}
	b.report(bin)
	if len(b.failures) > 0 {
		for _, f := range b.failures {
			fmt.Fprintln(os.Stderr, "FAIL:", f)
		}
		return fmt.Errorf("%d runs got answers other than expected: the numbers above are not valid", len(b.failures))
	}
	return nil
}

// benchmark holds the runs' results.
type benchmark struct {
	o       options
	targets []*target // null, claimcheck
	warm    *scenario
	order   []string
	results map[string]map[string]*summary // scenario → target → summary
	pools   []string                       // notes on the cold pools

	rateOffered float64
	rateResults map[string]*summary
	failures    []string
}

// coldPoolSize is the number of distinct tokens a cold scenario needs.
func (b *benchmark) coldPoolSize() int {
	if b.o.coldPool > 0 {
		return b.o.coldPool
	}
	if w := b.results["warm"]["claimcheck"]; w != nil {
		n := 1.2 * w.rps() * b.o.duration.Seconds() * float64(b.o.rounds)
		return int(math.Min(math.Max(math.Ceil(n), 1000), 300000))
	}
	return 50000
}

// saturate runs sc closed-loop against null and claimcheck, alternately.
func (b *benchmark) saturate(ctx context.Context, sc *scenario) error {
	b.order = append(b.order, sc.name)
	byTarget := map[string]*summary{}
	b.results[sc.name] = byTarget
	l := load{concurrency: b.o.concurrency, duration: b.o.duration}
	for round := 1; round <= b.o.rounds; round++ {
		for _, tg := range b.targets {
			if err := b.warmup(ctx, tg); err != nil {
				return err
			}
			r := run(ctx, tg, sc, l)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			b.record(sc, tg, round, r, byTarget)
		}
	}
	if s := byTarget["claimcheck"]; s != nil && sc.distinct {
		note := fmt.Sprintf("%s: pool of %d distinct tokens, %d claimcheck requests", sc.name, len(sc.pool), s.requests)
		if s.reused > 0 {
			note += fmt.Sprintf(" — the pool ran out: %d requests (%.0f%%) reused a token; raise -cold-pool", s.reused, 100*float64(s.reused)/float64(s.requests))
		} else {
			note += ", every one with a token claimcheck had not seen before"
		}
		b.pools = append(b.pools, note)
	}
	return nil
}

// rateStep measures latency at a fixed offered rate, open loop.
func (b *benchmark) rateStep(ctx context.Context) error {
	b.rateOffered = b.o.rate
	if b.rateOffered == 0 {
		b.rateOffered = math.Round(b.results["warm"]["claimcheck"].rps() / 2)
	}
	if b.rateOffered < 1 {
		return errors.New("rate step: no rate to run at")
	}
	logf("rate: %.0f req/s, open loop", b.rateOffered)
	b.rateResults = map[string]*summary{}
	l := load{concurrency: b.o.concurrency, duration: b.o.duration, rate: b.rateOffered}
	for round := 1; round <= b.o.rounds; round++ {
		for _, tg := range b.targets {
			if err := b.warmup(ctx, tg); err != nil {
				return err
			}
			r := run(ctx, tg, b.warm, l)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			b.record(b.warm, tg, round, r, b.rateResults)
		}
	}
	return nil
}

func (b *benchmark) warmup(ctx context.Context, tg *target) error {
	if b.o.warmup <= 0 {
		return nil
	}
	r := run(ctx, tg, b.warm, load{concurrency: b.o.concurrency, duration: b.o.warmup})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if f := r.failures(b.warm); f != "" {
		return fmt.Errorf("warm-up against %s: %s", tg.name, f)
	}
	return nil
}

func (b *benchmark) record(sc *scenario, tg *target, round int, r runResult, into map[string]*summary) {
	s := into[tg.name]
	if s == nil {
		s = &summary{}
		into[tg.name] = s
	}
	s.add(r)
	s.finish()
	logf("%-10s round %d/%d %-10s %9s req/s  p50 %-9s p99 %-9s (%d requests)", sc.name, round, b.o.rounds, tg.name,
		fmtRate(r.rps()), fmtDur(percentile(r.latencies, 0.50)), fmtDur(percentile(r.latencies, 0.99)), r.requests)
	if f := r.failures(sc); f != "" {
		msg := fmt.Sprintf("%s round %d against %s: %s", sc.name, round, tg.name, f)
		logf("FAIL: %s", msg)
		b.failures = append(b.failures, msg)
	}
}

// report prints the results as Markdown on standard output.
func (b *benchmark) report(bin string) {
	fmt.Println("## claimcheck load benchmark")
	fmt.Println()
	fmt.Printf("- Date: %s\n", time.Now().Format("2006-01-02 15:04 MST"))
	fmt.Printf("- Machine: %s; %d CPUs, GOMAXPROCS %d (harness and claimcheck share them)\n", cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0))
	fmt.Printf("- Go: harness %s; claimcheck %s\n", runtime.Version(), binaryInfo(bin))
	fmt.Printf("- Load: %d workers over %d gRPC connections per target; runs of %v after %v of warm-up; rounds: %d (null and claimcheck alternately)\n",
		b.o.concurrency, b.o.conns, b.o.duration, b.o.warmup, b.o.rounds)
	where := "inside the harness process"
	if b.o.nullProcess {
		where = "in its own process (-null-process)"
	}
	fmt.Printf("- Null server: %s\n", where)
	fmt.Println()
	if len(b.order) > 0 {
		t := table{header: []string{"Scenario", "Target", "req/s", "per round", "p50", "p90", "p99", "claimcheck/null"}}
		for _, name := range b.order {
			null, cc := b.results[name]["null"], b.results[name]["claimcheck"]
			for _, x := range []struct {
				name string
				s    *summary
			}{{"null", null}, {"claimcheck", cc}} {
				ratio := ""
				if x.name == "claimcheck" && null != nil && null.rps() > 0 {
					ratio = fmt.Sprintf("%.2f", x.s.rps()/null.rps())
				}
				t.add(name, x.name, fmtRate(x.s.rps()), x.s.spread(), x.s.p(0.50), x.s.p(0.90), x.s.p(0.99), ratio)
			}
		}
		fmt.Println("Saturation (closed loop: each worker sends its next Check as soon as the last one is answered):")
		fmt.Println()
		fmt.Print(t.String())
		fmt.Println()
		for _, n := range b.pools {
			fmt.Println("- " + n)
		}
		if len(b.pools) > 0 {
			fmt.Println()
		}
	}
	if b.rateResults != nil {
		how := "half of claimcheck's warm saturation throughput"
		if b.o.rate > 0 {
			how = "-rate"
		}
		fmt.Printf("Latency at a fixed rate of %s req/s (%s), warm tokens, open loop; \"sent late p99\": how far behind schedule requests went out (timer slack is ~1 ms; much more means the target did not keep up):\n\n", fmtRate(b.rateOffered), how)
		t := table{header: []string{"Load", "Target", "achieved req/s", "p50", "p90", "p99", "p99.9", "sent late p99"}}
		for _, name := range []string{"null", "claimcheck"} {
			s := b.rateResults[name]
			t.add(fmtRate(b.rateOffered)+" req/s", name, fmtRate(s.rps()), s.p(0.50), s.p(0.90), s.p(0.99), s.p(0.999), fmtDur(percentile(s.lags, 0.99)))
		}
		fmt.Print(t.String())
		fmt.Println()
	}
}

// startNull starts the null server in this process, or as a child process
// of this same program (-serve-null), and returns its address.
func startNull(child bool) (addr string, stop func(), err error) {
	if !child {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", nil, err
		}
		null := grpc.NewServer()
		authv3.RegisterAuthorizationServer(null, nullAuthorizer{})
		go null.Serve(lis)
		return lis.Addr().String(), null.Stop, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(self, "-serve-null")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("null server process: %w", err)
	}
	return strings.TrimSpace(line), stop, nil
}

// runNullServer serves the null server until SIGTERM, after printing its
// address on standard output.
func runNullServer() int {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: null server:", err)
		return 1
	}
	null := grpc.NewServer()
	authv3.RegisterAuthorizationServer(null, nullAuthorizer{})
	fmt.Println(lis.Addr().String())
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		null.Stop()
	}()
	if err := null.Serve(lis); err != nil {
		return 1
	}
	return 0
}

// nullAuthorizer answers every Check with OK and does nothing else: it
// measures the cost of the gRPC round trip and of the client.
type nullAuthorizer struct {
	authv3.UnimplementedAuthorizationServer
}

var okResponse = &authv3.CheckResponse{
	Status:       &rpcstatus.Status{},
	HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}},
}

func (nullAuthorizer) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return okResponse, nil
}

// claimcheckProcess is a running `claimcheck serve`.
type claimcheckProcess struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	done   chan struct{}
}

func startClaimcheck(ctx context.Context, bin, cfgPath, grpcAddr string) (*claimcheckProcess, error) {
	p := &claimcheckProcess{stderr: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "serve", "--config", cfgPath)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	logf("claimcheck started (pid %d) on %s; waiting for SERVING", p.cmd.Process.Pid, grpcAddr)

	conn, err := grpc.NewClient("passthrough:///"+grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		p.stop()
		return nil, err
	}
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(60 * time.Second)
	for {
		hctx, cancel := context.WithTimeout(ctx, time.Second)
		resp, err := health.Check(hctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("claimcheck exited (%v) before serving:\n%s", p.cmd.ProcessState, p.stderr)
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("claimcheck not SERVING after 60s (last: %v, %v):\n%s", resp.GetStatus(), err, p.stderr)
		}
	}
}

// stop sends SIGTERM and waits for the exit (killing it after 30 s).
func (p *claimcheckProcess) stop() error {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
			return fmt.Errorf("claimcheck did not exit within 30s of SIGTERM; killed:\n%s", p.stderr)
		}
	}
	if s := p.stderr.String(); s != "" {
		logf("claimcheck's log (level warn):\n%s", s)
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		return fmt.Errorf("claimcheck exited with status %d", code)
	}
	logf("claimcheck stopped cleanly")
	return nil
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// repoRoot is the directory of the claimcheck module's go.mod.
func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside a Go module; run from the claimcheck repository")
	}
	mod, err := os.ReadFile(gomod)
	if err != nil {
		return "", err
	}
	if !bytes.HasPrefix(mod, []byte("module github.com/claimcheck/claimcheck\n")) {
		return "", fmt.Errorf("%s is not claimcheck's go.mod", gomod)
	}
	return filepath.Dir(gomod), nil
}

// cpuModel is the first "model name" of /proc/cpuinfo, or GOARCH.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				return strings.TrimSpace(v)
			}
		}
	}
	return runtime.GOOS + "/" + runtime.GOARCH
}

// binaryInfo is the Go version and VCS revision claimcheck was built with.
func binaryInfo(bin string) string {
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		return "(unknown build)"
	}
	s := bi.GoVersion
	var rev, modified string
	for _, kv := range bi.Settings {
		switch kv.Key {
		case "vcs.revision":
			rev = kv.Value
		case "vcs.modified":
			modified = kv.Value
		}
	}
	if rev != "" {
		s += ", commit " + rev[:min(12, len(rev))]
		if modified == "true" {
			s += " (with uncommitted changes)"
		}
	}
	return s
}
