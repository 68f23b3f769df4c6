package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

// The forward-auth tests run claimcheck's HTTP mode behind the real proxies,
// configured by the shipped examples (examples/nginx, examples/caddy) with
// only their ports and paths changed, and send real HTTP requests through
// them: the files users copy are the files tested.

// TestNginxAuthRequest: nginx's auth_request in front of an upstream.
func TestNginxAuthRequest(t *testing.T) {
	cc, ccHTTP := startForwardAuthClaimcheck(t, "nginx", nil)
	up := newRecordingUpstream(t)
	proxyURL, p := startNginx(t, ccHTTP, up, nil)

	forwardAuthCases(t, proxyCase{
		url: proxyURL, upstream: up, claimcheck: cc,
		// nginx answers a denial with its own error page, not claimcheck's
		// JSON body, and turns every auth failure other than 401/403 into 500.
		jsonDenyBody: false, downStatus: http.StatusInternalServerError,
		// claimcheck's 400 path_invalid, which nginx turns into a 500.
		badPathStatus: http.StatusInternalServerError,
	})

	// The shipped log_format records claimcheck's reason per request.
	out := p.out.String()
	for _, want := range []string{"reason=allowed client_id=service-client-id", "reason=missing_token", "reason=policy_denied"} {
		if !strings.Contains(out, want) {
			t.Errorf("nginx access log lacks %q:\n%s", want, out)
		}
	}
}

// TestCaddyForwardAuth: Caddy's forward_auth in front of an upstream.
func TestCaddyForwardAuth(t *testing.T) {
	cc, ccHTTP := startForwardAuthClaimcheck(t, "caddy", nil)
	up := newRecordingUpstream(t)
	proxyURL, _ := startCaddy(t, ccHTTP, up, nil)

	forwardAuthCases(t, proxyCase{
		url: proxyURL, upstream: up, claimcheck: cc,
		// Caddy returns a non-2xx auth answer to the client as it is, and
		// answers 502 when claimcheck cannot be reached.
		jsonDenyBody: true, downStatus: http.StatusBadGateway,
		badPathStatus: http.StatusBadRequest,
	})
}

type proxyCase struct {
	url           string
	upstream      *recordingUpstream
	claimcheck    *server
	jsonDenyBody  bool // the client gets claimcheck's JSON deny body
	downStatus    int  // the client's status once claimcheck is down
	badPathStatus int  // the client's status for a path claimcheck refuses
}

// forwardAuthCases sends requests through the proxy and checks what the
// client got and what, if anything, reached the upstream. It stops
// claimcheck at the end.
func forwardAuthCases(t *testing.T, pc proxyCase) {
	key := quickstartKey(t)
	mint := func(client string, edit func(map[string]any)) string {
		c := tokentest.Claims("https://id.quickstart.example", "orders-api", time.Hour)
		c["client_id"], c["sub"] = client, client
		if edit != nil {
			edit(c)
		}
		return tokentest.Mint(t, key, c)
	}
	allowed := mint("service-client-id", nil)
	refused := mint("some-other-client", nil)
	noSub := mint("service-client-id", func(c map[string]any) { delete(c, "sub") })
	// some-other-client's token with the payload of service-client-id's: the
	// claims an attacker wants under a signature that does not cover them.
	r, a := strings.Split(refused, "."), strings.Split(allowed, ".")
	tampered := r[0] + "." + a[1] + "." + r[2]

	client := &http.Client{Timeout: 10 * time.Second}
	type want struct {
		status   int
		upstream map[string]string // headers the upstream must see ("" = absent); nil: must not be reached
	}
	tests := []struct {
		name, method, path, token, body string
		headers                         map[string]string
		want                            want
	}{
		{name: "no token", method: "GET", path: "/orders/1", want: want{status: 401}},
		{name: "tampered token", method: "GET", path: "/orders/1", token: tampered, want: want{status: 401}},
		{name: "client the policy refuses", method: "GET", path: "/orders/1", token: refused, want: want{status: 403}},
		{name: "allowed client", method: "GET", path: "/orders/1", token: allowed,
			want: want{status: 200, upstream: map[string]string{"X-Client-Id": "service-client-id", "X-Subject": "service-client-id"}}},
		{name: "allowed client posts a body", method: "POST", path: "/orders?dry=1", token: allowed, body: `{"item":"book"}`,
			want: want{status: 200, upstream: map[string]string{"X-Client-Id": "service-client-id"}}},
		// The policy allows only GET and POST on /orders: these prove the
		// proxy handed claimcheck the original method and path.
		{name: "method the policy refuses", method: "DELETE", path: "/orders/1", token: allowed, want: want{status: 403}},
		{name: "path the policy refuses", method: "GET", path: "/invoices/1", token: allowed, want: want{status: 403}},
		{name: "path that only starts like /orders", method: "GET", path: "/ordersadmin", token: allowed, want: want{status: 403}},
		// The proxy sends claimcheck the target as the client sent it, which
		// the upstream gets too: an escape reaches both unchanged, and a path
		// that leaves /orders is claimcheck's 400, not a policy decision on
		// the /admin the proxy matched its location on.
		{name: "escapes reach claimcheck and the upstream unchanged", method: "GET", path: "/orders/a%2Bb%20c", token: allowed,
			want: want{status: 200, upstream: map[string]string{"X-Client-Id": "service-client-id"}}},
		{name: "dot segments out of /orders", method: "GET", path: "/orders/../admin", token: allowed, want: want{status: pc.badPathStatus}},
		{name: "encoded dot segments out of /orders", method: "GET", path: "/orders/%2e%2e/admin", token: allowed, want: want{status: pc.badPathStatus}},
		{name: "encoded slashes out of /orders", method: "GET", path: "/orders/%2F..%2Fadmin", token: allowed, want: want{status: pc.badPathStatus}},
		{name: "empty segment", method: "GET", path: "//admin", token: allowed, want: want{status: pc.badPathStatus}},
		{name: "spoofed claim header without a token", method: "GET", path: "/orders/1",
			headers: map[string]string{"X-Client-Id": "spoofed"}, want: want{status: 401}},
		{name: "spoofed claim header with a refused token", method: "GET", path: "/orders/1", token: refused,
			headers: map[string]string{"X-Client-Id": "service-client-id"}, want: want{status: 403}},
		{name: "spoofed claim header with an allowed token", method: "GET", path: "/orders/1", token: allowed,
			headers: map[string]string{"X-Client-Id": "spoofed", "X-Subject": "spoofed"},
			want:    want{status: 200, upstream: map[string]string{"X-Client-Id": "service-client-id", "X-Subject": "service-client-id"}}},
		{name: "spoofed header of a claim the token lacks", method: "GET", path: "/orders/1", token: noSub,
			headers: map[string]string{"X-Subject": "spoofed"},
			want:    want{status: 200, upstream: map[string]string{"X-Client-Id": "service-client-id", "X-Subject": ""}}},
	}
	send := func(t *testing.T, method, path, token, body string, headers map[string]string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, pc.url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := pc.upstream.count()
			resp, body := send(t, tt.method, tt.path, tt.token, tt.body, tt.headers)
			if resp.StatusCode != tt.want.status {
				t.Fatalf("status %d, want %d; headers %v; body %q", resp.StatusCode, tt.want.status, resp.Header, body)
			}
			if tt.want.upstream == nil {
				if n := pc.upstream.count() - before; n != 0 {
					t.Errorf("a denied request reached the upstream (%d requests)", n)
				}
				if tt.want.status == 401 {
					// Exactly one: claimcheck's own, passed on by the proxy.
					if wa := resp.Header.Values("WWW-Authenticate"); len(wa) != 1 || !strings.HasPrefix(wa[0], "Bearer") || !strings.Contains(wa[0], `realm="claimcheck"`) {
						t.Errorf("WWW-Authenticate = %q, want claimcheck's Bearer challenge, once", wa)
					}
				}
				if pc.jsonDenyBody && !strings.Contains(body, `"error"`) {
					t.Errorf("deny body = %q, want claimcheck's JSON", body)
				}
				return
			}
			if body != "upstream ok" {
				t.Errorf("body = %q, want the upstream's", body)
			}
			got, ok := pc.upstream.last(before)
			if !ok {
				t.Fatal("the upstream saw no request")
			}
			if got.method != tt.method || got.uri != tt.path || got.body != tt.body {
				t.Errorf("upstream saw %s %s %q, want %s %s %q", got.method, got.uri, got.body, tt.method, tt.path, tt.body)
			}
			for name, value := range tt.want.upstream {
				vals := got.header.Values(name)
				switch {
				case value == "" && len(vals) != 0:
					t.Errorf("upstream saw %s: %q, want none", name, vals)
				case value != "" && (len(vals) != 1 || vals[0] != value):
					t.Errorf("upstream saw %s: %q, want exactly %q", name, vals, value)
				}
			}
		})
	}

	// Paths that an upstream written in Node (WHATWG URL) or Java (Tomcat's
	// path parameters) routes to /admin, sent byte for byte as curl
	// --path-as-is does: the proxy hands claimcheck the raw URI, which it
	// refuses, and nothing reaches the upstream.
	for _, p := range []string{
		`/orders/..\admin`, "/orders/..;/admin", "/orders/..%5Cadmin", "/orders/%2e%2e/admin",
		"/orders/.%2e/admin", "/orders/..%3B/admin", "/orders;x/../admin", `/orders\..\admin`,
	} {
		t.Run("hostile path "+p, func(t *testing.T) {
			if r := appRoute(p); r != "/admin" {
				t.Fatalf("the upstream would route %q to %q, not /admin: the case proves nothing", p, r)
			}
			before := pc.upstream.count()
			status, reason := sendRaw(t, pc.url, "GET", p, allowed)
			if status != pc.badPathStatus {
				t.Errorf("status %d, want %d", status, pc.badPathStatus)
			}
			if pc.badPathStatus == http.StatusBadRequest && reason != "path_invalid" {
				t.Errorf("x-claimcheck-reason %q, want path_invalid", reason)
			}
			if n := pc.upstream.count() - before; n != 0 {
				seen, _ := pc.upstream.last(before)
				t.Errorf("the upstream was reached (%d requests), routing %q", n, appRoute(seen.uri))
			}
		})
	}

	// claimcheck down: the proxy must not fail open.
	if code := pc.claimcheck.stop(t); code != 0 {
		t.Errorf("claimcheck exit code = %d", code)
	}
	before := pc.upstream.count()
	resp, body := send(t, "GET", "/orders/1", allowed, "", nil)
	if resp.StatusCode != pc.downStatus {
		t.Errorf("with claimcheck down: status %d, want %d (body %q)", resp.StatusCode, pc.downStatus, body)
	}
	if pc.upstream.count() != before {
		t.Error("with claimcheck down, a request reached the upstream")
	}
}

// sendRaw sends method target with token to the proxy at base exactly as
// written (no client-side cleaning of the path) and returns the status and
// X-Claimcheck-Reason.
func sendRaw(t *testing.T, base, method, target, token string) (int, string) {
	t.Helper()
	addr := strings.TrimPrefix(base, "http://")
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n", method, target, addr, token)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Claimcheck-Reason")
}

// appRoute is the path an application server routes uri to, as the
// common ones read it: a backslash is '/' (WHATWG URL, Node's new URL()), ";…"
// path parameters are dropped from each segment (Tomcat, Spring), escapes
// are decoded and dot segments removed.
func appRoute(uri string) string {
	p, _, _ := strings.Cut(uri, "?")
	p = strings.ReplaceAll(p, `\`, "/")
	p = strings.ReplaceAll(strings.ReplaceAll(p, "%5C", "/"), "%5c", "/")
	var out []string
	for _, seg := range strings.Split(p, "/")[1:] {
		if u, err := url.PathUnescape(seg); err == nil {
			seg = u
		}
		seg, _, _ = strings.Cut(seg, ";")
		switch seg {
		case ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
		}
	}
	return "/" + strings.Join(out, "/")
}

// startNginx runs examples/nginx/nginx.conf, changed by edit when not nil,
// on a free port in front of up, asking claimcheck at ccHTTP. It returns the
// proxy's URL once it answers.
func startNginx(t *testing.T, ccHTTP string, up *recordingUpstream, edit func(string) string) (string, *proxyProc) {
	t.Helper()
	nginx := proxyBinary(t, "nginx", "apt-get install nginx", "/usr/sbin/nginx")
	proxyAddr := freeAddr(t)
	conf := exampleFile(t, "nginx/nginx.conf")
	conf = mustReplace(t, conf, "listen 127.0.0.1:8080;", "listen "+proxyAddr+";")
	conf = mustReplace(t, conf, "server 127.0.0.1:9192;", "server "+ccHTTP+";")
	conf = mustReplace(t, conf, "server 127.0.0.1:8000;", "server "+up.addr()+";")
	if edit != nil {
		conf = edit(conf)
	}
	if os.Geteuid() == 0 {
		// As root, nginx's workers would switch to nobody, who cannot
		// enter the test's temp directory.
		conf = fmt.Sprintf("user %s;\n", currentUserAndGroup(t)) + conf
	}
	dir := t.TempDir()
	confPath := filepath.Join(dir, "nginx.conf")
	writeFile(t, confPath, conf)
	p := startProxy(t, exec.Command(nginx, "-p", dir, "-e", "stderr", "-c", confPath))
	proxyURL := "http://" + proxyAddr
	p.waitHTTP(t, proxyURL+"/")
	return proxyURL, p
}

// startCaddy runs examples/caddy/Caddyfile, changed by edit when not nil,
// on a free port in front of up, asking claimcheck at ccHTTP. It returns the
// proxy's URL once it answers.
func startCaddy(t *testing.T, ccHTTP string, up *recordingUpstream, edit func(string) string) (string, *proxyProc) {
	t.Helper()
	caddy := proxyBinary(t, "caddy",
		"GOFLAGS=-buildvcs=false go install github.com/caddyserver/caddy/v2/cmd/caddy@v2.11.9 (not Debian's 2.6.2, caddy#6610)",
		filepath.Join(goPath(t), "bin", "caddy"))
	if out, err := exec.Command(caddy, "version").Output(); err == nil {
		t.Logf("%s version %s", caddy, strings.TrimSpace(string(out)))
	}
	proxyAddr := freeAddr(t)
	_, proxyPort, _ := net.SplitHostPort(proxyAddr)
	cf := exampleFile(t, "caddy/Caddyfile")
	cf = mustReplace(t, cf, ":8080 {", ":"+proxyPort+" {")
	cf = mustReplace(t, cf, "forward_auth 127.0.0.1:9192 {", "forward_auth "+ccHTTP+" {")
	cf = mustReplace(t, cf, "reverse_proxy 127.0.0.1:8000", "reverse_proxy "+up.addr())
	if edit != nil {
		cf = edit(cf)
	}
	dir := t.TempDir()
	cfPath := filepath.Join(dir, "Caddyfile")
	writeFile(t, cfPath, cf)
	cmd := exec.Command(caddy, "run", "--config", cfPath, "--adapter", "caddyfile")
	// Caddy's storage and autosaved config go to the temp directory.
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir)
	p := startProxy(t, cmd)
	proxyURL := "http://" + proxyAddr
	p.waitHTTP(t, proxyURL+"/")
	return proxyURL, p
}

// startForwardAuthClaimcheck serves examples/<example>/claimcheck.yaml,
// changed by edit when not nil, with free ports and the quickstart's
// absolute path, and waits for /readyz. It returns the server and its
// listen.http address.
func startForwardAuthClaimcheck(t *testing.T, example string, edit func(string) string) (*server, string) {
	t.Helper()
	quickstart, err := filepath.Abs("../../examples/quickstart")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr, adminAddr := freeAddr(t), freeAddr(t)
	cfg := exampleFile(t, example+"/claimcheck.yaml")
	cfg = mustReplace(t, cfg, `grpc: "127.0.0.1:9191"`, `grpc: "{{LISTEN}}"`)
	cfg = mustReplace(t, cfg, `http: "127.0.0.1:9192"`, fmt.Sprintf("http: %q", httpAddr))
	cfg = mustReplace(t, cfg, `admin: "127.0.0.1:9193"`, fmt.Sprintf("admin: %q", adminAddr))
	cfg = mustReplace(t, cfg, "../quickstart/", quickstart+"/")
	if edit != nil {
		cfg = edit(cfg)
	}
	s := startServer(t, cfg, freeAddr(t))

	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + adminAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, httpAddr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("claimcheck /readyz never answered 200 (last: %v)", err)
		}
		select {
		case err := <-s.done:
			t.Fatalf("claimcheck exited: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// quickstartKey is the quickstart's development signing key, whose public
// half is the examples' jwks_file.
func quickstartKey(t *testing.T) *tokentest.Key {
	t.Helper()
	k, err := jwk.ParseKey([]byte(exampleFile(t, "quickstart/dev-signing-key.json")))
	if err != nil {
		t.Fatal(err)
	}
	var priv any
	if err := jwk.Export(k, &priv); err != nil {
		t.Fatal(err)
	}
	kid, _ := k.KeyID()
	return tokentest.NewKeyFrom(t, priv, kid, "ES256")
}

// proxyBinary finds a proxy on PATH or at one of paths. A missing proxy
// skips the test, or fails it in CI (CI set), where .ci/run installs it.
func proxyBinary(t *testing.T, name, install string, paths ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	msg := fmt.Sprintf("%s is not installed (looked on PATH and in %v); install it with: %s", name, paths, install)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func goPath(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		t.Fatalf("go env GOPATH: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func currentUserAndGroup(t *testing.T) string {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		t.Fatal(err)
	}
	return u.Username + " " + g.Name
}

func exampleFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../../examples", rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mustReplace replaces every old in s, failing the test when there is none:
// a shipped example that drifted from what the test expects.
func mustReplace(t *testing.T, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("the shipped example no longer contains %q", old)
	}
	return strings.ReplaceAll(s, old, new)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// proxyProc is a running proxy, stopped at cleanup.
type proxyProc struct {
	cmd  *exec.Cmd
	out  *syncWriter // stdout and stderr
	done chan error
}

func startProxy(t *testing.T, cmd *exec.Cmd) *proxyProc {
	t.Helper()
	p := &proxyProc{cmd: cmd, out: &syncWriter{w: &bytes.Buffer{}}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	// Its own process group, so that nginx's workers can be killed with
	// their master if it does not stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
			t.Errorf("%s did not stop on SIGTERM", filepath.Base(cmd.Path))
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(cmd.Path), p.out)
		}
	})
	return p
}

// waitHTTP waits until url answers at all, failing after 30 s.
func (p *proxyProc) waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered on %s: %v", filepath.Base(p.cmd.Path), url, err)
		}
		select {
		case err := <-p.done:
			t.Fatalf("%s exited: %v\n%s", filepath.Base(p.cmd.Path), err, p.out)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// recordingUpstream is the API behind the proxy: it answers 200 "upstream
// ok" and records every request it gets.
type recordingUpstream struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []upstreamRequest
}

type upstreamRequest struct {
	method, uri, body string
	header            http.Header
}

func newRecordingUpstream(t *testing.T) *recordingUpstream {
	u := &recordingUpstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.seen = append(u.seen, upstreamRequest{method: r.Method, uri: r.RequestURI, body: string(b), header: r.Header.Clone()})
		u.mu.Unlock()
		io.WriteString(w, "upstream ok")
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *recordingUpstream) addr() string { return u.srv.Listener.Addr().String() }

func (u *recordingUpstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.seen)
}

// last returns the latest request, if there is one after the first n.
func (u *recordingUpstream) last(n int) (upstreamRequest, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.seen) <= n {
		return upstreamRequest{}, false
	}
	return u.seen[len(u.seen)-1], true
}
