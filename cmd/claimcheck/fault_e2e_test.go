package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

// The load and fault test: sustained concurrent Checks over real gRPC
// against the real binary (built with -race when the test is) while its
// JWKS server flaps (up, hanging up, garbage, too slow, 500), the issuer's
// keys rotate and the policy file is rewritten every second (every fourth
// version broken). It asserts no wrongful allow, no crash, no goroutine
// leak, a flat heap, and that no token or secret reaches the logs.
//
// It runs when CLAIMCHECK_FAULTTEST is set: "short" (what .ci/run runs,
// about 10 s of load), "1" (60 s) or a Go duration. Run it with -v to see
// the counts.
func TestLoadAndFaults(t *testing.T) {
	load := faultTestDuration(t)
	f := newFaultRig(t, load)
	s := f.start(t)

	g0 := f.goroutines(t)
	t.Logf("serving: %d goroutines before the load", g0)

	ctx, stop := context.WithCancel(context.Background())
	var chaos sync.WaitGroup
	chaos.Go(func() { f.flapJWKS(ctx) })
	chaos.Go(func() { f.rotateKeys(ctx) })
	chaos.Go(func() { f.rewritePolicy(t, ctx) })

	conns := make([]*grpc.ClientConn, 4)
	for i := range conns {
		conns[i] = dialGRPC(t, f.grpcAddr, insecure.NewCredentials())
	}
	var workers sync.WaitGroup
	for w := range 16 {
		workers.Go(func() { f.work(ctx, conns[w%len(conns)]) })
	}

	// Heap in use after a GC, sampled through the load once it is warm.
	var heaps []uint64
	var profiles [][]byte // the first and the latest heap profile
	warm := time.Now().Add(load / 4)
	for end := time.Now().Add(load); time.Now().Before(end); time.Sleep(load / 32) {
		if time.Now().After(warm) {
			heaps = append(heaps, f.heapInuse(t))
			_, p := f.pprof(t, "heap")
			profiles = append(profiles[:min(len(profiles), 1)], []byte(p))
		}
		select {
		case err := <-s.done:
			t.Fatalf("claimcheck died under load: %v", err)
		default:
		}
	}
	stop()
	workers.Wait()
	chaos.Wait()
	for _, c := range conns {
		c.Close()
	}

	f.report(t, load)
	f.checkWrongfulAllows(t)
	if !checkHeapFlat(t, heaps) {
		saveProfiles(t, profiles)
	}
	f.checkGoroutinesReturn(t, g0)

	if code := s.stop(t); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
	for _, bad := range []string{"panic", "fatal error", "DATA RACE"} {
		if strings.Contains(s.stderr.String(), bad) {
			t.Errorf("the server log has %q", bad)
		}
	}
	f.checkSecretsNotLogged(t, s.stderr.String())
}

// faultTestDuration is how long the load runs, from CLAIMCHECK_FAULTTEST;
// it skips the test when that is unset.
func faultTestDuration(t *testing.T) time.Duration {
	v := os.Getenv("CLAIMCHECK_FAULTTEST")
	switch v {
	case "":
		t.Skip("set CLAIMCHECK_FAULTTEST=short (as .ci/run does), =1 (60 s of load) or a duration")
	case "short":
		return 10 * time.Second
	case "1":
		return time.Minute
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 5*time.Second {
		t.Fatalf("CLAIMCHECK_FAULTTEST=%q: want short, 1 or a duration of at least 5s", v)
	}
	return d
}

// rotation is how often the issuer's keys rotate.
const rotation = 2 * time.Second

// faultRig is the server under test and everything around it.
type faultRig struct {
	dir            string
	keys           []*tokentest.Key // keys[i] and keys[i+1] are published in phase i
	phase          atomic.Int32
	idp            *tokentest.JWKSServer
	hmacSecret     string
	uploadToken    string
	policyFile     string
	grpcAddr       string
	adminAddr      string
	decisions      string
	uploads        atomic.Int64
	tokens         map[string]kind // every token sent, by value
	byKind         map[kind][]string
	byKey          map[string][]string // valid, future and retired tokens by kid
	mu             sync.Mutex
	results        map[kind]*tally
	wrongful       []string
	keyed          []keyedResult // allowed Checks with a token of the rotating issuer
	policyRewrites atomic.Int32
	modes          atomic.Int32
}

// kind is a class of token, with what it may get.
type kind string

const (
	validKey    kind = "valid, published key"  // may be allowed
	futureKey   kind = "key not yet published" // allowed only once served
	retiredKey  kind = "key retired"           // allowed only until a set without it is served
	stranger    kind = "stranger's key, published kid"
	expired     kind = "expired"
	unsigned    kind = "signature stripped"
	badClient   kind = "client the policy refuses"
	hmacValid   kind = "HMAC issuer, right secret" // may be allowed
	hmacForged  kind = "HMAC issuer, wrong secret"
	noToken     kind = "no token"
	issuerA          = "https://rotating.example.com"
	issuerHMAC       = "https://shared-secret.example.com"
	goodClient       = "good-client"
	audienceAll      = "orders-api"
)

var kinds = []kind{validKey, futureKey, retiredKey, stranger, expired, unsigned, badClient, hmacValid, hmacForged, noToken}

type tally struct{ sent, allowed, denied, errors int }

// keyedResult is an allowed Check whose token was signed by a rotating key.
type keyedResult struct {
	kind       kind
	kid        string
	start, end time.Time
}

func newFaultRig(t *testing.T, load time.Duration) *faultRig {
	t.Helper()
	f := &faultRig{
		dir:     t.TempDir(),
		tokens:  map[string]kind{},
		byKind:  map[kind][]string{},
		byKey:   map[string][]string{},
		results: map[kind]*tally{},
	}
	for _, k := range kinds {
		f.results[k] = &tally{}
	}
	n := int(load/rotation) + 4
	for i := range n {
		f.keys = append(f.keys, tokentest.NewECKey(t, fmt.Sprintf("rot-%02d", i)))
	}
	f.idp = tokentest.NewJWKSServer(t, f.keys[0], f.keys[1])
	f.idp.SetIssuer(issuerA)

	f.hmacSecret = rand.Text() + rand.Text() // 52 characters, over HS256's 32 bytes
	f.uploadToken = "upload-" + rand.Text()
	writeFile(t, filepath.Join(f.dir, "hmac.secret"), f.hmacSecret)
	writeFile(t, filepath.Join(f.dir, "upload.token"), f.uploadToken)
	os.Chmod(filepath.Join(f.dir, "hmac.secret"), 0o600)

	claims := func(iss, client string, ttl time.Duration) map[string]any {
		c := tokentest.Claims(iss, audienceAll, ttl)
		c["client_id"] = client
		return c
	}
	add := func(k kind, kid, tok string) {
		f.tokens[tok] = k
		f.byKind[k] = append(f.byKind[k], tok)
		if kid != "" {
			f.byKey[kid] = append(f.byKey[kid], tok)
		}
	}
	for _, key := range f.keys {
		for range 3 {
			add(validKey, key.KID, tokentest.Mint(t, key, claims(issuerA, goodClient, time.Hour)))
		}
		strangerKey := tokentest.NewECKey(t, key.KID)
		add(stranger, "", tokentest.Mint(t, strangerKey, claims(issuerA, goodClient, time.Hour)))
		old := claims(issuerA, goodClient, time.Hour)
		old["iat"], old["exp"] = time.Now().Add(-2*time.Hour).Unix(), time.Now().Add(-time.Hour).Unix()
		add(expired, "", tokentest.Mint(t, key, old))
		signed := tokentest.Mint(t, key, claims(issuerA, goodClient, time.Hour))
		add(unsigned, "", signed[:strings.LastIndexByte(signed, '.')+1])
		add(badClient, "", tokentest.Mint(t, key, claims(issuerA, "bad-client", time.Hour)))
	}
	hmacKey := tokentest.NewKeyFrom(t, []byte(f.hmacSecret), "", "HS256")
	forgedKey := tokentest.NewKeyFrom(t, []byte(rand.Text()+rand.Text()), "", "HS256")
	for range 8 {
		add(hmacValid, "", tokentest.Mint(t, hmacKey, claims(issuerHMAC, goodClient, time.Hour)))
		add(hmacForged, "", tokentest.Mint(t, forgedKey, claims(issuerHMAC, goodClient, time.Hour)))
	}
	return f
}

// faultPolicy is version n of the policy: every version allows the good
// client and only it; every fourth is broken and must be refused.
func faultPolicy(n int) string {
	if n%4 == 3 {
		return fmt.Sprintf("package fault\n\n# version %d, broken\nallow if {{{\n", n)
	}
	return fmt.Sprintf(`package fault

# version %d
default allow := false

allow if {
	input.token.claims.client_id == %q
	not input.request.headers["x-never"]
}
`, n, goodClient)
}

// start runs the binary (built with -race when this test is).
func (f *faultRig) start(t *testing.T) *server {
	t.Helper()
	upload := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		f.uploads.Add(1)
	}))
	t.Cleanup(upload.Close)
	policyDir := filepath.Join(f.dir, "policy")
	if err := os.Mkdir(policyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	f.policyFile = filepath.Join(policyDir, "fault.rego")
	writeFile(t, f.policyFile, faultPolicy(0))
	f.decisions = filepath.Join(f.dir, "decisions.log")
	f.grpcAddr, f.adminAddr = freeAddr(t), freeAddr(t)
	config := fmt.Sprintf(`
listen: {grpc: "{{LISTEN}}", admin: %q, pprof: true}
issuers:
  - issuer: %s
    audiences: [%s]
    jwks_uri: %s
    algorithms: [ES256]
    min_refresh: 1s
    max_refresh: 2s
    fetch_timeout: 300ms
  - issuer: %s
    audiences: [%s]
    hmac_secret_file: %s
token:
  cache: {max_entries: 1000, negative_ttl: 2s}
policy: {paths: [%s], decision: fault/allow}
decision_log:
  output: %s
  upload: {url: %s, bearer_token_file: %s, min_delay: 1s, max_delay: 2s}
log: {level: debug}
`, f.adminAddr, issuerA, audienceAll, f.idp.JWKSURI(), issuerHMAC, audienceAll, filepath.Join(f.dir, "hmac.secret"),
		policyDir, f.decisions, upload.URL, filepath.Join(f.dir, "upload.token"))
	s := startBinary(t, faultBinary(t), config, f.grpcAddr)
	s.waitHealth(t, healthpb.HealthCheckResponse_SERVING)
	return s
}

// faultBinary is the claimcheck binary, with the race detector when the
// test has it, so that races under faults fail the test.
func faultBinary(t *testing.T) string {
	if raceEnabled {
		return raceBuild.binary(t)
	}
	return binary(t)
}

// flapJWKS cycles the JWKS server through its failure modes.
func (f *faultRig) flapJWKS(ctx context.Context) {
	steps := []func(){
		func() { f.idp.SetMode(tokentest.ServeKeys) },
		func() { f.idp.SetMode(tokentest.ServeHangup) },
		func() { f.idp.SetMode(tokentest.ServeKeys) },
		func() { f.idp.SetMode(tokentest.ServeGarbage) },
		func() { f.idp.SetMode(tokentest.ServeKeys) },
		func() { f.idp.SetDelay(time.Second) }, // past fetch_timeout
		func() { f.idp.SetDelay(0) },
		func() { f.idp.Fail(true) },
		func() { f.idp.Fail(false) },
	}
	for i := 0; ; i++ {
		steps[i%len(steps)]()
		f.modes.Add(1)
		if !sleep(ctx, 400*time.Millisecond) {
			break
		}
	}
	f.idp.SetMode(tokentest.ServeKeys)
	f.idp.SetDelay(0)
	f.idp.Fail(false)
}

// rotateKeys publishes keys[i] and keys[i+1] in phase i.
func (f *faultRig) rotateKeys(ctx context.Context) {
	for sleep(ctx, rotation) {
		i := int(f.phase.Load()) + 1
		if i+1 >= len(f.keys)-1 {
			return
		}
		f.idp.SetKeys(f.keys[i], f.keys[i+1])
		f.phase.Store(int32(i))
	}
}

// rewritePolicy writes a new version of the policy every second.
func (f *faultRig) rewritePolicy(t *testing.T, ctx context.Context) {
	for n := 1; sleep(ctx, time.Second); n++ {
		tokentest.WriteFileAtomic(t, f.policyFile, []byte(faultPolicy(n)))
		f.policyRewrites.Add(1)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// work sends Checks on conn until ctx is done.
func (f *faultRig) work(ctx context.Context, conn *grpc.ClientConn) {
	client := authv3.NewAuthorizationClient(conn)
	for ctx.Err() == nil {
		k := kinds[mrand.IntN(len(kinds))]
		tok, kid := f.pick(k)
		headers := map[string]string{}
		if tok != "" {
			headers["authorization"] = "Bearer " + tok
		}
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		start := time.Now()
		resp, err := client.Check(cctx, request("GET", "/orders", headers))
		end := time.Now()
		cancel()

		f.mu.Lock()
		r := f.results[k]
		r.sent++
		switch {
		case err != nil:
			r.errors++
		case resp.GetStatus().GetCode() == int32(codes.OK):
			r.allowed++
			switch k {
			case futureKey, retiredKey:
				f.keyed = append(f.keyed, keyedResult{kind: k, kid: kid, start: start, end: end})
			case validKey, hmacValid:
			default:
				f.wrongful = append(f.wrongful, fmt.Sprintf("%s allowed (reason %s)", k, reason(resp)))
			}
		default:
			r.denied++
		}
		f.mu.Unlock()
	}
}

// pick returns a token of kind k, and for rotating keys the kid it is
// signed with, relative to the current phase.
func (f *faultRig) pick(k kind) (tok, kid string) {
	i := int(f.phase.Load())
	var key *tokentest.Key
	switch k {
	case validKey:
		key = f.keys[i]
	case futureKey:
		key = f.keys[min(i+2, len(f.keys)-1)]
	case retiredKey:
		if i == 0 {
			return f.pick(validKey)
		}
		key = f.keys[mrand.IntN(i)]
	case noToken:
		return "", ""
	default:
		l := f.byKind[k]
		return l[mrand.IntN(len(l))], ""
	}
	l := f.byKey[key.KID]
	return l[mrand.IntN(len(l))], key.KID
}

// checkWrongfulAllows fails for any allow of a token that must never be
// allowed, and for allows of rotating keys that the JWKS server had not
// served yet, or had stopped serving long enough ago.
func (f *faultRig) checkWrongfulAllows(t *testing.T) {
	t.Helper()
	served := f.idp.ServedKeys()
	// Once the server has answered without a key, claimcheck may take a
	// moment to read the answer and swap its set.
	const swap = time.Second
	for _, r := range f.keyed {
		first, gone := servedWindow(served, r.kid)
		switch {
		case first.IsZero() || r.end.Before(first):
			f.wrongful = append(f.wrongful, fmt.Sprintf("%s %s allowed at %s, before the JWKS server first served it (%s)",
				r.kind, r.kid, r.end.Format(time.StampMilli), first.Format(time.StampMilli)))
		case !gone.IsZero() && r.start.After(gone.Add(swap)):
			f.wrongful = append(f.wrongful, fmt.Sprintf("%s %s allowed at %s, after the JWKS server served a set without it (%s)",
				r.kind, r.kid, r.start.Format(time.StampMilli), gone.Format(time.StampMilli)))
		}
	}
	for _, w := range f.wrongful {
		t.Errorf("WRONGFUL ALLOW: %s", w)
	}
	if len(served) < 3 {
		t.Errorf("the JWKS server served keys only %d times: the test did not exercise rotation", len(served))
	}
}

// servedWindow returns when kid was first served, and when a set without
// it was first served after that (zero when never).
func servedWindow(served []tokentest.Served, kid string) (first, gone time.Time) {
	for _, s := range served {
		has := slices.Contains(s.KIDs, kid)
		switch {
		case has && first.IsZero():
			first = s.At
		case !has && !first.IsZero():
			return first, s.At
		}
	}
	return first, time.Time{}
}

// report prints the counts.
func (f *faultRig) report(t *testing.T, load time.Duration) {
	t.Helper()
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "token\tsent\tallowed\tdenied\terrors\t")
	total := tally{}
	for _, k := range kinds {
		r := f.results[k]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t\n", k, r.sent, r.allowed, r.denied, r.errors)
		total.sent, total.allowed, total.denied, total.errors = total.sent+r.sent, total.allowed+r.allowed, total.denied+r.denied, total.errors+r.errors
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t%d\t%d\t\n", total.sent, total.allowed, total.denied, total.errors)
	tw.Flush()
	t.Logf("%s of load (%.0f Checks/s), %d JWKS mode changes, %d key sets served, %d policy rewrites, %d decision log uploads:\n%s",
		load, float64(total.sent)/load.Seconds(), f.modes.Load(), len(f.idp.ServedKeys()), f.policyRewrites.Load(), f.uploads.Load(), b.String())

	if total.errors > 0 {
		t.Errorf("%d Checks failed at the gRPC level", total.errors)
	}
	// Without allows, "no wrongful allow" would prove nothing. HMAC tokens
	// depend on nothing that flaps; a rotating key can be unknown for a
	// while when the JWKS server is down just as it rotates in.
	for k, atLeast := range map[kind]float64{hmacValid: 0.9, validKey: 0.25} {
		if r := f.results[k]; r.sent == 0 || float64(r.allowed) < atLeast*float64(r.sent) {
			t.Errorf("%s: %d of %d allowed; expected at least %.0f%%", k, r.allowed, r.sent, 100*atLeast)
		}
	}
	for _, k := range kinds {
		if f.results[k].sent == 0 {
			t.Errorf("no %s token was sent", k)
		}
	}
}

// goroutines returns the server's goroutine count, from its pprof endpoint.
func (f *faultRig) goroutines(t *testing.T) int {
	t.Helper()
	first, _ := f.pprof(t, "goroutine?debug=1")
	n, err := strconv.Atoi(strings.TrimPrefix(first, "goroutine profile: total "))
	if err != nil {
		t.Fatalf("goroutine profile starts %q", first)
	}
	return n
}

// heapInuse returns the server's HeapInuse after a garbage collection.
func (f *faultRig) heapInuse(t *testing.T) uint64 {
	t.Helper()
	_, body := f.pprof(t, "heap?gc=1&debug=1")
	for line := range strings.Lines(body) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "# HeapInuse = "); ok {
			n, err := strconv.ParseUint(v, 10, 64)
			if err == nil {
				return n
			}
		}
	}
	t.Fatal("the heap profile has no HeapInuse")
	return 0
}

// pprof fetches /debug/pprof/what from the admin listener on a connection
// of its own, and returns the first line and the whole body.
func (f *faultRig) pprof(t *testing.T, what string) (string, string) {
	t.Helper()
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + f.adminAddr + "/debug/pprof/" + what)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /debug/pprof/%s: %d %v", what, resp.StatusCode, err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	return first, string(b)
}

// checkHeapFlat: the heap late in the load is not much above where it was
// once warm. Single samples are noisy — the decision log upload buffers up
// to a few seconds of decisions between uploads — so the smallest of the
// last third is compared with the smallest of the first: a leak raises even
// the floor.
func checkHeapFlat(t *testing.T, heaps []uint64) bool {
	t.Helper()
	if len(heaps) < 9 {
		t.Errorf("only %d heap samples", len(heaps))
		return false
	}
	mib := func(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
	var s []string
	for _, h := range heaps {
		s = append(s, mib(h))
	}
	t.Logf("HeapInuse after GC through the load: %s", strings.Join(s, ", "))
	third := len(heaps) / 3
	early, late := slices.Min(heaps[:third]), slices.Min(heaps[len(heaps)-third:])
	if late > early+early/2+4<<20 {
		t.Errorf("the heap's floor grew from %s to %s under a steady load", mib(early), mib(late))
		return false
	}
	return true
}

// saveProfiles keeps the first and last heap profiles of a failed run, for
// go tool pprof -base.
func saveProfiles(t *testing.T, profiles [][]byte) {
	t.Helper()
	dir, err := os.MkdirTemp("", "claimcheck-heap")
	if err != nil || len(profiles) < 2 {
		return
	}
	first, last := filepath.Join(dir, "first.pb.gz"), filepath.Join(dir, "last.pb.gz")
	if os.WriteFile(first, profiles[0], 0o644) == nil && os.WriteFile(last, profiles[1], 0o644) == nil {
		t.Logf("heap profiles kept: go tool pprof -base %s %s", first, last)
	}
}

// checkGoroutinesReturn: once the load's connections are closed, the server
// is back to the goroutines it had before the load, give or take the idle
// keep-alive connections of its two HTTP clients (JWKS fetches, decision
// log uploads): one more each, of two goroutines. A leak per Check, per
// fetch or per reload would be hundreds.
func (f *faultRig) checkGoroutinesReturn(t *testing.T, before int) {
	t.Helper()
	const idleConns = 4
	deadline := time.Now().Add(15 * time.Second)
	var n int
	for {
		if n = f.goroutines(t); n <= before+idleConns {
			break
		}
		if time.Now().After(deadline) {
			_, dump := f.pprof(t, "goroutine?debug=1")
			t.Errorf("goroutine leak: %d goroutines before the load, %d after it:\n%s", before, n, dump)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("goroutines: %d before the load, %d after it", before, n)
}

// checkSecretsNotLogged greps the server's log and decision log for every
// token sent, the HMAC secret and the decision log upload's bearer token.
func (f *faultRig) checkSecretsNotLogged(t *testing.T, serverLog string) {
	t.Helper()
	dl, err := os.ReadFile(f.decisions)
	if err != nil {
		t.Fatal(err)
	}
	if len(dl) == 0 {
		t.Error("the decision log is empty")
	}
	secrets := map[string]string{
		"the HMAC secret":                        f.hmacSecret,
		"the HMAC secret as a JWK":               base64.RawURLEncoding.EncodeToString([]byte(f.hmacSecret)),
		"the decision log upload's bearer token": f.uploadToken,
		"a JWT (every JWT starts eyJ)":           "eyJ",
	}
	for tok, k := range f.tokens {
		secrets[fmt.Sprintf("a %s token", k)] = tok
		// The signature alone is as good as the token for a replay.
		if sig := tok[strings.LastIndexByte(tok, '.')+1:]; len(sig) > 16 {
			secrets[fmt.Sprintf("the signature of a %s token", k)] = sig
		}
	}
	lines := 0
	sc := bufio.NewScanner(strings.NewReader(serverLog))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines++
	}
	for what, secret := range secrets {
		for name, text := range map[string]string{"server log": serverLog, "decision log": string(dl)} {
			if strings.Contains(text, secret) {
				t.Errorf("%s found in the %s", what, name)
			}
		}
	}
	t.Logf("%d tokens, their signatures and the secrets not found in %d server log lines (debug level) and %d bytes of decision log",
		len(f.tokens), lines, len(dl))
}
