package controlplane_test

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/controlplane"
	"sessiongate.dev/sessiongate/internal/credentials"
	"sessiongate.dev/sessiongate/internal/testenv"
)

// newDebugEnv is newEnv on the debug target, and the namespace on the
// target the test's debug pods go to.
func newDebugEnv(t *testing.T) (*env, string) {
	t.Helper()
	debugTarget(t)
	e := newEnv(t)
	return e, "dbg-" + e.namespace
}

// applyDebugTemplates applies a DebugPodTemplate (podTemplate is its spec,
// indented by two) and a DebugSessionTemplate that deploys it (body goes on
// below spec.workload.podTemplate, indented by four for workload fields and
// two for the rest), as YAML through kubectl, as an operator writes them.
func (e *env) applyDebugTemplates(podTemplate, name, body string) {
	e.t.Helper()
	doc := fmt.Sprintf(`apiVersion: sessiongate.dev/v1alpha1
kind: DebugPodTemplate
metadata:
  name: %[2]s-pods
  namespace: %[1]s
spec:
%[3]s
---
apiVersion: sessiongate.dev/v1alpha1
kind: DebugSessionTemplate
metadata:
  name: %[2]s
  namespace: %[1]s
spec:
  mode: workload
  requesters:
    groups: [sre]
  clusters:
    names: ["*"]
  maxTTL: 1h
  defaultTTL: 10m
  workload:
    podTemplate: %[2]s-pods
%[4]s`, e.namespace, name, podTemplate, body)
	if _, err := kubectl(e.ctx, adminKubeconfig(e.t), doc, "apply", "-f", "-"); err != nil {
		e.t.Fatal(err)
	}
}

// structuredPod is a pod template whose author tries to claim the labels
// the gateway selects its pods by.
const structuredPod = `  template:
    metadata:
      labels:
        app: tools
        sessiongate.dev/session-uid: forged
        sessiongate.dev/debug-workload: forged
    spec:
      containers:
      - name: tools
        image: busybox:1.36`

// applyDebugSession creates a debug session directly (the admin path), as
// YAML through kubectl; debug is spec.debug's body, indented by four.
func (e *env) applyDebugSession(name, ttl, debug string) *v1alpha1.Session {
	e.t.Helper()
	doc := fmt.Sprintf(`apiVersion: sessiongate.dev/v1alpha1
kind: Session
metadata:
  name: %s
  namespace: %s
spec:
  ttl: %s
  cluster: target
  reason: INC-4711
  owner:
    type: User
    userPrincipal:
      name: alice@example.com
      claim: email
  debug:
%s
`, name, e.namespace, ttl, debug)
	if _, err := kubectl(e.ctx, adminKubeconfig(e.t), doc, "apply", "-f", "-"); err != nil {
		e.t.Fatal(err)
	}
	s := &v1alpha1.Session{}
	testenv.Must(e.t, mgmt.Client.Get(e.ctx, client.ObjectKey{Namespace: e.namespace, Name: name}, s))
	return s
}

// sessionKubeconfig writes a kubeconfig with the session's credential, to
// call the target directly, bypassing the gateway.
func (e *env) sessionKubeconfig(s *v1alpha1.Session) string {
	e.t.Helper()
	_, sec := e.sessionClient(s)
	f := filepath.Join(e.t.TempDir(), "session.kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: target, cluster: {server: %q, certificate-authority-data: %q}}]
users: [{name: session, user: {token: %q}}]
contexts: [{name: session, context: {cluster: target, user: session}}]
current-context: session
`, sec.Data[credentials.KeyServer], base64.StdEncoding.EncodeToString(sec.Data[credentials.KeyCA]), sec.Data[credentials.KeyToken])
	testenv.Must(e.t, os.WriteFile(f, []byte(cfg), 0o600))
	return f
}

// debugLeftovers lists what of the session is left on the target, of every
// kind Revoke removes, objects being deleted included (SessionsOnTarget
// leaves those out).
func (e *env) debugLeftovers(s *v1alpha1.Session) []string {
	e.t.Helper()
	opts := metav1.ListOptions{LabelSelector: labels.Set{credentials.LabelSessionUID: string(s.UID)}.String()}
	md, err := metadata.NewForConfig(target.Config)
	testenv.Must(e.t, err)
	var left []string
	for _, r := range []schema.GroupVersionResource{
		{Group: "apps", Version: "v1", Resource: "daemonsets"},
		{Group: "apps", Version: "v1", Resource: "deployments"},
		{Group: "apps", Version: "v1", Resource: "replicasets"},
		{Version: "v1", Resource: "pods"},
		{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"},
		{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"},
		{Version: "v1", Resource: "configmaps"},
		{Version: "v1", Resource: "resourcequotas"},
		{Group: "policy", Version: "v1", Resource: "poddisruptionbudgets"},
		{Version: "v1", Resource: "serviceaccounts"},
		{Version: "v1", Resource: "namespaces"},
	} {
		l, err := md.Resource(r).List(e.ctx, opts)
		testenv.Must(e.t, err)
		if len(l.Items) > 0 {
			left = append(left, fmt.Sprintf("%d %s", len(l.Items), r.Resource))
		}
	}
	return left
}

// waitNothingLeft polls until nothing labelled with the session is on the
// target. The suite runs kube-controller-manager's namespace controller,
// so a namespace the gateway created goes away for real (without it, it
// would stay Terminating).
func (e *env) waitNothingLeft(s *v1alpha1.Session) {
	e.t.Helper()
	testenv.Eventually(e.t, 60*time.Second, func() error {
		if left := e.debugLeftovers(s); len(left) > 0 {
			return fmt.Errorf("left on the target for session %s: %s", s.Name, strings.Join(left, ", "))
		}
		return nil
	})
	if e.onTarget(s) {
		e.t.Errorf("the sweep still finds session %s on the target", s.Name)
	}
}

func TestDebugDaemonSetRunsOnEveryNodeAndTheTargetHoldsTheSessionToItsPods(t *testing.T) {
	e, ns := newDebugEnv(t)
	e.applyDebugTemplates(structuredPod, "node-debug", fmt.Sprintf(`    kind: DaemonSet
    readinessTimeout: 1m
  namespace:
    default: %s
    create: true
  allowedPodOperations:
    exec: true
    logs: true`, ns))
	s := e.applyDebugSession("nodes", "10m", "    template: node-debug")

	// Active only once every pod is: the status it goes Active with says so.
	s = e.waitPhase("nodes", v1alpha1.PhaseActive, 60*time.Second)
	st := s.Status.Debug
	if st == nil || !st.NamespaceCreated || st.DeployedAt == nil || st.Namespace != ns || st.Mode != v1alpha1.ModeWorkload {
		t.Fatalf("status.debug = %+v, want namespace %s created and a deployedAt", st, ns)
	}
	var nodes, names []string
	for _, p := range st.Pods {
		if !p.Ready || p.Namespace != ns {
			t.Errorf("Active with pod %+v", p)
		}
		nodes, names = append(nodes, p.Node), append(names, p.Name)
	}
	slices.Sort(nodes)
	if !slices.Equal(nodes, debugNodes) {
		t.Errorf("debug pods on nodes %v, want one on each of %v", nodes, debugNodes)
	}
	for _, name := range names {
		pod, err := target.Kube.CoreV1().Pods(ns).Get(e.ctx, name, metav1.GetOptions{})
		testenv.Must(t, err)
		if pod.Labels[credentials.LabelSessionUID] != string(s.UID) || pod.Labels[credentials.LabelDebugWorkload] == "forged" || pod.Labels["app"] != "tools" {
			t.Errorf("pod %s has labels %v: the gateway's must win over the template's", name, pod.Labels)
		}
	}

	// The target's own RBAC names exactly these pods.
	role, err := target.Kube.RbacV1().Roles(ns).Get(e.ctx, credentials.ObjectName(e.namespace, s), metav1.GetOptions{})
	testenv.Must(t, err)
	var execRule *rbacv1.PolicyRule
	for i, r := range role.Rules {
		if slices.Contains(r.Resources, "pods/portforward") || slices.Contains(r.Resources, "pods/attach") {
			t.Errorf("Role grants %v, which the template does not allow", r.Resources)
		}
		if slices.Contains(r.Resources, "pods/exec") {
			execRule = &role.Rules[i]
		}
	}
	if execRule == nil || !slices.Equal(execRule.ResourceNames, names) {
		t.Errorf("Role's exec rule %+v, want resourceNames %v", execRule, names)
	}

	// With the minted credential, straight at the target.
	testenv.Must(t, testenv.RunningPod(e.ctx, target, ns, "bystander"))
	kc := e.sessionKubeconfig(s)
	out, err := kubectl(e.ctx, kc, "", "exec", "-n", ns, names[0], "--", "echo", "hello from a debug pod")
	if err != nil || !strings.Contains(out, "hello from a debug pod") {
		t.Errorf("exec on debug pod %s: %v %s", names[0], err, out)
	}
	if out, err := kubectl(e.ctx, kc, "", "exec", "-n", ns, "bystander", "--", "echo", "no"); err == nil || !strings.Contains(out, `cannot create resource "pods/exec"`) {
		t.Errorf("exec on a pod not the session's: got %v %s, want the target to forbid it", err, out)
	}
	for _, c := range []struct {
		verb, subresource, want string
	}{{"create", "exec", "yes"}, {"get", "log", "yes"}, {"create", "portforward", "no"}, {"create", "attach", "no"}} {
		out, _ := kubectl(e.ctx, kc, "", "auth", "can-i", c.verb, "pods/"+names[1], "--subresource="+c.subresource, "-n", ns)
		if strings.TrimSpace(out) != c.want {
			t.Errorf("can the session %s pods/%s %s? target says %q, want %q", c.verb, c.subresource, names[1], out, c.want)
		}
	}

	kube, _ := e.sessionClient(s)
	patch := client.MergeFrom(s.DeepCopy())
	s.Spec.Terminated = true
	testenv.Must(t, mgmt.Client.Patch(e.ctx, s, patch))
	e.waitPhase("nodes", v1alpha1.PhaseTerminated, 30*time.Second)
	e.waitNothingLeft(s)
	waitGone(t, 60*time.Second, "namespace "+ns, func() error {
		_, err := target.Kube.CoreV1().Namespaces().Get(e.ctx, ns, metav1.GetOptions{})
		return err
	})
	e.assertRevoked(s, kube)
}

// textPod renders the pod from variables and brings a ConfigMap along.
const textPod = `  variables:
  - name: tag
    default: "1.36"
  - name: sleep
    type: int
    default: "5"
    minimum: 1
    maximum: 10
  text: |
    metadata:
      labels:
        app: tools
    spec:
      containers:
      - name: tools
        image: busybox:{{ .Vars.tag }}
        args: [sleep, "{{ .Vars.sleep }}"]
        envFrom:
        - configMapRef:
            name: notes-{{ .Session }}
    ---
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: notes-{{ .Session }}
    data:
      owner: {{ .Owner }}`

func TestDebugDeploymentWithReplicasAndSupportingObjectsEndsAtExpiry(t *testing.T) {
	e, ns := newDebugEnv(t)
	testenv.Must(t, target.Client.Create(e.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"debug": "allowed"}}}))
	e.applyDebugTemplates(textPod, "replicas", fmt.Sprintf(`    kind: Deployment
    replicas: 2
    minAvailable: 1
    resourceQuota:
      hard:
        pods: "10"
  namespace:
    default: %s
    selector:
      matchLabels:
        debug: allowed`, ns))
	s := e.applyDebugSession("two", "8s", "    template: replicas\n    variables:\n      sleep: \"7\"")
	s = e.waitPhase("two", v1alpha1.PhaseActive, 60*time.Second)
	if st := s.Status.Debug; len(st.Pods) != 2 || st.NamespaceCreated {
		t.Fatalf("status.debug = %+v, want 2 pods in an existing namespace", st)
	}
	name := credentials.DebugName(e.namespace, s)
	dep, err := target.Kube.AppsV1().Deployments(ns).Get(e.ctx, name, metav1.GetOptions{})
	testenv.Must(t, err)
	if c := dep.Spec.Template.Spec.Containers[0]; c.Image != "busybox:1.36" || !slices.Equal(c.Args, []string{"sleep", "7"}) {
		t.Errorf("rendered container %s %v, want busybox:1.36 sleep 7", c.Image, c.Args)
	}
	cm, err := target.Kube.CoreV1().ConfigMaps(ns).Get(e.ctx, "notes-two", metav1.GetOptions{})
	testenv.Must(t, err)
	if cm.Data["owner"] != "alice@example.com" || cm.Labels[credentials.LabelSessionUID] != string(s.UID) {
		t.Errorf("supporting ConfigMap %v %v, want the owner and the session's labels", cm.Data, cm.Labels)
	}
	for _, get := range []func() error{
		func() error {
			_, err := target.Kube.CoreV1().ResourceQuotas(ns).Get(e.ctx, name, metav1.GetOptions{})
			return err
		},
		func() error {
			_, err := target.Kube.PolicyV1().PodDisruptionBudgets(ns).Get(e.ctx, name, metav1.GetOptions{})
			return err
		},
	} {
		testenv.Must(t, get())
	}

	e.waitPhase("two", v1alpha1.PhaseExpired, 30*time.Second)
	e.waitNothingLeft(s)
	// Not the gateway's namespace: it stays.
	got, err := target.Kube.CoreV1().Namespaces().Get(e.ctx, ns, metav1.GetOptions{})
	testenv.Must(t, err)
	if !got.DeletionTimestamp.IsZero() {
		t.Errorf("namespace %s, which the session found, is being deleted", ns)
	}
}

func TestDebugPodsNotReadyInTimeFailTheSessionAndLeaveNothing(t *testing.T) {
	e, ns := newDebugEnv(t)
	e.applyDebugTemplates(structuredPod, "nowhere", fmt.Sprintf(`    kind: DaemonSet
    readinessTimeout: 2s
  namespace:
    default: %s
    create: true
  scheduling:
    nodeSelector:
      type: no-such-node`, ns))
	s := e.applyDebugSession("stuck", "10m", "    template: nowhere")
	s = e.waitPhase("stuck", v1alpha1.PhaseFailed, 60*time.Second)
	ready := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady)
	if ready.Reason != v1alpha1.ReasonDebugPodsNotReady || !strings.Contains(ready.Message, "after 2s") || !strings.Contains(ready.Message, "no node matched") || !strings.Contains(ready.Message, "type=no-such-node") {
		t.Errorf("Ready = %s: %q, want DebugPodsNotReady saying no node matched type=no-such-node after 2s", ready.Reason, ready.Message)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if notes := e.eventNotes("stuck"); !strings.Contains(notes, "no node matched") {
			return fmt.Errorf("no Warning Event says why; events: %s", notes)
		}
		return nil
	})
	e.waitNothingLeft(s)
}

// A leader that dies after deploying, and a Session deleted while no
// gateway runs its finalizer: the next leader's sweep removes it all.
func TestDebugWorkloadOfALeaderThatDiedMidDeployIsSwept(t *testing.T) {
	e, ns := newDebugEnv(t)
	e.applyDebugTemplates(structuredPod, "pending", fmt.Sprintf(`    kind: Deployment
  namespace:
    default: %s
    create: true
  scheduling:
    nodeSelector:
      type: no-such-node`, ns))
	s := e.applyDebugSession("crashing", "10m", "    template: pending")
	testenv.Eventually(t, 30*time.Second, func() error {
		_, err := target.Kube.AppsV1().Deployments(ns).Get(e.ctx, credentials.DebugName(e.namespace, s), metav1.GetOptions{})
		return err
	})
	e.stopGateway()

	testenv.Must(t, mgmt.Client.Get(e.ctx, client.ObjectKeyFromObject(s), s))
	patch := client.MergeFrom(s.DeepCopy())
	s.Finalizers = nil
	testenv.Must(t, mgmt.Client.Patch(e.ctx, s, patch))
	testenv.Must(t, mgmt.Client.Delete(e.ctx, s))
	if left := e.debugLeftovers(s); !slices.ContainsFunc(left, func(l string) bool { return strings.HasSuffix(l, "deployments") }) {
		t.Fatalf("before the sweep the target holds %v, want the Deployment", left)
	}

	opts := controlplane.Options{Namespace: e.namespace, Gateway: e.namespace, SweepGrace: time.Nanosecond}
	testenv.Must(t, controlplane.NewSweeper(mgmt.Client, mgmt.Client, opts).Sweep(e.ctx))
	e.waitNothingLeft(s)
}

func TestDebugRequestsTheTemplateRefusesFailNamingWhy(t *testing.T) {
	e, ns := newDebugEnv(t)
	e.applyDebugTemplates(textPod, "strict", fmt.Sprintf(`    kind: Deployment
  namespace:
    default: %s
    create: true
  scheduling:
    options:
    - name: big-nodes
      groups: [sre]
      nodeSelector:
        size: big`, ns))
	for _, c := range []struct {
		name, debug, reason string
		want                []string
	}{
		{"out-of-range", "    template: strict\n    variables:\n      sleep: \"99\"", v1alpha1.ReasonInvalidSpec, []string{"spec.debug.variables[sleep]", "must be at most 10"}},
		{"not-for-me", "    template: strict\n    scheduling: big-nodes", v1alpha1.ReasonInvalidSpec, []string{"spec.debug.scheduling", `scheduling option "big-nodes"`, "only for groups sre"}},
		{"no-such-template", "    template: missing", v1alpha1.ReasonTemplateInvalid, []string{`"missing"`}},
	} {
		e.applyDebugSession(c.name, "10m", c.debug)
		s := e.waitPhase(c.name, v1alpha1.PhaseFailed, 30*time.Second)
		ready := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady)
		for _, w := range c.want {
			if ready.Reason != c.reason || !strings.Contains(ready.Message, w) {
				t.Errorf("%s: Ready = %s: %q, want %s naming %s", c.name, ready.Reason, ready.Message, c.reason, w)
			}
		}
		if left := e.debugLeftovers(s); len(left) > 0 {
			t.Errorf("%s: a refused session left %v on the target", c.name, left)
		}
	}
}

// A target that never got rbac-debug.yaml refuses the gateway every debug
// kind; an ordinary session there still revokes, and the sweep still
// lists.
func TestRevokeOnATargetWithoutDebugRBAC(t *testing.T) {
	e := newEnv(t)
	user := "sessiongate-plain-" + e.namespace
	subjects := []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}}
	testenv.Must(t, target.Client.Create(e.ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: v1alpha1.DefaultSessionNamespace, Name: user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "sessiongate-minter"},
		Subjects:   subjects,
	}))
	testenv.Must(t, target.Client.Create(e.ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "sessiongate-minter"},
		Subjects:   subjects,
	}))
	u, err := target.Env.ControlPlane.AddUser(envtest.User{Name: user}, nil)
	testenv.Must(t, err)
	kc, err := u.KubeConfig()
	testenv.Must(t, err)
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kc)
	testenv.Must(t, err)
	plain, err := kubernetes.NewForConfig(cfg)
	testenv.Must(t, err)
	if _, err := plain.AppsV1().DaemonSets("").List(e.ctx, metav1.ListOptions{}); err == nil {
		t.Fatalf("user %s may list DaemonSets: the test needs a target without the debug RBAC", user)
	}
	testenv.Must(t, mgmt.Client.Create(e.ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.namespace, Name: "plain-kubeconfig"},
		Data:       map[string][]byte{controlplane.DefaultKubeconfigKey: kc},
	}))
	e.registerCluster("plain", "plain-kubeconfig", v1alpha1.CredentialProvider{})

	s := e.viewSession("plain-view")
	s.Spec.Cluster = "plain"
	e.create(s)
	s = e.waitPhase("plain-view", v1alpha1.PhaseActive, 20*time.Second)
	kube, _ := e.sessionClient(s)
	pt := credentials.Target{Client: plain, Gateway: e.namespace, Cluster: &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "plain"}}}
	found, err := credentials.SessionsOnTarget(e.ctx, pt)
	testenv.Must(t, err)
	if _, ok := found[s.UID]; !ok {
		t.Errorf("the sweep's listing, refused every debug kind, misses the live session")
	}

	testenv.Must(t, mgmt.Client.Delete(e.ctx, s))
	waitGone(t, 30*time.Second, "session "+s.Name, func() error {
		return mgmt.Client.Get(e.ctx, client.ObjectKeyFromObject(s), &v1alpha1.Session{})
	})
	e.assertRevoked(s, kube)
	testenv.Must(t, credentials.Revoke(e.ctx, pt, s.UID))
}
