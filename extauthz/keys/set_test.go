package keys_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"math/big"
	"slices"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/claimcheck/claimcheck/extauthz/keys"
	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

// jwkJSON returns k as a JSON object with the members in set changed (a
// nil value deletes the member).
func jwkJSON(t *testing.T, k jwk.Key, set map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for name, v := range set {
		if v == nil {
			delete(m, name)
			continue
		}
		m[name] = v
	}
	return m
}

func rsaJWK(kid string, n *big.Int) map[string]any {
	return map[string]any{"kty": "RSA", "kid": kid, "e": "AQAB", "n": base64.RawURLEncoding.EncodeToString(n.Bytes())}
}

// skipLog is a "jwks key skipped" record.
type skipLog struct {
	Level  string `json:"level"`
	Msg    string `json:"msg"`
	KID    string `json:"kid"`
	Reason string `json:"reason"`
}

func TestParseSet(t *testing.T) {
	rsaKey, ec, ed := tokentest.NewRSAKey(t, "rsa"), tokentest.NewECKey(t, "ec"), tokentest.NewEdKey(t, "ed")
	dup1, dup2 := tokentest.NewECKey(t, "dup"), tokentest.NewEdKey(t, "dup")
	secret := bytes.Repeat([]byte{0x5a}, 32)
	oct := tokentest.NewKeyFrom(t, secret, "hmac", "HS256")
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	roca := new(big.Int).Exp(big.NewInt(65537), big.NewInt(200), nil)
	ecPrivate := jwkJSON(t, ec.Private, nil)

	tests := []struct {
		name     string
		keys     []any // JWKS entries
		wantKIDs []string
		wantErr  bool
		wantLogs []skipLog // Msg is always "jwks key skipped"; Reason is a substring
	}{
		{
			name:     "signature keys with and without use and key_ops",
			keys:     []any{rsaKey.Public, jwkJSON(t, ec.Public, map[string]any{"use": nil}), jwkJSON(t, ed.Public, map[string]any{"use": nil, "key_ops": []string{"verify"}})},
			wantKIDs: []string{"rsa", "ec", "ed"},
		},
		{
			name:     "private keys are reduced to their public halves",
			keys:     []any{ecPrivate},
			wantKIDs: []string{"ec"},
		},
		{
			name:     "encryption key",
			keys:     []any{jwkJSON(t, rsaKey.Public, map[string]any{"use": "enc", "kid": "enc-1"}), ec.Public},
			wantKIDs: []string{"ec"},
			wantLogs: []skipLog{{Level: "INFO", KID: "enc-1", Reason: `use is "enc"`}},
		},
		{
			name:     "key_ops without verify",
			keys:     []any{jwkJSON(t, ec.Public, map[string]any{"use": nil, "key_ops": []string{"encrypt"}}), ed.Public},
			wantKIDs: []string{"ed"},
			wantLogs: []skipLog{{Level: "INFO", KID: "ec", Reason: `key_ops lack "verify"`}},
		},
		{
			name:     "1024-bit RSA key",
			keys:     []any{rsaJWK("weak", weak.N), ec.Public},
			wantKIDs: []string{"ec"},
			wantLogs: []skipLog{{Level: "INFO", KID: "weak", Reason: "1024 bits"}},
		},
		{
			name:     "RSA key with the ROCA fingerprint",
			keys:     []any{rsaJWK("roca", roca), ec.Public},
			wantKIDs: []string{"ec"},
			wantLogs: []skipLog{{Level: "INFO", KID: "roca", Reason: "ROCA"}},
		},
		{
			name:     "entry jwx cannot parse",
			keys:     []any{map[string]any{"kty": "PQC", "kid": "future"}, ec.Public},
			wantKIDs: []string{"ec"},
			wantLogs: []skipLog{{Level: "INFO", KID: "future", Reason: "jwx could not parse it"}},
		},
		{
			name:     "HMAC secret alone",
			keys:     []any{oct.Public},
			wantErr:  true,
			wantLogs: []skipLog{{Level: "WARN", KID: "hmac", Reason: "symmetric key: HMAC secrets are never taken from a key set"}},
		},
		{
			name:     "HMAC secret among public keys",
			keys:     []any{oct.Public, ec.Public},
			wantKIDs: []string{"ec"},
			wantLogs: []skipLog{{Level: "WARN", KID: "hmac", Reason: "symmetric key in a set that also holds asymmetric keys"}},
		},
		{
			name:     "every key of a shared kid is dropped",
			keys:     []any{dup1.Public, ec.Public, dup2.Public},
			wantKIDs: []string{"ec"},
			wantLogs: []skipLog{
				{Level: "WARN", KID: "dup", Reason: "kid shared by 2 keys"},
				{Level: "WARN", KID: "dup", Reason: "kid shared by 2 keys"},
			},
		},
		{
			name:     "a kid shared with an unusable key is not ambiguous",
			keys:     []any{jwkJSON(t, rsaKey.Public, map[string]any{"use": "enc", "kid": "ec"}), ec.Public},
			wantKIDs: []string{"ec"},
			wantLogs: []skipLog{{Level: "INFO", KID: "ec", Reason: `use is "enc"`}},
		},
		{
			name:     "no usable key",
			keys:     []any{jwkJSON(t, ec.Public, map[string]any{"use": "enc"})},
			wantErr:  true,
			wantLogs: []skipLog{{Level: "INFO", KID: "ec", Reason: `use is "enc"`}},
		},
		{
			name:    "empty set",
			keys:    []any{},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(map[string]any{"keys": tt.keys})
			if err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			set, err := keys.ParseSet(b, slog.New(slog.NewJSONHandler(&logs, nil)))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseSet kept %d keys, want an error", set.Len())
				}
			} else {
				if err != nil {
					t.Fatalf("ParseSet: %v", err)
				}
				var kids []string
				for i := range set.Len() {
					k, _ := set.Key(i)
					kid, _ := k.KeyID()
					kids = append(kids, kid)
					if _, private := k.(interface{ D() ([]byte, bool) }); private {
						t.Errorf("key %q keeps its private part", kid)
					}
				}
				if !slices.Equal(kids, tt.wantKIDs) {
					t.Errorf("kept kids %q, want %q", kids, tt.wantKIDs)
				}
			}

			var got []skipLog
			for line := range strings.Lines(logs.String()) {
				var rec skipLog
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("log line %q: %v", line, err)
				}
				got = append(got, rec)
			}
			if len(got) != len(tt.wantLogs) {
				t.Fatalf("logged %d lines, want %d:\n%s", len(got), len(tt.wantLogs), logs.String())
			}
			for i, want := range tt.wantLogs {
				g := got[i]
				if g.Msg != "jwks key skipped" || g.Level != want.Level || g.KID != want.KID || !strings.Contains(g.Reason, want.Reason) {
					t.Errorf("log %d = %+v, want level %s, kid %q, reason containing %q", i, g, want.Level, want.KID, want.Reason)
				}
			}
			for _, material := range []string{base64.RawURLEncoding.EncodeToString(secret), ecPrivate["d"].(string)} {
				if strings.Contains(logs.String(), material) {
					t.Errorf("the log holds key material: %s", logs.String())
				}
			}

			quiet, err := keys.ParseSet(b, nil)
			if (err == nil) != (set != nil) || (quiet != nil && quiet.Len() != set.Len()) {
				t.Errorf("ParseSet without a logger disagrees: %v", err)
			}
		})
	}
}

func TestParseSetRejectsNonJSON(t *testing.T) {
	for _, in := range []string{"", "not json", `{"keys":{}}`, `[1,2]`} {
		if set, err := keys.ParseSet([]byte(in), nil); err == nil {
			t.Errorf("ParseSet(%q) = %d keys, want an error", in, set.Len())
		}
	}
}
