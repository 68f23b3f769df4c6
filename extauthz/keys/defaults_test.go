package keys

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestZeroRemoteConfigIsDefaults(t *testing.T) {
	c := RemoteConfig{Issuer: "https://id.example.com"}
	if err := c.setDefaults(); err != nil {
		t.Fatal(err)
	}
	if c.Discovery != DiscoveryOpenID || c.RefreshInterval != DefaultRefreshInterval ||
		c.MinRefresh != DefaultMinRefresh || c.MaxRefresh != DefaultMaxRefresh {
		t.Errorf("defaults = discovery %q, refresh %s in [%s, %s]; want %q, %s in [%s, %s]",
			c.Discovery, c.RefreshInterval, c.MinRefresh, c.MaxRefresh,
			DiscoveryOpenID, DefaultRefreshInterval, DefaultMinRefresh, DefaultMaxRefresh)
	}
}

func TestZeroFetchOptionsIsDefaults(t *testing.T) {
	var ua string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ua = r.UserAgent() }))
	defer srv.Close()
	c, err := NewHTTPClient(FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Timeout != DefaultHTTPTimeout {
		t.Errorf("timeout = %s, want DefaultHTTPTimeout %s", c.Timeout, DefaultHTTPTimeout)
	}
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ua != DefaultUserAgent {
		t.Errorf("User-Agent = %q, want DefaultUserAgent %q", ua, DefaultUserAgent)
	}
}

func TestRemoteGivesAClientWithoutTimeoutTheDefault(t *testing.T) {
	r := &Remote{cfg: RemoteConfig{HTTPClient: &http.Client{}}}
	c, err := r.httpClient()
	if err != nil {
		t.Fatal(err)
	}
	if c.Timeout != DefaultHTTPTimeout {
		t.Errorf("timeout = %s, want DefaultHTTPTimeout %s", c.Timeout, DefaultHTTPTimeout)
	}
}
