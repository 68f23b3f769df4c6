// Package envoy holds Envoy configurations for claimcheck; its test checks
// them against go-control-plane's protos, since no Envoy binary runs here.
package envoy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"gopkg.in/yaml.v3"
)

// loadBootstrap parses an Envoy YAML bootstrap strictly: unknown fields and
// unknown typed_config types are errors, and every proto constraint holds.
func loadBootstrap(t *testing.T, path string) *bootstrapv3.Bootstrap {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	js, err := json.Marshal(doc)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var bs bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(js, &bs); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if err := bs.ValidateAll(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &bs
}

// extAuthzOf returns the first listener's connection manager and its first
// HTTP filter, the ext_authz filter.
func extAuthzOf(t *testing.T, bs *bootstrapv3.Bootstrap) (*hcmv3.HttpConnectionManager, *extauthzv3.ExtAuthz) {
	t.Helper()
	var hcm hcmv3.HttpConnectionManager
	if err := bs.GetStaticResources().GetListeners()[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(&hcm); err != nil {
		t.Fatal(err)
	}
	var authz extauthzv3.ExtAuthz
	if err := hcm.GetHttpFilters()[0].GetTypedConfig().UnmarshalTo(&authz); err != nil {
		t.Fatal(err)
	}
	return &hcm, &authz
}

func TestEnvoyConfigsAreValid(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no Envoy configs: %v", err)
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) { loadBootstrap(t, f) })
	}
}

// TestEnvoyExtAuthzSettings checks what claimcheck relies on: the filter
// never fails open, speaks v3, and the routes carry claimcheck's keys.
func TestEnvoyExtAuthzSettings(t *testing.T) {
	hcm, authz := extAuthzOf(t, loadBootstrap(t, "envoy.yaml"))
	if authz.GetFailureModeAllow() || authz.GetTransportApiVersion().String() != "V3" || authz.GetGrpcService().GetEnvoyGrpc().GetClusterName() != "claimcheck" {
		t.Errorf("ext_authz = %v", authz)
	}
	ext := map[string]string{}
	disabled := 0
	for _, r := range hcm.GetRouteConfig().GetVirtualHosts()[0].GetRoutes() {
		cfg, ok := r.GetTypedPerFilterConfig()["envoy.filters.http.ext_authz"]
		if !ok {
			continue
		}
		var per extauthzv3.ExtAuthzPerRoute
		if err := cfg.UnmarshalTo(&per); err != nil {
			t.Fatal(err)
		}
		if per.GetDisabled() {
			disabled++
		}
		for k, v := range per.GetCheckSettings().GetContextExtensions() {
			ext[k] = v
		}
	}
	if disabled != 1 || ext["claimcheck_decision"] == "" || ext["claimcheck_dry_run"] != "true" {
		t.Errorf("per-route settings: %d public routes, context_extensions %v", disabled, ext)
	}
}

// TestEnvoyHTTPServiceSettings checks the http_service variant: never fails
// open, sends the path under claimcheck's path_prefix, and lets the claim
// headers through to the upstream and the challenge through to the client.
func TestEnvoyHTTPServiceSettings(t *testing.T) {
	_, authz := extAuthzOf(t, loadBootstrap(t, "envoy-http.yaml"))
	hs := authz.GetHttpService()
	if authz.GetFailureModeAllow() || hs.GetPathPrefix() != "/authz" {
		t.Errorf("ext_authz = %v", authz)
	}
	exact := func(ms []*matcherv3.StringMatcher) map[string]bool {
		out := map[string]bool{}
		for _, m := range ms {
			out[m.GetExact()] = true
		}
		return out
	}
	up := exact(hs.GetAuthorizationResponse().GetAllowedUpstreamHeaders().GetPatterns())
	client := exact(hs.GetAuthorizationResponse().GetAllowedClientHeaders().GetPatterns())
	if !up["x-client-id"] || !client["www-authenticate"] {
		t.Errorf("upstream headers %v, client headers %v", up, client)
	}
}
