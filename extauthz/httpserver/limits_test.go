package httpserver_test

import (
	"bytes"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/claimcheck/claimcheck/extauthz/httpserver"
	"github.com/claimcheck/claimcheck/extauthz/reason"
)

// TestForwardAuthReadsTheBodyWhenConfigured: with a body size (Envoy
// http_service with with_request_body), the body goes into the CheckRequest
// as Envoy's gRPC filter would send it, and never more than one byte over
// the limit is read.
func TestForwardAuthReadsTheBodyWhenConfigured(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		text string
		raw  []byte
	}{
		{"text", []byte(`{"amount":5}`), `{"amount":5}`, nil},
		{"binary", []byte{0xff, 0x00, 'x'}, "", []byte{0xff, 0x00, 'x'}},
		{"over the limit: one byte more, for the decision path to refuse", bytes.Repeat([]byte("a"), 1000), strings.Repeat("a", 17), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			h := httpserver.NewForwardAuth(rec, httpserver.Config{MaxBodyBytes: 16}, nil)
			r := fwdRequest{method: "POST", target: "/orders", host: "api", remote: "203.0.113.7:5000"}.build()
			r.Body = readCloser{bytes.NewReader(tt.body)}
			h.ServeHTTP(httptest.NewRecorder(), r)
			got := rec.only(t).GetAttributes().GetRequest().GetHttp()
			if got.GetBody() != tt.text || !bytes.Equal(got.GetRawBody(), tt.raw) {
				t.Errorf("body %q, raw_body %v; want %q, %v", got.GetBody(), got.GetRawBody(), tt.text, tt.raw)
			}
		})
	}
}

func TestForwardAuthHeaderLimitIsConfigurable(t *testing.T) {
	rec := &recorder{}
	h := httpserver.NewForwardAuth(rec, httpserver.Config{MaxHeaderBytes: 4096}, nil)
	big := fwdRequest{target: "/", host: "api", remote: "203.0.113.7:5000", headers: []hdr{{"X-Big", strings.Repeat("a", 5000)}}}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, big.build())
	if w.Code != 431 || rec.calls() != 0 || w.Header().Get(httpserver.HeaderReason) != reason.HeadersTooLarge {
		t.Fatalf("5000 header bytes with a 4096 limit: %d %q, %d checks", w.Code, w.Header().Get(httpserver.HeaderReason), rec.calls())
	}
	h = httpserver.NewForwardAuth(rec, httpserver.Config{MaxHeaderBytes: 1 << 20}, nil)
	big.headers = []hdr{{"X-Big", strings.Repeat("a", 100<<10)}}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, big.build())
	if w.Code != 200 {
		t.Fatalf("100 KiB of headers with a 1 MiB limit: %d", w.Code)
	}
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
