// Package envoy holds Envoy, Istio and Kubernetes configurations for
// claimcheck; its tests check them against go-control-plane's, Istio's and
// Kubernetes' API types and against claimcheck's own config and policy
// loading, since no Envoy or cluster runs here.
package envoy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/http/header_validators/envoy_default/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"
)

// shipped names every YAML file under envoy/ and what it holds, so that
// each is checked as what it is; TestEveryYAMLFileIsChecked keeps the list
// complete.
var shipped = map[string]string{
	"envoy.yaml":                        "envoy",
	"envoy-http.yaml":                   "envoy",
	"claimcheck.yaml":                   "claimcheck",
	"kubernetes/claimcheck-config.yaml": "manifests",
	"kubernetes/envoy-config.yaml":      "manifests",
	"kubernetes/deployment.yaml":        "manifests",
	"kubernetes/service.yaml":           "manifests",
	"istio/mesh-config.yaml":            "istio-values",
	"istio/service-entry.yaml":          "manifests",
	"istio/authorization-policy.yaml":   "manifests",
	"istio/deployment.yaml":             "manifests",
}

func TestEveryYAMLFileIsChecked(t *testing.T) {
	var found []string
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			found = append(found, filepath.ToSlash(p))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		if shipped[f] == "" {
			t.Errorf("%s is not in envoy_test.go's shipped list, so nothing checks it: add it", f)
		}
	}
	for f := range shipped {
		if !slices.Contains(found, f) {
			t.Errorf("shipped lists %s, which does not exist", f)
		}
	}
}

// shippedOf returns the shipped files of one kind.
func shippedOf(kind string) []string {
	var out []string
	for f, k := range shipped {
		if k == kind {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out
}

// yamlToJSON converts one YAML document to JSON for protojson. yaml.v3
// rejects duplicate keys, so nothing is silently dropped.
func yamlToJSON(b []byte) ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	return json.Marshal(doc)
}

// parseBootstrap parses an Envoy YAML bootstrap strictly: an unknown field,
// or a typed_config whose type is not linked into this test, is an error;
// then every proto constraint (PGV) must hold, in the bootstrap and in every
// message packed in an Any at any depth, which Bootstrap.ValidateAll alone
// does not look into.
func parseBootstrap(b []byte) (*bootstrapv3.Bootstrap, error) {
	js, err := yamlToJSON(b)
	if err != nil {
		return nil, err
	}
	var bs bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(js, &bs); err != nil {
		return nil, err
	}
	if err := validateAll(&bs, "bootstrap"); err != nil {
		return nil, err
	}
	return &bs, nil
}

// validateAll runs m's generated ValidateAll, then unpacks and validates
// every Any inside m, recursively. at names m in errors.
func validateAll(m proto.Message, at string) error {
	if v, ok := m.(interface{ ValidateAll() error }); ok {
		if err := v.ValidateAll(); err != nil {
			return fmt.Errorf("%s: %w", at, err)
		}
	}
	return eachAny(m.ProtoReflect(), at, func(a *anypb.Any, at string) error {
		inner, err := a.UnmarshalNew()
		if err != nil {
			return fmt.Errorf("%s: %w", at, err)
		}
		return validateAll(inner, at+"<"+a.GetTypeUrl()+">")
	})
}

// eachAny calls f on every Any directly or indirectly held by m (not those
// inside the Anys themselves).
func eachAny(m protoreflect.Message, at string, f func(*anypb.Any, string) error) error {
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind {
			return true
		}
		visit := func(msg protoreflect.Message, at string) error {
			if a, ok := msg.Interface().(*anypb.Any); ok {
				return f(a, at)
			}
			return eachAny(msg, at, f)
		}
		name := at + "." + string(fd.Name())
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len() && err == nil; i++ {
				err = visit(l.Get(i).Message(), fmt.Sprintf("%s[%d]", name, i))
			}
		case fd.IsMap():
			if fd.MapValue().Kind() == protoreflect.MessageKind {
				v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
					err = visit(mv.Message(), fmt.Sprintf("%s[%v]", name, k.Interface()))
					return err == nil
				})
			}
		default:
			err = visit(v.Message(), name)
		}
		return err == nil
	})
	return err
}

// loadBootstrap reads and strictly parses an Envoy bootstrap file.
func loadBootstrap(t *testing.T, path string) *bootstrapv3.Bootstrap {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bs, err := parseBootstrap(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return bs
}

// extAuthzOf returns the first listener's connection manager and its first
// HTTP filter, the ext_authz filter.
func extAuthzOf(t *testing.T, bs *bootstrapv3.Bootstrap) (*hcmv3.HttpConnectionManager, *extauthzv3.ExtAuthz) {
	t.Helper()
	var hcm hcmv3.HttpConnectionManager
	if err := bs.GetStaticResources().GetListeners()[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(&hcm); err != nil {
		t.Fatal(err)
	}
	filters := hcm.GetHttpFilters()
	if len(filters) < 2 || filters[0].GetName() != "envoy.filters.http.ext_authz" || filters[len(filters)-1].GetName() != "envoy.filters.http.router" {
		t.Fatalf("http_filters %v: want ext_authz first and the router last", filters)
	}
	var authz extauthzv3.ExtAuthz
	if err := filters[0].GetTypedConfig().UnmarshalTo(&authz); err != nil {
		t.Fatal(err)
	}
	return &hcm, &authz
}

// perRoute returns a route's ext_authz per-route settings, or nil.
func perRoute(t *testing.T, r *routev3.Route) *extauthzv3.ExtAuthzPerRoute {
	t.Helper()
	cfg, ok := r.GetTypedPerFilterConfig()["envoy.filters.http.ext_authz"]
	if !ok {
		return nil
	}
	var per extauthzv3.ExtAuthzPerRoute
	if err := cfg.UnmarshalTo(&per); err != nil {
		t.Fatal(err)
	}
	return &per
}

// cluster returns the static cluster called name.
func cluster(t *testing.T, bs *bootstrapv3.Bootstrap, name string) *clusterv3.Cluster {
	t.Helper()
	for _, c := range bs.GetStaticResources().GetClusters() {
		if c.GetName() == name {
			return c
		}
	}
	t.Fatalf("no cluster %q", name)
	return nil
}

// endpointOf returns the address of a cluster's single endpoint.
func endpointOf(t *testing.T, c *clusterv3.Cluster) string {
	t.Helper()
	eps := c.GetLoadAssignment().GetEndpoints()
	if len(eps) != 1 || len(eps[0].GetLbEndpoints()) != 1 {
		t.Fatalf("cluster %s: want one endpoint", c.GetName())
	}
	sa := eps[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
	return fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue())
}

// checkGRPCExtAuthz checks what claimcheck relies on in a gRPC ext_authz
// setup: the filter never fails open, speaks v3 to the claimcheck cluster
// with a deadline, over HTTP/2, health-checked with claimcheck's service.
// It returns the claimcheck cluster's address.
func checkGRPCExtAuthz(t *testing.T, bs *bootstrapv3.Bootstrap) string {
	t.Helper()
	_, authz := extAuthzOf(t, bs)
	gs := authz.GetGrpcService()
	if authz.GetFailureModeAllow() || authz.GetTransportApiVersion().String() != "V3" ||
		gs.GetEnvoyGrpc().GetClusterName() != "claimcheck" || gs.GetTimeout().AsDuration() <= 0 {
		t.Errorf("ext_authz = %v", authz)
	}
	c := cluster(t, bs, "claimcheck")
	var opts httpv3.HttpProtocolOptions
	if a := c.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]; a == nil || a.UnmarshalTo(&opts) != nil ||
		opts.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
		t.Errorf("cluster claimcheck does not speak HTTP/2 (gRPC needs it): %v", &opts)
	}
	hc := c.GetHealthChecks()
	if len(hc) != 1 || hc[0].GetGrpcHealthCheck().GetServiceName() != "envoy.service.auth.v3.Authorization" {
		t.Errorf("cluster claimcheck health checks %v: want claimcheck's gRPC health service", hc)
	}
	return endpointOf(t, c)
}

func TestEnvoyConfigsAreValid(t *testing.T) {
	for _, f := range shippedOf("envoy") {
		t.Run(f, func(t *testing.T) { loadBootstrap(t, f) })
	}
}

// editedEnvoyYAML returns envoy.yaml with its first old replaced by new.
func editedEnvoyYAML(t *testing.T, old, new string) []byte {
	t.Helper()
	good, err := os.ReadFile("envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(good), old, new, 1)
	if bad == string(good) {
		t.Fatalf("envoy.yaml no longer contains %q", old)
	}
	return []byte(bad)
}

// TestStrictLoadingRejectsMistakes proves the loader fails on what a
// lenient one would let through: a misspelled field, a typed_config type
// nothing registers, and a constraint broken inside a typed_config.
func TestStrictLoadingRejectsMistakes(t *testing.T) {
	tests := []struct{ name, old, new, want string }{
		{"unknown field", "failure_mode_allow: false", "failure_mode_alow: false", "failure_mode_alow"},
		{"unknown typed_config type", "ext_authz.v3.ExtAuthz\n", "ext_authz.v3.ExtAuthzz\n", "ExtAuthzz"},
		{"constraint inside a typed_config", "stat_prefix: api", `stat_prefix: ""`, "StatPrefix"},
		{"constraint inside a typed_config inside a typed_config", "envoy_grpc: {cluster_name: claimcheck}", `envoy_grpc: {cluster_name: ""}`, "ClusterName"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseBootstrap(editedEnvoyYAML(t, tt.old, tt.new))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one naming %q", err, tt.want)
			}
		})
	}
}

// TestEnvoyExtAuthzSettings checks envoy.yaml's per-route settings: one
// public route with the check off, and routes carrying each of claimcheck's
// context_extensions keys.
func TestEnvoyExtAuthzSettings(t *testing.T) {
	bs := loadBootstrap(t, "envoy.yaml")
	checkGRPCExtAuthz(t, bs)
	hcm, _ := extAuthzOf(t, bs)
	ext := map[string]string{}
	disabled := 0
	for _, r := range hcm.GetRouteConfig().GetVirtualHosts()[0].GetRoutes() {
		per := perRoute(t, r)
		if per.GetDisabled() {
			disabled++
		}
		for k, v := range per.GetCheckSettings().GetContextExtensions() {
			ext[k] = v
		}
	}
	if disabled != 1 || ext["claimcheck_decision"] == "" || ext["claimcheck_dry_run"] != "true" || ext["claimcheck_public"] != "true" {
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

// shippedBootstraps returns every Envoy bootstrap shipped under envoy/: the
// files and the ones embedded in ConfigMaps, each strictly parsed.
func shippedBootstraps(t *testing.T) map[string]*bootstrapv3.Bootstrap {
	t.Helper()
	out := map[string]*bootstrapv3.Bootstrap{}
	for _, f := range shippedOf("envoy") {
		out[f] = loadBootstrap(t, f)
	}
	for _, f := range shippedOf("manifests") {
		for _, o := range loadManifests(t, f) {
			cm, ok := o.(*corev1.ConfigMap)
			if !ok || cm.Data["envoy.yaml"] == "" {
				continue
			}
			bs, err := parseBootstrap([]byte(cm.Data["envoy.yaml"]))
			if err != nil {
				t.Fatalf("%s ConfigMap %s envoy.yaml: %v", f, cm.Name, err)
			}
			out[f+" ConfigMap "+cm.Name] = bs
		}
	}
	if len(out) < 3 {
		t.Fatalf("found %d Envoy bootstraps, want envoy.yaml, envoy-http.yaml and the Kubernetes one", len(out))
	}
	return out
}

// connectionManagers returns every HTTP connection manager of a
// bootstrap's listeners, in every filter chain, keyed by where it is.
func connectionManagers(bs *bootstrapv3.Bootstrap) (map[string]*hcmv3.HttpConnectionManager, error) {
	out := map[string]*hcmv3.HttpConnectionManager{}
	for _, l := range bs.GetStaticResources().GetListeners() {
		chains := map[string]*listenerv3.FilterChain{"default_filter_chain": l.GetDefaultFilterChain()}
		for i, fc := range l.GetFilterChains() {
			chains[fmt.Sprintf("filter_chains[%d]", i)] = fc
		}
		for name, fc := range chains {
			for i, f := range fc.GetFilters() {
				if !f.GetTypedConfig().MessageIs((*hcmv3.HttpConnectionManager)(nil)) {
					continue
				}
				var hcm hcmv3.HttpConnectionManager
				if err := f.GetTypedConfig().UnmarshalTo(&hcm); err != nil {
					return nil, err
				}
				out[fmt.Sprintf("listener %s %s.filters[%d]", l.GetName(), name, i)] = &hcm
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no HTTP connection manager")
	}
	return out, nil
}

// pathNormalizationErr names each setting an HTTP connection manager lacks
// for the path it routes on, sends claimcheck and forwards upstream to be
// one and the same: otherwise "/orders/../admin", "//admin" or
// "/orders/..%2Fadmin" can pass a check on /orders and be served as /admin.
func pathNormalizationErr(hcm *hcmv3.HttpConnectionManager) error {
	var errs []error
	if !hcm.GetNormalizePath().GetValue() {
		errs = append(errs, errors.New("normalize_path is not true: dot segments reach the policy and the upstream unresolved"))
	}
	if !hcm.GetMergeSlashes() {
		errs = append(errs, errors.New("merge_slashes is not true: //admin is not merged into /admin"))
	}
	if a := hcm.GetPathWithEscapedSlashesAction(); a != hcmv3.HttpConnectionManager_REJECT_REQUEST {
		errs = append(errs, fmt.Errorf("path_with_escaped_slashes_action is %v, want REJECT_REQUEST: %%2F and %%5C reach the upstream, which may decode them", a))
	}
	if hcm.GetTypedHeaderValidationConfig() != nil {
		errs = append(errs, errors.New("typed_header_validation_config is set: Envoy then ignores normalize_path, merge_slashes and path_with_escaped_slashes_action"))
	}
	return errors.Join(errs...)
}

// TestShippedConnectionManagersNormalisePaths: every HTTP connection
// manager of every shipped Envoy config resolves dot segments, merges
// slashes and refuses escaped slashes.
func TestShippedConnectionManagersNormalisePaths(t *testing.T) {
	for name, bs := range shippedBootstraps(t) {
		t.Run(name, func(t *testing.T) {
			hcms, err := connectionManagers(bs)
			if err != nil {
				t.Fatal(err)
			}
			for at, hcm := range hcms {
				if err := pathNormalizationErr(hcm); err != nil {
					t.Errorf("%s:\n%v", at, err)
				}
			}
		})
	}
}

// TestPathNormalizationCheckCatchesGaps proves the check above fails on a
// connection manager without each setting, and on a second listener that
// lacks them while the first has them.
func TestPathNormalizationCheckCatchesGaps(t *testing.T) {
	tests := []struct{ name, old, new, want string }{
		{"no normalize_path", "normalize_path: true", "# normalize_path: true", "normalize_path"},
		{"normalize_path false", "normalize_path: true", "normalize_path: false", "normalize_path"},
		{"no merge_slashes", "merge_slashes: true", "# merge_slashes: true", "merge_slashes"},
		{"no escaped slashes action", "path_with_escaped_slashes_action: REJECT_REQUEST", "# path_with_escaped_slashes_action: REJECT_REQUEST", "path_with_escaped_slashes_action is IMPLEMENTATION_SPECIFIC_DEFAULT"},
		{"escaped slashes kept", "path_with_escaped_slashes_action: REJECT_REQUEST", "path_with_escaped_slashes_action: KEEP_UNCHANGED", "KEEP_UNCHANGED"},
		{"escaped slashes decoded", "path_with_escaped_slashes_action: REJECT_REQUEST", "path_with_escaped_slashes_action: UNESCAPE_AND_FORWARD", "UNESCAPE_AND_FORWARD"},
		{"header validation overrides them", "merge_slashes: true\n", "merge_slashes: true\n" + `                typed_header_validation_config:
                  name: envoy.http.header_validators.envoy_default
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.http.header_validators.envoy_default.v3.HeaderValidatorConfig
`, "typed_header_validation_config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bs, err := parseBootstrap(editedEnvoyYAML(t, tt.old, tt.new))
			if err != nil {
				t.Fatal(err)
			}
			hcms, err := connectionManagers(bs)
			if err != nil {
				t.Fatal(err)
			}
			for _, hcm := range hcms {
				if err := pathNormalizationErr(hcm); err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("error %v, want one naming %q", err, tt.want)
				}
			}
		})
	}

	t.Run("second listener without them", func(t *testing.T) {
		bs := loadBootstrap(t, "envoy.yaml")
		l := proto.Clone(bs.GetStaticResources().GetListeners()[0]).(*listenerv3.Listener)
		l.Name = "second"
		var hcm hcmv3.HttpConnectionManager
		if err := l.GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(&hcm); err != nil {
			t.Fatal(err)
		}
		hcm.MergeSlashes = false
		a, err := anypb.New(&hcm)
		if err != nil {
			t.Fatal(err)
		}
		l.GetFilterChains()[0].GetFilters()[0].ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: a}
		bs.StaticResources.Listeners = append(bs.StaticResources.Listeners, l)
		hcms, err := connectionManagers(bs)
		if err != nil {
			t.Fatal(err)
		}
		for at, hcm := range hcms {
			err := pathNormalizationErr(hcm)
			if second := strings.HasPrefix(at, "listener second "); second != (err != nil) {
				t.Errorf("%s: error %v", at, err)
			}
		}
	})
}
