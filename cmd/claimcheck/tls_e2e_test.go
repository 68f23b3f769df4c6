package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

// tlsSetup is a server certificate for 127.0.0.1 from one CA, and client
// certificates from another, written where the config names them.
type tlsSetup struct {
	dir               string
	serverCA          *tokentest.CA
	clientCA          *tokentest.CA
	certFile, keyFile string
	caFile            string
}

func newTLSSetup(t *testing.T) *tlsSetup {
	t.Helper()
	s := &tlsSetup{dir: t.TempDir(), serverCA: tokentest.NewCA(t, "server CA"), clientCA: tokentest.NewCA(t, "client CA")}
	s.certFile, s.keyFile = s.serverCA.Server([]string{"127.0.0.1"}).WriteFiles(t, s.dir, "server")
	s.caFile = s.clientCA.WriteFile(s.dir, "clients.pem")
	return s
}

// clientConfig trusts the server CA and presents cert (none when nil).
func (s *tlsSetup) clientConfig(t *testing.T, cert *tokentest.Cert) *tls.Config {
	c := &tls.Config{RootCAs: s.serverCA.Pool(), ServerName: "127.0.0.1"}
	if cert != nil {
		c.Certificates = []tls.Certificate{cert.TLS(t)}
	}
	return c
}

// dialGRPC returns a new gRPC connection to addr with creds.
func dialGRPC(t *testing.T, addr string, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// checkOver sends req on conn and returns the answer and the serial of the
// server certificate the connection saw.
func checkOver(conn *grpc.ClientConn, req *authv3.CheckRequest) (*authv3.CheckResponse, *big.Int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var p peer.Peer
	resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, req, grpc.Peer(&p))
	if err != nil {
		return nil, nil, err
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		return resp, nil, fmt.Errorf("not a TLS connection: %T", p.AuthInfo)
	}
	return resp, info.State.PeerCertificates[0].SerialNumber, nil
}

// TestTLSAndMutualTLS serves gRPC and forward-auth over mTLS from the real
// binary: real clients with a certificate from the client CA get answers;
// clients without one, with one from another CA, or without TLS at all are
// refused; a rotated server certificate is served to new connections
// without a restart, and a bad one keeps the old.
func TestTLSAndMutualTLS(t *testing.T) {
	key := tokentest.NewECKey(t, "k1")
	ts := newTLSSetup(t)
	jwks := tokentest.WriteJWKSFile(t, ts.dir, key)
	httpAddr, adminAddr := freeAddr(t), freeAddr(t)
	config := fmt.Sprintf(`
listen:
  grpc: "{{LISTEN}}"
  http: %q
  admin: %q
  tls: {cert_file: %s, key_file: %s, client_ca_file: %s, min_version: "1.3"}
issuers:
  - issuer: https://id.example.com
    audiences: [orders-api]
    jwks_file: %s
policy: {paths: [%s]}
log: {level: debug}
`, httpAddr, adminAddr, ts.certFile, ts.keyFile, ts.caFile, jwks, quickstartPolicy(t))
	grpcAddr := freeAddr(t)
	s := startServer(t, config, grpcAddr)
	envoyCert := ts.clientCA.Client("envoy")
	s.conn = dialGRPC(t, grpcAddr, credentials.NewTLS(ts.clientConfig(t, envoyCert)))
	s.waitHealth(t, healthpb.HealthCheckResponse_SERVING)

	c := tokentest.Claims("https://id.example.com", "orders-api", time.Hour)
	c["client_id"] = "service-client-id"
	allowed := request("GET", "/orders", bearer(tokentest.Mint(t, key, c)))
	resp, firstSerial, err := checkOver(s.conn, allowed)
	if err != nil || codes.Code(resp.GetStatus().GetCode()) != codes.OK {
		t.Fatalf("Check over mTLS: %v %v", resp.GetStatus(), err)
	}

	t.Run("gRPC clients refused", func(t *testing.T) {
		for name, creds := range map[string]credentials.TransportCredentials{
			"no client certificate":               credentials.NewTLS(ts.clientConfig(t, nil)),
			"client certificate of another CA":    credentials.NewTLS(ts.clientConfig(t, tokentest.NewCA(t, "stranger").Client("envoy"))),
			"client certificate of the server CA": credentials.NewTLS(ts.clientConfig(t, ts.serverCA.Client("envoy"))),
			"plaintext":                           insecure.NewCredentials(),
		} {
			if _, _, err := checkOver(dialGRPC(t, grpcAddr, creds), allowed); grpcstatus.Code(err) != codes.Unavailable {
				t.Errorf("%s: Check = %v, want Unavailable", name, err)
			}
		}
	})

	t.Run("forward-auth over TLS", func(t *testing.T) {
		get := func(cert *tokentest.Cert, token string) (int, error) {
			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: ts.clientConfig(t, cert)}}
			defer client.CloseIdleConnections()
			req, _ := http.NewRequest("GET", "https://"+httpAddr+"/orders", nil)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := client.Do(req)
			if err != nil {
				return 0, err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode, nil
		}
		if code, err := get(envoyCert, tokentest.Mint(t, key, c)); err != nil || code != 200 {
			t.Errorf("with a client certificate and a token: %d, %v", code, err)
		}
		if code, err := get(envoyCert, ""); err != nil || code != 401 {
			t.Errorf("with a client certificate, without a token: %d, %v", code, err)
		}
		if code, err := get(nil, tokentest.Mint(t, key, c)); err == nil {
			t.Errorf("without a client certificate: %d, want a TLS error", code)
		}
		resp, err := http.Get("http://" + httpAddr + "/orders")
		if err == nil {
			if resp.StatusCode == 200 {
				t.Error("plain HTTP got a 200")
			}
			resp.Body.Close()
		}
		// The admin listener stays plain.
		resp, err = http.Get("http://" + adminAddr + "/healthz")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("plain admin /healthz: %v", err)
		}
		resp.Body.Close()
	})

	t.Run("check --server", func(t *testing.T) {
		caFile := ts.serverCA.WriteFile(t.TempDir(), "server-ca.pem")
		certFile, keyFile := envoyCert.WriteFiles(t, t.TempDir(), "envoy")
		tok := tokentest.Mint(t, key, c)
		code, out, errOut := runCLI(t, "", "check", "--server", grpcAddr, "--brief", "--path", "/orders", "--token", tok,
			"--tls-ca", caFile, "--tls-cert", certFile, "--tls-key", keyFile)
		if code != exitOK || !strings.HasPrefix(out, "allowed 200") {
			t.Errorf("check over mTLS: exit %d, %q %s", code, out, errOut)
		}
		code, _, errOut = runCLI(t, "", "check", "--server", grpcAddr, "--brief", "--token", tok, "--tls-ca", caFile)
		if code != exitUsage || !strings.Contains(errOut, "server "+grpcAddr) {
			t.Errorf("check without a client certificate: exit %d, %s", code, errOut)
		}
		code, _, errOut = runCLI(t, "", "check", "--server", grpcAddr, "--tls-cert", certFile)
		if code != exitUsage || !strings.Contains(errOut, "--tls-cert and --tls-key go together") {
			t.Errorf("--tls-cert alone: exit %d, %s", code, errOut)
		}
	})

	t.Run("certificate rotation", func(t *testing.T) {
		next := ts.serverCA.Server([]string{"127.0.0.1"})
		next.WriteFiles(t, ts.dir, "server")
		deadline := time.Now().Add(20 * time.Second)
		for {
			_, serial, err := checkOver(dialGRPC(t, grpcAddr, credentials.NewTLS(ts.clientConfig(t, envoyCert))), allowed)
			if err == nil && serial.Cmp(next.Cert.SerialNumber) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the rotated certificate was never served (first %x, last %x, %v)", firstSerial, serial, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		// The connection made before the rotation keeps working.
		if _, _, err := checkOver(s.conn, allowed); err != nil {
			t.Errorf("the established connection broke: %v", err)
		}

		// A key that does not match: the rotated certificate stays.
		tokentest.WriteFileAtomic(t, ts.keyFile, ts.serverCA.Server([]string{"127.0.0.1"}).KeyPEM)
		for !strings.Contains(s.stderr.String(), "tls reload failed") {
			if time.Now().After(deadline) {
				t.Fatal("a bad key was not reported")
			}
			time.Sleep(50 * time.Millisecond)
		}
		_, serial, err := checkOver(dialGRPC(t, grpcAddr, credentials.NewTLS(ts.clientConfig(t, envoyCert))), allowed)
		if err != nil || serial.Cmp(next.Cert.SerialNumber) != 0 {
			t.Errorf("after a bad key: serial %x, %v; want the rotated %x", serial, err, next.Cert.SerialNumber)
		}
	})

	if code := s.stop(t); code != 0 {
		t.Errorf("exit code = %d", code)
	}
	if strings.Contains(s.stderr.String(), "PRIVATE KEY") {
		t.Error("key material reached the log")
	}
}

// TestTLSOnOneListenerOnly: listen.tls.listeners puts TLS on forward-auth
// while gRPC, on a unix socket, stays plain.
func TestTLSOnOneListenerOnly(t *testing.T) {
	ts := newTLSSetup(t)
	httpAddr := freeAddr(t)
	sock := filepath.Join(ts.dir, "cc.sock")
	config := fmt.Sprintf(`
listen:
  grpc: "{{LISTEN}}"
  http: %q
  admin: off
  tls: {cert_file: %s, key_file: %s, listeners: [http]}
issuers:
  - {issuer: https://id.example.com, audiences: [orders-api], jwks_file: %s}
policy: {paths: [%s]}
`, httpAddr, ts.certFile, ts.keyFile, tokentest.WriteJWKSFile(t, ts.dir, tokentest.NewECKey(t, "k")), quickstartPolicy(t))
	s := startServer(t, config, "unix://"+sock)
	s.waitHealth(t, healthpb.HealthCheckResponse_SERVING) // plaintext gRPC
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: ts.clientConfig(t, nil)}}
	resp, err := client.Get("https://" + httpAddr + "/orders")
	if err != nil {
		t.Fatalf("forward-auth over TLS without mTLS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.TLS == nil {
		t.Errorf("forward-auth: %d, TLS %v", resp.StatusCode, resp.TLS != nil)
	}
}

// TestUnixSocketMode: sockets get listen.socket_mode, 0660 by default.
func TestUnixSocketMode(t *testing.T) {
	for _, tt := range []struct {
		mode string
		want os.FileMode
	}{{"", 0o660}, {`"0600"`, 0o600}, {`"0666"`, 0o666}} {
		t.Run(fmt.Sprint(tt.want), func(t *testing.T) {
			dir := t.TempDir()
			grpcSock, httpSock := filepath.Join(dir, "grpc.sock"), filepath.Join(dir, "http.sock")
			mode := ""
			if tt.mode != "" {
				mode = ", socket_mode: " + tt.mode
			}
			config := fmt.Sprintf(`
listen: {grpc: "{{LISTEN}}", http: "unix://%s", admin: off%s}
issuers:
  - {issuer: https://id.example.com, audiences: [orders-api], jwks_file: %s}
policy: {paths: [%s]}
`, httpSock, mode, tokentest.WriteJWKSFile(t, dir, tokentest.NewECKey(t, "k")), quickstartPolicy(t))
			s := startServer(t, config, "unix://"+grpcSock)
			s.waitHealth(t, healthpb.HealthCheckResponse_SERVING)
			for _, sock := range []string{grpcSock, httpSock} {
				fi, err := os.Stat(sock)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != tt.want {
					t.Errorf("%s: mode %v, want a socket with %v", filepath.Base(sock), fi.Mode(), tt.want)
				}
			}
		})
	}
}

// TestValidateLoadsTheTLSFiles: validate refuses TLS files that exist but
// do not load together.
func TestValidateLoadsTheTLSFiles(t *testing.T) {
	ts := newTLSSetup(t)
	cfg := filepath.Join(ts.dir, "config.yaml")
	write := func(keyFile string) {
		writeFile(t, cfg, fmt.Sprintf(`
listen: {grpc: "127.0.0.1:9191", tls: {cert_file: %s, key_file: %s, client_ca_file: %s}}
issuers:
  - {issuer: https://id.example.com, audiences: [orders-api], jwks_file: %s}
policy: {paths: [%s]}
`, ts.certFile, keyFile, ts.caFile, tokentest.WriteJWKSFile(t, ts.dir, tokentest.NewECKey(t, "k")), quickstartPolicy(t)))
	}
	write(ts.keyFile)
	if code, out, errOut := runCLI(t, "", "validate", "--config", cfg); code != exitOK {
		t.Fatalf("validate with good TLS files: exit %d %s %s", code, out, errOut)
	}
	_, otherKey := ts.serverCA.Server([]string{"x"}).WriteFiles(t, ts.dir, "other")
	write(otherKey)
	code, _, errOut := runCLI(t, "", "validate", "--config", cfg)
	if code != exitUsage || !strings.Contains(errOut, "listen.tls") || !strings.Contains(errOut, "does not match") {
		t.Errorf("validate with a key of another certificate: exit %d, %s", code, errOut)
	}
}
