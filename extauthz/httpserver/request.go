package httpserver

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/claimcheck/claimcheck/extauthz"
	"github.com/claimcheck/claimcheck/extauthz/reason"
	"github.com/claimcheck/claimcheck/policy"
)

// maxHeaderBytes is the most request header bytes accepted, Envoy's default
// max_request_headers_kb.
const maxHeaderBytes = 60 << 10

// Forwarding headers.
const (
	hOriginalURI     = "X-Original-Uri"
	hOriginalMethod  = "X-Original-Method"
	hForwardedMethod = "X-Forwarded-Method"
	hForwardedURI    = "X-Forwarded-Uri"
	hForwardedHost   = "X-Forwarded-Host"
	hForwardedProto  = "X-Forwarded-Proto"
	hForwardedFor    = "X-Forwarded-For"
	hRequestID       = "X-Request-Id"
)

// hopByHop are headers about the connection to claimcheck, not the original request.
var hopByHop = map[string]bool{
	"connection": true, "keep-alive": true, "proxy-connection": true, "te": true,
	"trailer": true, "transfer-encoding": true, "upgrade": true,
}

// requestError is a forward-auth request that cannot be mapped; it is
// answered with status and never reaches the checker.
type requestError struct {
	status int
	reason string // empty: reason.BadRequest
	msg    string
}

func (e *requestError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &requestError{msg: fmt.Sprintf(format, args...)}
}

// mode is how the original request is read from the forward-auth request.
type mode int

const (
	modeEnvoy     mode = iota // the request is the original (Envoy http_service)
	modeNginx                 // X-Original-URI and X-Original-Method
	modeForwarded             // X-Forwarded-Method and X-Forwarded-Uri (Traefik, Caddy)
)

// mapper turns forward-auth requests into CheckRequests.
type mapper struct {
	trusted    []netip.Prefix
	pathPrefix string
	maxHeader  int // request header bytes accepted; 0: maxHeaderBytes
	maxBody    int // request body bytes read into the CheckRequest; 0: none
}

// checkRequest returns the CheckRequest Envoy's gRPC filter would send for
// the original request r describes. Its error is a *requestError.
func (m mapper) checkRequest(r *http.Request) (*authv3.CheckRequest, error) {
	limit := m.maxHeader
	if limit <= 0 {
		limit = maxHeaderBytes
	}
	if n := headerBytes(r); n > limit {
		return nil, &requestError{reason: reason.HeadersTooLarge,
			msg: fmt.Sprintf("request headers are %d bytes, more than the %d allowed", n, limit)}
	}
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	peer, peerIP := peerAddress(r.RemoteAddr, local)
	trusted := m.trusts(peerIP, local)

	target, err := requestTarget(r)
	if err != nil {
		return nil, err
	}
	md, err := m.mode(r, trusted, peerIP, target)
	if err != nil {
		return nil, err
	}

	method, uri, host := r.Method, target, r.Host
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	var consumed []string
	switch md {
	case modeEnvoy:
		if m.pathPrefix != "" {
			rest, ok := strings.CutPrefix(target, m.pathPrefix)
			if !ok || !strings.HasPrefix(rest, "/") {
				return nil, badRequest("path %q is not under the path prefix %q", hideQuery(target), m.pathPrefix)
			}
			uri = rest
		}
	case modeNginx:
		if method, uri, host, err = forwarded(r, hOriginalMethod, hOriginalURI); err != nil {
			return nil, err
		}
		consumed = []string{hOriginalMethod, hOriginalURI, hForwardedHost}
	case modeForwarded:
		if method, uri, host, err = forwarded(r, hForwardedMethod, hForwardedURI); err != nil {
			return nil, err
		}
		consumed = []string{hForwardedMethod, hForwardedURI, hForwardedHost}
	}
	if trusted {
		fp, err := single(r, hForwardedProto, false)
		if err != nil {
			return nil, err
		}
		if fp != "" {
			if scheme, err = forwardedScheme(fp); err != nil {
				return nil, err
			}
		}
		if xff := strings.Join(r.Header.Values(hForwardedFor), ","); xff != "" {
			client, err := m.client(xff)
			if err != nil {
				return nil, err
			}
			peer = socketAddress(client.String(), 0)
		}
	}

	if err := checkHeaderText(r.Header); err != nil {
		return nil, err
	}
	headers := headerMap(r.Header, consumed)
	headers[":authority"] = host
	headers[":method"] = method
	headers[":path"] = uri
	headers[":scheme"] = scheme

	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Address: peer},
		Destination: &authv3.AttributeContext_Peer{Address: localAddress(local)},
		Request: &authv3.AttributeContext_Request{
			Time: timestamppb.Now(),
			Http: &authv3.AttributeContext_HttpRequest{
				Id:       headers["x-request-id"],
				Method:   method,
				Headers:  headers,
				Path:     uri,
				Host:     host,
				Scheme:   scheme,
				Protocol: protocol(r),
			},
		},
	}}
	if m.maxBody > 0 {
		if err := readBody(r, m.maxBody, req.Attributes.Request.Http); err != nil {
			return nil, err
		}
	}
	return req, nil
}

// readBody reads up to limit+1 bytes of r's body into h, as Envoy's
// with_request_body does: text as body, anything else as raw_body. One byte
// over the limit is enough for the decision path to refuse it.
func readBody(r *http.Request, limit int, h *authv3.AttributeContext_HttpRequest) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
	if err != nil {
		return badRequest("reading the request body: %v", err)
	}
	if utf8.Valid(b) {
		h.Body = string(b)
	} else {
		h.RawBody = b
	}
	return nil
}

// forwarded reads the original method and URI from the headers mh and uh,
// and the host from X-Forwarded-Host, else the Host header.
func forwarded(r *http.Request, mh, uh string) (method, uri, host string, err error) {
	if method, err = single(r, mh, true); err != nil {
		return "", "", "", err
	}
	if err := checkMethod(mh, method); err != nil {
		return "", "", "", err
	}
	// What the URI may hold is the decision path's to judge (package
	// urlpath), the same as over gRPC.
	if uri, err = single(r, uh, true); err != nil {
		return "", "", "", err
	}
	if host, err = single(r, hForwardedHost, false); err != nil {
		return "", "", "", err
	}
	if host == "" {
		return method, uri, r.Host, nil
	}
	if err := checkHost(host); err != nil {
		return "", "", "", err
	}
	return method, uri, host, nil
}

// mode says how to read r. Forwarding headers count only from a trusted
// peer, and not under the path prefix, which is Envoy's. From any other
// peer they are an error: judging the auth request's own path instead
// would answer for a request the proxy did not ask about.
func (m mapper) mode(r *http.Request, trusted bool, peer netip.Addr, target string) (mode, error) {
	nginx := has(r, hOriginalURI) || has(r, hOriginalMethod)
	fwd := has(r, hForwardedURI) || has(r, hForwardedMethod)
	if !trusted {
		if nginx || fwd {
			return 0, untrusted(r, peer)
		}
		return modeEnvoy, nil
	}
	if m.pathPrefix != "" && strings.HasPrefix(target, m.pathPrefix) {
		return modeEnvoy, nil
	}
	switch {
	case nginx && fwd:
		return 0, badRequest("both X-Original-URI/-Method and X-Forwarded-Uri/-Method are present; a proxy sends one pair, so the other came from the client")
	case nginx:
		return modeNginx, nil
	case fwd:
		return modeForwarded, nil
	}
	return modeEnvoy, nil
}

// untrusted is the error for forwarding headers from peer, which is not a
// trusted proxy.
func untrusted(r *http.Request, peer netip.Addr) error {
	var names []string
	for _, h := range []string{hOriginalURI, hOriginalMethod, hForwardedURI, hForwardedMethod} {
		if has(r, h) {
			names = append(names, h)
		}
	}
	from := "a unix-socket peer"
	if peer.IsValid() {
		from = peer.String()
	}
	return &requestError{reason: reason.ForwardedUntrusted, msg: fmt.Sprintf(
		"%s came from %s, which is not in http.trusted_proxies: add the proxy's address there, or stop the header reaching claimcheck",
		strings.Join(names, " and "), from)}
}

// trusts reports whether the peer may describe the original request. A
// unix-socket peer is on this host: it is trusted when loopback is.
func (m mapper) trusts(peer netip.Addr, local net.Addr) bool {
	if !peer.IsValid() && local != nil && local.Network() == "unix" {
		return m.trustsAddr(netip.AddrFrom4([4]byte{127, 0, 0, 1})) || m.trustsAddr(netip.IPv6Loopback())
	}
	return m.trustsAddr(peer)
}

func (m mapper) trustsAddr(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.WithZone("")
	for _, p := range m.trusted {
		if p.Contains(a) || p.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// client walks X-Forwarded-For from the right past trusted proxies and
// returns the first untrusted address, or the left-most when all are trusted.
func (m mapper) client(xff string) (netip.Addr, error) {
	entries := strings.Split(xff, ",")
	var a netip.Addr
	for i := len(entries) - 1; i >= 0; i-- {
		var err error
		if a, err = parseForwardedFor(strings.TrimSpace(entries[i])); err != nil {
			return netip.Addr{}, badRequest("X-Forwarded-For: %v", err)
		}
		if !m.trustsAddr(a) {
			break
		}
	}
	return a, nil
}

// parseForwardedFor reads one X-Forwarded-For entry: an IP address, with or
// without brackets and port.
func parseForwardedFor(s string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), nil
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), nil
	}
	if t, ok := strings.CutPrefix(s, "["); ok {
		if t, ok = strings.CutSuffix(t, "]"); ok {
			if a, err := netip.ParseAddr(t); err == nil {
				return a.Unmap().WithZone(""), nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
}

// requestTarget is r's path and query as sent.
func requestTarget(r *http.Request) (string, error) {
	switch t := r.RequestURI; {
	case strings.HasPrefix(t, "/"), t == "*":
		return t, nil
	case r.URL != nil && r.URL.IsAbs():
		return r.URL.RequestURI(), nil
	}
	return "", badRequest("%s requests are not supported", r.Method)
}

func has(r *http.Request, name string) bool { return len(r.Header.Values(name)) > 0 }

// single returns the one value of the header name; more than one (or, with
// required, none) is an error.
func single(r *http.Request, name string, required bool) (string, error) {
	vs := r.Header.Values(name)
	switch {
	case len(vs) > 1:
		return "", badRequest("%s: expected one value, got %d", name, len(vs))
	case len(vs) == 0 && required:
		return "", badRequest("%s is required with %s", name, pairOf(name))
	case len(vs) == 0:
		return "", nil
	}
	return vs[0], nil
}

// pairOf names the header that comes with name.
func pairOf(name string) string {
	switch name {
	case hOriginalURI:
		return hOriginalMethod
	case hOriginalMethod:
		return hOriginalURI
	case hForwardedURI:
		return hForwardedMethod
	}
	return hForwardedURI
}

// checkMethod accepts an HTTP token (RFC 9110 §5.6.2).
func checkMethod(name, m string) error {
	if !policy.IsToken(m) {
		return badRequest("%s: %q is not an HTTP method", name, m)
	}
	return nil
}

// hideQuery shortens a request target to its path, for messages that are
// sent and logged: the query string may carry a token.
func hideQuery(uri string) string {
	if i := strings.IndexByte(uri, '?'); i >= 0 {
		return uri[:i] + "?…"
	}
	return uri
}

// checkHost accepts a host and optional port, as in a Host header.
func checkHost(h string) error {
	for i := 0; i < len(h); i++ {
		if c := h[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`/\?#@,"<>{}|^`+"`", c) >= 0 {
			return badRequest("%s: %q is not a host", hForwardedHost, h)
		}
	}
	return nil
}

// forwardedScheme reads X-Forwarded-Proto; Traefik's ws and wss are http
// and https, as Envoy's :scheme is for WebSocket requests.
func forwardedScheme(p string) (string, error) {
	switch strings.ToLower(p) {
	case "http", "ws":
		return "http", nil
	case "https", "wss":
		return "https", nil
	}
	return "", badRequest("%s: expected http or https, got %q", hForwardedProto, p)
}

// headerMap returns h with lower-case names and repeated headers joined as
// Envoy joins them (extauthz.JoinHeaderValues: cookie lines with "; ", the
// rest with ","), without hop-by-hop headers and those in omit.
func headerMap(h http.Header, omit []string) map[string]string {
	out := make(map[string]string, len(h)+4)
	for k, vs := range h {
		out[strings.ToLower(k)] = extauthz.JoinHeaderValues(strings.ToLower(k), vs)
	}
	for k := range hopByHop {
		delete(out, k)
	}
	for _, k := range omit {
		delete(out, strings.ToLower(k))
	}
	delete(out, "host")
	return out
}

// checkHeaderText refuses header values that are not UTF-8 (HTTP allows
// other bytes, obs-text): the policy input, like Envoy's CheckRequest,
// holds header values as strings, and one that cannot be read the same way
// by every consumer is not worth guessing at.
func checkHeaderText(h http.Header) error {
	for k, vs := range h {
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return badRequest("header %s: the value is not UTF-8", k)
			}
		}
	}
	return nil
}

// headerBytes is the size of r's request line target and headers.
func headerBytes(r *http.Request) int {
	n := len(r.RequestURI) + len(r.Host)
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// peerAddress returns the TCP peer as a CheckRequest address, and its IP
// (invalid for a unix-socket peer).
func peerAddress(remote string, local net.Addr) (*corev3.Address, netip.Addr) {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		a := ap.Addr().Unmap()
		return socketAddress(a.String(), uint32(ap.Port())), a
	}
	if local != nil && local.Network() == "unix" {
		return pipeAddress(remote), netip.Addr{}
	}
	if a, err := netip.ParseAddr(remote); err == nil {
		return socketAddress(a.Unmap().String(), 0), a.Unmap()
	}
	return nil, netip.Addr{}
}

func localAddress(a net.Addr) *corev3.Address {
	switch a := a.(type) {
	case *net.TCPAddr:
		ap := a.AddrPort()
		return socketAddress(ap.Addr().Unmap().String(), uint32(ap.Port()))
	case *net.UnixAddr:
		return pipeAddress(a.Name)
	}
	return nil
}

func socketAddress(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

func pipeAddress(path string) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: path}}}
}

// protocol names r's protocol as Envoy does: HTTP/1.0, HTTP/1.1, HTTP/2, HTTP/3.
func protocol(r *http.Request) string {
	switch r.ProtoMajor {
	case 2, 3:
		return fmt.Sprintf("HTTP/%d", r.ProtoMajor)
	}
	return r.Proto
}
