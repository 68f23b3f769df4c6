package main

import (
	"crypto/tls"
	"log/slog"
	"net/http"
	"net/http/pprof"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

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

// grpcOptions applies limits and TLS to the gRPC server.
func grpcOptions(cfg *config.Config, r *servertls.Reloader) []grpc.ServerOption {
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(cfg.Limits.GRPCMaxReceiveBytes),
		grpc.MaxConcurrentStreams(uint32(cfg.Limits.GRPCMaxConcurrentStreams)),
	}
	if tc := listenerTLS(cfg, r, "grpc", "h2"); tc != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
	}
	return opts
}

// withPprof adds Go's runtime profiles under /debug/pprof/ to the admin
// handler, for listen.admin_pprof.
func withPprof(admin http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/", admin)
	return mux
}

// maxBodyBytes is limits.request_body.max_bytes, or 0 when the body is not
// copied into the input.
func maxBodyBytes(l config.Limits) int {
	if l.RequestBody == nil {
		return 0
	}
	return l.RequestBody.MaxBytes
}
