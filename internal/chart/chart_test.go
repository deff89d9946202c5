package chart_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"sessiongate.dev/sessiongate/config"
	"sessiongate.dev/sessiongate/internal/chart"
	"sessiongate.dev/sessiongate/internal/testenv"
)

// everything turns on every optional part of the chart.
const everything = `
gatewayName: prod
namespace: sessions
leaderElection: {namespace: leases}
oidc: {caSecret: oidc-ca, signingAlgorithms: [ES256]}
recordings:
  s3: {endpoint: "https://s3.example.com", bucket: casts, prefix: sg/, region: eu-1, caSecret: s3-ca, credentialsSecret: s3-creds}
auditLog: /var/log/sessiongate/audit.log
kubeconfigSecret: mgmt-kubeconfig
ingress: {enabled: true, className: nginx, host: sessiongate.example.com, tlsSecretName: edge-tls}
httpRoute: {enabled: true, parentRefs: [{name: public, namespace: gateways}], hostnames: [sessiongate.example.com]}
metrics: {serviceMonitor: {enabled: true, labels: {release: prometheus}}}
`

func TestChartLintsWithoutWarnings(t *testing.T) {
	kv, err := chartutil.ParseKubeVersion(chart.KubeVersion)
	testenv.Must(t, err)
	for name, vals := range map[string]map[string]any{
		"minimal": values(t), "everything": values(t, everything),
	} {
		l := lint.AllWithKubeVersion(chartDir, vals, "sessiongate", kv)
		for _, m := range l.Messages {
			if m.Severity >= support.WarningSev {
				t.Errorf("%s: %s", name, m)
			}
		}
	}
}

func TestSchemaRefusesTyposAndWrongTypes(t *testing.T) {
	for name, override := range map[string]string{
		"misspelt top-level key": "replicas: 3",
		"misspelt nested key":    "oidc: {issuerUrl: https://sso.example.com}",
		"misspelt deep key":      "metrics: {serviceMonitor: {intervall: 1m}}",
		"string for an integer":  "replicaCount: two",
		"integer for a duration": "policy: {maxTTL: 8}",
		"not a duration":         "sweep: {interval: five minutes}",
		"string for a boolean":   `leaderElection: {enabled: "yes"}`,
		"string for a list":      "oidc: {audiences: sessiongate}",
		"plain-HTTP issuer":      "oidc: {issuerURL: http://sso.example.com}",
		"no audience":            "oidc: {audiences: []}",
		"unknown volume type":    "recordings: {volume: {hostPath: {path: /data}}}",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := chart.Render(chartDir, chart.Release{Name: "sessiongate", Namespace: "sessiongate"}, values(t, override))
			if err == nil || !strings.Contains(err.Error(), "schema") {
				t.Fatalf("values %q: want a schema error, got %v", override, err)
			}
		})
	}
	// No values at all: the required ones are named.
	_, err := chart.Render(chartDir, chart.Release{Name: "sessiongate", Namespace: "sessiongate"}, nil)
	for _, field := range []string{"/ingressBaseURL", "/oidc/issuerURL", "/oidc/audiences"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("rendering without values: want an error naming %s, got %v", field, err)
		}
	}
}

// TestSchemaIsClosedEverywhere: a typo can only be refused where the schema
// lists what is allowed; free-form maps must at least say what their values are.
func TestSchemaIsClosedEverywhere(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	testenv.Must(t, err)
	var schema map[string]any
	testenv.Must(t, json.Unmarshal(b, &schema))
	var walk func(path string, s map[string]any)
	walk = func(path string, s map[string]any) {
		if props, ok := s["properties"].(map[string]any); ok {
			if s["additionalProperties"] != false {
				t.Errorf("%s: additionalProperties must be false", path)
			}
			for k, p := range props {
				walk(path+"/"+k, p.(map[string]any))
			}
		} else if s["type"] == "object" && s["additionalProperties"] == nil && !strings.HasPrefix(path, "/affinity/") && path != "/metrics/serviceMonitor/tlsConfig/ca" {
			t.Errorf("%s: an object without properties must constrain additionalProperties", path)
		}
		if items, ok := s["items"].(map[string]any); ok {
			walk(path+"[]", items)
		}
	}
	walk("", schema)
	// And every default in values.yaml is described by the schema.
	defaults, err := chartutil.ReadValuesFile(filepath.Join(chartDir, "values.yaml"))
	testenv.Must(t, err)
	testenv.Must(t, chartutil.ValidateAgainstSingleSchema(chartutil.MergeTables(values(t), defaults.AsMap()), b))
}

// TestCRDsAreTheGeneratedOnes: the chart's crds/ are config/crd, which
// `make generate` writes from the API's markers, byte for byte.
func TestCRDsAreTheGeneratedOnes(t *testing.T) {
	sameFiles(t, filepath.Join(testenv.RepoRoot(), "config", "crd"), filepath.Join(chartDir, "crds"), "*.yaml")
}

// TestRBACIsTheGeneratedRole: the chart grants exactly the rules of
// config/rbac/role.yaml, which `make generate` writes from the code's RBAC
// markers, to the ServiceAccount its pods run as.
func TestRBACIsTheGeneratedRole(t *testing.T) {
	generated, err := config.File(config.RolePath)
	testenv.Must(t, err)
	sameBytes(t, generated, filepath.Join(testenv.RepoRoot(), "config", config.RolePath), filepath.Join(chartDir, "files", "role.yaml"))
	want := map[string][]rbacv1.PolicyRule{}
	for _, doc := range strings.Split(string(generated), "\n---\n") {
		var o struct {
			Kind  string              `json:"kind"`
			Rules []rbacv1.PolicyRule `json:"rules"`
		}
		testenv.Must(t, yaml.Unmarshal([]byte(doc), &o))
		want[o.Kind] = o.Rules
	}
	if len(want["Role"]) == 0 || len(want["ClusterRole"]) == 0 {
		t.Fatalf("%s: want a Role and a ClusterRole, got %v", config.RolePath, want)
	}

	objs := objects(t, render(t, "sessiongate", values(t)))
	d := only[*appsv1.Deployment](t, objs)
	sa := only[*corev1.ServiceAccount](t, objs)
	if sa.Name != d.Spec.Template.Spec.ServiceAccountName || sa.Namespace != d.Namespace {
		t.Fatalf("pods run as %s, the chart makes ServiceAccount %s/%s", d.Spec.Template.Spec.ServiceAccountName, sa.Namespace, sa.Name)
	}
	subject := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: sa.Namespace}
	role, rb := only[*rbacv1.Role](t, objs), only[*rbacv1.RoleBinding](t, objs)
	if !reflect.DeepEqual(role.Rules, want["Role"]) {
		t.Errorf("the chart's Role rules differ from %s:\n got %+v\nwant %+v", config.RolePath, role.Rules, want["Role"])
	}
	if ns, _ := flagValue(args(t, objs), "namespace"); role.Namespace != ns || rb.Namespace != ns {
		t.Errorf("Role in %s and RoleBinding in %s, the gateway serves %s", role.Namespace, rb.Namespace, ns)
	}
	if rb.RoleRef.Kind != "Role" || rb.RoleRef.Name != role.Name || !reflect.DeepEqual(rb.Subjects, []rbacv1.Subject{subject}) {
		t.Errorf("RoleBinding %+v does not bind Role %s to %+v", rb, role.Name, subject)
	}
	var clusterRole *rbacv1.ClusterRole
	for _, o := range objs {
		if cr, ok := o.(*rbacv1.ClusterRole); ok && !strings.HasSuffix(cr.Name, "-metrics-reader") {
			clusterRole = cr
		}
	}
	if clusterRole == nil || !reflect.DeepEqual(clusterRole.Rules, want["ClusterRole"]) {
		t.Errorf("the chart's ClusterRole differs from %s: %+v", config.RolePath, clusterRole)
	}
	crb := only[*rbacv1.ClusterRoleBinding](t, objs)
	if clusterRole != nil && (crb.RoleRef.Name != clusterRole.Name || !reflect.DeepEqual(crb.Subjects, []rbacv1.Subject{subject})) {
		t.Errorf("ClusterRoleBinding %+v does not bind %s to %+v", crb, clusterRole.Name, subject)
	}
}

// TestLeaderElectionElsewhereGetsTheLeaseRules: a Lease in another
// namespace comes with the Role's Lease and Event rules there, nothing more.
func TestLeaderElectionElsewhereGetsTheLeaseRules(t *testing.T) {
	objs := objects(t, render(t, "sessiongate", values(t, "leaderElection: {namespace: leases}")))
	var found bool
	for _, o := range objs {
		r, ok := o.(*rbacv1.Role)
		if !ok || r.Namespace != "leases" {
			continue
		}
		found = true
		if len(r.Rules) != 2 {
			t.Errorf("want the Lease and Event rules in namespace leases, got %+v", r.Rules)
		}
		for _, rule := range r.Rules {
			if !reflect.DeepEqual(rule.Resources, []string{"leases"}) && !reflect.DeepEqual(rule.Resources, []string{"events"}) {
				t.Errorf("namespace leases grants %v", rule.Resources)
			}
		}
	}
	if !found {
		t.Fatal("no Role in namespace leases")
	}
}

// TestDeploymentIsHighlyAvailableAndHardened checks what the issue asks of
// the Deployment with default values.
func TestDeploymentIsHighlyAvailableAndHardened(t *testing.T) {
	objs := objects(t, render(t, "sessiongate", values(t)))
	d := only[*appsv1.Deployment](t, objs)
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	podLabels := labels.Set(d.Spec.Template.Labels)

	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Errorf("replicas %v, want at least 2", d.Spec.Replicas)
	}
	if v, _ := flagValue(c.Args, "leader-elect"); v != "true" {
		t.Errorf("--leader-elect=%q", v)
	}
	selects := func(sel *metav1.LabelSelector) bool {
		s, err := metav1.LabelSelectorAsSelector(sel)
		return err == nil && !s.Empty() && s.Matches(podLabels)
	}
	spread := false
	for _, tsc := range pod.TopologySpreadConstraints {
		if tsc.TopologyKey == corev1.LabelHostname && tsc.MaxSkew == 1 && tsc.WhenUnsatisfiable == corev1.DoNotSchedule && selects(tsc.LabelSelector) {
			spread = true
		}
	}
	if !spread {
		t.Errorf("no topology spread across nodes that selects the pods: %+v", pod.TopologySpreadConstraints)
	}
	if a := pod.Affinity; a == nil || a.PodAntiAffinity == nil || len(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 ||
		!selects(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.LabelSelector) {
		t.Errorf("no anti-affinity between replicas: %+v", pod.Affinity)
	}
	pdb := only[*policyv1.PodDisruptionBudget](t, objs)
	if !selects(pdb.Spec.Selector) || pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() < 1 ||
		pdb.Spec.MaxUnavailable.IntValue() >= int(*d.Spec.Replicas) {
		t.Errorf("PodDisruptionBudget %+v: want it to select the pods and keep one of %d up", pdb.Spec, *d.Spec.Replicas)
	}

	if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v", psc)
	}
	sc := c.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || (sc.Privileged != nil && *sc.Privileged) ||
		sc.Capabilities == nil || !reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container securityContext %+v", sc)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
		t.Errorf("resource requests %v", c.Resources.Requests)
	}

	// The probes ask what the gateway serves on its health port.
	health, _ := flagValue(c.Args, "health-probe-bind-address")
	for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
		want := map[string]string{"liveness": "/healthz", "readiness": "/readyz", "startup": "/healthz"}[name]
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != want {
			t.Errorf("%s probe %+v, want GET %s", name, p, want)
			continue
		}
		if port := containerPort(t, c, p.HTTPGet.Port); !strings.HasSuffix(health, ":"+port) {
			t.Errorf("%s probe on port %s, --health-probe-bind-address=%s", name, port, health)
		}
	}
	// The Service's https port reaches --listen.
	svc := only[*corev1.Service](t, objs)
	listen, _ := flagValue(c.Args, "listen")
	if len(svc.Spec.Ports) == 0 || svc.Spec.Ports[0].Name != "https" || !strings.HasSuffix(listen, ":"+containerPort(t, c, svc.Spec.Ports[0].TargetPort)) ||
		!labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
		t.Errorf("Service %+v does not reach --listen=%s", svc.Spec, listen)
	}
}

// containerPort resolves a port name or number of container c.
func containerPort(t testing.TB, c corev1.Container, p intstr.IntOrString) string {
	t.Helper()
	if p.Type == intstr.Int {
		return strconv.Itoa(p.IntValue())
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return strconv.Itoa(int(cp.ContainerPort))
		}
	}
	t.Fatalf("container %s has no port %s", c.Name, p.StrVal)
	return ""
}

// TestRoutesReachTheService: the optional Ingress, HTTPRoute and
// ServiceMonitor name the Service and ports the chart makes.
func TestRoutesReachTheService(t *testing.T) {
	r := render(t, "sessiongate", values(t, everything))
	var svc *corev1.Service
	kinds := map[string]map[string]any{}
	for _, m := range r.Manifests {
		var o map[string]any
		testenv.Must(t, yaml.Unmarshal([]byte(m.Content), &o))
		kinds[m.Head.Kind] = o
		if m.Head.Kind == "Service" {
			svc = &corev1.Service{}
			testenv.Must(t, yaml.Unmarshal([]byte(m.Content), svc))
		}
	}
	port := func(name string) *corev1.ServicePort {
		for i, p := range svc.Spec.Ports {
			if p.Name == name {
				return &svc.Spec.Ports[i]
			}
		}
		t.Fatalf("Service has no port %s", name)
		return nil
	}
	get := func(o any, path ...any) any {
		for _, p := range path {
			switch k := p.(type) {
			case string:
				o = o.(map[string]any)[k]
			case int:
				o = o.([]any)[k]
			}
		}
		return o
	}
	ing := kinds["Ingress"]
	if get(ing, "spec", "rules", 0, "http", "paths", 0, "backend", "service", "name") != svc.Name {
		t.Errorf("Ingress backend %v", get(ing, "spec", "rules", 0))
	}
	port(get(ing, "spec", "rules", 0, "http", "paths", 0, "backend", "service", "port", "name").(string))
	route := kinds["HTTPRoute"]
	backend := get(route, "spec", "rules", 0, "backendRefs", 0).(map[string]any)
	if backend["name"] != svc.Name || int32(backend["port"].(float64)) != port("https").Port {
		t.Errorf("HTTPRoute backend %v, Service %s port %d", backend, svc.Name, port("https").Port)
	}
	sm := kinds["ServiceMonitor"]
	port(get(sm, "spec", "endpoints", 0, "port").(string))
	if s, err := metav1.LabelSelectorAsSelector(&metav1.LabelSelector{MatchLabels: toStrings(get(sm, "spec", "selector", "matchLabels"))}); err != nil || !s.Matches(labels.Set(svc.Labels)) {
		t.Errorf("ServiceMonitor selector %v does not select the Service's labels %v", get(sm, "spec", "selector"), svc.Labels)
	}
	if get(sm, "spec", "endpoints", 0, "scheme") != "https" {
		t.Error("ServiceMonitor does not scrape over HTTPS, but --metrics-secure serves HTTPS")
	}

	// Plain-HTTP metrics are loopback-only, so nothing can scrape them.
	_, err := chart.Render(chartDir, chart.Release{Name: "sessiongate", Namespace: "sessiongate"},
		values(t, "metrics: {secure: false, serviceMonitor: {enabled: true}}"))
	if err == nil || !strings.Contains(err.Error(), "metrics.secure") {
		t.Errorf("a ServiceMonitor for loopback metrics: want an error, got %v", err)
	}
	objs := objects(t, render(t, "sessiongate", values(t, "metrics: {secure: false}")))
	if v, _ := flagValue(args(t, objs), "metrics-bind-address"); v != "127.0.0.1:8080" {
		t.Errorf("insecure metrics bound to %q, want loopback", v)
	}
}

func toStrings(v any) map[string]string {
	out := map[string]string{}
	for k, s := range v.(map[string]any) {
		out[k] = s.(string)
	}
	return out
}

// sameFiles fails unless the files matching glob in dir and in copyDir have
// the same names and bytes.
func sameFiles(t *testing.T, dir, copyDir, glob string) {
	t.Helper()
	names := func(d string) []string {
		m, err := filepath.Glob(filepath.Join(d, glob))
		testenv.Must(t, err)
		for i := range m {
			m[i] = filepath.Base(m[i])
		}
		return m
	}
	if a, b := names(dir), names(copyDir); !reflect.DeepEqual(a, b) {
		t.Fatalf("%s holds %v, %s holds %v: cp %s/%s %s/", dir, a, copyDir, b, dir, glob, copyDir)
	}
	for _, n := range names(dir) {
		want, err := os.ReadFile(filepath.Join(dir, n))
		testenv.Must(t, err)
		sameBytes(t, want, filepath.Join(dir, n), filepath.Join(copyDir, n))
	}
}

// sameBytes fails unless the file at path holds want, which make generate
// wrote to source.
func sameBytes(t *testing.T, want []byte, source, path string) {
	t.Helper()
	got, err := os.ReadFile(path)
	testenv.Must(t, err)
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s, which make generate writes: cp %s %s", path, source, source, path)
	}
}

// TestEveryOptionRendersObjectsTheAPIServerAccepts: with every option on,
// each rendered object of a kind the API server serves passes a
// server-side dry-run create. The HTTPRoute and the ServiceMonitor need
// CRDs the test cluster does not have (TestRoutesReachTheService checks them).
func TestEveryOptionRendersObjectsTheAPIServerAccepts(t *testing.T) {
	ctx := context.Background()
	for _, ns := range []string{"everything", "sessions", "leases"} {
		if err := mgmt.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	for _, m := range render(t, "everything", values(t, everything)).Manifests {
		if m.Head.Kind == "HTTPRoute" || m.Head.Kind == "ServiceMonitor" {
			continue
		}
		u := &unstructured.Unstructured{}
		testenv.Must(t, yaml.Unmarshal([]byte(m.Content), &u.Object))
		if err := mgmt.Client.Create(ctx, u, client.DryRunAll); err != nil {
			t.Errorf("%s %s: %v", m.Head.Kind, m.Head.Metadata.Name, err)
		}
	}
}
