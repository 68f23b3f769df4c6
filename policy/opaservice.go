package policy

import (
	"fmt"
	"math"
	"net/url"
	"os"
	"time"
)

// OPAService is a remote service for one of OPA's plugins (bundles,
// decision logs): where it is, how to authenticate, how often to talk to it.
type OPAService struct {
	URL             string
	BearerTokenFile string
	MinDelay        time.Duration // 0: the plugin's default
	MaxDelay        time.Duration // 0: the plugin's default, or MinDelay if larger
}

// Config checks s and returns its entry for OPA's "services" configuration
// and its delays in whole seconds (OPA's unit, rounded up), with defMin and
// defMax for the delays not set.
func (s OPAService) Config(defMin, defMax time.Duration) (service map[string]any, minSeconds, maxSeconds int64, err error) {
	u, err := url.Parse(s.URL)
	switch {
	case err != nil:
		return nil, 0, 0, fmt.Errorf("url: %w", err)
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		return nil, 0, 0, fmt.Errorf("url %q: want an http:// or https:// URL", s.URL)
	}
	minDelay, maxDelay := s.MinDelay, s.MaxDelay
	if minDelay == 0 {
		minDelay = defMin
	}
	if maxDelay == 0 {
		maxDelay = max(defMax, minDelay)
	}
	if minDelay < 0 || maxDelay < minDelay {
		return nil, 0, 0, fmt.Errorf("delays: want 0 < min_delay (%v) <= max_delay (%v)", s.MinDelay, s.MaxDelay)
	}
	service = map[string]any{"url": s.URL}
	if s.BearerTokenFile != "" {
		if _, err := os.Stat(s.BearerTokenFile); err != nil {
			return nil, 0, 0, fmt.Errorf("bearer token file: %w", err)
		}
		service["credentials"] = map[string]any{
			"bearer": map[string]any{"token_path": s.BearerTokenFile},
		}
	}
	return service, wholeSeconds(minDelay), wholeSeconds(maxDelay), nil
}

func wholeSeconds(d time.Duration) int64 {
	return int64(math.Ceil(d.Seconds()))
}
