package token

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func defaultsVerifier(t *testing.T) *Verifier {
	t.Helper()
	v, err := NewVerifier([]Issuer{{Issuer: "https://id.example.com", Audiences: []string{"orders-api"}, Keys: NoKeys}})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestNoOptionsLimitTokensToDefaultMaxSize(t *testing.T) {
	v := defaultsVerifier(t)
	for _, tt := range []struct {
		size     int
		tooLarge bool
	}{{DefaultMaxSize, false}, {DefaultMaxSize + 1, true}} {
		_, err := v.Verify(context.Background(), strings.Repeat("a", tt.size))
		if err == nil || errors.Is(err, ErrTooLarge) != tt.tooLarge {
			t.Errorf("%d-byte token: %v, want too large %v", tt.size, err, tt.tooLarge)
		}
	}
}

func TestZeroMaxKidlessKeysIsDefault(t *testing.T) {
	if got := defaultsVerifier(t).issuers["https://id.example.com"].sig.maxKidless; got != DefaultMaxKidlessKeys {
		t.Errorf("maxKidless = %d, want DefaultMaxKidlessKeys %d", got, DefaultMaxKidlessKeys)
	}
}

// cacheBounds are a Cache's bounds as its shards add them up.
func cacheBounds(c *Cache) (entries int, bytes int64) {
	for i := range c.shards {
		entries += c.shards[i].maxEntries
		bytes += c.shards[i].maxBytes
	}
	return entries, bytes
}

func TestZeroCacheConfigIsDefaultBoundsWithoutNegativeCache(t *testing.T) {
	c := NewCache(defaultsVerifier(t), CacheConfig{})
	if entries, bytes := cacheBounds(c); entries != DefaultCacheMaxEntries || bytes != DefaultCacheMaxBytes {
		t.Errorf("bounds %d entries, %d bytes; want %d, %d", entries, bytes, DefaultCacheMaxEntries, DefaultCacheMaxBytes)
	}
	if c.maxTTL != DefaultCacheMaxTTL || c.negativeTTL != 0 {
		t.Errorf("maxTTL %s, negativeTTL %s; want %s, 0s", c.maxTTL, c.negativeTTL, DefaultCacheMaxTTL)
	}
}

func TestDefaultCacheConfigIsTheDefaults(t *testing.T) {
	want := CacheConfig{MaxEntries: DefaultCacheMaxEntries, MaxBytes: DefaultCacheMaxBytes, MaxTTL: DefaultCacheMaxTTL, NegativeTTL: DefaultCacheNegativeTTL}
	if got := DefaultCacheConfig(); got != want {
		t.Errorf("DefaultCacheConfig() = %+v, want %+v", got, want)
	}
	if c := NewCache(defaultsVerifier(t), DefaultCacheConfig()); c.negativeTTL != DefaultCacheNegativeTTL {
		t.Errorf("negativeTTL = %s, want %s", c.negativeTTL, DefaultCacheNegativeTTL)
	}
}
