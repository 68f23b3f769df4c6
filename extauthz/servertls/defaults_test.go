package servertls_test

import (
	"testing"

	"github.com/claimcheck/claimcheck/extauthz/servertls"
)

func TestZeroMinVersionIsDefault(t *testing.T) {
	r := newFixture(t).reloader(t, servertls.Config{})
	if got := r.ServerConfig().MinVersion; got != servertls.DefaultMinVersion {
		t.Errorf("MinVersion = %#x, want DefaultMinVersion %#x", got, servertls.DefaultMinVersion)
	}
}
