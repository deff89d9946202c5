package debug

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"sessiongate.dev/sessiongate/api/v1alpha1"
)

const sessionTemplate = `
metadata: {name: debug-pods}
spec:
  mode: workload
  requesters: {groups: [sre, dev]}
  clusters: {names: ["*"]}
  maxTTL: 1h
  namespace:
    default: sessiongate-debug
    allow: [debug-*]
    deny: [debug-prod]
    create: true
  workload: {podTemplate: tools, kind: DaemonSet}
  scheduling:
    nodeSelector: {pool: debug}
    deniedNodes: [control-plane-1, "cp-*"]
    deniedNodeLabels: [node-role.kubernetes.io/control-plane, tier=payments]
    options:
    - {name: any}
    - name: gpu
      nodeSelector: {pool: gpu}
      groups: [sre]
`

const podTemplate = `
metadata: {name: tools}
spec:
  variables:
  - {name: image, default: "busybox:1.36", pattern: "busybox:[0-9.]+"}
  - {name: sleep, type: int, default: "3600", minimum: 60, maximum: 86400}
  - {name: verbose, type: bool, default: "false"}
  text: |
    metadata:
      labels: {app: tools, session: "{{ .Session }}"}
    spec:
      nodeSelector: {pool: "{{ if .Vars.verbose }}loud{{ else }}quiet{{ end }}"}
      containers:
      - name: tools
        image: {{ .Vars.image }}
        command: [sleep, "{{ .Vars.sleep }}"]
    ---
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: tools-config}
    data: {owner: "{{ .Owner }}", namespace: "{{ .Namespace }}"}
`

func templates(t *testing.T) (*v1alpha1.DebugSessionTemplate, *v1alpha1.DebugPodTemplate) {
	t.Helper()
	st, pt := &v1alpha1.DebugSessionTemplate{}, &v1alpha1.DebugPodTemplate{}
	if err := yaml.UnmarshalStrict([]byte(sessionTemplate), st); err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict([]byte(podTemplate), pt); err != nil {
		t.Fatal(err)
	}
	return st, pt
}

func request(d v1alpha1.DebugRequest, groups ...string) Request {
	return Request{Session: "s1", Owner: "alice@example.com", Cluster: "c1", Groups: groups, Debug: d, DeniedNamespaces: []string{"kube-system", "sessiongate-sessions"}}
}

func TestResolveRendersTheTemplateWithScheduling(t *testing.T) {
	st, pt := templates(t)
	p, errs := Resolve(st, pt, request(v1alpha1.DebugRequest{Template: "debug-pods", Scheduling: "gpu", Variables: map[string]string{"sleep": "120", "verbose": "true"}}, "sre"))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if p.Namespace != "sessiongate-debug" || !p.CreateNamespace || p.Operations != DefaultOperations {
		t.Errorf("plan = %+v", p)
	}
	w := p.Workload
	if w == nil || w.Kind != v1alpha1.WorkloadDaemonSet || w.ReadinessTimeout != DefaultReadinessTimeout {
		t.Fatalf("workload = %+v", w)
	}
	spec := w.Pod.Spec
	if c := spec.Containers[0]; c.Image != "busybox:1.36" || strings.Join(c.Command, " ") != "sleep 120" {
		t.Errorf("container = %+v", c)
	}
	// The template's own selector wins over the option's and the pod
	// template's: pool=debug.
	if spec.NodeSelector["pool"] != "debug" {
		t.Errorf("nodeSelector = %v; the template's constraint must win", spec.NodeSelector)
	}
	if w.Pod.Labels["session"] != "s1" {
		t.Errorf("labels = %v", w.Pod.Labels)
	}
	terms := spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) != 1 || len(terms[0].MatchExpressions) != 3 {
		t.Fatalf("node affinity = %+v", terms)
	}
	if e := terms[0].MatchExpressions[0]; e.Operator != corev1.NodeSelectorOpNotIn || strings.Join(e.Values, ",") != "control-plane-1" {
		t.Errorf("denied nodes = %+v (globs are checked by name, not in affinity)", e)
	}
	if len(w.Supporting) != 1 || w.Supporting[0].GetKind() != "ConfigMap" {
		t.Fatalf("supporting = %v", w.Supporting)
	}
	if got, _, _ := unstructuredString(w.Supporting[0].Object, "data", "owner"); got != "alice@example.com" {
		t.Errorf("configmap owner = %q", got)
	}
	if !p.NodeDenied("cp-7", nil) || !p.NodeDenied("n1", map[string]string{"tier": "payments"}) || p.NodeDenied("n1", map[string]string{"tier": "web"}) {
		t.Error("NodeDenied does not hold the template's denied nodes and labels")
	}
	if st := p.Status(); st.Namespace != p.Namespace || st.Template != "debug-pods" || st.Mode != v1alpha1.ModeWorkload {
		t.Errorf("status = %+v", st)
	}
}

func unstructuredString(obj map[string]any, fields ...string) (string, bool, error) {
	cur := any(obj)
	for _, f := range fields {
		m, ok := cur.(map[string]any)
		if !ok {
			return "", false, nil
		}
		cur = m[f]
	}
	s, ok := cur.(string)
	return s, ok, nil
}

func TestResolveRefuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		req    v1alpha1.DebugRequest
		groups []string
		want   string
	}{
		{"namespace denied", v1alpha1.DebugRequest{Namespace: "debug-prod"}, nil, `namespace "debug-prod" is denied by template debug-pods`},
		{"namespace not allowed", v1alpha1.DebugRequest{Namespace: "payments"}, nil, `namespace "payments" is not allowed by template debug-pods (allowed: sessiongate-debug, debug-*)`},
		{"namespace malformed", v1alpha1.DebugRequest{Namespace: "Debug_1"}, nil, `debug.namespace: Invalid value: "Debug_1"`},
		{"scheduling for another group", v1alpha1.DebugRequest{Scheduling: "gpu"}, []string{"dev"}, `scheduling option "gpu" of template debug-pods is only for groups sre`},
		{"scheduling unknown", v1alpha1.DebugRequest{Scheduling: "fast"}, nil, `Unsupported value: "fast": supported values: "any", "gpu"`},
		{"variable below minimum", v1alpha1.DebugRequest{Variables: map[string]string{"sleep": "5"}}, nil, `debug.variables[sleep]: Invalid value: "5": must be at least 60`},
		{"variable above maximum", v1alpha1.DebugRequest{Variables: map[string]string{"sleep": "999999"}}, nil, `must be at most 86400`},
		{"variable not an int", v1alpha1.DebugRequest{Variables: map[string]string{"sleep": "1h"}}, nil, `must be an integer`},
		{"variable not a bool", v1alpha1.DebugRequest{Variables: map[string]string{"verbose": "yes"}}, nil, `must be true or false`},
		{"variable not declared", v1alpha1.DebugRequest{Variables: map[string]string{"privileged": "true"}}, nil, `debug.variables[privileged]: Unsupported value: "privileged"`},
		{"variable off its pattern", v1alpha1.DebugRequest{Variables: map[string]string{"image": "alpine:3"}}, nil, `must match busybox:[0-9.]+`},
		// What would change the pod's structure if pasted into its YAML.
		{"variable injects YAML", v1alpha1.DebugRequest{Variables: map[string]string{"image": "busybox:1\n        securityContext: {privileged: true}"}}, nil, `may hold only letters, digits`},
		{"variable injects a flow mapping", v1alpha1.DebugRequest{Variables: map[string]string{"image": "{privileged: true}"}}, nil, `may hold only letters, digits`},
		{"variable injects a quote", v1alpha1.DebugRequest{Variables: map[string]string{"image": `busybox:1", "x`}}, nil, `may hold only letters, digits`},
		{"variable like a flag", v1alpha1.DebugRequest{Variables: map[string]string{"image": "--privileged"}}, nil, `not start with -`},
		// In a flow list, a comma adds an item: add: [{{ .Vars.cap }}].
		{"variable adds a list item", v1alpha1.DebugRequest{Variables: map[string]string{"image": "busybox:1,SYS_ADMIN"}}, nil, `may hold only letters, digits`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, pt := templates(t)
			tc.req.Template = "debug-pods"
			_, errs := Resolve(st, pt, request(tc.req, tc.groups...))
			if len(errs) == 0 || !strings.Contains(errs.ToAggregate().Error(), tc.want) {
				t.Fatalf("errs = %v, want one containing %q", errs, tc.want)
			}
		})
	}
}

func TestResolveNeverAllowsTheGatewaysDeniedNamespaces(t *testing.T) {
	st, pt := templates(t)
	st.Spec.Namespace.Allow = []string{"*"}
	for _, ns := range []string{"kube-system", "sessiongate-sessions"} {
		_, errs := Resolve(st, pt, request(v1alpha1.DebugRequest{Template: "debug-pods", Namespace: ns}))
		if len(errs) == 0 {
			t.Errorf("namespace %s allowed by a * glob", ns)
		}
	}
	// kube-public is not on the gateway's list, but a glob never reaches a
	// kube- namespace: only its name does.
	if _, errs := Resolve(st, pt, request(v1alpha1.DebugRequest{Template: "debug-pods", Namespace: "kube-public"})); len(errs) == 0 {
		t.Error("kube-public allowed by a * glob")
	}
}

func TestResolveRefusesBadTemplates(t *testing.T) {
	for _, tc := range []struct {
		name, text, want string
	}{
		{"unknown kind", "spec:\n  containers: [{name: a, image: b}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: x}\n", `is a "ClusterRoleBinding"; a pod template may add only ConfigMap`},
		{"no containers", "metadata: {name: x}\n", "renders no pod with containers"},
		{"unknown field", "spec:\n  containerz: []\n", "is not a pod template"},
		{"missing key", "spec:\n  containers: [{name: a, image: '{{ .Vars.nope }}'}]\n", "does not render"},
		{"does not parse", "{{ if }}", "does not parse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, pt := templates(t)
			pt.Spec.Variables = nil
			pt.Spec.Text = tc.text
			_, errs := Resolve(st, pt, request(v1alpha1.DebugRequest{Template: "debug-pods"}))
			if len(errs) == 0 || !strings.Contains(errs.ToAggregate().Error(), tc.want) {
				t.Fatalf("errs = %v, want %q", errs, tc.want)
			}
		})
	}
}

func TestResolveKubectlDebugMode(t *testing.T) {
	st := &v1alpha1.DebugSessionTemplate{ObjectMeta: metav1.ObjectMeta{Name: "ephemeral-debug"}, Spec: v1alpha1.DebugSessionTemplateSpec{
		Mode:         v1alpha1.ModeKubectlDebug,
		Namespace:    v1alpha1.DebugNamespace{Default: "apps"},
		KubectlDebug: &v1alpha1.KubectlDebugRules{Ephemeral: true, Images: []string{"busybox:*"}},
	}}
	p, errs := Resolve(st, nil, request(v1alpha1.DebugRequest{Template: "ephemeral-debug"}))
	if len(errs) > 0 || p.Workload != nil || p.KubectlDebug == nil || !p.KubectlDebug.Ephemeral {
		t.Fatalf("plan = %+v, errs %v", p, errs)
	}
	if _, errs := Resolve(st, nil, request(v1alpha1.DebugRequest{Template: "ephemeral-debug", Variables: map[string]string{"a": "b"}})); len(errs) == 0 {
		t.Error("variables taken by a template that deploys no pods")
	}
}

func TestResolveRefusesAnOwnerNameThatWouldInjectYAML(t *testing.T) {
	st, pt := templates(t)
	req := request(v1alpha1.DebugRequest{Template: "debug-pods"})
	req.Owner = "{privileged: true}@example.com"
	if _, errs := Resolve(st, pt, req); len(errs) == 0 || !strings.Contains(errs.ToAggregate().Error(), "rendered with the owner's name") {
		t.Fatalf("errs = %v", errs)
	}
}
