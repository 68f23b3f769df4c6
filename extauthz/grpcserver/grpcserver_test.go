package grpcserver

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/claimcheck/claimcheck/extauthz"
	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/policy"
)

func TestResponseAllowCarriesHeadersAndMetadata(t *testing.T) {
	resp := Response(extauthz.Decision{
		Allowed:         true,
		Status:          200,
		Reason:          "allowed",
		UpstreamHeaders: []policy.Header{{Key: "x-client-id", Value: "svc"}, {Key: "x-role", Value: "a"}, {Key: "x-role", Value: "b"}},
		RemoveHeaders:   []string{"authorization"},
		ResponseHeaders: []policy.Header{{Key: "x-authz", Value: "claimcheck"}},
		DynamicMetadata: map[string]any{"claimcheck": map[string]any{"reason": "allowed"}, "n": json.Number("3"), "l": []any{"x", true}},

		RemoveQueryParameters: []string{"access_token", "access%5Ftoken"},
	})
	if codes.Code(resp.GetStatus().GetCode()) != codes.OK || resp.GetDeniedResponse() != nil {
		t.Fatalf("not an OK response: %v", resp)
	}
	ok := resp.GetOkResponse()
	want := []struct {
		key, value string
		action     corev3.HeaderValueOption_HeaderAppendAction
	}{
		{"x-client-id", "svc", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD},
		{"x-role", "a", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD},
		{"x-role", "b", corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD},
	}
	if len(ok.GetHeaders()) != len(want) {
		t.Fatalf("headers = %v", ok.GetHeaders())
	}
	for i, w := range want {
		h := ok.GetHeaders()[i]
		if h.GetHeader().GetKey() != w.key || h.GetHeader().GetValue() != w.value || h.GetAppendAction() != w.action {
			t.Errorf("header %d = %v, want %+v", i, h, w)
		}
	}
	if len(ok.GetHeadersToRemove()) != 1 || ok.GetHeadersToRemove()[0] != "authorization" {
		t.Errorf("headers to remove = %v", ok.GetHeadersToRemove())
	}
	if q := ok.GetQueryParametersToRemove(); len(q) != 2 || q[0] != "access_token" || q[1] != "access%5Ftoken" {
		t.Errorf("query parameters to remove = %v", q)
	}
	if len(ok.GetResponseHeadersToAdd()) != 1 {
		t.Errorf("response headers = %v", ok.GetResponseHeadersToAdd())
	}
	m := resp.GetDynamicMetadata().AsMap()
	if m["n"] != 3.0 || m["claimcheck"].(map[string]any)["reason"] != "allowed" {
		t.Errorf("dynamic metadata = %v", m)
	}
}

func TestResponseDenyMapsStatusToGRPCCode(t *testing.T) {
	tests := []struct {
		status int
		code   codes.Code
	}{
		{401, codes.Unauthenticated},
		{403, codes.PermissionDenied},
		{418, codes.PermissionDenied},
		{400, codes.InvalidArgument},
		{503, codes.Unavailable},
	}
	for _, tt := range tests {
		resp := Response(extauthz.Decision{
			Status:      tt.status,
			Reason:      "r",
			DenyHeaders: []policy.Header{{Key: "www-authenticate", Value: `Bearer realm="x"`}},
			Body:        `{"error":"e"}`,
		})
		if got := codes.Code(resp.GetStatus().GetCode()); got != tt.code {
			t.Errorf("status %d: gRPC code %v, want %v", tt.status, got, tt.code)
		}
		d := resp.GetDeniedResponse()
		if int(d.GetStatus().GetCode()) != tt.status || d.GetBody() != `{"error":"e"}` || d.GetHeaders()[0].GetHeader().GetKey() != "www-authenticate" {
			t.Errorf("status %d: denied response = %v", tt.status, d)
		}
		if resp.GetOkResponse() != nil {
			t.Errorf("status %d: a deny carries an OK response", tt.status)
		}
	}
}

func BenchmarkResponse(b *testing.B) {
	allow := extauthz.Decision{
		Allowed: true, Status: 200, Reason: "allowed",
		UpstreamHeaders: []policy.Header{{Key: "x-client-id", Value: "svc"}, {Key: "x-subject", Value: "svc"}},
		RemoveHeaders:   []string{"authorization"},
		DynamicMetadata: map[string]any{"claimcheck": map[string]any{"reason": "allowed", "decision_id": "d-1", "issuer": "https://id.example.com", "client_id": "svc"}},
	}
	b.ReportAllocs()
	for b.Loop() {
		Response(allow)
	}
}

// panickingChecker's Check panics; its Panicked is a real Authorizer's.
type panickingChecker struct{ *extauthz.Authorizer }

func (panickingChecker) Check(context.Context, *authv3.CheckRequest) extauthz.Decision {
	panic("observer bug")
}

// TestCheckPanicIsADeny: a panic that escapes the Checker answers a 503
// deny rather than crashing the server.
func TestCheckPanicIsADeny(t *testing.T) {
	a, err := extauthz.New(extauthz.Config{}, nopVerifier{}, extauthz.StaticPolicy(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := New(panickingChecker{a}, nil).Check(context.Background(), &authv3.CheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetOkResponse() != nil || resp.GetStatus().GetCode() != int32(codes.Unavailable) ||
		resp.GetDeniedResponse().GetStatus().GetCode() != 503 {
		t.Fatalf("response = %v, want a 503 deny", resp)
	}
	// The same deny as the core's: the reason in the metadata, a JSON body.
	meta := resp.GetDynamicMetadata().AsMap()["claimcheck"].(map[string]any)
	if meta["reason"] != "internal_error" || meta["decision_id"] == "" || !strings.Contains(resp.GetDeniedResponse().GetBody(), "temporarily_unavailable") {
		t.Errorf("metadata %v, body %q", meta, resp.GetDeniedResponse().GetBody())
	}
}

// nopVerifier verifies nothing; the tests using it never get to a token.
type nopVerifier struct{}

func (nopVerifier) Verify(context.Context, string) (*token.Token, error) {
	return nil, token.ErrSignature
}
