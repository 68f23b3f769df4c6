package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/claimcheck/claimcheck/extauthz"
	"github.com/claimcheck/claimcheck/extauthz/config"
	"github.com/claimcheck/claimcheck/extauthz/introspect"
	"github.com/claimcheck/claimcheck/extauthz/keys"
	"github.com/claimcheck/claimcheck/extauthz/token"
)

// withIntrospection puts the issuers' introspection endpoints behind jwt,
// when any issuer has one, and returns the issuers' userinfo fetchers (nil
// when none has one).
func withIntrospection(cfg *config.Config, jwt extauthz.Verifier, log *slog.Logger) (extauthz.Verifier, extauthz.UserinfoFetcher, error) {
	var clients []*introspect.Client
	userinfo := introspect.Userinfos{}
	for _, ic := range cfg.Issuers {
		if in := ic.Introspection; in != nil {
			ep, err := issuerEndpoint(cfg, ic, in.Endpoint, in.Timeout, log)
			if err != nil {
				return nil, nil, err
			}
			c, err := introspect.New(introspect.Config{
				Endpoint:         ep,
				Rules:            token.Rules{Issuer: ic.Issuer, Audiences: ic.Audiences, ClockSkew: time.Duration(ic.ClockSkew)},
				Mode:             ic.Introspect,
				ClientID:         in.ClientID,
				ClientSecretFile: in.ClientSecretFile,
				Auth:             in.Auth,
				CacheTTL:         time.Duration(*in.CacheTTL),
				InactiveTTL:      time.Duration(*in.InactiveTTL),
			})
			if err != nil {
				return nil, nil, err
			}
			clients = append(clients, c)
		}
		if ui := ic.Userinfo; ui != nil {
			ep, err := issuerEndpoint(cfg, ic, ui.Endpoint, ui.Timeout, log)
			if err != nil {
				return nil, nil, err
			}
			u, err := introspect.NewUserinfo(introspect.UserinfoConfig{
				Endpoint: ep,
				OnError:  ui.OnError,
				CacheTTL: time.Duration(*ui.CacheTTL),
			})
			if err != nil {
				return nil, nil, err
			}
			userinfo[ic.Issuer] = u
		}
	}
	var fetcher extauthz.UserinfoFetcher
	if len(userinfo) > 0 {
		fetcher = userinfo
	}
	if len(clients) == 0 {
		return jwt, fetcher, nil
	}
	v, err := introspect.NewVerifier(jwt, cfg.Token.MaxSize, clients...)
	if err != nil {
		return nil, nil, err
	}
	return v, fetcher, nil
}

// issuerEndpoint describes an issuer's introspection or userinfo endpoint:
// url, or the one its discovery names; its CA file and insecure-http
// setting; the given timeout; caches bounded like the token cache.
func issuerEndpoint(cfg *config.Config, ic config.Issuer, url string, timeout config.Duration, log *slog.Logger) (introspect.Endpoint, error) {
	hc, err := keys.NewHTTPClient(keys.FetchOptions{
		Timeout:           time.Duration(timeout),
		CAFile:            ic.CAFile,
		UserAgent:         "claimcheck/" + version(),
		AllowInsecureHTTP: ic.AllowInsecureHTTP,
	})
	if err != nil {
		return introspect.Endpoint{}, fmt.Errorf("issuer %s: %w", ic.Issuer, err)
	}
	return introspect.Endpoint{
		Issuer:            ic.Issuer,
		URL:               url,
		Discovery:         ic.Discovery,
		Timeout:           time.Duration(timeout),
		MaxEntries:        cfg.Token.Cache.MaxEntries,
		HTTPClient:        hc,
		AllowInsecureHTTP: ic.AllowInsecureHTTP,
		Logger:            log,
	}, nil
}
