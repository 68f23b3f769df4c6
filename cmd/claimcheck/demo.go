package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/claimcheck/claimcheck/examples/demo"
	"github.com/claimcheck/claimcheck/extauthz/config"
)

// demoClient is one OAuth client of the demo. Allowed must match the
// allowlist in examples/demo/policy/data.json; --run proves it does.
type demoClient struct {
	id      string
	allowed bool   // on the policy's client_id allowlist
	format  string // the issuer's token_format for it
	secret  string // random per run
}

// demoClients are the demo's clients, in the order the steps use them:
// JWTs, then opaque tokens, which claimcheck introspects at the issuer.
func demoClients() []*demoClient {
	return []*demoClient{
		{id: "service-client-id", allowed: true, format: config.TokenFormatJWT},
		{id: "some-other-client", allowed: false, format: config.TokenFormatJWT},
		{id: "opaque-service-id", allowed: true, format: config.TokenFormatOpaque},
		{id: "opaque-other-client", allowed: false, format: config.TokenFormatOpaque},
	}
}

// demoIntrospector is claimcheck's own client at the demo issuer: it may
// introspect the opaque tokens and gets none.
const demoIntrospector = "claimcheck"

// demoPorts are the demo's fixed loopback ports; a busy one is replaced by
// a free one.
var demoPorts = struct{ issuer, grpc, http, admin, api int }{9500, 9501, 9502, 9503, 9504}

const demoAudience = "orders-api"

func demoCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	run := fs.Bool("run", false, "perform the printed steps over HTTP and gRPC, print each status, exit 0 only if all are as expected")
	verbose := fs.Bool("verbose", false, "log the issuer's and claimcheck's info lines (default: warnings only)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: claimcheck demo [--run] [--verbose]")
		return exitUsage
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	d, err := startDemo(ctx, demoClients(), log)
	if d != nil {
		defer d.stop()
	}
	if err != nil {
		fmt.Fprintf(stderr, "claimcheck demo: %v\n", err)
		return exitDeny
	}
	if *run {
		if !d.selftest(ctx, stdout) {
			return exitDeny
		}
		return exitOK
	}
	d.printGuide(stdout)
	<-ctx.Done()
	fmt.Fprintln(stdout, "\ndemo: stopping")
	return exitOK
}

// demoRun is a running demo: everything it started, to stop.
type demoRun struct {
	dir         string
	issuerURL   string
	apiURL      string
	grpcAddr    string
	authURL     string
	adminURL    string
	clients     []*demoClient
	introSecret string // demoIntrospector's secret
	app         *app
	servers     *servers
	https       []*http.Server
}

// startDemo starts the issuer, claimcheck (gRPC and forward-auth, through
// serve's own startServers) and the protected API, and waits until
// claimcheck has the issuer's keys. On error, what started is in the result.
func startDemo(ctx context.Context, clients []*demoClient, log *slog.Logger) (*demoRun, error) {
	dir, err := os.MkdirTemp("", "claimcheck-demo-")
	if err != nil {
		return nil, err
	}
	d := &demoRun{dir: dir, clients: clients}

	issuerL, err := demoListen(demoPorts.issuer)
	if err != nil {
		return d, err
	}
	d.issuerURL = "http://" + issuerL.Addr().String()
	icfg, err := d.writeIssuerConfig()
	if err != nil {
		return d, err
	}
	is, err := newIssuer(icfg, log.With("component", "issuer"))
	if err != nil {
		return d, err
	}
	d.serve(issuerL, is, log)

	ccfg, err := d.writeClaimcheckConfig()
	if err != nil {
		return d, err
	}
	clog := log.With("component", "claimcheck")
	if d.app, err = build(ctx, ccfg, clog, buildOptions{}); err != nil {
		return d, err
	}
	if d.servers, err = startServers(ccfg, d.app, clog); err != nil {
		return d, err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if !d.app.waitReady(wctx) {
		_, why := d.app.readiness()
		return d, fmt.Errorf("claimcheck not ready: %s", why)
	}
	d.servers.grpc.SetReady(true)

	upstreamL, err := demoListen(0)
	if err != nil {
		return d, err
	}
	d.serve(upstreamL, http.HandlerFunc(ordersAPI), log)
	apiL, err := demoListen(demoPorts.api)
	if err != nil {
		return d, err
	}
	d.apiURL = "http://" + apiL.Addr().String()
	d.serve(apiL, newForwardAuthGate(d.authURL, "http://"+upstreamL.Addr().String(), []string{"X-Client-Id"}), log)
	return d, nil
}

// demoListen listens on 127.0.0.1:port, or on a free port when it is
// taken (or port is 0).
func demoListen(port int) (net.Listener, error) {
	if port != 0 {
		if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			return l, nil
		}
	}
	return net.Listen("tcp", "127.0.0.1:0")
}

// demoAddr is a loopback address for a listener claimcheck opens itself.
func demoAddr(port int) (string, error) {
	l, err := demoListen(port)
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func (d *demoRun) serve(l net.Listener, h http.Handler, log *slog.Logger) {
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	d.https = append(d.https, hs)
	go hs.Serve(l)
}

// writeIssuerConfig gives every client a random secret and writes and
// loads issuer.yaml, the same file `claimcheck issuer` would read.
func (d *demoRun) writeIssuerConfig() (*config.IssuerServer, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "# claimcheck demo: the issuer (claimcheck issuer --config %s)\n", filepath.Join(d.dir, "issuer.yaml"))
	fmt.Fprintf(&b, "listen: %q\nissuer: %s\naudiences: [%s]\ntoken_ttl: 10m\nkey_dir: keys\nalgorithm: ES256\nclients:\n",
		strings.TrimPrefix(d.issuerURL, "http://"), d.issuerURL, demoAudience)
	for _, c := range d.clients {
		c.secret = rand.Text()
		h, err := bcrypt.GenerateFromPassword([]byte(c.secret), bcrypt.DefaultCost)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "  - client_id: %s\n    client_secret_hash: %q\n    scopes: [orders:read]\n    token_format: %s\n",
			c.id, h, c.format)
	}
	d.introSecret = rand.Text()
	h, err := bcrypt.GenerateFromPassword([]byte(d.introSecret), bcrypt.DefaultCost)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(&b, "  - client_id: %s   # claimcheck: may introspect, gets no tokens\n    client_secret_hash: %q\n    introspect: true\n    grant_types: []\n",
		demoIntrospector, h)
	p := filepath.Join(d.dir, "issuer.yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		return nil, err
	}
	return config.LoadIssuerServer(p)
}

// writeClaimcheckConfig writes the demo policy, claimcheck's introspection
// secret and claimcheck.yaml: keys and the introspection endpoint by
// discovery from the demo issuer, gRPC and forward-auth listeners.
func (d *demoRun) writeClaimcheckConfig() (*config.Config, error) {
	sub, err := fs.Sub(demo.Policy, "policy")
	if err != nil {
		return nil, err
	}
	if err := os.CopyFS(filepath.Join(d.dir, "policy"), sub); err != nil {
		return nil, err
	}
	addrs := map[string]string{}
	for name, port := range map[string]int{"grpc": demoPorts.grpc, "http": demoPorts.http, "admin": demoPorts.admin} {
		if addrs[name], err = demoAddr(port); err != nil {
			return nil, err
		}
	}
	d.grpcAddr, d.authURL, d.adminURL = addrs["grpc"], "http://"+addrs["http"], "http://"+addrs["admin"]
	if err := os.WriteFile(filepath.Join(d.dir, "introspection.secret"), []byte(d.introSecret+"\n"), 0o600); err != nil {
		return nil, err
	}
	yml := fmt.Sprintf(`# claimcheck demo: claimcheck (claimcheck serve --config %s)
listen: {grpc: %q, http: %q, admin: %q}
issuers:
  - issuer: %s          # keys by OpenID discovery from the demo issuer
    audiences: [%s]
    algorithms: [ES256]
    introspection:      # opaque tokens: asked at its introspection_endpoint (from discovery)
      client_id: %s
      client_secret_file: introspection.secret
policy:
  paths: [policy]
  decision: claimcheck/demo/allow
forward:
  claims: {client_id: x-client-id}
`, filepath.Join(d.dir, "claimcheck.yaml"), addrs["grpc"], addrs["http"], addrs["admin"], d.issuerURL, demoAudience, demoIntrospector)
	p := filepath.Join(d.dir, "claimcheck.yaml")
	if err := os.WriteFile(p, []byte(yml), 0o600); err != nil {
		return nil, err
	}
	return config.Load(p)
}

// stop shuts everything down and removes the demo's files.
func (d *demoRun) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if d.app != nil {
		d.app.stopping.Store(true)
	}
	if d.servers != nil {
		d.servers.stop(ctx)
	}
	for _, hs := range d.https {
		if err := hs.Shutdown(ctx); err != nil {
			hs.Close()
		}
	}
	if d.app != nil {
		d.app.close()
	}
	os.RemoveAll(d.dir)
}

// printGuide prints the demo's endpoints and the commands to paste.
func (d *demoRun) printGuide(w io.Writer) {
	exe, err := os.Executable()
	if err != nil {
		exe = "claimcheck"
	}
	fmt.Fprintf(w, `claimcheck demo — all on loopback; Ctrl-C stops it.

  issuer      %[1]s   (client-credentials token issuer; metadata at /.well-known/openid-configuration)
  claimcheck  gRPC %[2]s, forward-auth %[3]s, admin %[4]s/readyz
  API         %[5]s   (a reverse proxy that asks claimcheck's forward-auth, in front of an orders API)
  files       %[6]s   (issuer.yaml, claimcheck.yaml, policy/)

The policy (examples/demo/policy) lets only client_ids on its allowlist read /orders.
claimcheck verifies JWTs with the issuer's keys, and asks the issuer about opaque
tokens, which only it can read (RFC 7662 introspection, as its client %[7]q).
`, d.issuerURL, d.grpcAddr, d.authURL, d.adminURL, d.apiURL, d.dir, demoIntrospector)
	fmt.Fprintln(w, "\n1. Get a token for each client (client-credentials grant, HTTP Basic):")
	fmt.Fprintln(w)
	for _, c := range d.clients {
		note := "JWT"
		if c.format == config.TokenFormatOpaque {
			note = "opaque token"
		}
		if c.allowed {
			note += ", on the allowlist"
		} else {
			note += ", not on the allowlist"
		}
		fmt.Fprintf(w, "  # %s (%s)\n  %s=$(curl -s -u %s:%s -d grant_type=client_credentials %s/token | sed 's/.*\"access_token\":\"\\([^\"]*\\)\".*/\\1/')\n",
			c.id, note, c.envVar(), c.id, c.secret, d.issuerURL)
	}
	fmt.Fprintln(w, "\n2. Call the API with them (JWTs, then opaque tokens), and without:")
	fmt.Fprintln(w)
	for _, s := range d.steps() {
		if s.client != nil || s.token != "" || s.path != "" {
			fmt.Fprintf(w, "  curl -i%s %s%s   # %d %s\n", s.curlAuth(), d.apiURL, s.path, s.want, s.reason)
		}
	}
	fmt.Fprint(w, "\n3. The same decisions over gRPC, as Envoy's ext_authz asks them:\n\n")
	for _, c := range d.clients {
		if c.allowed {
			fmt.Fprintf(w, "  %q check --server %s --brief --path /orders/42 --token \"$%s\"\n", exe, d.grpcAddr, c.envVar())
		}
	}
	if c := d.first(config.TokenFormatJWT); c != nil {
		fmt.Fprintf(w, "\nA JWT's claims:\n  echo \"$%s\" | cut -d. -f2 | base64 -d 2>/dev/null; echo\n", c.envVar())
	}
	if c := d.first(config.TokenFormatOpaque); c != nil {
		fmt.Fprintf(w, "An opaque token's claims, as claimcheck learns them:\n  curl -s -u %s:%s -d \"token=$%s\" %s/introspect; echo\n",
			demoIntrospector, d.introSecret, c.envVar(), d.issuerURL)
	}
	fmt.Fprintln(w, "\nWaiting; Ctrl-C to stop.")
}

// first is the first client whose tokens are of format, or nil.
func (d *demoRun) first(format string) *demoClient {
	for _, c := range d.clients {
		if c.format == format {
			return c
		}
	}
	return nil
}

// envVar is the shell variable the guide keeps the client's token in.
func (c *demoClient) envVar() string {
	return strings.ToUpper(strings.NewReplacer("-", "_").Replace(strings.TrimSuffix(c.id, "-id"))) + "_TOKEN"
}

// demoStep is one API call of the demo and its expected status.
type demoStep struct {
	what   string
	client *demoClient // whose token is sent; nil: token below, or none
	token  string
	path   string
	want   int
	reason string
}

func (s demoStep) curlAuth() string {
	switch {
	case s.client != nil:
		return fmt.Sprintf(` -H "Authorization: Bearer $%s"`, s.client.envVar())
	case s.token != "":
		return fmt.Sprintf(` -H "Authorization: Bearer %s"`, s.token)
	}
	return ""
}

// steps are the API calls of the guide and of --run: each client, then no
// token, a malformed one and an opaque token the issuer never issued.
func (d *demoRun) steps() []demoStep {
	var out []demoStep
	for _, c := range d.clients {
		s := demoStep{what: "GET /orders/42 as " + c.id, client: c, path: "/orders/42", want: 200, reason: "allowed"}
		if !c.allowed {
			s.want, s.reason = 403, "policy_denied"
		}
		out = append(out, s)
	}
	return append(out,
		demoStep{what: "GET /orders/42 without a token", path: "/orders/42", want: 401, reason: "missing_token"},
		demoStep{what: "GET /orders/42 with a malformed token", token: "not a token", path: "/orders/42", want: 401, reason: "token_malformed"},
		demoStep{what: "GET /orders/42 with an unknown opaque token", token: "made-up-opaque-token", path: "/orders/42", want: 401, reason: "token_inactive"},
	)
}

// selftest performs the guide's steps and reports whether every status was
// the expected one.
func (d *demoRun) selftest(ctx context.Context, w io.Writer) bool {
	ok := true
	report := func(what, got string, pass bool) {
		mark := "ok"
		if !pass {
			mark, ok = "UNEXPECTED", false
		}
		fmt.Fprintf(w, "%-44s %-46s %s\n", what, got, mark)
	}
	tokens := map[*demoClient]string{}
	for _, c := range d.clients {
		tok, status, err := d.fetchToken(ctx, c)
		got := fmt.Sprintf("%d", status)
		if err != nil {
			got = err.Error()
		}
		report("POST /token as "+c.id, got, err == nil && status == 200 && tok != "")
		tokens[c] = tok
	}
	for _, s := range d.steps() {
		tok := s.token
		if s.client != nil {
			tok = tokens[s.client]
		}
		status, reason, err := d.callAPI(ctx, s.path, tok)
		got := fmt.Sprintf("%d %s (want %d %s)", status, reason, s.want, s.reason)
		if err != nil {
			got = err.Error()
		}
		report(s.what, got, err == nil && status == s.want && reason == s.reason)
	}
	for _, s := range d.steps() {
		if s.client == nil {
			continue
		}
		dec, err := askServer(ctx, d.grpcAddr, checkRequest("GET", s.path, "orders.demo", map[string]string{"authorization": "Bearer " + tokens[s.client]}), insecure.NewCredentials())
		got := fmt.Sprintf("%d %s (want %d %s)", dec.Status, dec.Reason, s.want, s.reason)
		if err != nil {
			got = err.Error()
		}
		report("gRPC Check as "+s.client.id, got, err == nil && dec.Status == s.want && dec.Reason == s.reason)
	}
	if ok {
		fmt.Fprintln(w, "demo: every step as expected")
	} else {
		fmt.Fprintln(w, "demo: some steps were not as expected")
	}
	return ok
}

var demoHTTP = &http.Client{Timeout: 10 * time.Second}

// fetchToken gets c's token from the issuer as the guide's curl does.
func (d *demoRun) fetchToken(ctx context.Context, c *demoClient) (string, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.issuerURL+"/token",
		strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.id), url.QueryEscape(c.secret))
	resp, err := demoHTTP.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return "", resp.StatusCode, fmt.Errorf("%d: %w", resp.StatusCode, err)
	}
	return body.AccessToken, resp.StatusCode, nil
}

// callAPI calls the protected API and returns the status and claimcheck's
// reason.
func (d *demoRun) callAPI(ctx context.Context, path, tok string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.apiURL+path, nil)
	if err != nil {
		return 0, "", err
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := demoHTTP.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
		return resp.StatusCode, "", errors.New("401 without a Bearer challenge")
	}
	return resp.StatusCode, resp.Header.Get("X-Claimcheck-Reason"), nil
}

// ordersAPI is the protected upstream: it trusts X-Client-Id because only
// the gate can reach it.
func ordersAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{
		"message":   "hello from the orders API",
		"path":      r.URL.Path,
		"client_id": r.Header.Get("X-Client-Id"),
	})
}
