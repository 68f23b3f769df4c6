package httpserver_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/claimcheck/claimcheck/extauthz"
	"github.com/claimcheck/claimcheck/extauthz/reason"
)

// recorder is a Checker that records the CheckRequests it gets and answers
// with decide (an allow when nil).
type recorder struct {
	mu     sync.Mutex
	reqs   []*authv3.CheckRequest
	decide func(*authv3.CheckRequest) extauthz.Decision
}

func (c *recorder) Check(_ context.Context, req *authv3.CheckRequest) extauthz.Decision {
	c.mu.Lock()
	c.reqs = append(c.reqs, req)
	c.mu.Unlock()
	if c.decide == nil {
		return extauthz.Decision{Allowed: true, Status: 200, Reason: reason.Allowed}
	}
	return c.decide(req)
}

// refuser answers the recorder's Refuse and Panicked as a real Authorizer does.
var refuser = func() *extauthz.Authorizer {
	a, err := extauthz.New(extauthz.Config{}, oneToken{}, extauthz.StaticPolicy(&inputRecorder{}), nil)
	if err != nil {
		panic(err)
	}
	return a
}()

func (c *recorder) Refuse(ctx context.Context, req *authv3.CheckRequest, code, desc string) extauthz.Decision {
	return refuser.Refuse(ctx, req, code, desc)
}

func (c *recorder) Panicked(ctx context.Context, req *authv3.CheckRequest, p any) extauthz.Decision {
	return refuser.Panicked(ctx, req, p)
}

func (c *recorder) calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.reqs)
}

// only returns the one CheckRequest c got, failing the test otherwise.
func (c *recorder) only(t *testing.T) *authv3.CheckRequest {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.reqs) != 1 {
		t.Fatalf("the checker got %d requests, want 1", len(c.reqs))
	}
	return c.reqs[0]
}

// Trust: 10.0.0.0/8 and loopback. Clients are in 203.0.113.0/24 and
// 198.51.100.0/24.
var trusted = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("127.0.0.1/32"),
	netip.MustParsePrefix("::1/128"),
}

// hdr is one request header line; a name may repeat.
type hdr struct{ name, value string }

// fwdRequest is a forward-auth request as it reaches claimcheck.
type fwdRequest struct {
	method, target, host, remote string
	headers                      []hdr
	local                        net.Addr // the accepting address; none when nil
}

func (f fwdRequest) build() *http.Request {
	method := f.method
	if method == "" {
		method = http.MethodGet
	}
	r := httptest.NewRequest(method, f.target, nil)
	r.Host = f.host
	r.RemoteAddr = f.remote
	for _, h := range f.headers {
		r.Header.Add(h.name, h.value)
	}
	if f.local != nil {
		r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, f.local))
	}
	return r
}

// addr renders a CheckRequest address as "ip:port" or "unix:path".
func addr(a *corev3.Address) string {
	switch x := a.GetAddress().(type) {
	case *corev3.Address_SocketAddress:
		return net.JoinHostPort(x.SocketAddress.GetAddress(), strconv.Itoa(int(x.SocketAddress.GetPortValue())))
	case *corev3.Address_Pipe:
		return "unix:" + x.Pipe.GetPath()
	}
	return ""
}
