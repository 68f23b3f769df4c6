// Package grpcserver adapts the decision path to Envoy's ext_authz gRPC API
// (envoy.service.auth.v3.Authorization) and serves grpc.health.v1.Health.
package grpcserver

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/claimcheck/claimcheck/extauthz"
	"github.com/claimcheck/claimcheck/policy"
)

// AuthorizationService is the service name health is reported under, besides "".
const AuthorizationService = "envoy.service.auth.v3.Authorization"

// Checker makes decisions; *extauthz.Authorizer is one. A panic that
// escapes Check is answered with Panicked's deny, recorded as any other.
type Checker interface {
	Check(ctx context.Context, req *authv3.CheckRequest) extauthz.Decision
	Panicked(ctx context.Context, req *authv3.CheckRequest, p any) extauthz.Decision
}

// Server is the ext_authz gRPC server.
type Server struct {
	authv3.UnimplementedAuthorizationServer
	checker Checker
	grpc    *grpc.Server
	health  *health.Server
	log     *slog.Logger
}

// New returns a Server whose health starts NOT_SERVING; call SetReady once
// keys and policy are loaded.
func New(c Checker, log *slog.Logger, opts ...grpc.ServerOption) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{checker: c, grpc: grpc.NewServer(opts...), health: health.NewServer(), log: log}
	authv3.RegisterAuthorizationServer(s.grpc, s)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	s.SetReady(false)
	return s
}

// SetReady sets the health of "" and of AuthorizationService.
func (s *Server) SetReady(ready bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ready {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus("", st)
	s.health.SetServingStatus(AuthorizationService, st)
}

// Serve serves on l until Stop.
func (s *Server) Serve(l net.Listener) error { return s.grpc.Serve(l) }

// Stop reports NOT_SERVING, stops accepting and waits for in-flight Checks
// until ctx is done, then closes every connection.
func (s *Server) Stop(ctx context.Context) {
	s.health.Shutdown()
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.log.Warn("graceful stop timed out; closing connections")
		s.grpc.Stop()
		<-done
	}
}

// Check implements envoy.service.auth.v3.Authorization. A panic anywhere
// on the way (the Authorizer recovers its own, not its logging and metrics
// afterwards) answers a 503 deny instead of taking the process down.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (resp *authv3.CheckResponse, err error) {
	defer func() {
		if p := recover(); p != nil {
			resp = Response(s.checker.Panicked(ctx, req, p))
		}
	}()
	return Response(s.checker.Check(ctx, req)), nil
}

// Response converts a Decision to a CheckResponse.
func Response(d extauthz.Decision) *authv3.CheckResponse {
	resp := &authv3.CheckResponse{DynamicMetadata: toStruct(d.DynamicMetadata)}
	if d.Allowed {
		resp.Status = &rpcstatus.Status{Code: int32(codes.OK)}
		resp.HttpResponse = &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers:                 headerOptions(d.UpstreamHeaders),
			HeadersToRemove:         d.RemoveHeaders,
			QueryParametersToRemove: d.RemoveQueryParameters,
			ResponseHeadersToAdd:    headerOptions(d.ResponseHeaders),
		}}
		return resp
	}
	resp.Status = &rpcstatus.Status{Code: int32(denyCode(d.Status)), Message: d.Reason}
	resp.HttpResponse = &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
		Status:  &typev3.HttpStatus{Code: typev3.StatusCode(d.Status)},
		Headers: headerOptions(d.DenyHeaders),
		Body:    d.Body,
	}}
	return resp
}

func denyCode(status int) codes.Code {
	switch status {
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	case http.StatusBadRequest:
		return codes.InvalidArgument
	}
	return codes.PermissionDenied
}

// headerOptions sets the first value of each header, replacing what the
// request had, and appends later values of the same header.
func headerOptions(hs []policy.Header) []*corev3.HeaderValueOption {
	if len(hs) == 0 {
		return nil
	}
	out := make([]*corev3.HeaderValueOption, 0, len(hs))
	seen := make(map[string]bool, len(hs))
	for _, h := range hs {
		key := strings.ToLower(h.Key)
		action := corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
		if seen[key] {
			action = corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD
		}
		seen[key] = true
		out = append(out, &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: h.Key, Value: h.Value},
			AppendAction: action,
		})
	}
	return out
}

// toStruct converts dynamic metadata; values structpb cannot hold are
// rendered as strings rather than dropping the whole struct.
func toStruct(m map[string]any) *structpb.Struct {
	if len(m) == 0 {
		return nil
	}
	st, err := structpb.NewStruct(normalize(m).(map[string]any))
	if err != nil {
		return nil
	}
	return st
}

// normalize turns json.Number and other scalars into types structpb accepts.
func normalize(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = normalize(e)
		}
		return out
	case nil, bool, string, float64, int, int64:
		return v
	case interface{ Float64() (float64, error) }:
		if f, err := v.Float64(); err == nil {
			return f
		}
	}
	return fmt.Sprint(v)
}
