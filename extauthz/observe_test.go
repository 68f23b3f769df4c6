package extauthz

import (
	"context"
	"testing"
	"time"

	"github.com/claimcheck/claimcheck/extauthz/keys"
	"github.com/claimcheck/claimcheck/extauthz/reason"
	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/extauthz/tokentest"
	"github.com/claimcheck/claimcheck/policy"
)

// recordingObserver keeps a copy of every decision it is told about.
type recordingObserver struct{ got []Decision }

func (r *recordingObserver) ObserveDecision(d *Decision) { r.got = append(r.got, *d) }

func TestObserverSeesEveryDecisionWithIssuerAndStages(t *testing.T) {
	const iss, aud = "https://id.example.com", "orders-api"
	key := tokentest.NewECKey(t, "k1")
	src, err := keys.NewFile(tokentest.WriteJWKSFile(t, t.TempDir(), key), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	v, err := token.NewVerifier([]token.Issuer{{Issuer: iss, Audiences: []string{aud}, Keys: src}})
	if err != nil {
		t.Fatal(err)
	}
	good := tokentest.Mint(t, key, tokentest.Claims(iss, aud, time.Hour))
	expired := tokentest.Mint(t, key, tokentest.Claims(iss, aud, -time.Hour))
	foreign := tokentest.Mint(t, key, tokentest.Claims("https://other.example.com", aud, time.Hour))
	deny := func(map[string]any) (policy.Result, error) { return policy.Result{}, nil }

	tests := []struct {
		name       string
		policy     func(map[string]any) (policy.Result, error)
		headers    map[string]string
		reason     string
		issuer     string
		tokenStage bool // TokenLatency set
		policyRan  bool // PolicyLatency set
	}{
		{"allowed", allowAll, bearer(good), reason.Allowed, iss, true, true},
		{"policy denied", deny, bearer(good), reason.PolicyDenied, iss, true, true},
		{"expired token of a configured issuer", allowAll, bearer(expired), "token_expired", iss, true, false},
		{"token of an unknown issuer", allowAll, bearer(foreign), "issuer_unknown", "", true, false},
		{"no token", allowAll, nil, reason.MissingToken, "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs := &recordingObserver{}
			a := newAuthorizer(t, Config{TokenRequired: true, Observer: obs}, v, &fakePolicy{fn: tt.policy})
			want := a.Check(context.Background(), httpRequest("GET", "/orders", tt.headers))
			if len(obs.got) != 1 {
				t.Fatalf("observer saw %d decisions, want 1", len(obs.got))
			}
			d := obs.got[0]
			if d.Reason != tt.reason || d.Reason != want.Reason || d.Allowed != want.Allowed {
				t.Errorf("observed reason %q allowed %v; Check returned %q %v; want reason %q", d.Reason, d.Allowed, want.Reason, want.Allowed, tt.reason)
			}
			if d.Issuer != tt.issuer {
				t.Errorf("Issuer = %q, want %q", d.Issuer, tt.issuer)
			}
			if (d.TokenLatency > 0) != tt.tokenStage || (d.PolicyLatency > 0) != tt.policyRan {
				t.Errorf("TokenLatency = %v, PolicyLatency = %v; want token stage %v, policy stage %v",
					d.TokenLatency, d.PolicyLatency, tt.tokenStage, tt.policyRan)
			}
			if d.Latency < d.TokenLatency+d.PolicyLatency {
				t.Errorf("Latency %v is less than its stages %v + %v", d.Latency, d.TokenLatency, d.PolicyLatency)
			}
		})
	}
}

type panickingObserver struct{}

func (panickingObserver) ObserveDecision(*Decision) { panic("metrics bug") }

func TestObserverPanicLeavesTheDecision(t *testing.T) {
	v := fakeVerifier{tokens: map[string]*token.Token{"good": goodToken}}
	a := newAuthorizer(t, Config{TokenRequired: true, Observer: panickingObserver{}}, v, &fakePolicy{fn: allowAll})
	if d := a.Check(context.Background(), httpRequest("GET", "/orders", bearer("good"))); !d.Allowed {
		t.Errorf("allowed = false (%s), want true", d.Reason)
	}
}
