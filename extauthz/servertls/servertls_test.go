package servertls_test

import (
	"crypto/tls"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/claimcheck/claimcheck/extauthz/servertls"
	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

// serve accepts TLS connections with cfg on a loopback port, completes each
// handshake and writes "ok".
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if c.(*tls.Conn).Handshake() == nil {
					c.Write([]byte("ok"))
				}
			}()
		}
	}()
	return l.Addr().String()
}

// dial connects with cfg and returns the server certificate's serial once
// the server has accepted the connection (which, with TLS 1.3, is known
// only after the handshake: a refused client certificate shows up on the
// first read).
func dial(addr string, cfg *tls.Config) (*big.Int, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2)
	if _, err := c.Read(buf); err != nil {
		return nil, err
	}
	return c.ConnectionState().PeerCertificates[0].SerialNumber, nil
}

// waitServing polls until dialling addr with cfg yields want's serial.
func waitServing(t *testing.T, addr string, cfg *tls.Config, want *tokentest.Cert) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := dial(addr, cfg)
		if err == nil && got.Cmp(want.Cert.SerialNumber) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new certificate (serial %x) was never served: last %x, %v", want.Cert.SerialNumber, got, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type fixture struct {
	dir               string
	ca                *tokentest.CA
	certFile, keyFile string
	log               *tokentest.SyncBuffer
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{dir: t.TempDir(), ca: tokentest.NewCA(t, "server CA"), log: &tokentest.SyncBuffer{}}
	f.certFile, f.keyFile = f.ca.Server([]string{"127.0.0.1"}).WriteFiles(t, f.dir, "server")
	return f
}

func (f *fixture) reloader(t *testing.T, cfg servertls.Config) *servertls.Reloader {
	t.Helper()
	cfg.CertFile, cfg.KeyFile = f.certFile, f.keyFile
	r, err := servertls.New(cfg, slog.New(slog.NewTextHandler(f.log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func (f *fixture) client() *tls.Config {
	return &tls.Config{RootCAs: f.ca.Pool(), ServerName: "127.0.0.1"}
}

func TestRotatedCertificateIsServedWithoutRestart(t *testing.T) {
	f := newFixture(t)
	r := f.reloader(t, servertls.Config{})
	addr := serve(t, r.ServerConfig("h2"))
	first := r.Leaf()
	if got, err := dial(addr, f.client()); err != nil || got.Cmp(first.SerialNumber) != 0 {
		t.Fatalf("first certificate: %x, %v", got, err)
	}

	next := f.ca.Server([]string{"127.0.0.1"})
	next.WriteFiles(t, f.dir, "server")
	waitServing(t, addr, f.client(), next)
	if !strings.Contains(f.log.String(), "tls certificate reloaded") {
		t.Errorf("the reload was not logged:\n%s", f.log)
	}
}

func TestABadNewCertificateKeepsTheOldOne(t *testing.T) {
	other := tokentest.NewCA(t, "other").Server([]string{"127.0.0.1"})
	expired := tokentest.NewCA(t, "x").Server([]string{"127.0.0.1"},
		tokentest.ValidBetween(time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour)))
	tests := []struct {
		name      string
		cert, key []byte
		logged    string
	}{
		{"key of another certificate", nil, other.KeyPEM, "private key does not match public key"},
		{"garbage certificate", []byte("not PEM"), nil, "failed to find any PEM data"},
		{"expired certificate", expired.CertPEM, expired.KeyPEM, "expired at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			r := f.reloader(t, servertls.Config{})
			addr := serve(t, r.ServerConfig())
			old := r.Leaf().SerialNumber
			if tt.key != nil {
				tokentest.WriteFileAtomic(t, f.keyFile, tt.key)
			}
			if tt.cert != nil {
				tokentest.WriteFileAtomic(t, f.certFile, tt.cert)
			}
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(f.log.String(), "tls reload failed") {
				if time.Now().After(deadline) {
					t.Fatalf("no reload error was logged:\n%s", f.log)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if !strings.Contains(f.log.String(), tt.logged) {
				t.Errorf("the log does not say %q:\n%s", tt.logged, f.log)
			}
			if got, err := dial(addr, f.client()); err != nil || got.Cmp(old) != 0 {
				t.Errorf("after a bad change the server presents %x, %v; want the old %x", got, err, old)
			}
		})
	}
}

func TestMutualTLS(t *testing.T) {
	f := newFixture(t)
	clientCA := tokentest.NewCA(t, "client CA")
	caFile := clientCA.WriteFile(f.dir, "clients.pem")
	r := f.reloader(t, servertls.Config{ClientCAFile: caFile})
	addr := serve(t, r.ServerConfig())

	withCert := func(c *tokentest.Cert) *tls.Config {
		cfg := f.client()
		cfg.Certificates = []tls.Certificate{c.TLS(t)}
		return cfg
	}
	good := clientCA.Client("envoy")
	if _, err := dial(addr, withCert(good)); err != nil {
		t.Fatalf("a client with a certificate from the client CA was refused: %v", err)
	}
	if _, err := dial(addr, f.client()); err == nil {
		t.Error("a client without a certificate was accepted")
	}
	stranger := tokentest.NewCA(t, "stranger CA").Client("envoy")
	if _, err := dial(addr, withCert(stranger)); err == nil {
		t.Error("a client with a certificate from another CA was accepted")
	}
	// The server's own CA issues client certificates too, but is not a client CA.
	if _, err := dial(addr, withCert(f.ca.Client("envoy"))); err == nil {
		t.Error("a client certificate from the server's CA was accepted")
	}

	// Rotating the client CA file: the old CA's clients are refused at once.
	nextCA := tokentest.NewCA(t, "next client CA")
	nextCA.WriteFile(f.dir, "clients.pem")
	newcomer := nextCA.Client("envoy")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := dial(addr, withCert(newcomer)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the new client CA was never used")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := dial(addr, withCert(good)); err == nil {
		t.Error("a client of the rotated-out CA was still accepted")
	}
}

func TestMinVersion(t *testing.T) {
	f := newFixture(t)
	r := f.reloader(t, servertls.Config{MinVersion: tls.VersionTLS13})
	addr := serve(t, r.ServerConfig())
	old := f.client()
	old.MaxVersion = tls.VersionTLS12
	if _, err := dial(addr, old); err == nil {
		t.Error("a TLS 1.2 client was accepted with min version 1.3")
	}
	if _, err := dial(addr, f.client()); err != nil {
		t.Errorf("a TLS 1.3 client was refused: %v", err)
	}
}

func TestServerConfigOffersTheGivenProtocols(t *testing.T) {
	f := newFixture(t)
	r := f.reloader(t, servertls.Config{})
	addr := serve(t, r.ServerConfig("h2", "http/1.1"))
	cfg := f.client()
	cfg.NextProtos = []string{"http/1.1"}
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := c.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
		t.Errorf("negotiated %q, want http/1.1", p)
	}
}

func TestNewRefusesFilesThatDoNotLoad(t *testing.T) {
	dir := t.TempDir()
	ca := tokentest.NewCA(t, "ca")
	certFile, keyFile := ca.Server([]string{"x"}).WriteFiles(t, dir, "ok")
	expCert, expKey := ca.Server([]string{"x"}, tokentest.ValidBetween(time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour))).WriteFiles(t, dir, "expired")
	notCA := filepath.Join(dir, "notca.pem")
	if err := os.WriteFile(notCA, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  servertls.Config
		want string
	}{
		{"no key file", servertls.Config{CertFile: certFile}, "a certificate file and a key file are required"},
		{"missing certificate", servertls.Config{CertFile: filepath.Join(dir, "nope"), KeyFile: keyFile}, "no such file"},
		{"expired certificate", servertls.Config{CertFile: expCert, KeyFile: expKey}, "expired at"},
		{"key of another certificate", servertls.Config{CertFile: certFile, KeyFile: expKey}, "does not match"},
		{"client CA file with a key", servertls.Config{CertFile: certFile, KeyFile: keyFile, ClientCAFile: notCA}, `client_ca_file ` + notCA + `: PEM block "PRIVATE KEY": want CERTIFICATE`},
		{"empty client CA file", servertls.Config{CertFile: certFile, KeyFile: keyFile, ClientCAFile: empty}, "no PEM certificates"},
		{"directory as certificate", servertls.Config{CertFile: dir, KeyFile: keyFile}, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := servertls.New(tt.cfg, nil)
			if err == nil {
				r.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}
