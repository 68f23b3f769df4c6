package keys_test

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io/fs"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/claimcheck/claimcheck/extauthz/keys"
	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// thumbprints identifies the keys of set by their RFC 7638 thumbprints.
func thumbprints(t *testing.T, set jwk.Set) string {
	t.Helper()
	var tps []string
	for i := range set.Len() {
		k, _ := set.Key(i)
		tps = append(tps, thumbprint(t, k))
	}
	return strings.Join(tps, ",")
}

func thumbprint(t *testing.T, k jwk.Key) string {
	t.Helper()
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

func secretThumbprint(t *testing.T, secret []byte) string {
	t.Helper()
	k, err := jwk.Import(secret)
	if err != nil {
		t.Fatal(err)
	}
	return thumbprint(t, k)
}

func rawKey(t *testing.T, k jwk.Key) any {
	t.Helper()
	var raw any
	if err := jwk.Export(k, &raw); err != nil {
		t.Fatal(err)
	}
	return raw
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// pemPublic returns k's public key as a PKIX PEM block.
func pemPublic(t *testing.T, k *tokentest.Key) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(rawKey(t, k.Public))
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("PUBLIC KEY", der)
}

// certificate returns a PEM certificate for k's public key, signed by
// parent (self-signed if parent is nil).
func certificate(t *testing.T, k, parent *tokentest.Key) []byte {
	t.Helper()
	if parent == nil {
		parent = k
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "tokentest " + k.KID},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	signer, _ := rawKey(t, parent.Private).(crypto.Signer)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, rawKey(t, k.Public), signer)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("CERTIFICATE", der)
}

// A fileKind is one of the kinds of key file, with two valid contents and
// an invalid one.
type fileKind struct {
	name         string
	open         func(path string, log *slog.Logger) (*keys.File, error)
	a, b         []byte
	invalid      []byte
	wantA, wantB string // thumbprints
}

func fileKinds(t *testing.T) []fileKind {
	ka, kb := tokentest.NewECKey(t, "a"), tokentest.NewRSAKey(t, "b")
	secretA, secretB := bytes.Repeat([]byte("a"), 32), bytes.Repeat([]byte("b"), 40)
	return []fileKind{
		{
			name: "jwks", open: keys.NewFile,
			a: tokentest.JWKS(t, ka), b: tokentest.JWKS(t, kb), invalid: []byte(`{"keys":[]}`),
			wantA: thumbprint(t, ka.Public), wantB: thumbprint(t, kb.Public),
		},
		{
			name: "public key", open: keys.NewPublicKeyFile,
			a: pemPublic(t, ka), b: certificate(t, kb, nil), invalid: []byte("no PEM here\n"),
			wantA: thumbprint(t, ka.Public), wantB: thumbprint(t, kb.Public),
		},
		{
			name: "hmac secret",
			open: func(path string, log *slog.Logger) (*keys.File, error) { return keys.NewHMACFile(path, 32, log) },
			a:    append(bytes.Clone(secretA), '\n'), b: secretB, invalid: []byte("too short\n"),
			wantA: secretThumbprint(t, secretA), wantB: secretThumbprint(t, secretB),
		},
	}
}

// A fileLayout is a way of keeping a file and changing its content.
type fileLayout struct {
	name   string
	create func(t *testing.T, dir string, content []byte) (path string)
	change func(t *testing.T, dir, path string, content []byte)
}

var fileLayouts = []fileLayout{
	{
		name: "rewritten in place",
		create: func(t *testing.T, dir string, content []byte) string {
			path := filepath.Join(dir, "keys")
			writeFile(t, path, content)
			return path
		},
		change: func(t *testing.T, _, path string, content []byte) { writeFile(t, path, content) },
	},
	{
		name: "replaced by a rename (atomic save)",
		create: func(t *testing.T, dir string, content []byte) string {
			path := filepath.Join(dir, "keys")
			writeFile(t, path, content)
			return path
		},
		change: func(t *testing.T, _, path string, content []byte) {
			writeFile(t, path+".tmp", content)
			if err := os.Rename(path+".tmp", path); err != nil {
				t.Fatal(err)
			}
		},
	},
	{
		// As Kubernetes updates ConfigMap and Secret volumes: keys is a
		// symlink to ..data/keys, and ..data a symlink to a versioned
		// directory that is replaced by renaming a new symlink over it.
		name: "Kubernetes volume symlink swap",
		create: func(t *testing.T, dir string, content []byte) string {
			v := versionDir(t, dir, content)
			if err := errors.Join(
				os.Symlink(filepath.Base(v), filepath.Join(dir, "..data")),
				os.Symlink(filepath.Join("..data", "keys"), filepath.Join(dir, "keys")),
			); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, "keys")
		},
		change: func(t *testing.T, dir, _ string, content []byte) {
			old, err := os.Readlink(filepath.Join(dir, "..data"))
			if err != nil {
				t.Fatal(err)
			}
			v := versionDir(t, dir, content)
			tmp := filepath.Join(dir, "..data_tmp")
			if err := errors.Join(
				os.Symlink(filepath.Base(v), tmp),
				os.Rename(tmp, filepath.Join(dir, "..data")),
				os.RemoveAll(filepath.Join(dir, old)),
			); err != nil {
				t.Fatal(err)
			}
		},
	},
}

func versionDir(t *testing.T, dir string, content []byte) string {
	t.Helper()
	v, err := os.MkdirTemp(dir, "..version-")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(v, "keys"), content)
	return v
}

func TestFileFollowsChanges(t *testing.T) {
	for _, kind := range fileKinds(t) {
		for _, layout := range fileLayouts {
			t.Run(kind.name+"/"+layout.name, func(t *testing.T) {
				dir := t.TempDir()
				path := layout.create(t, dir, kind.a)
				logs := &logRecorder{}
				f, err := kind.open(path, slog.New(logs))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { f.Close() })
				current := func() string {
					set, err := f.Keys(t.Context())
					if err != nil {
						t.Fatal(err)
					}
					return thumbprints(t, set)
				}
				if got := current(); got != kind.wantA {
					t.Fatalf("keys = %s, want %s", got, kind.wantA)
				}

				layout.change(t, dir, path, kind.invalid)
				logs.waitLog(t, "keys file reload failed, keeping the last good keys", path)
				if got := current(); got != kind.wantA {
					t.Errorf("after an invalid change keys = %s, want the last good %s", got, kind.wantA)
				}

				layout.change(t, dir, path, kind.b)
				eventually(t, "the changed keys", func() bool { return current() == kind.wantB })
				logs.waitLog(t, "keys file reloaded", "keys=1")
				if set, _ := f.Refresh(t.Context()); thumbprints(t, set) != kind.wantB {
					t.Errorf("Refresh = %s, want %s", thumbprints(t, set), kind.wantB)
				}
			})
		}
	}
}

func TestFileCloseKeepsKeys(t *testing.T) {
	k := tokentest.NewECKey(t, "k")
	f, err := keys.NewFile(tokentest.WriteJWKSFile(t, t.TempDir(), k), nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := f.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	if set, err := f.Keys(t.Context()); err != nil || kids(t, set) != "k" {
		t.Errorf("Keys after Close = %v, %v", set, err)
	}
}

func TestPublicKeyFileVerifiesKIDlessTokens(t *testing.T) {
	ka, kb := tokentest.NewRSAKey(t, "a"), tokentest.NewRSAKey(t, "b")
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.pem")
	writeFile(t, path, certificate(t, ka, nil))
	f, err := keys.NewPublicKeyFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	v := newVerifier(t, "https://gateway.example.com", f)
	mint := func(k *tokentest.Key) string {
		return tokentest.Mint(t, k, tokentest.Claims("https://gateway.example.com", "api", time.Hour), tokentest.WithoutKID())
	}

	if _, err := v.Verify(t.Context(), mint(ka)); err != nil {
		t.Fatalf("Verify with the file's key: %v", err)
	}
	writeFile(t, path, pemPublic(t, kb))
	eventually(t, "the new key to be used", func() bool {
		_, err := v.Verify(t.Context(), mint(kb))
		return err == nil
	})
	if _, err := v.Verify(t.Context(), mint(ka)); !errors.Is(err, token.ErrSignature) {
		t.Errorf("Verify with the replaced key = %v, want ErrSignature", err)
	}
}

func TestNewPublicKeyFile(t *testing.T) {
	rsaKey, ecKey, edKey := tokentest.NewRSAKey(t, "rsa"), tokentest.NewECKey(t, "ec"), tokentest.NewEdKey(t, "ed")
	ca := tokentest.NewECKey(t, "ca")
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	weakDER, err := x509.MarshalPKIXPublicKey(&weak.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(rawKey(t, ecKey.Private))
	if err != nil {
		t.Fatal(err)
	}
	x, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	xDER, err := x509.MarshalPKIXPublicKey(x.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

	tests := []struct {
		name    string
		content []byte
		want    *tokentest.Key // whose public key the set must hold
		wantErr string
	}{
		{"PKIX RSA", pemPublic(t, rsaKey), rsaKey, ""},
		{"PKCS #1 RSA", pemBlock("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(rawKey(t, rsaKey.Public).(*rsa.PublicKey))), rsaKey, ""},
		{"PKIX EC", pemPublic(t, ecKey), ecKey, ""},
		{"PKIX Ed25519", pemPublic(t, edKey), edKey, ""},
		{"certificate", certificate(t, rsaKey, nil), rsaKey, ""},
		{"certificate chain", join(certificate(t, ecKey, ca), certificate(t, ca, nil)), ecKey, ""},
		{"text around the PEM", join([]byte("subject=CN=gateway\n"), certificate(t, edKey, nil), []byte("\n")), edKey, ""},
		{"RSA under 2048 bits", pemBlock("PUBLIC KEY", weakDER), nil, "1024 bits"},
		{"private key", pemBlock("PRIVATE KEY", privDER), nil, "private key"},
		{"two public keys", join(pemPublic(t, rsaKey), pemPublic(t, ecKey)), nil, "2 PEM blocks"},
		{"certificate and public key", join(certificate(t, rsaKey, nil), pemPublic(t, ecKey)), nil, "2 PEM blocks"},
		{"no PEM", []byte("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n"), nil, "no PEM"},
		{"corrupt key", pemBlock("PUBLIC KEY", []byte("not DER")), nil, "PUBLIC KEY"},
		{"X25519 key", pemBlock("PUBLIC KEY", xDER), nil, "unsupported key type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "key.pem")
			writeFile(t, path, tt.content)
			f, err := keys.NewPublicKeyFile(path, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("NewPublicKeyFile error = %v, want one naming the path and mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewPublicKeyFile: %v", err)
			}
			t.Cleanup(func() { f.Close() })
			set, _ := f.Keys(t.Context())
			if got, want := thumbprints(t, set), thumbprint(t, tt.want.Public); got != want {
				t.Fatalf("key %s, want %s", got, want)
			}
			k, _ := set.Key(0)
			if _, ok := k.KeyID(); ok {
				t.Error("key has a kid")
			}
			if use, _ := k.KeyUsage(); use != "sig" {
				t.Errorf("use = %q, want sig", use)
			}
			if private, _ := jwk.IsPrivateKey(k); private {
				t.Error("key is private")
			}
		})
	}
}

func TestNewHMACFile(t *testing.T) {
	secret := strings.Repeat("s", 32)
	tests := []struct {
		name    string
		content string
		want    string
		wantErr string
	}{
		{"exactly the minimum length", secret, secret, ""},
		{"trailing newline stripped", secret + "\n", secret, ""},
		{"trailing CRLF stripped", secret + "\r\n", secret, ""},
		{"only one newline stripped", secret + "\n\n", secret + "\n", ""},
		{"other trailing space kept", secret + " ", secret + " ", ""},
		{"shorter than the minimum", secret[1:], "", "at least 32"},
		{"shorter once the newline is stripped", secret[1:] + "\n", "", "at least 32"},
		{"empty", "", "", "empty"},
		{"only a newline", "\n", "", "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "secret")
			writeFile(t, path, []byte(tt.content))
			f, err := keys.NewHMACFile(path, 32, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("NewHMACFile error = %v, want one naming the path and mentioning %q", err, tt.wantErr)
				}
				if s := strings.TrimSpace(tt.content); s != "" && strings.Contains(err.Error(), s) {
					t.Errorf("error %q contains the secret", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewHMACFile: %v", err)
			}
			t.Cleanup(func() { f.Close() })
			set, _ := f.Keys(t.Context())
			if set.Len() != 1 {
				t.Fatalf("set has %d keys, want 1", set.Len())
			}
			k, _ := set.Key(0)
			if k.KeyType().String() != "oct" {
				t.Errorf("kty = %s, want oct", k.KeyType())
			}
			if _, ok := k.KeyID(); ok {
				t.Error("key has a kid")
			}
			if use, _ := k.KeyUsage(); use != "sig" {
				t.Errorf("use = %q, want sig", use)
			}
			if got, _ := rawKey(t, k).([]byte); string(got) != tt.want {
				t.Errorf("secret = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNewHMACFileWarnsAboutPermissions(t *testing.T) {
	tests := []struct {
		mode     fs.FileMode
		wantWarn bool
	}{
		{0o600, false},
		{0o400, false},
		{0o640, true},
		{0o644, true},
		{0o700, true},
	}
	for _, tt := range tests {
		t.Run(tt.mode.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "secret")
			writeFile(t, path, []byte(strings.Repeat("s", 32)))
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			logs := &logRecorder{}
			f, err := keys.NewHMACFile(path, 32, slog.New(logs))
			if err != nil {
				t.Fatalf("NewHMACFile: %v", err)
			}
			t.Cleanup(func() { f.Close() })
			_, warned := logs.find("hmac secret file permissions are more permissive than 0600", path)
			if warned != tt.wantWarn {
				t.Errorf("warned = %v, want %v", warned, tt.wantWarn)
			}
		})
	}
}
