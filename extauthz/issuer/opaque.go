package issuer

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"sync"
	"time"
)

// opaqueStore keeps the claims of issued opaque tokens in memory, keyed by
// the SHA-256 of the token: the tokens themselves are never stored, and a
// lookup compares hashes, so its timing says nothing about valid tokens.
// It holds at most max tokens; past that the oldest is forgotten (its
// holder gets a 401 and fetches a new one). A restart forgets them all.
type opaqueStore struct {
	max int

	mu     sync.Mutex
	tokens map[[sha256.Size]byte]opaqueToken
	order  [][sha256.Size]byte // issue order; order[head:] are live
	head   int
}

type opaqueToken struct {
	claims map[string]any
	exp    time.Time
}

func newOpaqueStore(max int) *opaqueStore {
	return &opaqueStore{max: max, tokens: map[[sha256.Size]byte]opaqueToken{}}
}

// issue stores claims under a new random token valid until exp and
// returns the token: 32 random bytes, base64url.
func (s *opaqueStore) issue(claims map[string]any, exp, now time.Time) string {
	b := make([]byte, 32)
	rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	h := sha256.Sum256([]byte(tok))

	s.mu.Lock()
	defer s.mu.Unlock()
	for s.head < len(s.order) {
		first := s.order[s.head]
		if len(s.tokens) < s.max && now.Before(s.tokens[first].exp) {
			break
		}
		delete(s.tokens, first)
		s.head++
	}
	if s.head > len(s.order)/2 {
		s.order = append(s.order[:0], s.order[s.head:]...)
		s.head = 0
	}
	s.tokens[h] = opaqueToken{claims: claims, exp: exp}
	s.order = append(s.order, h)
	return tok
}

// lookup returns the claims of tok, or nil when it is unknown or expired
// at now.
func (s *opaqueStore) lookup(tok string, now time.Time) map[string]any {
	h := sha256.Sum256([]byte(tok))
	s.mu.Lock()
	t, ok := s.tokens[h]
	s.mu.Unlock()
	if !ok || !now.Before(t.exp) {
		return nil
	}
	return t.claims
}

// len reports how many tokens are held.
func (s *opaqueStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tokens)
}

// newJTI is a random token ID.
func newJTI() string { return rand.Text() }
