package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/claimcheck/claimcheck/extauthz/config"
	"github.com/claimcheck/claimcheck/extauthz/servertls"
)

// serverTLS loads listen.tls, or returns nil when it is not configured.
func serverTLS(cfg *config.Config, log *slog.Logger) (*servertls.Reloader, error) {
	t := cfg.Listen.TLS
	if t == nil {
		return nil, nil
	}
	return servertls.New(servertls.Config{
		CertFile:     t.CertFile,
		KeyFile:      t.KeyFile,
		ClientCAFile: t.ClientCAFile,
		MinVersion:   t.Version(),
	}, log)
}

// listenerTLS is the TLS configuration of the listener "grpc" or "http"
// offering nextProtos, or nil when that listener is plain.
func listenerTLS(cfg *config.Config, r *servertls.Reloader, listener string, nextProtos ...string) *tls.Config {
	if r == nil || cfg.Listen.TLSFor(listener) == nil {
		return nil
	}
	return r.ServerConfig(nextProtos...)
}

// streamWorkers is how many long-lived goroutines run Checks. A new
// goroutine per Check starts with a small stack that OPA's evaluation
// grows by copying it several times: under load that was ~30% of the
// server's CPU. Workers keep their grown stacks (until the GC shrinks an
// idle one; see README "Speed" for GODEBUG=gcshrinkstackoff=1); Checks
// beyond them still get goroutines of their own.
const streamWorkers = 64

// grpcOptions applies limits and TLS to the gRPC server.
func grpcOptions(cfg *config.Config, r *servertls.Reloader) []grpc.ServerOption {
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(cfg.Limits.GRPCMaxReceiveBytes),
		grpc.MaxConcurrentStreams(uint32(cfg.Limits.GRPCMaxConcurrentStreams)),
		grpc.NumStreamWorkers(streamWorkers),
	}
	if tc := listenerTLS(cfg, r, "grpc", "h2"); tc != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
	}
	return opts
}

// maxBodyBytes is limits.request_body.max_bytes, or 0 when the body is not
// copied into the input.
func maxBodyBytes(l config.Limits) int {
	if l.RequestBody == nil {
		return 0
	}
	return l.RequestBody.MaxBytes
}

// clientTLSFlags are check --server's flags for a TLS listener.
type clientTLSFlags struct {
	ca, cert, key, serverName *string
}

func (c *clientTLSFlags) register(fs *flag.FlagSet) {
	c.ca = fs.String("tls-ca", "", "with --server: use TLS, trusting the PEM CA certificates in FILE")
	c.cert = fs.String("tls-cert", "", "with --server: use TLS and present this PEM client certificate (mTLS); needs --tls-key")
	c.key = fs.String("tls-key", "", "the PEM private key of --tls-cert")
	c.serverName = fs.String("tls-server-name", "", "with --server: the name the server certificate must have (default: the host of --server)")
}

// set reports whether any TLS flag was given.
func (c *clientTLSFlags) set() bool {
	return *c.ca != "" || *c.cert != "" || *c.key != "" || *c.serverName != ""
}

// credentials are plaintext without TLS flags, else TLS as they say (the
// system's CAs without --tls-ca).
func (c *clientTLSFlags) credentials() (credentials.TransportCredentials, error) {
	if !c.set() {
		return insecure.NewCredentials(), nil
	}
	tc := &tls.Config{ServerName: *c.serverName, MinVersion: tls.VersionTLS12}
	if *c.ca != "" {
		b, err := os.ReadFile(*c.ca)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--tls-ca %s: no PEM certificates", *c.ca)
		}
	}
	if (*c.cert == "") != (*c.key == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	if *c.cert != "" {
		pair, err := tls.LoadX509KeyPair(*c.cert, *c.key)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return credentials.NewTLS(tc), nil
}
