package extauthz

import (
	"context"
	"fmt"
	"net/url"
	"testing"

	"github.com/claimcheck/claimcheck/extauthz/reason"
	"github.com/claimcheck/claimcheck/extauthz/token"
)

func TestZeroConfigUsesDefaultRealmAndSources(t *testing.T) {
	a := newAuthorizer(t, Config{TokenRequired: true},
		fakeVerifier{tokens: map[string]*token.Token{"good": goodToken}}, &fakePolicy{fn: allowAll})

	d := a.Check(context.Background(), httpRequest("GET", "/orders", nil))
	want := fmt.Sprintf("Bearer realm=%q", DefaultRealm)
	if ch, _ := header(d.DenyHeaders, "www-authenticate"); d.Reason != reason.MissingToken || ch != want {
		t.Errorf("no token: reason %q, WWW-Authenticate %q; want %q, %q", d.Reason, ch, reason.MissingToken, want)
	}

	sources := DefaultSources()
	if len(sources) == 0 {
		t.Fatal("DefaultSources is empty")
	}
	for _, s := range sources {
		path, headers := "/orders", map[string]string{}
		switch {
		case s.Header != "":
			headers[s.Header] = s.Prefix + "good"
		case s.Query != "":
			path += "?" + url.Values{s.Query: {"good"}}.Encode()
		case s.Cookie != "":
			headers["cookie"] = s.Cookie + "=good"
		}
		if d := a.Check(context.Background(), httpRequest("GET", path, headers)); !d.Allowed {
			t.Errorf("token in default source %+v: denied %s (%s)", s, d.Reason, d.Description)
		}
	}

	// Anywhere else is not a default source.
	d = a.Check(context.Background(), httpRequest("GET", "/orders", map[string]string{"x-api-token": "good"}))
	if d.Reason != reason.MissingToken {
		t.Errorf("token in x-api-token: reason %q, want %q", d.Reason, reason.MissingToken)
	}
}

func TestDefaultSourcesIsAFreshSlice(t *testing.T) {
	DefaultSources()[0].Header = "x-changed"
	if got := DefaultSources()[0].Header; got != "authorization" {
		t.Errorf("DefaultSources()[0].Header = %q after a caller changed its copy", got)
	}
}
