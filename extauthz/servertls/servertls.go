// Package servertls gives claimcheck's listeners TLS and mutual TLS whose
// certificate, key and client CAs are re-read from their files when they
// change, without a restart.
//
// Each handshake takes the certificate and client CAs in force at that
// moment (tls.Config.GetConfigForClient), so a rotated certificate is served
// to the next connection while established connections carry on. A change
// that does not load — a certificate that does not match its key, an
// expired certificate, a CA file without certificates — keeps what is in
// force and is logged at error level.
package servertls

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/claimcheck/claimcheck/extauthz/filewatch"
)

// settle is how long the files must be quiet before they are re-read, so
// that a certificate and its key written one after the other are read as a
// pair.
const settle = 200 * time.Millisecond

// maxFileSize bounds each file read; PEM certificates and keys are a few KiB.
const maxFileSize = 1 << 20

// DefaultMinVersion is the lowest TLS version accepted when
// Config.MinVersion is zero.
const DefaultMinVersion uint16 = tls.VersionTLS12

// Config names the files of a TLS listener.
type Config struct {
	// CertFile is the PEM certificate chain, leaf first; KeyFile its PEM
	// private key.
	CertFile, KeyFile string
	// ClientCAFile, when set, turns on mutual TLS: every client must present
	// a certificate that chains to one of the PEM certificates in it.
	ClientCAFile string
	// MinVersion is the lowest TLS version accepted; zero is
	// DefaultMinVersion.
	MinVersion uint16
}

// Reloader holds a listener's certificate and client CAs, and re-reads
// them when their files change. It is safe for concurrent use.
type Reloader struct {
	cfg     Config
	log     *slog.Logger
	current atomic.Pointer[material]
	sum     [sha256.Size]byte // of the files read last; owned by the watcher's goroutine
	watcher *filewatch.Watcher
}

// material is what one handshake uses.
type material struct {
	cert      tls.Certificate
	clientCAs *x509.CertPool // nil without mutual TLS
}

// New loads cfg's files and watches them for changes until Close. A nil
// log discards.
func New(cfg Config, log *slog.Logger) (*Reloader, error) {
	if cfg.CertFile == "" || cfg.KeyFile == "" {
		return nil, errors.New("tls: a certificate file and a key file are required")
	}
	if cfg.MinVersion == 0 {
		cfg.MinVersion = DefaultMinVersion
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Reloader{cfg: cfg, log: log}
	w, err := filewatch.New("tls files", settle, log)
	if err != nil {
		return nil, err
	}
	// Watch first, so that a change during the first read is not missed.
	dirs := map[string]bool{filepath.Dir(cfg.CertFile): true, filepath.Dir(cfg.KeyFile): true}
	if cfg.ClientCAFile != "" {
		dirs[filepath.Dir(cfg.ClientCAFile)] = true
	}
	for d := range dirs {
		if err := w.Add(d); err != nil {
			w.Close()
			return nil, err
		}
	}
	if _, err := r.load(); err != nil {
		w.Close()
		return nil, err
	}
	r.watcher = w
	w.Start(r.reload, nil)
	return r, nil
}

// ServerConfig returns a server tls.Config that offers nextProtos in ALPN
// (e.g. "h2" for gRPC, "h2" and "http/1.1" for HTTP) and takes the
// certificate and client CAs in force at each handshake.
func (r *Reloader) ServerConfig(nextProtos ...string) *tls.Config {
	protos := append([]string(nil), nextProtos...)
	return &tls.Config{
		MinVersion: r.cfg.MinVersion,
		NextProtos: protos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := r.current.Load()
			c := &tls.Config{
				MinVersion:   r.cfg.MinVersion,
				NextProtos:   protos,
				Certificates: []tls.Certificate{m.cert},
			}
			if m.clientCAs != nil {
				c.ClientAuth = tls.RequireAndVerifyClientCert
				c.ClientCAs = m.clientCAs
				// A resumed session skips the client's certificate: without
				// tickets, a client CA taken out of the file is out for
				// every new connection.
				c.SessionTicketsDisabled = true
			}
			return c, nil
		},
	}
}

// Leaf returns the certificate in force.
func (r *Reloader) Leaf() *x509.Certificate { return r.current.Load().cert.Leaf }

// Close stops watching the files; the material in force stays in use.
func (r *Reloader) Close() error { return r.watcher.Close() }

// reload re-reads the files and logs the outcome when they changed.
func (r *Reloader) reload() {
	before := r.Leaf()
	changed, err := r.load()
	switch {
	case err != nil:
		r.log.Error("tls reload failed, keeping the current certificate and client CAs",
			"err", err, "serial", serial(before), "not_after", before.NotAfter)
	case changed:
		leaf := r.Leaf()
		r.log.Info("tls certificate reloaded", "subject", leaf.Subject.String(), "serial", serial(leaf),
			"not_after", leaf.NotAfter, "old_serial", serial(before))
	}
}

// load reads the files and, if they changed and load, makes them current.
func (r *Reloader) load() (changed bool, err error) {
	certPEM, err := readFile(r.cfg.CertFile)
	if err != nil {
		return false, err
	}
	keyPEM, err := readFile(r.cfg.KeyFile)
	if err != nil {
		return false, err
	}
	var caPEM []byte
	if r.cfg.ClientCAFile != "" {
		if caPEM, err = readFile(r.cfg.ClientCAFile); err != nil {
			return false, err
		}
	}
	h := sha256.New()
	for _, b := range [][]byte{certPEM, keyPEM, caPEM} {
		fmt.Fprintf(h, "%d:", len(b))
		h.Write(b)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	if sum == r.sum && r.current.Load() != nil {
		return false, nil
	}

	m := &material{}
	if m.cert, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return false, fmt.Errorf("tls: cert_file %s and key_file %s: %w", r.cfg.CertFile, r.cfg.KeyFile, err)
	}
	if now := time.Now(); now.After(m.cert.Leaf.NotAfter) {
		return false, fmt.Errorf("tls: cert_file %s: the certificate (serial %s) expired at %s",
			r.cfg.CertFile, serial(m.cert.Leaf), m.cert.Leaf.NotAfter.Format(time.RFC3339))
	}
	if caPEM != nil {
		if m.clientCAs, err = parseCAs(caPEM); err != nil {
			return false, fmt.Errorf("tls: client_ca_file %s: %w", r.cfg.ClientCAFile, err)
		}
	}
	r.sum = sum
	r.current.Store(m)
	return true, nil
}

// readFile reads a regular file of at most maxFileSize bytes.
func readFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxFileSize {
		return nil, fmt.Errorf("tls: %s: not a regular file of at most %d bytes", path, maxFileSize)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	return b, nil
}

// parseCAs returns a pool of the certificates in b, which must hold at
// least one and nothing else.
func parseCAs(b []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for rest := b; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %q: want CERTIFICATE", blk.Type)
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, errors.New("no PEM certificates")
	}
	return pool, nil
}

// serial formats a certificate's serial number for logs.
func serial(c *x509.Certificate) string {
	if c == nil {
		return ""
	}
	return fmt.Sprintf("%x", c.SerialNumber)
}
