package tokentest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority for TLS tests: it issues server and client
// certificates with ECDSA P-256 keys.
type CA struct {
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
	tb   testing.TB
}

// NewCA returns a self-signed CA named name, valid from an hour ago for a day.
func NewCA(tb testing.TB, name string) *CA {
	tb.Helper()
	key := newTLSKey(tb)
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(tb),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatalf("tokentest: create CA certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatalf("tokentest: parse CA certificate: %v", err)
	}
	return &CA{Cert: cert, key: key, tb: tb}
}

// PEM returns the CA certificate in PEM.
func (ca *CA) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// Pool returns a pool holding only this CA, for clients and servers to trust.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// WriteFile writes the CA certificate to dir/name and returns the path.
func (ca *CA) WriteFile(dir, name string) string {
	ca.tb.Helper()
	path := filepath.Join(dir, name)
	WriteFileAtomic(ca.tb, path, ca.PEM())
	return path
}

// Cert is a certificate with its private key.
type Cert struct {
	Cert    *x509.Certificate
	CertPEM []byte
	KeyPEM  []byte
}

// TLS returns the certificate for a tls.Config.
func (c *Cert) TLS(tb testing.TB) tls.Certificate {
	tb.Helper()
	pair, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
	if err != nil {
		tb.Fatalf("tokentest: load certificate: %v", err)
	}
	return pair
}

// WriteFiles writes the certificate and key to dir/name.crt and
// dir/name.key (mode 0600), each replaced atomically by a rename so that a
// watcher never reads half a file, and returns their paths.
func (c *Cert) WriteFiles(tb testing.TB, dir, name string) (certFile, keyFile string) {
	tb.Helper()
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	WriteFileAtomic(tb, keyFile, c.KeyPEM)
	WriteFileAtomic(tb, certFile, c.CertPEM)
	return certFile, keyFile
}

// CertOption changes a certificate Server or Client issues.
type CertOption func(*x509.Certificate)

// ValidBetween sets the certificate's validity period.
func ValidBetween(notBefore, notAfter time.Time) CertOption {
	return func(c *x509.Certificate) { c.NotBefore, c.NotAfter = notBefore, notAfter }
}

// Server issues a server certificate for hosts: DNS names or IP addresses.
func (ca *CA) Server(hosts []string, opts ...CertOption) *Cert {
	ca.tb.Helper()
	tmpl := ca.leaf(hosts[0], x509.ExtKeyUsageServerAuth)
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return ca.issue(tmpl, opts)
}

// Client issues a client certificate with common name name.
func (ca *CA) Client(name string, opts ...CertOption) *Cert {
	ca.tb.Helper()
	return ca.issue(ca.leaf(name, x509.ExtKeyUsageClientAuth), opts)
}

func (ca *CA) leaf(cn string, usage x509.ExtKeyUsage) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: newSerial(ca.tb),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(12 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
}

func (ca *CA) issue(tmpl *x509.Certificate, opts []CertOption) *Cert {
	ca.tb.Helper()
	for _, o := range opts {
		o(tmpl)
	}
	key := newTLSKey(ca.tb)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		ca.tb.Fatalf("tokentest: issue certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		ca.tb.Fatalf("tokentest: parse certificate: %v", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		ca.tb.Fatalf("tokentest: marshal key: %v", err)
	}
	return &Cert{
		Cert:    cert,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
}

// WriteFileAtomic writes b to path (mode 0600) through a temporary file in
// the same directory and a rename, so that readers see the old or the new
// content, never a mix.
func WriteFileAtomic(tb testing.TB, path string, b []byte) {
	tb.Helper()
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		tb.Fatalf("tokentest: %v", err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		tb.Fatalf("tokentest: write %s: %v", path, err)
	}
}

func newTLSKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("tokentest: generate key: %v", err)
	}
	return key
}

func newSerial(tb testing.TB) *big.Int {
	tb.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		tb.Fatalf("tokentest: serial: %v", err)
	}
	return n
}
