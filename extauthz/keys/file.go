package keys

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/claimcheck/claimcheck/extauthz/filewatch"
	"github.com/claimcheck/claimcheck/extauthz/token"
)

// settle is how long a File waits after a change in its directory before
// reading the file, so that a write in several steps is read once, whole.
const settle = 50 * time.Millisecond

// File is a KeySource for keys kept in a local file: a JWKS (NewFile), a
// PEM public key or certificate (NewPublicKeyFile) or an HMAC secret
// (NewHMACFile). The file is read by the constructor and again whenever it
// changes; a change that cannot be read or parsed keeps the last good keys
// and is logged. Changes are seen through the file's directory, so
// replacing the file by a rename (editors' atomic save) or swapping a
// symlink in the same directory (Kubernetes ConfigMap and Secret volumes)
// is noticed too. File is safe for concurrent use; Close stops watching.
type File struct {
	path  string
	kind  string // for messages, e.g. "jwks file"
	parse func(b []byte, mode fs.FileMode) (jwk.Set, error)
	log   *slog.Logger
	keys  atomic.Pointer[loadedSet]

	watcher *filewatch.Watcher
	sum     [sha256.Size]byte // of the content read last; owned by the watcher's goroutine
}

// NewFile reads the JWKS at path and watches it for changes. Private keys
// in the file are reduced to their public halves; a file without any
// usable signature verification key is an error. A nil log discards.
func NewFile(path string, log *slog.Logger) (*File, error) {
	log = orDiscard(log)
	return newFile(path, "jwks file", log, func(b []byte, _ fs.FileMode) (jwk.Set, error) {
		return ParseSet(b, log)
	})
}

// NewPublicKeyFile reads a PEM public key at path and watches it for
// changes. The file holds either one public key, as PKIX ("PUBLIC KEY") or
// PKCS #1 ("RSA PUBLIC KEY"), or an X.509 certificate ("CERTIFICATE") whose
// key is used; for a certificate chain, the first (leaf) certificate.
// Certificates are not verified, nor their validity dates checked: the key
// is trusted because it is configured. RSA keys need at least 2048 bits.
// The key has no kid, so it is tried for every token whose alg fits it.
// Text outside PEM blocks is ignored. A nil log discards.
func NewPublicKeyFile(path string, log *slog.Logger) (*File, error) {
	return newFile(path, "public key file", orDiscard(log), func(b []byte, _ fs.FileMode) (jwk.Set, error) {
		return parsePublicKeyPEM(b)
	})
}

// NewHMACFile reads an HMAC secret at path and watches it for changes. The
// secret is the file's bytes, less one trailing newline ("\n" or "\r\n")
// if there is one; it must be at least minLen bytes long (RFC 7518 asks
// for at least 32, 48 and 64 for HS256, HS384 and HS512), and never empty.
// The set holds it as one "oct" key with "use" "sig" and no kid. A file
// that group or others may access (mode beyond 0600) is logged as a
// warning at each load. A nil log discards.
func NewHMACFile(path string, minLen int, log *slog.Logger) (*File, error) {
	log = orDiscard(log)
	return newFile(path, "hmac secret file", log, func(b []byte, mode fs.FileMode) (jwk.Set, error) {
		if perm := mode.Perm(); perm&^0o600 != 0 {
			log.Warn("hmac secret file permissions are more permissive than 0600", "path", path, "mode", perm.String())
		}
		return parseHMACSecret(b, minLen)
	})
}

// newFile reads path with parse and starts watching it.
func newFile(path, kind string, log *slog.Logger, parse func([]byte, fs.FileMode) (jwk.Set, error)) (*File, error) {
	f := &File{path: path, kind: kind, parse: parse, log: log}
	w, err := filewatch.New(kind+" "+path, settle, log)
	if err != nil {
		return nil, err
	}
	// Watch first, so that a change during the first read is not missed.
	if err := w.Add(filepath.Dir(path)); err != nil {
		w.Close()
		return nil, err
	}
	if err := f.load(); err != nil {
		w.Close()
		return nil, err
	}
	f.watcher = w
	w.Start(f.reload, nil)
	return f, nil
}

// load reads and parses the file and, if that works, makes its keys
// current. It does nothing if the content is what was read last.
func (f *File) load() error {
	b, mode, err := f.read()
	if err != nil {
		return fmt.Errorf("%s: %w", f.kind, err)
	}
	sum := sha256.Sum256(b)
	if sum == f.sum && f.keys.Load() != nil {
		return nil
	}
	f.sum = sum
	set, err := f.parse(b, mode)
	if err != nil {
		return fmt.Errorf("%s %s: %w", f.kind, f.path, err)
	}
	f.keys.Store(&loadedSet{set: set})
	return nil
}

// read returns the file's content and permissions.
func (f *File) read() ([]byte, fs.FileMode, error) {
	fh, err := os.Open(f.path)
	if err != nil {
		return nil, 0, err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("%s is not a regular file", f.path)
	}
	b, err := readCapped(fh)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", f.path, err)
	}
	return b, fi.Mode(), nil
}

// reload loads the file again and logs the outcome if anything changed.
func (f *File) reload() {
	before := f.keys.Load()
	if err := f.load(); err != nil {
		f.log.Warn("keys file reload failed, keeping the last good keys", "path", f.path, "err", err)
		return
	}
	if after := f.keys.Load(); after != before {
		f.log.Info("keys file reloaded", "path", f.path, "kind", f.kind, "keys", after.set.Len())
	}
}

// Keys returns the keys of the last good version of the file.
func (f *File) Keys(context.Context) (jwk.Set, error) { return f.keys.Load().set, nil }

// Refresh returns the same as Keys: changes to the file are picked up as
// they happen.
func (f *File) Refresh(ctx context.Context) (jwk.Set, error) { return f.Keys(ctx) }

// Close stops watching the file. Keys keeps returning the last good keys.
func (f *File) Close() error { return f.watcher.Close() }

func orDiscard(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}

// parsePublicKeyPEM returns a set of the one public key in b.
func parsePublicKeyPEM(b []byte) (jwk.Set, error) {
	var blocks []*pem.Block
	for rest := b; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		blocks = append(blocks, blk)
	}
	if len(blocks) == 0 {
		return nil, errors.New("no PEM data")
	}
	if len(blocks) > 1 && slices.ContainsFunc(blocks, func(b *pem.Block) bool { return b.Type != "CERTIFICATE" }) {
		types := make([]string, len(blocks))
		for i, blk := range blocks {
			types[i] = blk.Type
		}
		return nil, fmt.Errorf("%d PEM blocks (%s): want one public key or one certificate chain", len(blocks), strings.Join(types, ", "))
	}
	pub, err := publicKey(blocks[0])
	if err != nil {
		return nil, err
	}
	return singleKeySet(pub, token.CheckKey)
}

// singleKeySet returns a set holding raw as a signature key that passes check.
func singleKeySet(raw any, check func(jwk.Key) error) (jwk.Set, error) {
	k, err := jwk.Import(raw)
	if err != nil {
		return nil, err
	}
	if err := k.Set(jwk.KeyUsageKey, jwk.ForSignature); err != nil {
		return nil, err
	}
	if err := check(k); err != nil {
		return nil, err
	}
	set := jwk.NewSet()
	if err := set.AddKey(k); err != nil {
		return nil, err
	}
	return set, nil
}

// publicKey returns the signature verification key in blk.
func publicKey(blk *pem.Block) (any, error) {
	if _, ok := blk.Headers["Proc-Type"]; ok {
		return nil, fmt.Errorf("PEM block %q is encrypted", blk.Type)
	}
	var pub any
	var err error
	switch blk.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(blk.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(blk.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(blk.Bytes); err == nil {
			pub = cert.PublicKey
		}
	default:
		if strings.Contains(blk.Type, "PRIVATE KEY") {
			return nil, fmt.Errorf("PEM block %q holds a private key; give the public key or certificate", blk.Type)
		}
		return nil, fmt.Errorf("PEM block %q: want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE", blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("PEM block %q: %w", blk.Type, err)
	}
	switch pub.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return nil, fmt.Errorf("PEM block %q: unsupported key type %T", blk.Type, pub)
	}
	return pub, nil
}

// parseHMACSecret returns a set of the secret in b, less one trailing
// newline.
func parseHMACSecret(b []byte, minLen int) (jwk.Set, error) {
	if bytes.HasSuffix(b, []byte("\r\n")) {
		b = b[:len(b)-2]
	} else if bytes.HasSuffix(b, []byte("\n")) {
		b = b[:len(b)-1]
	}
	switch {
	case len(b) == 0:
		return nil, errors.New("empty secret")
	case len(b) < minLen:
		return nil, fmt.Errorf("secret is %d bytes long; at least %d are required", len(b), minLen)
	}
	return singleKeySet(bytes.Clone(b), func(k jwk.Key) error {
		if !token.UsableHMAC(k) {
			return fmt.Errorf("secret of %d bytes cannot verify HMAC signatures", len(b))
		}
		return nil
	})
}
