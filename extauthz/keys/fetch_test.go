package keys_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/claimcheck/claimcheck/extauthz/keys"
	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

// firstOutcome waits for r's first refresh to end and returns its error.
func firstOutcome(t *testing.T, r *keys.Remote) error {
	t.Helper()
	eventually(t, "the first refresh", func() bool { return !r.Status().NextRefresh.IsZero() })
	return r.Status().LastError
}

func TestNewHTTPClientCAFile(t *testing.T) {
	k := tokentest.NewECKey(t, "k")
	srv := tokentest.NewTLSJWKSServer(t, k)
	tests := []struct {
		name          string
		caFile        string
		wantAuthority bool // want an unknown authority error
	}{
		{"system roots only", "", true},
		{"CA file of an unrelated CA", writeCA(t), true},
		{"CA file of the server", srv.WriteCAFile(t.TempDir()), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, err := keys.NewHTTPClient(keys.FetchOptions{CAFile: tt.caFile})
			if err != nil {
				t.Fatal(err)
			}
			r, _ := newRemote(t, keys.RemoteConfig{JWKSURI: srv.JWKSURI(), HTTPClient: client})
			err = firstOutcome(t, r)
			var unknown x509.UnknownAuthorityError
			if got := errors.As(err, &unknown); got != tt.wantAuthority {
				t.Fatalf("fetch error = %v, want an unknown authority error: %v", err, tt.wantAuthority)
			}
			if r.Ready() == tt.wantAuthority {
				t.Errorf("Ready() = %v", r.Ready())
			}
		})
	}
}

// writeCA writes the certificate of a new self-signed CA to a file and
// returns its path.
func writeCA(t *testing.T) string {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "unrelated test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestNewHTTPClientErrors(t *testing.T) {
	dir := t.TempDir()
	noCerts := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(noCerts, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		opts    keys.FetchOptions
		wantErr string
	}{
		{"missing CA file", keys.FetchOptions{CAFile: filepath.Join(dir, "missing.pem")}, "missing.pem"},
		{"CA file without certificates", keys.FetchOptions{CAFile: noCerts}, "no PEM certificates"},
		{"negative timeout", keys.FetchOptions{Timeout: -time.Second}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := keys.NewHTTPClient(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("NewHTTPClient error = %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestNewHTTPClientUserAgent(t *testing.T) {
	k := tokentest.NewECKey(t, "k")
	tests := []struct {
		name, userAgent, want string
	}{
		{"default", "", "claimcheck"},
		{"configured", "gateway-sidecar/2", "gateway-sidecar/2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := tokentest.NewJWKSServer(t, k)
			client, err := keys.NewHTTPClient(keys.FetchOptions{UserAgent: tt.userAgent})
			if err != nil {
				t.Fatal(err)
			}
			r, _ := newRemote(t, keys.RemoteConfig{JWKSURI: srv.JWKSURI(), HTTPClient: client})
			waitReady(t, r)
			if got := srv.UserAgent(); got != tt.want {
				t.Errorf("User-Agent = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNewHTTPClientRedirects(t *testing.T) {
	k := tokentest.NewECKey(t, "k")
	plain := tokentest.NewJWKSServer(t, k)
	secure := tokentest.NewTLSJWKSServer(t, k)
	redirect := func(start func(http.Handler) *httptest.Server, to string) string {
		srv := start(http.RedirectHandler(to, http.StatusFound))
		t.Cleanup(srv.Close)
		return srv.URL + "/jwks.json"
	}
	tests := []struct {
		name    string
		from    string
		wantErr string
	}{
		{"http to http on loopback", redirect(httptest.NewServer, plain.JWKSURI()), ""},
		{"https to https", redirect(httptest.NewTLSServer, secure.JWKSURI()), ""},
		{"http to https", redirect(httptest.NewServer, secure.JWKSURI()), ""},
		{"https to http, even on loopback", redirect(httptest.NewTLSServer, plain.JWKSURI()), "from https"},
		{"http to http on a public host", redirect(httptest.NewServer, "http://id.example.com/jwks.json"), "loopback"},
	}
	// httptest's TLS servers share one certificate.
	client, err := keys.NewHTTPClient(keys.FetchOptions{CAFile: secure.WriteCAFile(t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newRemote(t, keys.RemoteConfig{JWKSURI: tt.from, HTTPClient: client})
			err := firstOutcome(t, r)
			if tt.wantErr == "" {
				if err != nil || !r.Ready() {
					t.Errorf("fetch through the redirect: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("fetch error = %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}
