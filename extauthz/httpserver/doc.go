// Package httpserver adapts the decision path to HTTP: forward-auth for
// Envoy's ext_authz http_service, nginx auth_request, Traefik forwardAuth and
// Caddy forward_auth, and the admin endpoints /healthz and /readyz.
//
// The adapter does no deciding of its own. It rebuilds the CheckRequest that
// Envoy's gRPC ext_authz filter would send for the original request, calls
// Checker.Check with it, and writes the Decision as an HTTP answer; so the
// policy input is the same whichever adapter built it.
//
// # Which request is authorized
//
// Forwarded headers are believed only from a trusted proxy: a TCP peer in
// Config.TrustedProxies (an IPv4-mapped IPv6 peer counts as its IPv4
// address; a unix-socket peer counts as trusted when a loopback address is).
// From any other peer they are ordinary request headers: they stay visible
// in input.request.headers but never choose the method, path, host, scheme
// or source address.
//
// The request is read in one of three ways:
//
//   - Envoy http_service. The forward-auth request is the original request:
//     its method, path and query (after Config.PathPrefix, which is required
//     when set: a path outside it is a 400), headers and Host. This is the
//     mode for every untrusted peer, for trusted requests without forwarding
//     headers and, when PathPrefix is set, for every request under it — so a
//     client header copied through by Envoy's allowed_headers cannot switch
//     the mode.
//   - nginx auth_request, from a trusted peer sending X-Original-URI (the
//     original path and query, nginx's $request_uri) and X-Original-Method
//     ($request_method). Both are required: nginx subrequests do not carry
//     the original method, and claimcheck never guesses it.
//   - Traefik forwardAuth and Caddy forward_auth, from a trusted peer sending
//     X-Forwarded-Method and X-Forwarded-Uri. Both are required.
//
// A trusted request carrying both the X-Original-* and the X-Forwarded-Method
// /-Uri pairs is refused (400): each proxy sets its own pair and passes the
// client's headers on, so the other pair can only come from the client.
//
// In the forwarded modes the host is X-Forwarded-Host (else the Host of the
// forward-auth request; Caddy keeps the original one, nginx needs
// "proxy_set_header X-Forwarded-Host $host"), and the scheme is
// X-Forwarded-Proto (ws and wss, which Traefik sends for WebSocket requests,
// count as http and https), else that of the connection. A trusted Envoy's
// X-Forwarded-Proto also sets the scheme in http_service mode; its
// X-Forwarded-Host does not (Envoy's :authority is the original host). A
// trusted proxy must set, not pass through, every forwarding header it sends.
//
// Forwarded values are checked before anything else runs, and a bad one is
// answered 400 with {"error":"invalid_request","error_description":…},
// without reaching the checker: a URI that does not start with "/", has
// spaces, control characters or bad percent-escapes, or whose decoded path
// has "." or ".." segments or an empty segment ("//") — the proxy routed on a
// normalised path, and the policy must not see a different one; a method
// that is not an HTTP token; a scheme other than http, https, ws or wss; a
// host with characters a host cannot have; a header that must be single and
// is repeated or a comma-separated list; an X-Forwarded-For entry that is not
// an IP address. Request headers over 60 KiB in all (Envoy's default limit)
// are answered 431.
//
// # Source address
//
// From a trusted peer with X-Forwarded-For, the source is found by walking
// the list from the right, past every address that is itself a trusted
// proxy: the first untrusted address is the client (entries to its left
// were written by the client and are not believed); when every entry is
// trusted, the left-most one. Its port is 0, as Envoy reports an address
// taken from X-Forwarded-For. Otherwise the source is the TCP peer. The
// destination is the address claimcheck accepted the request on.
//
// # Headers
//
// input.request.headers has lower-case names, repeated headers joined with
// ",", and :authority, :method, :path and :scheme set as Envoy sets them;
// there is no "host" header (Envoy turns it into :authority). Hop-by-hop
// headers (Connection, Keep-Alive, Proxy-Connection, TE, Trailer,
// Transfer-Encoding, Upgrade) describe the hop to claimcheck, not the
// original request, and are left out. In the forwarded modes the headers
// whose content became the method, path and host (X-Original-URI,
// X-Original-Method, X-Forwarded-Method, X-Forwarded-Uri, X-Forwarded-Host)
// are left out too, as Envoy's own CheckRequest would not have them;
// X-Forwarded-For and X-Forwarded-Proto stay, as Envoy sets those itself.
// From an untrusted peer every header stays as it came. The request ID is
// X-Request-Id. input.request.protocol is the protocol of the request
// claimcheck received. The forward-auth request's body is never read.
// Envoy's per-route context_extensions do not exist over HTTP.
//
// # Answers
//
// Allow: 200 with no body; Decision.UpstreamHeaders and
// Decision.ResponseHeaders as response headers, for the proxy to copy (Envoy
// allowed_upstream_headers and allowed_client_headers_on_success, nginx
// auth_request_set, Traefik authResponseHeaders, Caddy copy_headers);
// Decision.RemoveHeaders as "x-envoy-auth-headers-to-remove: a, b", which
// Envoy honours. Copy every forwarded-claim header: claimcheck sends none
// when the token lacks the claim, and the proxy must then drop the client's
// own (Traefik and Caddy do; nginx does when proxy_set_header is given the
// empty variable).
//
// Deny: Decision.Status (a 1xx or 2xx deny status, which the proxy would
// take for an allow, becomes 403), Decision.DenyHeaders and Decision.Body.
//
// Every answer carries x-claimcheck-reason with the reason code, and
// x-claimcheck-dry-run: true when the request was allowed only by dry-run.
// The handler never answers 5xx except 503 when it cannot decide: a panic, or
// a decision it cannot write as HTTP (a header name or value that is not
// valid; the decision path refuses those from the policy already, 503
// policy_error, so this is a second line of defence), is a 503 deny, never a
// 200.
package httpserver
