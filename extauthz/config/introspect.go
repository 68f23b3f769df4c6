package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/claimcheck/claimcheck/extauthz/introspect"
)

// Introspection is an issuer's RFC 7662 token introspection endpoint and
// claimcheck's credentials there.
type Introspection struct {
	// Endpoint is the endpoint's URL; empty means the introspection_endpoint
	// of the issuer's discovery document (only when its keys come from
	// discovery).
	Endpoint string `yaml:"endpoint"`
	ClientID string `yaml:"client_id"`
	// ClientSecretFile holds the client secret (one trailing newline is
	// ignored); it is re-read for every request.
	ClientSecretFile string `yaml:"client_secret_file"`
	// Auth is client_secret_basic (default, introspect.DefaultAuth) or
	// client_secret_post.
	Auth string `yaml:"auth"`
	// CacheTTL bounds how long an active answer is reused: until
	// min(exp, cache_ttl). Default 1m; 0s asks for every request.
	CacheTTL *Duration `yaml:"cache_ttl"`
	// InactiveTTL is how long an inactive or rejected answer is reused.
	// Default 10s; 0s reuses none.
	InactiveTTL *Duration `yaml:"inactive_ttl"`
	// Timeout bounds one request. Default introspect.DefaultTimeout.
	Timeout Duration `yaml:"timeout"`
}

// Userinfo is an issuer's OpenID Connect userinfo endpoint.
type Userinfo struct {
	// Endpoint is the endpoint's URL; empty means the userinfo_endpoint of
	// the issuer's discovery document (only when its keys come from
	// discovery).
	Endpoint string `yaml:"endpoint"`
	// OnError is deny (default, introspect.DefaultOnError) or continue
	// (without input.token.userinfo).
	OnError string `yaml:"on_error"`
	// CacheTTL bounds how long an answer is reused: until min(the token's
	// exp, cache_ttl). Default 1m; 0s asks for every request.
	CacheTTL *Duration `yaml:"cache_ttl"`
	// Timeout bounds one request. Default introspect.DefaultTimeout.
	Timeout Duration `yaml:"timeout"`
}

// Introspection and userinfo cache defaults and limits. Package introspect
// reuses no answer unless told to, so these defaults are config's; the
// others (introspect, auth, on_error, timeout) are introspect's.
const (
	DefaultIntrospectionTTL = time.Minute
	DefaultInactiveTTL      = 10 * time.Second
	DefaultUserinfoTTL      = time.Minute
	maxInactiveTTL          = time.Minute
	maxAnswerTTL            = 24 * time.Hour
)

// introspectModes are the values of issuers[].introspect.
var introspectModes = []string{"opaque", "always", "jwt"}

// asksIssuer reports whether claimcheck sends requests to the issuer's own
// endpoints besides its keys: introspection or userinfo.
func (is Issuer) asksIssuer() bool { return is.Introspection != nil || is.Userinfo != nil }

// TakesOpaque reports whether opaque tokens go to this issuer's
// introspection endpoint.
func (is Issuer) TakesOpaque() bool {
	return is.Introspection != nil && is.Introspect != "jwt"
}

// Keyless reports whether the issuer has no key source — no jwks_uri, key
// file or discovery — but an introspection endpoint: an identity provider
// of opaque tokens only. claimcheck introspects its tokens and refuses every
// JWT naming it.
func (is Issuer) Keyless() bool {
	return is.JWKSURI == "" && is.JWKSFile == "" && is.PublicKeyFile == "" && is.HMACSecretFile == "" &&
		is.Discovery == "" && is.Introspection != nil && is.Introspection.Endpoint != ""
}

func (is *Issuer) setIntrospectionDefaults(dir string) {
	if in := is.Introspection; in != nil {
		in.ClientSecretFile = resolve(dir, in.ClientSecretFile)
		if is.Introspect == "" {
			is.Introspect = introspect.DefaultMode
		}
		if in.Auth == "" {
			in.Auth = introspect.DefaultAuth
		}
		in.CacheTTL = durationOr(in.CacheTTL, DefaultIntrospectionTTL)
		in.InactiveTTL = durationOr(in.InactiveTTL, DefaultInactiveTTL)
		if in.Timeout == 0 {
			in.Timeout = Duration(introspect.DefaultTimeout)
		}
	}
	if ui := is.Userinfo; ui != nil {
		if ui.OnError == "" {
			ui.OnError = introspect.DefaultOnError
		}
		ui.CacheTTL = durationOr(ui.CacheTTL, DefaultUserinfoTTL)
		if ui.Timeout == 0 {
			ui.Timeout = Duration(introspect.DefaultTimeout)
		}
	}
}

// durationOr returns d, or def when d is not set.
func durationOr(d *Duration, def time.Duration) *Duration {
	if d == nil {
		v := Duration(def)
		return &v
	}
	return d
}

func (is Issuer) validateIntrospection(p *problems, field string) {
	if is.Introspection == nil && is.Introspect != "" {
		p.add(field+".introspect", "applies only with introspection")
	}
	if in := is.Introspection; in != nil {
		f := field + ".introspection"
		is.validateEndpoint(p, f, in.Endpoint, "introspection_endpoint")
		if in.ClientID == "" {
			p.add(f+".client_id", "expected claimcheck's client ID at the introspection endpoint")
		}
		if in.ClientSecretFile == "" {
			p.add(f+".client_secret_file", "expected the file holding claimcheck's client secret")
		} else {
			validateFile(p, f+".client_secret_file", in.ClientSecretFile)
		}
		if in.Auth != "client_secret_basic" && in.Auth != "client_secret_post" {
			p.add(f+".auth", "expected client_secret_basic or client_secret_post, got %q", in.Auth)
		}
		validateTTL(p, f+".cache_ttl", *in.CacheTTL, maxAnswerTTL)
		validateTTL(p, f+".inactive_ttl", *in.InactiveTTL, maxInactiveTTL)
		validateTimeout(p, f+".timeout", in.Timeout)
		if !slices.Contains(introspectModes, is.Introspect) {
			p.add(field+".introspect", "expected %s, got %q", strings.Join(introspectModes, ", "), is.Introspect)
		}
	}
	if is.Keyless() {
		is.validateKeyless(p, field)
	}
	if ui := is.Userinfo; ui != nil {
		f := field + ".userinfo"
		is.validateEndpoint(p, f, ui.Endpoint, "userinfo_endpoint")
		if ui.OnError != "deny" && ui.OnError != "continue" {
			p.add(f+".on_error", "expected deny or continue, got %q", ui.OnError)
		}
		validateTTL(p, f+".cache_ttl", *ui.CacheTTL, maxAnswerTTL)
		validateTimeout(p, f+".timeout", ui.Timeout)
	}
}

// keylessHint says what a key-less issuer is and how to give it keys.
const keylessHint = "this issuer has no key source (jwks_uri, a key file or discovery), so claimcheck takes only its opaque tokens; add one to verify its JWTs"

// validateKeyless refuses settings that concern only JWTs on an issuer
// whose JWTs are all refused.
func (is Issuer) validateKeyless(p *problems, field string) {
	if is.Introspect != introspect.ModeOpaque && slices.Contains(introspectModes, is.Introspect) {
		p.add(field+".introspect", "expected opaque: %s", keylessHint)
	}
	if len(is.Algorithms) > 0 {
		p.add(field+".algorithms", "applies only to JWTs: %s", keylessHint)
	}
	if is.RequireTyp != "" {
		p.add(field+".require_typ", "applies only to JWTs: %s", keylessHint)
	}
	if is.MaxKidlessKeys != nil {
		p.add(field+".max_kidless_keys", "applies only to JWTs: %s", keylessHint)
	}
}

// validateEndpoint checks an endpoint URL, which may be left out only when
// discovery can name it (as member).
func (is Issuer) validateEndpoint(p *problems, field, endpoint, member string) {
	if endpoint != "" {
		validateURL(p, field+".endpoint", endpoint, is.AllowInsecureHTTP, "for the endpoint")
		return
	}
	if is.Discovery == "" {
		p.add(field+".endpoint", "expected the endpoint's URL; it may be left out only when the issuer's keys come from discovery, whose %s is then used", member)
	}
}

func validateTTL(p *problems, field string, d Duration, limit time.Duration) {
	if d < 0 || time.Duration(d) > limit {
		p.add(field, "expected a duration from 0s to %s, got %s", limit, time.Duration(d))
	}
}

func validateTimeout(p *problems, field string, d Duration) {
	if d <= 0 || time.Duration(d) > maxFetchTimeout {
		p.add(field, "expected a duration above 0s and at most %s, got %s", maxFetchTimeout, time.Duration(d))
	}
}

// validateOpaqueIssuers allows one issuer to take opaque tokens: nothing
// in an opaque token says who issued it, and trying issuers in turn would
// hand one issuer's tokens to the others.
func (c *Config) validateOpaqueIssuers(p *problems) {
	first := -1
	for i, is := range c.Issuers {
		if !is.TakesOpaque() {
			continue
		}
		if first < 0 {
			first = i
			continue
		}
		p.add(fmt.Sprintf("issuers[%d].introspect", i),
			"issuers[%d] (%s) already takes opaque tokens and only one issuer may, since an opaque token does not say who issued it; set introspect: jwt here to introspect only this issuer's JWTs",
			first, c.Issuers[first].Issuer)
	}
}
