package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/encoding/protojson"
	"gopkg.in/yaml.v3"
)

// envoyRoutes returns, for each route of envoy/envoy.yaml that claimcheck
// is asked about, its path prefix and its context_extensions. (envoy/'s
// own tests validate the file; this one only reads it.)
func envoyRoutes(t *testing.T) map[string]map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "envoy/envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var bs bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(js, &bs); err != nil {
		t.Fatal(err)
	}
	var hcm hcmv3.HttpConnectionManager
	if err := bs.GetStaticResources().GetListeners()[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(&hcm); err != nil {
		t.Fatal(err)
	}
	routes := map[string]map[string]string{}
	for _, r := range hcm.GetRouteConfig().GetVirtualHosts()[0].GetRoutes() {
		var per extauthzv3.ExtAuthzPerRoute
		if cfg := r.GetTypedPerFilterConfig()["envoy.filters.http.ext_authz"]; cfg != nil {
			if err := cfg.UnmarshalTo(&per); err != nil {
				t.Fatal(err)
			}
		}
		if per.GetDisabled() || r.GetMatch().GetPrefix() == "" {
			continue
		}
		routes[r.GetMatch().GetPrefix()] = per.GetCheckSettings().GetContextExtensions()
	}
	return routes
}

// TestEnvoyConfigPairServes serves envoy/claimcheck.yaml with the real
// binary and asks it what Envoy would ask for each route of envoy.yaml, with
// that route's context_extensions: the settings the routes use are switched
// on, and the decision rules they name exist.
func TestEnvoyConfigPairServes(t *testing.T) {
	abs, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(repoRoot, "envoy/claimcheck.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c := mustReplace(t, string(cfg), `grpc: "127.0.0.1:9191"`, `grpc: "{{LISTEN}}"`)
	c = mustReplace(t, c, `http: "127.0.0.1:9192"`, fmt.Sprintf("http: %q", freeAddr(t)))
	c = mustReplace(t, c, `admin: "127.0.0.1:9193"`, fmt.Sprintf("admin: %q", freeAddr(t)))
	c = mustReplace(t, c, "../examples/", abs+"/examples/")
	s := startServer(t, c, freeAddr(t))
	s.waitHealth(t, healthpb.HealthCheckResponse_SERVING)

	allowed := mintQuickstart(t, quickstartClaims("service-client-id"))
	routes := envoyRoutes(t)
	for _, tt := range []struct {
		prefix, path, token, reason string
	}{
		{"/", "/orders/42", allowed, "allowed"},
		{"/", "/orders/42", "", "missing_token"},
		// The rule the route names exists, so the quickstart policy decides:
		// not decision_rule_unknown.
		{"/reports", "/reports/q3", allowed, "policy_denied"},
		// Dry-run is on for the route: the real decision is logged, the
		// request allowed.
		{"/beta", "/beta/x", "", "missing_token"},
		// Public: the token is optional, so a bad one is still rejected.
		{"/catalog", "/catalog/1", "not.a.token", "token_malformed"},
	} {
		ext, ok := routes[tt.prefix]
		if !ok {
			t.Fatalf("envoy.yaml has no checked route with prefix %s", tt.prefix)
		}
		var headers map[string]string
		if tt.token != "" {
			headers = bearer(tt.token)
		}
		req := request("GET", tt.path, headers)
		req.Attributes.ContextExtensions = ext
		resp := s.check(t, req)
		if got := reason(resp); got != tt.reason {
			t.Errorf("%s (route %s, %v): reason %s, want %s", tt.path, tt.prefix, ext, got, tt.reason)
		}
		wantAllowed := tt.reason == "allowed" || ext["claimcheck_dry_run"] == "true"
		if (resp.GetOkResponse() != nil) != wantAllowed {
			t.Errorf("%s (route %s): allowed %v, want %v", tt.path, tt.prefix, resp.GetOkResponse() != nil, wantAllowed)
		}
	}
}

// TestKubernetesConfigMapServes writes envoy/kubernetes's claimcheck
// ConfigMap out as its volume mount would, serves it with the real binary
// and makes the README's "Run in Kubernetes" requests.
func TestKubernetesConfigMapServes(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "envoy/kubernetes/claimcheck-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	if err := yaml.Unmarshal(b, &cm); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, data := range cm.Data {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := mustReplace(t, cm.Data["config.yaml"], `grpc: "127.0.0.1:9191"`, `grpc: "{{LISTEN}}"`)
	c = mustReplace(t, c, `admin: "0.0.0.0:9193"`, fmt.Sprintf("admin: %q", freeAddr(t)))
	c = mustReplace(t, c, "jwks_file: jwks.json", "jwks_file: "+filepath.Join(dir, "jwks.json"))
	c = mustReplace(t, c, "paths: [authz.rego, data.json]",
		fmt.Sprintf("paths: [%s, %s]", filepath.Join(dir, "authz.rego"), filepath.Join(dir, "data.json")))
	s := startServer(t, c, freeAddr(t))
	s.waitHealth(t, healthpb.HealthCheckResponse_SERVING)

	allowed := mintQuickstart(t, quickstartClaims("service-client-id"))
	other := mintQuickstart(t, quickstartClaims("some-other-client"))
	for _, tt := range []struct {
		name, token, reason string
	}{
		{"no token", "", "missing_token"},
		{"allowed client", allowed, "allowed"},
		{"other client", other, "policy_denied"},
	} {
		var headers map[string]string
		if tt.token != "" {
			headers = bearer(tt.token)
		}
		resp := s.check(t, request("GET", "/orders/headers", headers))
		if got := reason(resp); got != tt.reason {
			t.Errorf("%s: reason %s, want %s", tt.name, got, tt.reason)
		}
		if tt.reason == "allowed" && headerValue(resp, false, "x-client-id") != "service-client-id" {
			t.Errorf("%s: x-client-id %q", tt.name, headerValue(resp, false, "x-client-id"))
		}
	}
	if strings.Contains(s.stderr.String(), `"level":"ERROR"`) {
		t.Errorf("errors logged:\n%s", s.stderr)
	}
}
