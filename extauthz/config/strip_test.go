package config

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"
)

// TestSourceStripDefaults: query and cookie sources strip unless they say
// otherwise; header sources strip as forward.strip_token says unless they
// say otherwise.
func TestSourceStripDefaults(t *testing.T) {
	tests := []struct {
		name       string
		token      string // the token section; "" for none
		stripToken string // forward.strip_token; "" leaves it out
		want       []bool
	}{
		{name: "default source", want: []bool{false}},
		{name: "default source with strip_token", stripToken: "true", want: []bool{true}},
		{name: "each kind", token: `sources: [{header: authorization, prefix: "Bearer "}, {query: access_token}, {cookie: at}]`,
			want: []bool{false, true, true}},
		{name: "each kind with strip_token", token: `sources: [{header: authorization, prefix: "Bearer "}, {query: access_token}, {cookie: at}]`,
			stripToken: "true", want: []bool{true, true, true}},
		{name: "strip_token false", token: `sources: [{header: x-token}, {query: access_token}]`, stripToken: "false", want: []bool{false, true}},
		{name: "explicit false", token: `sources: [{header: x-token, strip: false}, {query: access_token, strip: false}, {cookie: at, strip: false}]`,
			stripToken: "true", want: []bool{false, false, false}},
		{name: "explicit true", token: `sources: [{header: x-token, strip: true}, {query: access_token, strip: true}, {cookie: at, strip: true}]`,
			want: []bool{true, true, true}},
		{name: "null is unset", token: `sources: [{header: x-token, strip: null}, {query: access_token, strip: ~}]`, want: []bool{false, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yml := validYAML
			if tt.token != "" {
				yml += "token:\n  " + tt.token + "\n"
			}
			if tt.stripToken != "" {
				yml += "forward: {strip_token: " + tt.stripToken + "}\n"
			}
			c, err := Parse([]byte(yml), dirWithFiles(t))
			if err != nil {
				t.Fatal(err)
			}
			var got []bool
			for _, s := range c.Token.Sources {
				got = append(got, s.Strips(c.Forward.StripToken))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("strips %v, want %v", got, tt.want)
			}
			// The start-up log line shows the effective value.
			var buf bytes.Buffer
			slog.New(slog.NewTextHandler(&buf, nil)).Info("serving", "config", c)
			trues := 0
			for _, w := range tt.want {
				if w {
					trues++
				}
			}
			if n, nt := strings.Count(buf.String(), "strip:"), strings.Count(buf.String(), "strip:true"); n != len(tt.want) || nt != trues {
				t.Errorf("the log line shows strip %d times, %d true; want %d, %d: %s", n, nt, len(tt.want), trues, buf.String())
			}
		})
	}
}

// TestSourceStripIsStrictlyABoolean: strip takes true or false, nothing
// yaml.v3 would also read as one.
func TestSourceStripIsStrictlyABoolean(t *testing.T) {
	for _, v := range []string{"yes", "no", "on", "off", "y", "n", `"true"`, "'false'", "1", "0", "tru", "[true]", "{a: 1}", "!!str true"} {
		t.Run(v, func(t *testing.T) {
			yml := validYAML + "token:\n  sources:\n    - query: access_token\n      strip: " + v + "\n"
			_, err := Parse([]byte(yml), dirWithFiles(t))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range []string{"line 13", "token.sources[].strip", "expected true or false"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	for v, want := range map[string]bool{"true": true, "false": false, "True": true, "FALSE": false} {
		yml := validYAML + "token:\n  sources:\n    - query: access_token\n      strip: " + v + "\n"
		c, err := Parse([]byte(yml), dirWithFiles(t))
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		if got := c.Token.Sources[0].Strips(false); got != want {
			t.Errorf("%s: strips %v", v, got)
		}
	}
}
