package introspect

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/claimcheck/claimcheck/extauthz/token"
)

// bound is how many answers a holds before it evicts one.
func bound[V any](a *answers[V]) int {
	var key [sha256.Size]byte
	for n := 0; ; n++ {
		binary.LittleEndian.PutUint64(key[:], uint64(n))
		if a.lru.Add(key, answer[V]{}) {
			return n
		}
	}
}

func TestZeroConfigIsDefaults(t *testing.T) {
	c, err := New(Config{
		Endpoint:         Endpoint{URL: "https://id.example.com/introspect"},
		Rules:            token.Rules{Issuer: issuer, Audiences: []string{audience}},
		ClientID:         clientID,
		ClientSecretFile: writeSecret(t, secret),
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.cfg.Mode != DefaultMode || c.cfg.Auth != DefaultAuth || c.timeout != DefaultTimeout {
		t.Errorf("mode %q, auth %q, timeout %s; want %q, %q, %s", c.cfg.Mode, c.cfg.Auth, c.timeout, DefaultMode, DefaultAuth, DefaultTimeout)
	}
	if n := bound(c.cache); n != DefaultMaxEntries {
		t.Errorf("cache holds %d answers, want DefaultMaxEntries %d", n, DefaultMaxEntries)
	}
}

func TestZeroUserinfoConfigIsDefaults(t *testing.T) {
	u, err := NewUserinfo(UserinfoConfig{Endpoint: Endpoint{Issuer: issuer, URL: "https://id.example.com/userinfo"}})
	if err != nil {
		t.Fatal(err)
	}
	if u.cfg.OnError != DefaultOnError || u.timeout != DefaultTimeout {
		t.Errorf("on_error %q, timeout %s; want %q, %s", u.cfg.OnError, u.timeout, DefaultOnError, DefaultTimeout)
	}
	if n := bound(u.cache); n != DefaultMaxEntries {
		t.Errorf("cache holds %d answers, want DefaultMaxEntries %d", n, DefaultMaxEntries)
	}
}
