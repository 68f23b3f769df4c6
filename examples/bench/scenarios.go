package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"google.golang.org/grpc/codes"
)

const (
	rsIssuer = "https://rs256.bench.example"
	esIssuer = "https://es256.bench.example"
	audience = "orders-api"
	// allowedClient is the client_id the quickstart policy lets call /orders.
	allowedClient = "service-client-id"
	tokenTTL      = 3 * time.Hour
)

// signingKey is a private key that mints compact JWS tokens.
type signingKey struct {
	alg    string // RS256 or ES256
	kid    string
	issuer string
	rsa    *rsa.PrivateKey
	ec     *ecdsa.PrivateKey
}

func newRSAKey(kid, issuer string) (*signingKey, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	return &signingKey{alg: "RS256", kid: kid, issuer: issuer, rsa: k}, nil
}

func newECKey(kid, issuer string) (*signingKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return &signingKey{alg: "ES256", kid: kid, issuer: issuer, ec: k}, nil
}

// writeJWKS writes the public halves of keys as a JWK Set (kid, alg,
// use=sig on each key), the way an issuer publishes them.
func writeJWKS(path string, keys ...*signingKey) error {
	set := jwk.NewSet()
	for _, k := range keys {
		var pub any
		if k.rsa != nil {
			pub = &k.rsa.PublicKey
		} else {
			pub = &k.ec.PublicKey
		}
		jk, err := jwk.Import(pub)
		if err != nil {
			return fmt.Errorf("import %s key: %w", k.alg, err)
		}
		for name, v := range map[string]any{jwk.KeyIDKey: k.kid, jwk.AlgorithmKey: k.alg, jwk.KeyUsageKey: "sig"} {
			if err := jk.Set(name, v); err != nil {
				return fmt.Errorf("set %s: %w", name, err)
			}
		}
		if err := set.AddKey(jk); err != nil {
			return err
		}
	}
	b, err := json.Marshal(set)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// mint signs an access token for client_id with a unique jti. The header
// claims kid (so a stranger's key minting with the same kid makes a token
// with a bad signature).
func (k *signingKey) mint(clientID string) (string, error) {
	now := time.Now()
	header, _ := json.Marshal(map[string]any{"alg": k.alg, "kid": k.kid, "typ": "at+jwt"})
	payload, _ := json.Marshal(map[string]any{
		"iss":       k.issuer,
		"aud":       audience,
		"sub":       clientID,
		"client_id": clientID,
		"scope":     "orders:read",
		"jti":       rand.Text(),
		"iat":       now.Unix(),
		"exp":       now.Add(tokenTTL).Unix(),
	})
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	digest := sha256.Sum256([]byte(input))
	var sig []byte
	switch {
	case k.rsa != nil:
		var err error
		if sig, err = rsa.SignPKCS1v15(nil, k.rsa, crypto.SHA256, digest[:]); err != nil {
			return "", err
		}
	default:
		r, s, err := ecdsa.Sign(rand.Reader, k.ec, digest[:])
		if err != nil {
			return "", err
		}
		sig = make([]byte, 64) // JWS ES256: r‖s, 32 bytes each
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	}
	return input + "." + enc.EncodeToString(sig), nil
}

// mintMany mints n tokens on every CPU.
func (k *signingKey) mintMany(n int, clientID string) ([]string, error) {
	out := make([]string, n)
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				tok, err := k.mint(clientID)
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				out[i] = tok
			}
		})
	}
	wg.Wait()
	return out, firstErr
}

// expectation is the answer claimcheck must give in a scenario.
type expectation struct {
	allow  bool
	status typev3.StatusCode // HTTP status of a deny
	reason string            // claimcheck's reason code in the dynamic metadata
}

func (e expectation) String() string {
	if e.allow {
		return "allowed"
	}
	return fmt.Sprintf("denied %d %s", e.status, e.reason)
}

// matches reports whether resp is the expected answer, and describes resp
// when it is not.
func (e expectation) matches(resp *authv3.CheckResponse) (bool, string) {
	code := codes.Code(resp.GetStatus().GetCode())
	reason := resp.GetDynamicMetadata().GetFields()["claimcheck"].GetStructValue().GetFields()["reason"].GetStringValue()
	if e.allow {
		if code == codes.OK && resp.GetOkResponse() != nil {
			return true, ""
		}
	} else if code != codes.OK && resp.GetDeniedResponse().GetStatus().GetCode() == e.status && reason == e.reason {
		return true, ""
	}
	return false, fmt.Sprintf("gRPC %v, HTTP %d, reason %q", code, resp.GetDeniedResponse().GetStatus().GetCode(), reason)
}

// scenario is one kind of traffic.
type scenario struct {
	name string
	// pool holds the tokens sent, in order; empty means no token at all.
	pool []string
	// distinct: every claimcheck request should carry a token claimcheck has
	// never seen. Claimcheck runs of the scenario share one cursor over the
	// pool across rounds; when it runs out the cursor wraps and the reuses
	// are counted (and reported).
	distinct bool
	cursor   atomic.Uint64
	want     expectation
}

// tokenSource hands out the scenario's tokens to the workers of one run.
type tokenSource struct {
	pool   []string
	cursor *atomic.Uint64
	// count reuses of a distinct pool (claimcheck runs only)
	distinct bool
	reused   atomic.Int64
}

// source returns the token source for a run against target: claimcheck runs
// of a distinct scenario continue the scenario's cursor; any other run
// starts its own.
func (s *scenario) source(claimcheck bool) *tokenSource {
	ts := &tokenSource{pool: s.pool, cursor: new(atomic.Uint64)}
	if claimcheck && s.distinct {
		ts.cursor, ts.distinct = &s.cursor, true
	}
	return ts
}

func (ts *tokenSource) next() string {
	if len(ts.pool) == 0 {
		return ""
	}
	i := ts.cursor.Add(1) - 1
	if ts.distinct && i >= uint64(len(ts.pool)) {
		ts.reused.Add(1)
	}
	return ts.pool[i%uint64(len(ts.pool))]
}

// requestTemplate is one worker's CheckRequest, as Envoy sends it for
// GET /orders/1 from a client through a sidecar: peers, the HTTP request
// with the usual headers. A worker reuses it for every call (calls are
// sequential per worker) and changes only the token and request ID.
type requestTemplate struct {
	req     *authv3.CheckRequest
	http    *authv3.AttributeContext_HttpRequest
	worker  string
	counter uint64
}

func newRequestTemplate(worker int) *requestTemplate {
	h := &authv3.AttributeContext_HttpRequest{
		Method:   "GET",
		Path:     "/orders/1",
		Host:     "orders.internal",
		Scheme:   "http",
		Protocol: "HTTP/1.1",
		Headers: map[string]string{
			":authority":                     "orders.internal",
			":method":                        "GET",
			":path":                          "/orders/1",
			":scheme":                        "http",
			"accept":                         "application/json",
			"accept-encoding":                "gzip",
			"user-agent":                     "orders-client/1.4 (claimcheck-bench)",
			"x-forwarded-proto":              "http",
			"x-envoy-expected-rq-timeout-ms": "15000",
		},
	}
	return &requestTemplate{
		http:   h,
		worker: strconv.FormatInt(int64(worker), 16),
		req: &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Source:      &authv3.AttributeContext_Peer{Address: socketAddress("10.0.3.17", 43122), Principal: "spiffe://cluster.local/ns/shop/sa/orders-client"},
			Destination: &authv3.AttributeContext_Peer{Address: socketAddress("10.0.5.4", 8080)},
			Request:     &authv3.AttributeContext_Request{Http: h},
		}},
	}
}

// next returns the request for the next call, carrying token (none when
// token is empty) and a fresh request ID.
func (t *requestTemplate) next(token string) *authv3.CheckRequest {
	t.counter++
	id := "bench-" + t.worker + "-" + strconv.FormatUint(t.counter, 16)
	t.http.Id = id
	t.http.Headers["x-request-id"] = id
	if token == "" {
		delete(t.http.Headers, "authorization")
	} else {
		t.http.Headers["authorization"] = "Bearer " + token
	}
	return t.req
}

func socketAddress(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}
