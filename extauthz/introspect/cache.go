package introspect

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"

	"github.com/claimcheck/claimcheck/extauthz/token"
)

// DefaultMaxEntries bounds each issuer's cache of answers: like the token
// cache, whose bound claimcheck gives these caches too.
const DefaultMaxEntries = token.DefaultCacheMaxEntries

// answer is what an endpoint said about one token, and until when it may
// be reused: not at all when expires is not after the time it was given.
type answer[V any] struct {
	v       V
	err     error
	expires time.Time
}

// answers remembers answers by the SHA-256 of the token they are about (the
// token itself is never stored), each until its own expiry and at most max
// of them, least recently used out first; and asks once for all the callers
// that want the same token's answer at the same time.
type answers[V any] struct {
	lru   *lru.Cache[[sha256.Size]byte, answer[V]]
	group singleflight.Group
	now   func() time.Time
	// unavailable is the sentinel wrapped by errors that are not answers: a
	// caller's context done, a panic.
	unavailable error
	// waiting counts callers waiting for a request in flight; tests read it
	// to know every caller has joined.
	waiting atomic.Int64
}

func newAnswers[V any](max int, now func() time.Time, unavailable error) (*answers[V], error) {
	if max <= 0 {
		max = DefaultMaxEntries
	}
	l, err := lru.New[[sha256.Size]byte, answer[V]](max)
	if err != nil {
		return nil, err
	}
	return &answers[V]{lru: l, now: now, unavailable: unavailable}, nil
}

// get returns the remembered answer about raw, or else ask's answer, asked
// once for all concurrent callers. ask runs with a context of its own, not
// any one caller's, bounded by timeout, so one caller giving up fails none of
// the others; each caller waits only until its own ctx is done. A caller's
// context ending and a panic in ask are errors wrapping a.unavailable, never
// an allow or a crash.
func (a *answers[V]) get(ctx context.Context, raw string, timeout time.Duration, ask func(context.Context) answer[V]) (V, error) {
	key := sha256.Sum256([]byte(raw))
	if ans, ok := a.lru.Get(key); ok {
		if a.now().Before(ans.expires) {
			return ans.v, ans.err
		}
		a.lru.Remove(key)
	}
	ch := a.group.DoChan(string(key[:]), func() (v any, err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("%w: panic: %v", a.unavailable, p)
			}
		}()
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		ans := ask(actx)
		if a.now().Before(ans.expires) {
			a.lru.Add(key, ans)
		}
		return ans, nil
	})
	a.waiting.Add(1)
	defer a.waiting.Add(-1)
	var zero V
	select {
	case res := <-ch:
		if res.Err != nil {
			return zero, res.Err
		}
		ans := res.Val.(answer[V])
		return ans.v, ans.err
	case <-ctx.Done():
		return zero, fmt.Errorf("%w: %w", a.unavailable, ctx.Err())
	}
}
