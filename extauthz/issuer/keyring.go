package issuer

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// KeyFile is the name of the file in the key directory that holds the
// signing keys.
const KeyFile = "signing-keys.json"

// keyRing holds the signing keys and persists them in one file. The newest
// key signs; a replaced key stays published for overlap after its successor
// was created, so every token it signed expires while it is still in the
// JWKS. Rotation happens when a key is asked for, so there is no timer.
type keyRing struct {
	path     string
	alg      string
	interval time.Duration // 0: never rotate
	overlap  time.Duration
	log      *slog.Logger

	mu   sync.Mutex
	keys []signingKey // oldest first
}

// signingKey is one key pair of the ring.
type signingKey struct {
	created time.Time
	alg     jwa.SignatureAlgorithm
	kid     string
	private jwk.Key
	public  jwk.Key
}

// keyFileDoc is the layout of KeyFile.
type keyFileDoc struct {
	Keys []keyFileEntry `json:"keys"`
}

type keyFileEntry struct {
	Created time.Time       `json:"created"`
	Key     json.RawMessage `json:"key"`
}

// openKeyRing loads the keys in dir, creating dir (mode 0700) when it does
// not exist. A key file that others may read is refused.
func openKeyRing(dir, alg string, interval, overlap time.Duration, log *slog.Logger) (*keyRing, error) {
	if _, ok := jwa.LookupSignatureAlgorithm(alg); !ok {
		return nil, fmt.Errorf("key ring: unknown algorithm %q", alg)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("key dir: %w", err)
	}
	r := &keyRing{path: filepath.Join(dir, KeyFile), alg: alg, interval: interval, overlap: overlap, log: log}
	fi, err := os.Stat(r.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return r, nil
	case err != nil:
		return nil, fmt.Errorf("key file: %w", err)
	case fi.Mode().Perm()&0o077 != 0:
		return nil, fmt.Errorf("key file %s: mode %04o lets others read the signing keys; chmod 600 it", r.path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(r.path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	var doc keyFileDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("key file %s: %w", r.path, err)
	}
	for i, e := range doc.Keys {
		k, err := parseSigningKey(e)
		if err != nil {
			return nil, fmt.Errorf("key file %s: keys[%d]: %w", r.path, i, err)
		}
		if i > 0 && k.created.Before(r.keys[i-1].created) {
			return nil, fmt.Errorf("key file %s: keys[%d]: not in order of creation", r.path, i)
		}
		r.keys = append(r.keys, k)
	}
	return r, nil
}

func parseSigningKey(e keyFileEntry) (signingKey, error) {
	priv, err := jwk.ParseKey(e.Key)
	if err != nil {
		return signingKey{}, err
	}
	if ok, err := jwk.IsPrivateKey(priv); err != nil || !ok {
		return signingKey{}, errors.New("not a private key")
	}
	a, ok := priv.Algorithm()
	if !ok {
		return signingKey{}, errors.New("no alg")
	}
	alg, ok := jwa.LookupSignatureAlgorithm(a.String())
	if !ok {
		return signingKey{}, fmt.Errorf("alg %q is not a signature algorithm", a.String())
	}
	kid, ok := priv.KeyID()
	if !ok || kid == "" {
		return signingKey{}, errors.New("no kid")
	}
	pub, err := priv.PublicKey()
	if err != nil {
		return signingKey{}, err
	}
	return signingKey{created: e.Created, alg: alg, kid: kid, private: priv, public: pub}, nil
}

// signer returns the key that signs at now, rotating first when it is due.
func (r *keyRing) signer(now time.Time) (signingKey, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.rotateIfDue(now); err != nil {
		return signingKey{}, err
	}
	return r.keys[len(r.keys)-1], nil
}

// published returns the keys in the JWKS at now, rotating first when due.
func (r *keyRing) published(now time.Time) ([]signingKey, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.rotateIfDue(now); err != nil {
		return nil, err
	}
	var out []signingKey
	for i, k := range r.keys {
		if r.live(i, now) {
			out = append(out, k)
		}
	}
	return out, nil
}

// live reports whether keys[i] is still published at now.
func (r *keyRing) live(i int, now time.Time) bool {
	return i == len(r.keys)-1 || now.Before(r.keys[i+1].created.Add(r.overlap))
}

// rotateIfDue adds a new signing key when there is none, when the newest
// uses another algorithm than configured, or when it is interval old; keys
// past their overlap are dropped at the same time. The file is written
// before the new key is used. r.mu is held.
func (r *keyRing) rotateIfDue(now time.Time) error {
	if n := len(r.keys); n > 0 {
		last := r.keys[n-1]
		if last.alg.String() == r.alg && (r.interval == 0 || now.Before(last.created.Add(r.interval))) {
			return nil
		}
	}
	k, err := newSigningKey(r.alg, now)
	if err != nil {
		return fmt.Errorf("key ring: new %s key: %w", r.alg, err)
	}
	keys := append(r.keys[:len(r.keys):len(r.keys)], k)
	kept := keys[:0:0]
	for i := range keys {
		if i == len(keys)-1 || now.Before(keys[i+1].created.Add(r.overlap)) {
			kept = append(kept, keys[i])
		}
	}
	if err := writeKeyFile(r.path, kept); err != nil {
		return err
	}
	r.log.Info("new signing key", "kid", k.kid, "alg", r.alg, "keys_published", len(kept),
		"next_rotation", nextRotation(k.created, r.interval))
	r.keys = kept
	return nil
}

func nextRotation(created time.Time, interval time.Duration) any {
	if interval == 0 {
		return "never"
	}
	return created.Add(interval)
}

// newSigningKey generates a key pair for alg.
func newSigningKey(alg string, now time.Time) (signingKey, error) {
	priv, err := NewPrivateKey(alg)
	if err != nil {
		return signingKey{}, err
	}
	b, err := json.Marshal(priv)
	if err != nil {
		return signingKey{}, err
	}
	return parseSigningKey(keyFileEntry{Created: now.UTC(), Key: b})
}

// NewPrivateKey generates a private JWK for the JWS algorithm alg (RS256
// and PS256: RSA 2048; ES256, ES384, ES512: P-256, P-384, P-521; EdDSA:
// Ed25519) with "alg", "use": "sig" and its RFC 7638 thumbprint as "kid".
func NewPrivateKey(alg string) (jwk.Key, error) {
	var raw any
	var err error
	switch alg {
	case "RS256", "PS256":
		raw, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		raw, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		raw, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ES512":
		raw, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "EdDSA":
		_, raw, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("expected RS256, PS256, ES256, ES384, ES512 or EdDSA, got %q", alg)
	}
	if err != nil {
		return nil, err
	}
	priv, err := jwk.Import(raw)
	if err != nil {
		return nil, err
	}
	sa, _ := jwa.LookupSignatureAlgorithm(alg)
	if err := priv.Set(jwk.AlgorithmKey, sa); err != nil {
		return nil, err
	}
	if err := priv.Set(jwk.KeyUsageKey, "sig"); err != nil {
		return nil, err
	}
	if err := jwk.AssignKeyID(priv); err != nil {
		return nil, err
	}
	return priv, nil
}

// writeKeyFile replaces path atomically with keys, at mode 0600.
func writeKeyFile(path string, keys []signingKey) error {
	doc := keyFileDoc{Keys: make([]keyFileEntry, len(keys))}
	for i, k := range keys {
		b, err := json.Marshal(k.private)
		if err != nil {
			return fmt.Errorf("key file: %w", err)
		}
		doc.Keys[i] = keyFileEntry{Created: k.created, Key: b}
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("key file: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".signing-keys-*.tmp") // mode 0600
	if err != nil {
		return fmt.Errorf("key file: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("key file: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("key file: %w", err)
	}
	return nil
}

// jwks is the JSON Web Key Set of the keys published at now.
func (r *keyRing) jwks(now time.Time) (jwk.Set, error) {
	keys, err := r.published(now)
	if err != nil {
		return nil, err
	}
	set := jwk.NewSet()
	for _, k := range keys {
		if err := set.AddKey(k.public); err != nil {
			return nil, err
		}
	}
	return set, nil
}

// ringKeys is the ring as the verifier's token.KeySource, so the issuer
// checks its own tokens exactly as claimcheck does.
type ringKeys struct {
	ring *keyRing
	now  func() time.Time
}

func (k ringKeys) Keys(context.Context) (jwk.Set, error) { return k.ring.jwks(k.now()) }

func (k ringKeys) Refresh(ctx context.Context) (jwk.Set, error) { return k.Keys(ctx) }
