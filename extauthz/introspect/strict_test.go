package introspect

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/extauthz/tokentest"
)

// hostile are answers encoding/json would decode without a word, each
// ambiguous (another parser reads other members from the same bytes) or
// not one JSON object. members is a valid answer's members without braces;
// name is a member of it whose value is a string and that decides
// something ("active" is added for introspection).
func hostile(members, name, value string) []struct{ name, body string } {
	obj := func(s string) string { return "{" + s + "}" }
	pad := func(n int) string { return `"pad":"` + strings.Repeat("x", n) + `",` }
	many := ""
	for i := range 20 {
		many += fmt.Sprintf(`"m%d":%d,`, i, i)
	}
	return []struct{ name, body string }{
		{"a repeated member, the later one wins in Go", obj(fmt.Sprintf(`"%s":"forged",%s`, name, members))},
		{"a repeated member, the earlier one wins elsewhere", obj(fmt.Sprintf(`%s,"%s":"forged"`, members, name))},
		{"a repeated member spelled with an escape", obj(fmt.Sprintf(`"%s":"forged",%s`, `\u00`+fmt.Sprintf("%x", name[0])+name[1:], members))},
		{"a repeated member with an escape in the middle", obj(fmt.Sprintf(`%s,"%s\u%04x%s":"forged"`, members, name[:1], name[1], name[2:]))},
		{"a repeated member among many", obj(many + members + fmt.Sprintf(`,"%s":"forged"`, name))},
		{"a repeated member in a nested object", obj(members + `,"ext":{"role":"user","role":"admin"}`)},
		{"a repeated member in an object in a list", obj(members + `,"groups":[{"g":"ops"},{"g":"ops","g":"admin"}]`)},
		{"invalid UTF-8 in a value", obj(members + ",\"note\":\"\xff\"")},
		{"invalid UTF-8 in a name", obj(members + ",\"n\xc3\":1")},
		{"an overlong UTF-8 encoding", obj(members + ",\"note\":\"\xc0\xaf\"")},
		{"a lone high surrogate", obj(members + `,"note":"\ud800"`)},
		{"a lone low surrogate", obj(members + `,"note":"\udfff"`)},
		{"a high surrogate before a non-surrogate", obj(members + `,"note":"\ud83d\u0041"`)},
		{"a lone surrogate in a name", obj(members + `,"\ud800":1`)},
		{"a repeated member near the size limit", obj(pad(maxBody-len(members)-200) + members + fmt.Sprintf(`,"%s":"forged"`, name))},
		{"over the size limit", obj(pad(maxBody) + members)},
		{"not JSON", strings.ReplaceAll(members, `"`, "")},
		{"a byte order mark", "\xef\xbb\xbf" + obj(members)},
		{"two objects", obj(members) + obj(members)},
		{"an object and garbage", obj(members) + " x"},
		{"a truncated object", obj(members)[:len(members)]},
		{"a list", "[" + obj(members) + "]"},
		{"null", "null"},
		{"a string", `"` + value + `"`},
		{"empty", ""},
	}
}

// TestAmbiguousIntrospectionIsUnavailableNeverActive: an introspection
// answer is parsed as strictly as a JWT payload; one that is not is an
// outage (503 introspection_unavailable, not remembered), never an allow.
func TestAmbiguousIntrospectionIsUnavailableNeverActive(t *testing.T) {
	members := fmt.Sprintf(`"active":true,"iss":%q,"aud":%q,"client_id":"svc","exp":%d`, issuer, audience, start.Unix()+3600)
	bodies := hostile(members, "client_id", "svc")
	bodies = append(bodies,
		struct{ name, body string }{"active false, then true", fmt.Sprintf(`{"active":false,%s}`, members)},
		struct{ name, body string }{"active false, then true escaped", fmt.Sprintf(`{"active":false,%s}`, strings.Replace(members, `"active"`, `"act\u0069ve"`, 1))},
		struct{ name, body string }{"active true, then false", fmt.Sprintf(`{%s,"active":false}`, members)},
		struct{ name, body string }{"two audiences, the later configured", fmt.Sprintf(`{%s,"aud":"billing-api"}`, strings.Replace(members, `"aud":"orders-api"`, `"aud":"billing-api","aud":"orders-api"`, 1))},
		struct{ name, body string }{"two exps", fmt.Sprintf(`{%s,"exp":%d}`, members, start.Unix()-3600)},
	)
	ctx := context.Background()
	t.Run("the valid answer is accepted", func(t *testing.T) {
		srv := tokentest.NewIntrospectionServer(t, clientID, secret)
		srv.SetRawAnswer("opaque-1", "{"+members+"}")
		if tok, err := newClient(t, config(t, srv), newClock()).Opaque(ctx, "opaque-1"); err != nil || tok.Claims["client_id"] != "svc" {
			t.Fatalf("got %v %v", tok, err)
		}
	})
	for _, tt := range bodies {
		t.Run(tt.name, func(t *testing.T) {
			srv := tokentest.NewIntrospectionServer(t, clientID, secret)
			srv.SetRawAnswer("opaque-1", tt.body)
			cfg := config(t, srv)
			cfg.Mode = ModeAlways
			c := newClient(t, cfg, newClock())
			for range 2 { // not remembered: asked again
				tok, err := c.Opaque(ctx, "opaque-1")
				if tok != nil || !errors.Is(err, token.ErrIntrospectionUnavailable) || !token.Unavailable(err) ||
					token.Reason(err) != "introspection_unavailable" {
					t.Fatalf("Opaque: got %v %v, want introspection_unavailable", tok, err)
				}
				err = c.Active(ctx, "opaque-1", userToken())
				if !errors.Is(err, token.ErrIntrospectionUnavailable) || token.Reason(err) != "introspection_unavailable" {
					t.Fatalf("Active: got %v, want introspection_unavailable", err)
				}
			}
			if srv.Requests() != 4 {
				t.Errorf("%d requests, want 4: an unusable answer is not remembered", srv.Requests())
			}
		})
	}
}

// TestAmbiguousUserinfoIsUnavailable: the same for userinfo, whose
// failures are userinfo_unavailable (503) with on_error: deny.
func TestAmbiguousUserinfoIsUnavailable(t *testing.T) {
	members := `"sub":"alice","email":"alice@example.com"`
	bodies := append(hostile(members, "email", "alice"),
		struct{ name, body string }{"another subject, then the token's", `{"sub":"mallory",` + members + `}`},
		struct{ name, body string }{"another subject, then the token's escaped", `{"sub":"mallory","s\u0075b":"alice","email":"e"}`},
	)
	ctx := context.Background()
	t.Run("the valid answer is accepted", func(t *testing.T) {
		srv := tokentest.NewIntrospectionServer(t, clientID, secret)
		srv.SetRawUserinfo("tok-1", "{"+members+"}")
		if info, err := newUserinfo(t, srv, OnErrorDeny, newClock()).Fetch(ctx, userToken(), "tok-1"); err != nil || info["email"] != "alice@example.com" {
			t.Fatalf("got %v %v", info, err)
		}
	})
	for _, tt := range bodies {
		t.Run(tt.name, func(t *testing.T) {
			srv := tokentest.NewIntrospectionServer(t, clientID, secret)
			srv.SetRawUserinfo("tok-1", tt.body)
			info, err := newUserinfo(t, srv, OnErrorDeny, newClock()).Fetch(ctx, userToken(), "tok-1")
			if info != nil || !errors.Is(err, token.ErrUserinfoUnavailable) || !token.Unavailable(err) ||
				token.Reason(err) != "userinfo_unavailable" {
				t.Fatalf("got %v %v, want userinfo_unavailable", info, err)
			}
		})
	}
}
