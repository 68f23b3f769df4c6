package token

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/claimcheck/claimcheck/extauthz/reason"
)

// Cache defaults.
const (
	DefaultCacheMaxEntries  = 10000
	DefaultCacheMaxBytes    = 32 << 20
	DefaultCacheMaxTTL      = 5 * time.Minute
	DefaultCacheNegativeTTL = 10 * time.Second
)

// CacheConfig bounds a Cache. Zero or negative MaxEntries, MaxBytes and
// MaxTTL mean their defaults; NegativeTTL zero or negative disables the
// negative cache, so start from DefaultCacheConfig for its default.
type CacheConfig struct {
	// MaxEntries bounds the number of entries, positive and negative.
	MaxEntries int
	// MaxBytes bounds the estimated memory of the entries: the entry
	// itself with its raw-token hash, plus an estimate of the claims and
	// header it holds.
	MaxBytes int64
	// MaxTTL bounds how long a verified token is cached: an entry lives
	// until min(exp, insertion + MaxTTL), by the Verifier's clock.
	MaxTTL time.Duration
	// NegativeTTL is how long a rejection is remembered. Only rejections
	// of the token itself (401 kinds) are; ErrKeysUnavailable, context
	// errors, ErrTooLarge, and ErrNotYetValid and ErrIssuedInFuture (which
	// time cures) never are. At most an eighth of the entries are negative,
	// and a negative entry never evicts a positive one.
	NegativeTTL time.Duration
}

// DefaultCacheConfig returns the default bounds, with the negative cache
// on.
func DefaultCacheConfig() CacheConfig {
	return CacheConfig{
		MaxEntries:  DefaultCacheMaxEntries,
		MaxBytes:    DefaultCacheMaxBytes,
		MaxTTL:      DefaultCacheMaxTTL,
		NegativeTTL: DefaultCacheNegativeTTL,
	}
}

// CacheStats counts a Cache's work. Evictions counts entries dropped to
// stay within the bounds, not expired or invalidated ones.
type CacheStats struct {
	Hits, Misses, NegativeHits, Evictions uint64
	Entries, Bytes                        int64
}

// Cache is a Verifier in front of a Verifier: it remembers verified tokens
// and rejections, keyed by the SHA-256 of the raw token (the token itself
// is never stored). It is safe for concurrent use.
//
// A hit never accepts a token its Verifier would now reject because of
// time or keys: the cached claims are checked again at the Verifier's
// clock (exp, nbf and iat with the issuer's clock skew, and aud), and the
// key that verified the signature, identified by kid and JWK thumbprint,
// must still be in the issuer's current key set and fit the token's
// algorithm. Otherwise the entry is dropped and the token verified afresh,
// which reports the proper reason.
//
// A Cache belongs to one Verifier and each entry to the issuer it was
// verified under. A configuration reload builds a new Verifier, hence a
// new, empty Cache: nothing verified under an old issuer configuration is
// ever served.
//
// Hits return the same *Token to every caller: treat it as read-only and
// never modify its Header, Claims or Scopes.
type Cache struct {
	v           *Verifier
	maxTTL      time.Duration
	negativeTTL time.Duration
	shards      []shard
	mask        uint32

	thumbs  sync.Map // jwk.Key → [sha256.Size]byte
	nThumbs atomic.Int64

	hits, misses, negativeHits, evictions atomic.Uint64
	entries, bytes                        atomic.Int64
}

// NewCache returns a Cache in front of v, which must not be nil.
func NewCache(v *Verifier, cfg CacheConfig) *Cache {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultCacheMaxEntries
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultCacheMaxBytes
	}
	if cfg.MaxTTL <= 0 {
		cfg.MaxTTL = DefaultCacheMaxTTL
	}
	// Up to 16 shards of at least 64 entries each; a power of two. Each
	// shard gets an equal share of the bounds, rounded down, so the
	// totals never exceed them.
	n := 1
	for n < 16 && cfg.MaxEntries/(2*n) >= 64 {
		n *= 2
	}
	c := &Cache{
		v:           v,
		maxTTL:      cfg.MaxTTL,
		negativeTTL: max(cfg.NegativeTTL, 0),
		shards:      make([]shard, n),
		mask:        uint32(n - 1),
	}
	for i := range c.shards {
		s := &c.shards[i]
		s.m = make(map[[sha256.Size]byte]*entry)
		s.pos.init()
		s.neg.init()
		s.maxEntries = cfg.MaxEntries / n
		s.maxNegative = max(s.maxEntries/8, 1)
		s.maxBytes = cfg.MaxBytes / int64(n)
	}
	return c
}

// Stats returns the counters and the current size.
func (c *Cache) Stats() CacheStats {
	return CacheStats{
		Hits:         c.hits.Load(),
		Misses:       c.misses.Load(),
		NegativeHits: c.negativeHits.Load(),
		Evictions:    c.evictions.Load(),
		Entries:      c.entries.Load(),
		Bytes:        c.bytes.Load(),
	}
}

// Verify returns what the Verifier's Verify would return for raw, from
// the cache when it safely can.
func (c *Cache) Verify(ctx context.Context, raw string) (*Token, error) {
	v := c.v
	if len(raw) > v.maxSize {
		c.misses.Add(1)
		return v.Verify(ctx, raw) // not worth hashing
	}
	// Hash raw in place rather than copying it: Sum256 neither keeps nor
	// modifies its argument.
	key := sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw)))
	s := &c.shards[binary.LittleEndian.Uint32(key[:4])&c.mask]
	if tok, ok, err := c.lookup(ctx, s, &key); ok {
		return tok, err
	}
	c.misses.Add(1)
	tok, err := v.Verify(ctx, raw)
	if err != nil {
		if c.negativeTTL > 0 && negativeCacheable(err) {
			e := &entry{key: key, err: err, expires: v.now().Add(c.negativeTTL)}
			e.size = entrySize + int64(len(err.Error()))
			c.add(s, e)
		}
		return nil, err
	}
	if e := c.positive(tok); e != nil {
		e.key = key
		c.add(s, e)
	}
	return tok, nil
}

// lookup answers from s if it holds a live entry for key that is still
// valid.
func (c *Cache) lookup(ctx context.Context, s *shard, key *[sha256.Size]byte) (*Token, bool, error) {
	now := c.v.now()
	s.mu.Lock()
	e := s.m[*key]
	if e == nil {
		s.mu.Unlock()
		return nil, false, nil
	}
	if !now.Before(e.expires) {
		c.remove(s, e)
		s.mu.Unlock()
		return nil, false, nil
	}
	if e.tok == nil {
		s.mu.Unlock()
		c.negativeHits.Add(1)
		return nil, true, e.err
	}
	s.pos.moveToFront(e)
	s.mu.Unlock()

	// The entry's fields other than the links never change; check them
	// without the lock, since Keys may block.
	if c.v.issuers[e.tok.Issuer] != e.iss || e.iss.checkClaims(e.claims, now) != nil {
		c.drop(s, e)
		return nil, false, nil
	}
	switch present, err := c.keyPresent(ctx, e); {
	case err != nil:
		return nil, false, nil // let Verify report it
	case !present:
		c.drop(s, e)
		return nil, false, nil
	}
	c.hits.Add(1)
	return e.tok, true, nil
}

// keyPresent reports whether the key that verified e's token is still in
// its issuer's key set, and fits the token's algorithm.
func (c *Cache) keyPresent(ctx context.Context, e *entry) (bool, error) {
	set, err := e.iss.sig.keys.Keys(ctx)
	if err != nil || set == nil {
		return false, errors.New("no key set")
	}
	// Key sources publish a new set on every change and never modify one,
	// so a set the key was found in before still holds it. Checking a key
	// again (its hygiene checks) costs more than the rest of a hit.
	comparable := reflect.TypeOf(set).Comparable()
	if seen := e.keysSeen.Load(); seen != nil && comparable && seen.set == set {
		return true, nil
	}
	for k := range allKeys(set) {
		if id, _ := k.KeyID(); id != e.kid || !e.alg.fits(k) {
			continue
		}
		if tp, ok := c.thumbprint(k); ok && tp == e.thumb {
			if comparable {
				e.keysSeen.Store(&seenSet{set})
			}
			return true, nil
		}
	}
	return false, nil
}

// seenSet is a key set an entry's key was found in.
type seenSet struct{ set jwk.Set }

// positive builds the entry for tok, just verified, or returns nil if it
// should not be cached.
func (c *Cache) positive(tok *Token) *entry {
	now := c.v.now()
	expires := now.Add(c.maxTTL)
	if tok.Expiry.Before(expires) {
		expires = tok.Expiry
	}
	if !now.Before(expires) || tok.key == nil {
		return nil
	}
	iss := c.v.issuers[tok.Issuer]
	if iss == nil {
		return nil
	}
	name, _ := tok.Header["alg"].(string)
	var alg *algorithm
	for i := range iss.sig.algs {
		if iss.sig.algs[i].name == name {
			alg = &iss.sig.algs[i]
		}
	}
	if alg == nil {
		return nil
	}
	cl, err := parseClaims(tok.Claims)
	if err != nil {
		return nil
	}
	tp, ok := c.thumbprint(tok.key)
	if !ok {
		return nil
	}
	e := &entry{tok: tok, iss: iss, claims: cl, alg: alg, kid: tok.KeyID, expires: expires, thumb: tp}
	e.size = entrySize + sizeOf(tok.Header) + sizeOf(tok.Claims) + sizeOf(tok.Scopes) +
		sizeOf(cl.aud) + int64(len(tok.KeyID))
	return e
}

// maxThumbprints bounds the thumbprint memo; it is emptied when full.
const maxThumbprints = 1024

// thumbprint returns k's RFC 7638 SHA-256 thumbprint, which covers the
// key type and material only. It is memoized by key object, like Verify
// relying on key sources never to modify a key once they handed it out:
// computing an EC key's thumbprint costs more than the rest of a hit.
func (c *Cache) thumbprint(k jwk.Key) (tp [sha256.Size]byte, ok bool) {
	memo := k != nil && reflect.TypeOf(k).Comparable()
	if memo {
		if v, ok := c.thumbs.Load(k); ok {
			return v.([sha256.Size]byte), true
		}
	}
	b, err := k.Thumbprint(crypto.SHA256)
	if err != nil || len(b) != sha256.Size {
		return tp, false
	}
	copy(tp[:], b)
	if memo {
		if c.nThumbs.Add(1) > maxThumbprints {
			c.thumbs.Clear()
			c.nThumbs.Store(1)
		}
		c.thumbs.Store(k, tp)
	}
	return tp, true
}

// negativeCacheable reports whether err is a rejection of the token that
// time will not cure.
func negativeCacheable(err error) bool {
	switch {
	case Unavailable(err), errors.Is(err, ErrTooLarge),
		errors.Is(err, ErrNotYetValid), errors.Is(err, ErrIssuedInFuture),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	}
	return Reason(err) != reason.Internal
}

// entry is a cached verification result: tok, or err when tok is nil.
// Only the list links change after insertion, under the shard's lock.
type entry struct {
	prev, next *entry
	key        [sha256.Size]byte
	expires    time.Time // by the Verifier's clock
	size       int64

	err error

	tok    *Token
	iss    *issuer
	claims *claims
	alg    *algorithm
	kid    string
	thumb  [sha256.Size]byte // JWK thumbprint of the verifying key

	keysSeen atomic.Pointer[seenSet] // the last key set holding the key
}

// entrySize estimates an entry's fixed cost: the struct, its map slot and
// the Token and claims structs.
const entrySize = int64(unsafe.Sizeof(entry{})+unsafe.Sizeof(Token{})+unsafe.Sizeof(claims{})) + 64

// sizeOf estimates the memory held by a decoded JSON value.
func sizeOf(v any) int64 {
	switch v := v.(type) {
	case string:
		return 16 + int64(len(v))
	case json.Number:
		return 16 + int64(len(v))
	case map[string]any:
		n := int64(48)
		for k, x := range v {
			n += 32 + int64(len(k)) + sizeOf(x)
		}
		return n
	case []any:
		n := int64(24)
		for _, x := range v {
			n += 16 + sizeOf(x)
		}
		return n
	case []string:
		n := int64(24)
		for _, s := range v {
			n += 16 + int64(len(s))
		}
		return n
	default:
		return 16
	}
}

// shard is one lock's share of the cache: a map and two LRU lists, of
// positive and of negative entries, front most recent.
type shard struct {
	mu          sync.Mutex
	m           map[[sha256.Size]byte]*entry
	pos, neg    list
	nNegative   int
	bytes       int64
	maxEntries  int
	maxNegative int
	maxBytes    int64
	_           [64]byte // keep shards' locks on separate cache lines
}

// add inserts e into s, replacing any entry with its key and evicting the
// least recently used entries to stay within s's bounds: negative ones
// first, and only negative ones for a negative e.
func (c *Cache) add(s *shard, e *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.m[e.key]; old != nil {
		c.remove(s, old)
	}
	if e.size > s.maxBytes {
		return
	}
	full := func() bool {
		return len(s.m)+1 > s.maxEntries || s.bytes+e.size > s.maxBytes ||
			e.tok == nil && s.nNegative+1 > s.maxNegative
	}
	for full() {
		var victim *entry
		switch {
		case s.nNegative > 0:
			victim = s.neg.back()
		case e.tok != nil && len(s.m) > 0:
			victim = s.pos.back()
		default:
			return
		}
		c.remove(s, victim)
		c.evictions.Add(1)
	}
	s.m[e.key] = e
	s.bytes += e.size
	if e.tok == nil {
		s.neg.pushFront(e)
		s.nNegative++
	} else {
		s.pos.pushFront(e)
	}
	c.entries.Add(1)
	c.bytes.Add(e.size)
}

// remove unlinks e, which is in s; s.mu must be held.
func (c *Cache) remove(s *shard, e *entry) {
	delete(s.m, e.key)
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
	s.bytes -= e.size
	if e.tok == nil {
		s.nNegative--
	}
	c.entries.Add(-1)
	c.bytes.Add(-e.size)
}

// drop removes e from s unless it is already gone.
func (c *Cache) drop(s *shard, e *entry) {
	s.mu.Lock()
	if s.m[e.key] == e {
		c.remove(s, e)
	}
	s.mu.Unlock()
}

// list is a circular doubly linked list of entries around a sentinel.
type list struct{ root entry }

func (l *list) init() { l.root.next, l.root.prev = &l.root, &l.root }

func (l *list) pushFront(e *entry) {
	e.prev, e.next = &l.root, l.root.next
	e.prev.next, e.next.prev = e, e
}

func (l *list) moveToFront(e *entry) {
	e.prev.next, e.next.prev = e.next, e.prev
	l.pushFront(e)
}

// back returns the least recently used entry; the list must not be empty.
func (l *list) back() *entry { return l.root.prev }

var _ interface {
	Verify(context.Context, string) (*Token, error)
} = (*Cache)(nil)
