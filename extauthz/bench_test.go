package extauthz

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"go.opentelemetry.io/otel/trace"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/claimcheck/claimcheck/extauthz/keys"
	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/extauthz/tokentest"
	"github.com/claimcheck/claimcheck/extauthz/urlpath"
	"github.com/claimcheck/claimcheck/policy"
)

const (
	benchIssuer   = "https://id.quickstart.example"
	benchAudience = "orders-api"
	benchPool     = 2000 // distinct tokens for /cold; RS256 minting is slow
)

// benchBuildInput builds the policy input value the way check does.
func benchBuildInput(req *authv3.CheckRequest, r *request, tok *token.Token) (ast.Value, error) {
	return buildInput(req, r, tok, nil, allParts)
}

// BenchmarkCheck measures one Check through a real RS256 token.Verifier
// (static JWKS file) and the real quickstart policy.
func BenchmarkCheck(b *testing.B) { benchCheck(b, nil, nil) }

// benchCheck runs BenchmarkCheck's cases with obs and tp in the Config;
// BenchmarkCheckObserved (observe_bench_test.go) runs them with metrics and
// tracing.
func benchCheck(b *testing.B, obs Observer, tp trace.TracerProvider) {
	ctx := context.Background()
	key := tokentest.NewRSAKey(b, "bench-rs256")
	src, err := keys.NewFile(tokentest.WriteJWKSFile(b, b.TempDir(), key), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { src.Close() })
	v, err := token.NewVerifier([]token.Issuer{{
		Issuer: benchIssuer, Audiences: []string{benchAudience}, Algorithms: []string{"RS256"}, Keys: src,
	}})
	if err != nil {
		b.Fatal(err)
	}
	// The evaluation keeps a deadline, as in serve, but one that a loaded
	// machine's pauses cannot reach and fail the benchmark.
	p, err := policy.New(ctx, policy.Config{Paths: []string{"../examples/quickstart/policy"}, Decision: "claimcheck/authz/allow"},
		policy.WithEvalTimeout(10*time.Second))
	if err != nil {
		b.Fatal(err)
	}
	mint := func() string {
		c := tokentest.Claims(benchIssuer, benchAudience, time.Hour)
		c["client_id"] = "service-client-id"
		c["scope"] = "orders:read orders:write"
		return tokentest.Mint(b, key, c)
	}
	req := func(raw string) *authv3.CheckRequest {
		r := httpRequest("GET", "/orders/42?verbose=true", map[string]string{
			"authorization": "Bearer " + raw, ":authority": "orders.internal", ":method": "GET",
			":path": "/orders/42?verbose=true", "user-agent": "bench/1", "accept": "application/json",
		})
		return r
	}
	cfg := Config{TokenRequired: true, ForwardClaims: map[string]string{"client_id": "x-client-id"},
		Observer: obs, TracerProvider: tp}
	a, err := New(cfg, v, StaticPolicy(p), nil) // no verified-token cache
	if err != nil {
		b.Fatal(err)
	}
	cached, err := New(cfg, token.NewCache(v, token.CacheConfig{}), StaticPolicy(p), nil)
	if err != nil {
		b.Fatal(err)
	}
	checkWith := func(b *testing.B, a *Authorizer, r *authv3.CheckRequest, allowed bool) {
		if d := a.Check(ctx, r); d.Allowed != allowed {
			b.Fatalf("allowed = %v (%s: %s), want %v", d.Allowed, d.Reason, d.Description, allowed)
		}
	}
	check := func(b *testing.B, r *authv3.CheckRequest, allowed bool) { checkWith(b, a, r, allowed) }

	good := mint()

	// warm: the same token every iteration, through the verified-token
	// cache (token.NewCache), so after the first Check it is a cache hit.
	b.Run("warm", func(b *testing.B) {
		r := req(good)
		b.ReportAllocs()
		for b.Loop() {
			checkWith(b, cached, r, true)
		}
	})

	// warm-nocache: the same token every iteration through the plain
	// Verifier (the signature is checked each time).
	b.Run("warm-nocache", func(b *testing.B) {
		r := req(good)
		b.ReportAllocs()
		for b.Loop() {
			check(b, r, true)
		}
	})

	pool := make([]*authv3.CheckRequest, benchPool)
	for i := range pool {
		pool[i] = req(mint())
	}

	// cold: a distinct token every iteration (cycling a pre-minted pool),
	// with the cache off, so each is verified anew.
	b.Run("cold", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			check(b, pool[i%len(pool)], true)
			i++
		}
	})

	// cold-cache: the same through a one-entry cache, so every Check is a
	// miss that verifies the token and caches it, as a server with the
	// cache on does for each new token.
	b.Run("cold-cache", func(b *testing.B) {
		one, err := New(cfg, token.NewCache(v, token.CacheConfig{MaxEntries: 1}), StaticPolicy(p), nil)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			checkWith(b, one, pool[i%len(pool)], true)
			i++
		}
	})

	b.Run("deny", func(b *testing.B) {
		parts := strings.Split(good, ".")
		sig := []byte(parts[2])
		if sig[10] == 'A' {
			sig[10] = 'B'
		} else {
			sig[10] = 'A'
		}
		r := req(parts[0] + "." + parts[1] + "." + string(sig))
		b.ReportAllocs()
		for b.Loop() {
			check(b, r, false)
		}
	})

	b.Run("input", func(b *testing.B) {
		r := req(good)
		tok, err := v.Verify(ctx, good)
		if err != nil {
			b.Fatal(err)
		}
		pr, err := parseRequest(r, urlpath.Reject)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := benchBuildInput(r, pr, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}
