package issuer

import (
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"
)

// Client authentication methods (RFC 7591 names, as in the metadata).
const (
	authBasic = "client_secret_basic"
	authPost  = "client_secret_post"
)

// authenticate finds and checks the client of a token or introspection
// request: HTTP Basic (RFC 6749 §2.3.1, form-urlencoded id and secret) or
// client_id and client_secret in the body, never both.
func (s *Server) authenticate(r *http.Request, form url.Values) (*client, *oauthError) {
	id, secret, method, oerr := credentials(r, form)
	if oerr != nil {
		return nil, oerr
	}
	now := s.now()
	c := s.clients[id]
	clientKey := "client:" + id
	if c == nil {
		clientKey = "client:?" // unknown ids share one bucket: they cannot grow the map
	}
	ipKey := "ip:" + remoteIP(r)
	if wait, blocked := s.failures.blocked(now, clientKey, ipKey); blocked {
		s.log.Warn("client authentication refused: too many failures", "client_id", clip(id), "remote", ipKey[3:])
		return nil, &oauthError{status: http.StatusTooManyRequests, code: "invalid_client",
			desc: "too many failed client authentications; retry later", retryAfter: wait}
	}
	hash := s.dummyHash
	if c != nil {
		hash = c.secretHash
	}
	// bcrypt's comparison is constant-time, and an unknown client costs the
	// same hash, so timing tells nothing about which ids exist.
	ok := bcrypt.CompareHashAndPassword(hash, []byte(secret)) == nil && c != nil
	if !ok {
		s.failures.fail(now, clientKey, ipKey)
		s.log.Warn("client authentication failed", "client_id", clip(id), "method", method, "remote", ipKey[3:])
		return nil, &oauthError{status: http.StatusUnauthorized, code: "invalid_client",
			desc: "client authentication failed", challenge: method == authBasic}
	}
	return c, nil
}

// credentials reads the client's id and secret and says how they came.
func credentials(r *http.Request, form url.Values) (id, secret, method string, oerr *oauthError) {
	_, bodySecret := form["client_secret"]
	bodyID := form.Get("client_id")
	if h := r.Header.Get("Authorization"); h != "" {
		user, pass, ok := r.BasicAuth()
		if !ok {
			return "", "", "", &oauthError{status: http.StatusUnauthorized, code: "invalid_client",
				desc: "the Authorization header must be Basic with the client credentials", challenge: true}
		}
		if bodySecret {
			return "", "", "", &oauthError{status: http.StatusBadRequest, code: "invalid_request",
				desc: "use one client authentication method: HTTP Basic or client_secret in the body, not both"}
		}
		var err1, err2 error
		id, err1 = url.QueryUnescape(user)
		secret, err2 = url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			return "", "", "", &oauthError{status: http.StatusUnauthorized, code: "invalid_client",
				desc: "the Basic credentials must be form-urlencoded (RFC 6749 section 2.3.1)", challenge: true}
		}
		if bodyID != "" && bodyID != id {
			return "", "", "", &oauthError{status: http.StatusBadRequest, code: "invalid_request",
				desc: "client_id in the body differs from the one in the Authorization header"}
		}
		return id, secret, authBasic, nil
	}
	if bodyID == "" || !bodySecret {
		return "", "", "", &oauthError{status: http.StatusUnauthorized, code: "invalid_client",
			desc: "client authentication required: HTTP Basic, or client_id and client_secret in the body", challenge: true}
	}
	return bodyID, form.Get("client_secret"), authPost, nil
}

// remoteIP is the TCP peer's address. Behind a proxy every client shares
// the proxy's address, and so its failure budget.
func remoteIP(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// clip shortens a client-supplied string for the log.
func clip(s string) string {
	const n = 64
	if len(s) > n {
		s = s[:n] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// failureLimiter is a token bucket of failed authentications per key (a
// client_id or a remote address); a key whose bucket is empty is refused
// until it refills. The map is bounded: when full, buckets that have
// refilled completely are dropped, and new keys beyond that share one
// more, the overflow bucket.
type failureLimiter struct {
	limit   rate.Limit
	burst   int
	maxKeys int

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

// overflowKey is the bucket shared by new keys while the map is full.
const overflowKey = "overflow"

func newFailureLimiter(every time.Duration, burst, maxKeys int) *failureLimiter {
	return &failureLimiter{limit: rate.Every(every), burst: burst, maxKeys: maxKeys, buckets: map[string]*rate.Limiter{}}
}

// blocked reports whether any of keys has no failure left at now, and how
// long until it has one.
func (f *failureLimiter) blocked(now time.Time, keys ...string) (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var wait time.Duration
	for _, k := range keys {
		b := f.buckets[k]
		if b == nil && len(f.buckets) >= f.maxKeys {
			b = f.buckets[overflowKey]
		}
		if b == nil {
			continue
		}
		if t := b.TokensAt(now); t < 1 {
			wait = max(wait, time.Duration(math.Ceil((1-t)/float64(f.limit)*float64(time.Second))))
		}
	}
	return wait, wait > 0
}

// fail records one failure for each of keys at now.
func (f *failureLimiter) fail(now time.Time, keys ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range keys {
		f.bucket(now, k).AllowN(now, 1)
	}
}

// bucket returns k's bucket, making room for it when the map is full.
// f.mu is held.
func (f *failureLimiter) bucket(now time.Time, k string) *rate.Limiter {
	if b := f.buckets[k]; b != nil {
		return b
	}
	if len(f.buckets) >= f.maxKeys {
		for key, b := range f.buckets {
			if b.TokensAt(now) >= float64(f.burst) {
				delete(f.buckets, key)
			}
		}
	}
	if len(f.buckets) >= f.maxKeys {
		k = overflowKey
		if b := f.buckets[k]; b != nil {
			return b
		}
	}
	b := rate.NewLimiter(f.limit, f.burst)
	f.buckets[k] = b
	return b
}
