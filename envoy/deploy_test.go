package envoy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"gopkg.in/yaml.v3"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	networkingv1 "istio.io/api/networking/v1"
	securityv1 "istio.io/api/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsjson "sigs.k8s.io/json"

	"github.com/claimcheck/claimcheck/extauthz/config"
	"github.com/claimcheck/claimcheck/extauthz/keys"
	"github.com/claimcheck/claimcheck/policy"
)

// istioObject is an Istio custom resource: Kubernetes metadata around a
// spec that is one of Istio's API protos.
type istioObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              json.RawMessage `json:"spec"`
}

// decodeManifests decodes every document of a Kubernetes YAML file strictly
// into its API type: an unknown or misspelled field is an error, as is a
// kind not expected in envoy/. Istio resources come back as their
// ObjectMeta followed by their spec.
func decodeManifests(b []byte) ([]any, error) {
	var objs []any
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for i := 0; ; i++ {
		var n yaml.Node
		if err := dec.Decode(&n); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, err
		}
		var doc any
		if err := n.Decode(&doc); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		js, err := json.Marshal(doc)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		var tm metav1.TypeMeta
		if err := json.Unmarshal(js, &tm); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		var obj any
		var spec proto.Message
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 ConfigMap":
			obj = &corev1.ConfigMap{}
		case "v1 Service":
			obj = &corev1.Service{}
		case "apps/v1 Deployment":
			obj = &appsv1.Deployment{}
		case "networking.istio.io/v1 ServiceEntry":
			obj, spec = &istioObject{}, &networkingv1.ServiceEntry{}
		case "security.istio.io/v1 AuthorizationPolicy":
			obj, spec = &istioObject{}, &securityv1.AuthorizationPolicy{}
		default:
			return nil, fmt.Errorf("document %d: unexpected apiVersion %q kind %q", i, tm.APIVersion, tm.Kind)
		}
		// As the API server decodes: field names case-sensitive, unknown and
		// duplicate fields errors.
		strictErrs, err := sigsjson.UnmarshalStrict(js, obj)
		if err = errors.Join(append(strictErrs, err)...); err != nil {
			return nil, fmt.Errorf("document %d (%s): %w", i, tm.Kind, err)
		}
		if spec == nil {
			objs = append(objs, obj)
			continue
		}
		res := obj.(*istioObject)
		if err := protojson.Unmarshal(res.Spec, spec); err != nil {
			return nil, fmt.Errorf("document %d (%s) spec: %w", i, tm.Kind, err)
		}
		objs = append(objs, res.ObjectMeta, spec)
	}
	if len(objs) == 0 {
		return nil, errors.New("no manifest")
	}
	return objs, nil
}

func loadManifests(t *testing.T, path string) []any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeManifests(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return objs
}

// one returns the only object of type T in the files, failing otherwise.
func one[T any](t *testing.T, files ...string) T {
	t.Helper()
	var found []T
	for _, f := range files {
		for _, o := range loadManifests(t, f) {
			if v, ok := o.(T); ok {
				found = append(found, v)
			}
		}
	}
	if len(found) != 1 {
		var zero T
		t.Fatalf("%v: want one %T, found %d", files, zero, len(found))
	}
	return found[0]
}

// configMapConfig writes a claimcheck ConfigMap's files to a directory, as
// the volume mount does, and loads its config.yaml as `claimcheck validate`
// would: strict config, key files parsed, policy compiled with its decision.
func configMapConfig(t *testing.T, cm *corev1.ConfigMap) *config.Config {
	t.Helper()
	dir := t.TempDir()
	for name, data := range cm.Data {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return loadClaimcheckConfig(t, filepath.Join(dir, "config.yaml"))
}

// loadClaimcheckConfig validates a claimcheck config file the way
// `claimcheck validate` does, without the network.
func loadClaimcheckConfig(t *testing.T, path string) *config.Config {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, is := range cfg.Issuers {
		switch {
		case is.JWKSFile != "":
			b, err := os.ReadFile(is.JWKSFile)
			if err != nil {
				t.Fatal(err)
			}
			set, err := keys.ParseSet(b, nil)
			if err != nil || set.Len() == 0 {
				t.Errorf("%s: issuers[%d].jwks_file: %d keys, %v", path, i, set.Len(), err)
			}
		case is.Remote():
		default:
			t.Errorf("%s: issuers[%d]: this test checks jwks_file and remote keys only; extend it", path, i)
		}
	}
	if cfg.Policy.Bundle == nil {
		if _, err := policy.New(context.Background(), policy.Config{Paths: cfg.Policy.Paths, Decision: cfg.Policy.Decision}); err != nil {
			t.Errorf("%s: policy: %v", path, err)
		}
	}
	return cfg
}

func TestClaimcheckConfigsAreValid(t *testing.T) {
	for _, f := range shippedOf("claimcheck") {
		t.Run(f, func(t *testing.T) { loadClaimcheckConfig(t, f) })
	}
}

// TestManifestsAreValid decodes every manifest strictly, and checks what
// the ConfigMaps carry: Envoy bootstraps against go-control-plane's protos,
// claimcheck configs as `claimcheck validate` would.
func TestManifestsAreValid(t *testing.T) {
	for _, f := range shippedOf("manifests") {
		t.Run(f, func(t *testing.T) {
			for _, o := range loadManifests(t, f) {
				cm, ok := o.(*corev1.ConfigMap)
				if !ok {
					continue
				}
				for key, data := range cm.Data {
					switch key {
					case "envoy.yaml":
						if _, err := parseBootstrap([]byte(data)); err != nil {
							t.Errorf("ConfigMap %s %s: %v", cm.Name, key, err)
						}
					case "config.yaml":
						configMapConfig(t, cm)
					}
				}
			}
		})
	}
}

// TestManifestLoadingRejectsMistakes proves the manifests' decoding is
// strict: a misspelled field or an unknown kind fails rather than vanishing.
func TestManifestLoadingRejectsMistakes(t *testing.T) {
	tests := []struct{ name, file, old, new, want string }{
		{"misspelled Kubernetes field", "kubernetes/deployment.yaml", "readOnlyRootFilesystem", "readOnlyRootFileSystem", "readOnlyRootFileSystem"},
		{"misspelled Istio field", "istio/authorization-policy.yaml", "notPaths", "notPath", "notPath"},
		{"unexpected kind", "kubernetes/service.yaml", "kind: Service", "kind: Ingress", "Ingress"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := os.ReadFile(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			bad := strings.Replace(string(b), tt.old, tt.new, 1)
			if bad == string(b) {
				t.Fatalf("%s no longer contains %q", tt.file, tt.old)
			}
			if _, err := decodeManifests([]byte(bad)); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one naming %q", err, tt.want)
			}
		})
	}
}

// meshConfig reads istio/mesh-config.yaml, istiod Helm values holding only
// meshConfig, strictly into Istio's MeshConfig proto.
func meshConfig(t *testing.T) *meshv1alpha1.MeshConfig {
	t.Helper()
	b, err := os.ReadFile("istio/mesh-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	mc, err := parseMeshValues(b)
	if err != nil {
		t.Fatalf("istio/mesh-config.yaml: %v", err)
	}
	return mc
}

// parseMeshValues parses istiod Helm values that hold only meshConfig.
func parseMeshValues(b []byte) (*meshv1alpha1.MeshConfig, error) {
	var values map[string]any
	if err := yaml.Unmarshal(b, &values); err != nil {
		return nil, err
	}
	if len(values) != 1 || values["meshConfig"] == nil {
		return nil, fmt.Errorf("want only meshConfig, got %v", slices.Collect(maps.Keys(values)))
	}
	js, err := json.Marshal(values["meshConfig"])
	if err != nil {
		return nil, err
	}
	var mc meshv1alpha1.MeshConfig
	if err := protojson.Unmarshal(js, &mc); err != nil {
		return nil, fmt.Errorf("meshConfig: %w", err)
	}
	return &mc, nil
}

// meshPathNormalizationErr says why a mesh's path normalization lets the
// path claimcheck judges differ from the path the app serves. Only
// DECODE_AND_MERGE_SLASHES does for istio-proxy what envoy.yaml's settings
// do for Envoy: BASE and MERGE_SLASHES keep %2F, which an app may decode
// into a slash after AuthorizationPolicy paths and claimcheck saw none.
func meshPathNormalizationErr(mc *meshv1alpha1.MeshConfig) error {
	if got := mc.GetPathNormalization().GetNormalization(); got != meshv1alpha1.MeshConfig_ProxyPathNormalization_DECODE_AND_MERGE_SLASHES {
		return fmt.Errorf("meshConfig.pathNormalization.normalization is %v, want DECODE_AND_MERGE_SLASHES", got)
	}
	return nil
}

func TestIstioNormalisesPaths(t *testing.T) {
	if err := meshPathNormalizationErr(meshConfig(t)); err != nil {
		t.Error(err)
	}
}

// TestIstioPathNormalizationCheckCatchesGaps proves the check above fails on
// every weaker setting and on none, and that a misspelling is an error, not
// a silently absent setting.
func TestIstioPathNormalizationCheckCatchesGaps(t *testing.T) {
	good, err := os.ReadFile("istio/mesh-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const set = "normalization: DECODE_AND_MERGE_SLASHES"
	tests := []struct{ name, new, want string }{
		{"merge slashes only", "normalization: MERGE_SLASHES", "is MERGE_SLASHES"},
		{"base", "normalization: BASE", "is BASE"},
		{"default", "normalization: DEFAULT", "is DEFAULT"},
		{"none", "normalization: NONE", "is NONE"},
		{"absent", "{}", "is DEFAULT"},
		{"misspelled field", "normalisation: DECODE_AND_MERGE_SLASHES", "normalisation"},
		{"misspelled value", "normalization: DECODE_AND_MERGE_SLASH", "DECODE_AND_MERGE_SLASH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := strings.Replace(string(good), set, tt.new, 1)
			if bad == string(good) {
				t.Fatalf("istio/mesh-config.yaml no longer contains %q", set)
			}
			mc, err := parseMeshValues([]byte(bad))
			if err == nil {
				err = meshPathNormalizationErr(mc)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one naming %q", err, tt.want)
			}
		})
	}
}

func TestIstioValuesAreValid(t *testing.T) {
	if got := shippedOf("istio-values"); !slices.Equal(got, []string{"istio/mesh-config.yaml"}) {
		t.Fatalf("istio-values files %v: this test reads istio/mesh-config.yaml only", got)
	}
	meshConfig(t)
}

// hostPort splits a listen address, failing on anything but host:port.
func hostPort(t *testing.T, addr string) (string, int32) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	n, err := strconv.ParseInt(port, 10, 32)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	return host, int32(n)
}

// container returns the named container (or init container) of a pod.
func container(t *testing.T, pod *corev1.PodSpec, name string) *corev1.Container {
	t.Helper()
	for _, cs := range [][]corev1.Container{pod.InitContainers, pod.Containers} {
		for i := range cs {
			if cs[i].Name == name {
				return &cs[i]
			}
		}
	}
	t.Fatalf("no container %q", name)
	return nil
}

// portNamed returns a container's port called name.
func portNamed(t *testing.T, c *corev1.Container, name string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("container %s has no port %q", c.Name, name)
	return 0
}

// probePort resolves a probe's HTTP port, by name or number.
func probePort(t *testing.T, c *corev1.Container, p *corev1.Probe) int32 {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Fatalf("container %s: want an httpGet probe, got %v", c.Name, p)
	}
	if name := p.HTTPGet.Port.StrVal; name != "" {
		return portNamed(t, c, name)
	}
	return p.HTTPGet.Port.IntVal
}

// mountedConfigMap returns the ConfigMap mounted at dir in c.
func mountedConfigMap(t *testing.T, pod *corev1.PodSpec, c *corev1.Container, dir string) string {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if m.MountPath != dir {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil {
				return v.ConfigMap.Name
			}
		}
	}
	t.Fatalf("container %s: no ConfigMap mounted at %s", c.Name, dir)
	return ""
}

// checkHardened checks a container runs as non-root on a read-only root
// filesystem, without privilege escalation or capabilities, with requests
// and a memory limit.
func checkHardened(t *testing.T, pod *corev1.PodSpec, c *corev1.Container) {
	t.Helper()
	sc := c.SecurityContext
	if sc == nil {
		t.Fatalf("container %s has no securityContext", c.Name)
	}
	nonRoot := pod.SecurityContext != nil && pod.SecurityContext.RunAsNonRoot != nil && *pod.SecurityContext.RunAsNonRoot
	if sc.RunAsNonRoot != nil {
		nonRoot = *sc.RunAsNonRoot
	}
	if !nonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		t.Errorf("container %s: want runAsNonRoot and a non-zero runAsUser", c.Name)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("container %s: want a read-only root filesystem, no privilege escalation, all capabilities dropped", c.Name)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("container %s: want CPU and memory requests and a memory limit, got %v", c.Name, c.Resources)
	}
}

// checkClaimcheckSidecar checks the claimcheck container of a pod against
// the config it is given, the one in the ConfigMap it mounts: a native
// sidecar serving that config, ports equal to its listeners, gRPC on the
// pod's loopback only, the admin listener reachable by kubelet and probed at
// /healthz (liveness) and /readyz (readiness).
func checkClaimcheckSidecar(t *testing.T, pod *corev1.PodSpec, cm *corev1.ConfigMap) *config.Config {
	t.Helper()
	c := container(t, pod, "claimcheck")
	if !slices.ContainsFunc(pod.InitContainers, func(ic corev1.Container) bool { return ic.Name == c.Name }) ||
		c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("claimcheck: want a native sidecar (an init container with restartPolicy: Always)")
	}
	if want := []string{"serve", "--config", "/etc/claimcheck/config.yaml"}; !slices.Equal(c.Args, want) || len(c.Command) != 0 {
		t.Errorf("claimcheck command %q args %q, want the image's entrypoint with %q", c.Command, c.Args, want)
	}
	if name := mountedConfigMap(t, pod, c, "/etc/claimcheck"); name != cm.Name {
		t.Fatalf("claimcheck mounts ConfigMap %q, want %q", name, cm.Name)
	}
	cfg := configMapConfig(t, cm)

	grpcHost, grpcPort := hostPort(t, cfg.Listen.GRPC)
	adminHost, adminPort := hostPort(t, cfg.Listen.Admin)
	if grpcHost != "127.0.0.1" {
		t.Errorf("listen.grpc %s: a sidecar's authorizer should listen on the pod's loopback only", cfg.Listen.GRPC)
	}
	if adminHost != "0.0.0.0" {
		t.Errorf("listen.admin %s: kubelet probes come to the pod IP, listen on 0.0.0.0", cfg.Listen.Admin)
	}
	if got := portNamed(t, c, "authz-grpc"); got != grpcPort {
		t.Errorf("container port authz-grpc %d, listen.grpc %s", got, cfg.Listen.GRPC)
	}
	if got := portNamed(t, c, "admin"); got != adminPort {
		t.Errorf("container port admin %d, listen.admin %s", got, cfg.Listen.Admin)
	}
	for _, p := range []struct {
		probe *corev1.Probe
		path  string
	}{{c.LivenessProbe, "/healthz"}, {c.ReadinessProbe, "/readyz"}} {
		if port := probePort(t, c, p.probe); port != adminPort || p.probe.HTTPGet.Path != p.path {
			t.Errorf("claimcheck probe %s on port %d, want %s on the admin port %d", p.probe.HTTPGet.Path, port, p.path, adminPort)
		}
	}
	checkHardened(t, pod, c)
	return cfg
}

// claimcheckConfigMap is the ConfigMap both deployments mount.
func claimcheckConfigMap(t *testing.T) *corev1.ConfigMap {
	t.Helper()
	return one[*corev1.ConfigMap](t, "kubernetes/claimcheck-config.yaml")
}

// TestConfigMapRunsTheQuickstart keeps the ConfigMap's policy and keys those
// of the quickstart, so the README's tokens, minted with the quickstart's
// development key, work against the manifests.
func TestConfigMapRunsTheQuickstart(t *testing.T) {
	cm := claimcheckConfigMap(t)
	// canonical compares JSON by value, anything else byte for byte.
	canonical := func(name, s string) string {
		if !strings.HasSuffix(name, ".json") {
			return s
		}
		var v any
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, _ := json.Marshal(v)
		return string(b)
	}
	for key, file := range map[string]string{
		"authz.rego": "../examples/quickstart/policy/authz.rego",
		"data.json":  "../examples/quickstart/policy/data.json",
		"jwks.json":  "../examples/quickstart/jwks.json",
	} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if canonical(key, cm.Data[key]) != canonical(file, string(b)) {
			t.Errorf("ConfigMap %s differs from %s", key, file)
		}
	}
}

// matchingRoute returns the first route whose path or prefix matches path
// (the only kinds of match the shipped configs use).
func matchingRoute(t *testing.T, bs *bootstrapv3.Bootstrap, path string) *routev3.Route {
	t.Helper()
	hcm, _ := extAuthzOf(t, bs)
	for _, r := range hcm.GetRouteConfig().GetVirtualHosts()[0].GetRoutes() {
		m := r.GetMatch()
		if m.GetPath() == path || m.GetPrefix() != "" && strings.HasPrefix(path, m.GetPrefix()) {
			return r
		}
	}
	t.Fatalf("no route matches %s", path)
	return nil
}

// envValue returns a container's environment variable.
func envValue(c *corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// TestKubernetesWiring checks that envoy/kubernetes fits together: Envoy's
// bootstrap from its ConfigMap calls the claimcheck of the same pod at the
// address its config listens on, serves the container port the Service
// targets, forwards to the app on loopback, and its readiness probe uses a
// public route.
func TestKubernetesWiring(t *testing.T) {
	const dir = "kubernetes/"
	dep := one[*appsv1.Deployment](t, dir+"deployment.yaml")
	pod := &dep.Spec.Template.Spec
	cfg := checkClaimcheckSidecar(t, pod, claimcheckConfigMap(t))

	envoy := container(t, pod, "envoy")
	checkHardened(t, pod, envoy)
	if name := mountedConfigMap(t, pod, envoy, "/etc/envoy"); name != one[*corev1.ConfigMap](t, dir+"envoy-config.yaml").Name {
		t.Errorf("envoy mounts ConfigMap %q", name)
	}
	if !slices.Equal(envoy.Args, []string{"-c", "/etc/envoy/envoy.yaml"}) {
		t.Errorf("envoy args %q", envoy.Args)
	}
	bs, err := parseBootstrap([]byte(one[*corev1.ConfigMap](t, dir+"envoy-config.yaml").Data["envoy.yaml"]))
	if err != nil {
		t.Fatal(err)
	}
	if addr := checkGRPCExtAuthz(t, bs); addr != cfg.Listen.GRPC {
		t.Errorf("Envoy calls claimcheck at %s, claimcheck listens on %s", addr, cfg.Listen.GRPC)
	}
	listener := bs.GetStaticResources().GetListeners()[0].GetAddress().GetSocketAddress()
	if int32(listener.GetPortValue()) != portNamed(t, envoy, "http") {
		t.Errorf("Envoy listens on %d, its container port http is %d", listener.GetPortValue(), portNamed(t, envoy, "http"))
	}

	app := container(t, pod, "app")
	if got, want := endpointOf(t, cluster(t, bs, "app")), envValue(app, "HOST")+":"+envValue(app, "PORT"); got != want || envValue(app, "HOST") != "127.0.0.1" {
		t.Errorf("Envoy forwards to %s, the app listens on %s (want loopback, reachable only through Envoy)", got, want)
	}
	if len(app.Ports) != 0 {
		t.Errorf("the app declares ports %v: it listens on loopback only", app.Ports)
	}
	checkHardened(t, pod, app)

	probe := envoy.ReadinessProbe
	if probePort(t, envoy, probe) != int32(listener.GetPortValue()) || !perRoute(t, matchingRoute(t, bs, probe.HTTPGet.Path)).GetDisabled() {
		t.Errorf("Envoy's readiness probe %s: want a public route (ext_authz disabled) on the listener", probe.HTTPGet.Path)
	}
	if perRoute(t, matchingRoute(t, bs, "/orders/42")).GetDisabled() {
		t.Errorf("/orders/42 is not checked")
	}

	checkService(t, dep, envoy)
}

// checkService checks the shared Service selects the deployment's pods and
// targets a port of the container that serves clients.
func checkService(t *testing.T, dep *appsv1.Deployment, front *corev1.Container) {
	t.Helper()
	svc := one[*corev1.Service](t, "kubernetes/service.yaml")
	for k, v := range svc.Spec.Selector {
		if dep.Spec.Template.Labels[k] != v {
			t.Errorf("Service selector %s=%s does not select the pods (labels %v)", k, v, dep.Spec.Template.Labels)
		}
	}
	for _, p := range svc.Spec.Ports {
		portNamed(t, front, p.TargetPort.StrVal)
	}
}

// TestEnvoyImageMatchesTheProtos keeps the Envoy image at the release whose
// protos (go-control-plane, in go.mod) this test validates against.
func TestEnvoyImageMatchesTheProtos(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/envoyproxy/go-control-plane/envoy").Output()
	if err != nil {
		t.Fatal(err)
	}
	gcp := strings.TrimSpace(string(out))
	parts := strings.Split(strings.TrimPrefix(gcp, "v"), ".")
	if len(parts) < 2 {
		t.Fatalf("go-control-plane/envoy version %q", gcp)
	}
	dep := one[*appsv1.Deployment](t, "kubernetes/deployment.yaml")
	envoy := container(t, &dep.Spec.Template.Spec, "envoy")
	if want := "envoyproxy/envoy:v" + parts[0] + "." + parts[1] + "-latest"; envoy.Image != want {
		t.Errorf("Envoy image %s, want %s (go-control-plane %s)", envoy.Image, want, gcp)
	}
}

// TestIstioWiring checks that envoy/istio fits together: the mesh's
// claimcheck provider never fails open and names the ServiceEntry's host and
// port, which point at the pod's claimcheck as its config listens; the
// AuthorizationPolicy is CUSTOM with that provider and selects the
// deployment's pods.
func TestIstioWiring(t *testing.T) {
	const dir = "istio/"
	dep := one[*appsv1.Deployment](t, dir+"deployment.yaml")
	pod := &dep.Spec.Template.Spec
	cfg := checkClaimcheckSidecar(t, pod, claimcheckConfigMap(t))
	grpcHost, grpcPort := hostPort(t, cfg.Listen.GRPC)
	_, adminPort := hostPort(t, cfg.Listen.Admin)

	var provider *meshv1alpha1.MeshConfig_ExtensionProvider
	for _, p := range meshConfig(t).GetExtensionProviders() {
		if p.GetEnvoyExtAuthzGrpc() != nil {
			provider = p
		}
	}
	if provider == nil {
		t.Fatal("mesh-config.yaml has no envoyExtAuthzGrpc provider")
	}
	grpc := provider.GetEnvoyExtAuthzGrpc()
	if grpc.GetFailOpen() || grpc.GetTimeout().AsDuration() <= 0 || grpc.GetPort() != uint32(grpcPort) {
		t.Errorf("provider %s: %v (claimcheck listens on %s)", provider.GetName(), grpc, cfg.Listen.GRPC)
	}

	se := one[*networkingv1.ServiceEntry](t, dir+"service-entry.yaml")
	if !slices.Contains(se.GetHosts(), grpc.GetService()) || len(se.GetEndpoints()) != 1 || se.GetEndpoints()[0].GetAddress() != grpcHost ||
		se.GetResolution() != networkingv1.ServiceEntry_STATIC {
		t.Errorf("ServiceEntry %v does not map %s to %s", se, grpc.GetService(), grpcHost)
	}
	if ports := se.GetPorts(); len(ports) != 1 || ports[0].GetNumber() != uint32(grpcPort) || ports[0].GetProtocol() != "GRPC" {
		t.Errorf("ServiceEntry ports %v, want %d GRPC", ports, grpcPort)
	}

	ap := one[*securityv1.AuthorizationPolicy](t, dir+"authorization-policy.yaml")
	if ap.GetAction() != securityv1.AuthorizationPolicy_CUSTOM || ap.GetProvider().GetName() != provider.GetName() || len(ap.GetRules()) == 0 {
		t.Errorf("AuthorizationPolicy action %v provider %q rules %d, want CUSTOM with %q", ap.GetAction(), ap.GetProvider().GetName(), len(ap.GetRules()), provider.GetName())
	}
	for k, v := range ap.GetSelector().GetMatchLabels() {
		if dep.Spec.Template.Labels[k] != v {
			t.Errorf("AuthorizationPolicy selector %s=%s does not select the pods", k, v)
		}
	}

	if slices.ContainsFunc(pod.Containers, func(c corev1.Container) bool { return c.Name == "envoy" }) {
		t.Error("the Istio deployment has its own Envoy: istio-proxy is injected")
	}
	if dep.Spec.Template.Labels["sidecar.istio.io/inject"] != "true" {
		t.Error("the pods are not labelled for istio-proxy injection")
	}
	if got := dep.Spec.Template.Annotations["traffic.sidecar.istio.io/excludeInboundPorts"]; got != strconv.Itoa(int(adminPort)) {
		t.Errorf("excludeInboundPorts %q: kubelet must reach the admin port %d directly", got, adminPort)
	}
	app := container(t, pod, "app")
	checkHardened(t, pod, app)
	checkService(t, dep, app)
}
