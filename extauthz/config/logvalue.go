package config

import (
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// MarshalYAML writes d as a Go duration string, as it is read.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// LogValue is the effective configuration, defaults applied, for the
// start-up log line: the YAML field names as nested groups, unset fields
// left out. The configuration holds secrets only as file paths, which are
// shown; in URLs, the user information and query values, which may hold
// credentials, are replaced by "xxxxx".
func (c *Config) LogValue() slog.Value {
	e := *c
	yes := func(b bool) *bool { return &b }
	e.Token.Required = yes(c.TokenRequired())
	e.Token.Cache.Enabled = yes(c.Token.Cache.On())
	e.Token.Sources = slices.Clone(c.Token.Sources)
	for i, s := range e.Token.Sources {
		strip := StripFlag(s.Strips(c.Forward.StripToken))
		e.Token.Sources[i].Strip = &strip
	}
	if e.Token.Cache.On() {
		ttl := Duration(c.Token.Cache.Negative())
		e.Token.Cache.NegativeTTL = &ttl
	}
	if len(c.Policy.Paths) > 0 {
		e.Policy.Watch = yes(c.WatchPolicy())
	}
	rate := c.DecisionLog.Rate()
	e.DecisionLog.SampleRate = &rate
	if c.Tracing.On() {
		ratio := c.Tracing.Ratio()
		e.Tracing.SampleRatio = &ratio
	}
	b, err := yaml.Marshal(&e)
	var m map[string]any
	if err == nil {
		err = yaml.Unmarshal(b, &m)
	}
	if err != nil {
		return slog.StringValue("unavailable: " + err.Error())
	}
	return groupValue(m)
}

// groupValue turns a decoded YAML mapping into nested groups, sorted by key.
func groupValue(m map[string]any) slog.Value {
	attrs := make([]slog.Attr, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		switch v := plain(m[k]).(type) {
		case nil:
		case map[string]any:
			attrs = append(attrs, slog.Attr{Key: k, Value: groupValue(v)})
		default:
			attrs = append(attrs, slog.Any(k, v))
		}
	}
	return slog.GroupValue(attrs...)
}

// plain drops empty values (nil for none left) and hides URL secrets.
func plain(v any) any {
	switch v := v.(type) {
	case string:
		if v == "" {
			return nil
		}
		if strings.Contains(v, "://") {
			return hideURLSecrets(v)
		}
		return v
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			if x = plain(x); x != nil {
				out[k] = x
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	case []any:
		out := make([]any, 0, len(v))
		for _, x := range v {
			if x = plain(x); x != nil {
				out = append(out, x)
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	}
	return v
}

// hideURLSecrets replaces the user information and query values of a URL.
func hideURLSecrets(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "xxxxx"
	}
	if u.User != nil {
		u.User = url.User("xxxxx")
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{"xxxxx"}
		}
		u.RawQuery = q.Encode()
	}
	return u.String()
}
