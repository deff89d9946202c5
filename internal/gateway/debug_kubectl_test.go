package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/api"
	"sessiongate.dev/sessiongate/internal/audit"
	"sessiongate.dev/sessiongate/internal/credentials"
	"sessiongate.dev/sessiongate/internal/kubectldebug"
	"sessiongate.dev/sessiongate/internal/testenv"
)

// kdNamespace is where the kubectl-debug tests' sessions act.
const kdNamespace = "kdebug"

// kdRules are the sandbox's ephemeral-debug rules, with copies and node
// pods; SYS_PTRACE is what kubectl debug's default profile adds.
func kdRules(mutate ...func(*v1alpha1.KubectlDebugRules)) *v1alpha1.KubectlDebugRules {
	r := &v1alpha1.KubectlDebugRules{Ephemeral: true, Copy: true, Node: true, Images: []string{"busybox:*"}, AllowedCapabilities: []string{"SYS_PTRACE"}}
	for _, m := range mutate {
		m(r)
	}
	return r
}

// kdPod runs a pod with container c in the debug namespace, and removes
// it at the end of the test.
func kdPod(t *testing.T, name string, mutate ...func(*corev1.Pod)) {
	t.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: kdNamespace}}
	if err := target.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: kdNamespace, Name: name, Labels: map[string]string{"app": name}},
		Spec:       corev1.PodSpec{NodeName: testenv.NodeName, Containers: []corev1.Container{{Name: "c", Image: "example.invalid/app:1"}}},
	}
	for _, m := range mutate {
		m(p)
	}
	testenv.Must(t, target.Client.Create(ctx, p))
	t.Cleanup(func() { _ = target.Client.Delete(context.Background(), p, client.GracePeriodSeconds(0)) })
}

// kdSession is an Active session of owner whose status.debug is set as the
// leader sets it at grant time (mode, namespace, rules of a template), with
// what the target's debug Role would grant it: ephemeral containers in the
// namespace, and reading nodes for kubectl debug node.
func kdSession(t *testing.T, name, owner string, mode v1alpha1.DebugMode, rules *v1alpha1.KubectlDebugRules, mutate ...func(*v1alpha1.Session)) *v1alpha1.Session {
	t.Helper()
	ctx := context.Background()
	s := session(t, name, owner, append([]func(*v1alpha1.Session){func(s *v1alpha1.Session) {
		s.Spec.AccessLevel = v1alpha1.AccessLevel{ClusterRole: "edit", Namespaces: []string{kdNamespace}}
	}}, mutate...)...)
	patch := client.MergeFrom(s.DeepCopy())
	s.Status.Debug = &v1alpha1.DebugStatus{Template: "ephemeral-debug", Mode: mode, Namespace: kdNamespace, KubectlDebug: rules}
	testenv.Must(t, mgmt.Client.Status().Patch(ctx, s, patch))
	testenv.Eventually(t, 30*time.Second, func() error {
		for i, gw := range replicas {
			if rs, ok := gw.Registry.Get(name); !ok || rs.Limits().Debug == nil {
				return fmt.Errorf("replica %d does not serve session %s as a debug session yet", i, name)
			}
		}
		return nil
	})
	rs, _ := replicas[0].Registry.Get(name)
	subject := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: rs.Identity}}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: kdNamespace, Name: "kd-" + name}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods/ephemeralcontainers"}, Verbs: []string{"patch", "update"}},
	}}
	rb := &rbacv1.RoleBinding{ObjectMeta: role.ObjectMeta, RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name}, Subjects: subject}
	cr := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "kd-" + name}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get"}},
	}}
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: cr.ObjectMeta, RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: cr.Name}, Subjects: subject}
	for _, o := range []client.Object{role, rb, cr, crb} {
		testenv.Must(t, target.Client.Create(ctx, o))
		t.Cleanup(func() { _ = target.Client.Delete(context.Background(), o) })
	}
	t.Cleanup(func() { kdRemovePods(name) })
	return s
}

// kdRemovePods stands in for the leader: it removes the pods a session
// created.
func kdRemovePods(session string) {
	_ = target.Client.DeleteAllOf(context.Background(), &corev1.Pod{}, client.InNamespace(kdNamespace),
		client.MatchingLabels{credentials.LabelSessionName: session}, client.GracePeriodSeconds(0))
}

// kdEphemeral are the ephemeral containers of a pod, read on the target.
func kdEphemeral(t *testing.T, pod string) []corev1.EphemeralContainer {
	t.Helper()
	p, err := target.Kube.CoreV1().Pods(kdNamespace).Get(context.Background(), pod, metav1.GetOptions{})
	testenv.Must(t, err)
	return p.Spec.EphemeralContainers
}

// kdSessionPods are the pods on the target labelled for session.
func kdSessionPods(t *testing.T, session string) []corev1.Pod {
	t.Helper()
	l, err := target.Kube.CoreV1().Pods(kdNamespace).List(context.Background(), metav1.ListOptions{
		LabelSelector: labels.Set{credentials.LabelSessionName: session}.String(),
	})
	testenv.Must(t, err)
	return l.Items
}

// kdCreated waits until the session's status lists n created objects.
func kdCreated(t *testing.T, s *v1alpha1.Session, n int) []v1alpha1.DebugCreated {
	t.Helper()
	var got []v1alpha1.DebugCreated
	testenv.Eventually(t, 20*time.Second, func() error {
		cur := &v1alpha1.Session{}
		if err := mgmt.Client.Get(context.Background(), client.ObjectKeyFromObject(s), cur); err != nil {
			return err
		}
		if cur.Status.Debug == nil || len(cur.Status.Debug.Created) != n {
			return fmt.Errorf("status.debug of %s lists %+v, want %d created", s.Name, cur.Status.Debug, n)
		}
		got = cur.Status.Debug.Created
		return nil
	})
	return got
}

func kdMustFail(t *testing.T, out string, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("kubectl succeeded, want a refusal naming %q:\n%s", want, out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Fatalf("kubectl's refusal does not say %q:\n%s", w, out)
		}
	}
}

func TestKubectlDebugEphemeralContainersObeyTheTemplate(t *testing.T) {
	const owner = "kd-eph@example.com"
	kdPod(t, "kd-eph")
	s := kdSession(t, "kd-eph", owner, v1alpha1.ModeKubectlDebug, kdRules())
	kc := kubeconfig(t, 1, s.Name, token(t, owner))

	out, err := runKubectl(t, kc, nil, "", "debug", "kd-eph", "-n", kdNamespace, "--image", "busybox:1.36", "--target", "c", "--", "true")
	if err != nil {
		t.Fatalf("kubectl debug: %v\n%s", err, out)
	}
	ecs := kdEphemeral(t, "kd-eph")
	if len(ecs) != 1 || ecs[0].Image != "busybox:1.36" || ecs[0].TargetContainerName != "c" || !strings.Contains(out, ecs[0].Name) {
		t.Fatalf("ephemeral containers on the target: %+v\nkubectl said:\n%s", ecs, out)
	}
	created := kdCreated(t, s, 1)
	if c := created[0]; c.Kind != "EphemeralContainer" || c.Pod != "kd-eph" || c.Container != ecs[0].Name || c.Image != "busybox:1.36" || c.By != owner {
		t.Errorf("status.debug.created: %+v", created)
	}

	out, err = runKubectl(t, kc, nil, "", "debug", "kd-eph", "-n", kdNamespace, "--image", "alpine:3", "--", "true")
	kdMustFail(t, out, err, `spec.ephemeralContainers[1].image "alpine:3" is not allowed by template ephemeral-debug (allowed: busybox:*)`)
	out, err = runKubectl(t, kc, nil, "", "debug", "kd-eph", "-n", kdNamespace, "--image", "busybox:1.36", "--profile=sysadmin", "--", "true")
	kdMustFail(t, out, err, "privileged containers are not allowed by template ephemeral-debug")
	// What kubectl does not send is judged as well, or refused.
	pods := clientset(t, 0, s.Name, token(t, owner)).CoreV1().Pods(kdNamespace)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		pt   types.PatchType
		body string
		pods func() error
		code int32
		want string
	}{
		{name: "json patch", pt: types.JSONPatchType, body: `[{"op":"add","path":"/spec/ephemeralContainers/-","value":{"name":"jp","image":"alpine:3"}}]`, code: 403, want: `"alpine:3" is not allowed`},
		{name: "json patch copy", pt: types.JSONPatchType, body: `[{"op":"copy","from":"/spec/ephemeralContainers/0","path":"/spec/ephemeralContainers/-"}]`, code: 415, want: `"copy"`},
		{name: "server-side apply", pt: types.ApplyYAMLPatchType, body: `{"apiVersion":"v1","kind":"Pod","spec":{"ephemeralContainers":[{"name":"ssa","image":"busybox:1"}]}}`, code: 415, want: "server-side apply"},
		{name: "oversized", pt: types.StrategicMergePatchType, body: `{"spec":{"ephemeralContainers":[{"name":"big","image":"busybox:1","env":[{"name":"X","value":"` + strings.Repeat("x", kubectldebug.MaxBody) + `"}]}]}}`, code: 413, want: "at most"},
		{name: "another namespace", pods: func() error {
			_, err := clientset(t, 0, s.Name, token(t, owner)).CoreV1().Pods("demo").Patch(ctx, "web", types.StrategicMergePatchType, []byte(`{}`), metav1.PatchOptions{}, "ephemeralcontainers")
			return err
		}, code: 403, want: `namespace "demo" is not the session's debug namespace "kdebug"`},
	} {
		var err error
		if tc.pods != nil {
			err = tc.pods()
		} else {
			_, err = pods.Patch(ctx, "kd-eph", tc.pt, []byte(tc.body), metav1.PatchOptions{FieldManager: "t"}, "ephemeralcontainers")
		}
		var st apierrors.APIStatus
		if !errors.As(err, &st) || st.Status().Code != tc.code || !strings.Contains(st.Status().Message, tc.want) {
			t.Errorf("%s: %v, want %d naming %q", tc.name, err, tc.code, tc.want)
		}
	}
	if ecs := kdEphemeral(t, "kd-eph"); len(ecs) != 1 {
		t.Fatalf("a refused container reached the target: %+v", ecs)
	}

	var refused, allowed bool
	for _, ev := range auditRecords(t) {
		if ev.Annotations[audit.AnnotationSession] != s.Name || ev.ObjectRef == nil || ev.ObjectRef.Subresource != "ephemeralcontainers" {
			continue
		}
		allowed = allowed || ev.ResponseStatus.Code == 200 && strings.Contains(ev.Annotations[kubectldebug.AnnotationCreated], `EphemeralContainer kdebug/kd-eph/`+ecs[0].Name+` "busybox:1.36"`)
		refused = refused || ev.ResponseStatus.Code == 403 && ev.Annotations[audit.AnnotationRefusedBy] == "kubectlDebug.images"
	}
	if !allowed || !refused {
		t.Errorf("audit log: allowed %v, refused %v", allowed, refused)
	}
}

// TestKubectlDebugWithoutTheCapabilityItsProfileAdds: kubectl debug's
// default profile adds SYS_PTRACE, which a template must allow; the
// baseline profile adds none.
func TestKubectlDebugWithoutTheCapabilityItsProfileAdds(t *testing.T) {
	const owner = "kd-caps@example.com"
	kdPod(t, "kd-caps")
	s := kdSession(t, "kd-caps", owner, v1alpha1.ModeHybrid, kdRules(func(r *v1alpha1.KubectlDebugRules) { r.AllowedCapabilities = nil }))
	kc := kubeconfig(t, 0, s.Name, token(t, owner))
	out, err := runKubectl(t, kc, nil, "", "debug", "kd-caps", "-n", kdNamespace, "--image", "busybox:1.36", "--", "true")
	kdMustFail(t, out, err, `capabilities.add[0] "SYS_PTRACE" is not allowed by template ephemeral-debug (allowedCapabilities: none)`)
	if out, err := runKubectl(t, kc, nil, "", "debug", "kd-caps", "-n", kdNamespace, "--image", "busybox:1.36", "--profile=baseline", "--", "true"); err != nil {
		t.Fatalf("kubectl debug --profile=baseline: %v\n%s", err, out)
	}
	if ecs := kdEphemeral(t, "kd-caps"); len(ecs) != 1 {
		t.Fatalf("ephemeral containers: %+v", ecs)
	}
}

func TestKubectlDebugNodeAndCopyAreLabelledForTheSession(t *testing.T) {
	const owner = "kd-pods@example.com"
	kdPod(t, "kd-src")
	s := kdSession(t, "kd-pods", owner, v1alpha1.ModeKubectlDebug, kdRules())
	kc := kubeconfig(t, 0, s.Name, token(t, owner))

	// The default profile uses the host's namespaces and root, which the
	// template does not allow; baseline uses neither.
	out, err := runKubectl(t, kc, nil, "", "debug", "node/"+testenv.NodeName, "-n", kdNamespace, "--image", "busybox:1.36", "--", "true")
	kdMustFail(t, out, err, "spec.hostPID: the host's namespaces are allowed by template ephemeral-debug only in node debug pods with allowHostNamespaces")
	if pods := kdSessionPods(t, s.Name); len(pods) != 0 {
		t.Fatalf("a refused pod reached the target: %v", pods)
	}
	out, err = runKubectl(t, kc, nil, "", "debug", "node/"+testenv.NodeName, "-n", kdNamespace, "--image", "busybox:1.36", "--profile=baseline", "--", "true")
	if err != nil {
		t.Fatalf("kubectl debug node: %v\n%s", err, out)
	}
	out, err = runKubectl(t, kc, nil, "", "debug", "kd-src", "-n", kdNamespace, "--image", "busybox:1.36", "--copy-to", "kd-src-copy", "--", "true")
	if err != nil {
		t.Fatalf("kubectl debug --copy-to: %v\n%s", err, out)
	}
	out, err = runKubectl(t, kc, nil, "", "debug", "kd-src", "-n", kdNamespace, "--image", "busybox:1.36", "--copy-to", "kd-src-copy2", "--set-image", "c=example.invalid/other:1", "--", "true")
	kdMustFail(t, out, err, `spec.containers[0].image "example.invalid/other:1" is not allowed`)
	out, err = runKubectl(t, kc, nil, "", "run", "miner", "-n", kdNamespace, "--image", "evil.io/miner:1")
	kdMustFail(t, out, err, `spec.containers[0].image "evil.io/miner:1" is not allowed`)
	// Nor may a copy's debug container bind a port of the node (the
	// kubelet's, say): kubectl debug --custom adds it.
	custom := filepath.Join(t.TempDir(), "ports.yaml")
	testenv.Must(t, os.WriteFile(custom, []byte("ports: [{containerPort: 10250, hostPort: 10250}]\n"), 0o600))
	out, err = runKubectl(t, kc, nil, "", "debug", "kd-src", "-n", kdNamespace, "--image", "busybox:1.36", "--copy-to", "kd-src-porter", "--custom", custom, "--", "true")
	kdMustFail(t, out, err, "hostPort 10250 binds a port of the node")

	pods := kdSessionPods(t, s.Name)
	kinds := map[string]string{}
	for _, p := range pods {
		kinds[p.Name] = p.Labels[kubectldebug.LabelDebugKind]
		if p.Labels[credentials.LabelManagedBy] != credentials.ManagedByValue || p.Labels[credentials.LabelSessionUID] != string(s.UID) || p.Labels[credentials.LabelGateway] != replicas[0].Name() {
			t.Errorf("pod %s labels %v", p.Name, p.Labels)
		}
	}
	if len(pods) != 2 || kinds["kd-src-copy"] != "PodCopy" {
		t.Fatalf("pods of the session on the target: %v", kinds)
	}
	created := kdCreated(t, s, 2)
	got := map[string]bool{}
	for _, c := range created {
		got[c.Kind+" "+c.Pod] = true
	}
	for name, kind := range kinds {
		if !got[kind+" "+name] {
			t.Errorf("status.debug.created %+v lacks %s %s", created, kind, name)
		}
	}

	// A template without node debugging refuses kubectl debug node.
	const other = "kd-nonode@example.com"
	s2 := kdSession(t, "kd-nonode", other, v1alpha1.ModeKubectlDebug, kdRules(func(r *v1alpha1.KubectlDebugRules) { r.Node = false }))
	out, err = runKubectl(t, kubeconfig(t, 1, s2.Name, token(t, other)), nil, "", "debug", "node/"+testenv.NodeName, "-n", kdNamespace, "--image", "busybox:1.36", "--profile=baseline", "--", "true")
	kdMustFail(t, out, err, "node debug pods are not allowed by template ephemeral-debug")
}

// TestWorkloadDebugSessionsRefuseKubectlDebug: a template in mode workload
// creates its own pods; the session creates none.
func TestWorkloadDebugSessionsRefuseKubectlDebug(t *testing.T) {
	const owner = "kd-wl@example.com"
	kdPod(t, "kd-wl")
	s := kdSession(t, "kd-wl", owner, v1alpha1.ModeWorkload, nil)
	kc := kubeconfig(t, 0, s.Name, token(t, owner))
	out, err := runKubectl(t, kc, nil, "", "debug", "kd-wl", "-n", kdNamespace, "--image", "busybox:1.36", "--", "true")
	kdMustFail(t, out, err, "does not allow kubectl debug (mode workload)")
	if ecs := kdEphemeral(t, "kd-wl"); len(ecs) != 0 {
		t.Fatalf("ephemeral containers: %+v", ecs)
	}
}

func TestDebugEndpointsAndSgctlDebug(t *testing.T) {
	const owner, helper, stranger = "kd-api@example.com", "kd-helper@example.com", "kd-stranger@example.com"
	// Its copies run as non-root too, as the template requires.
	kdPod(t, "kd-api", func(p *corev1.Pod) { p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)} })
	s := kdSession(t, "kd-api", owner, v1alpha1.ModeKubectlDebug, kdRules(func(r *v1alpha1.KubectlDebugRules) { r.RequireRunAsNonRoot = true }),
		func(s *v1alpha1.Session) {
			s.Spec.Participants = []v1alpha1.Participant{{User: helper, Role: v1alpha1.RoleParticipant}, {User: "kd-viewer@example.com", Role: v1alpha1.RoleViewer}}
		})
	path := "/api/v1/sessions/" + s.Name + "/debug/"
	post := func(who, op, body string) response {
		t.Helper()
		return call(t, "POST", path+op, []byte(body), bearer(token(t, who)))
	}

	r := post(owner, "ephemeral", `{"namespace":"kdebug","pod":"kd-api","image":"busybox:1.36","target":"c"}`)
	var res api.DebugResult
	if r.code != 201 || json.Unmarshal([]byte(r.body), &res) != nil || res.Kind != "EphemeralContainer" || res.Container == "" {
		t.Fatalf("POST ephemeral: %d %s", r.code, r.body)
	}
	ecs := kdEphemeral(t, "kd-api")
	if len(ecs) != 1 || ecs[0].Name != res.Container || ecs[0].SecurityContext == nil || !*ecs[0].SecurityContext.RunAsNonRoot {
		t.Fatalf("ephemeral containers on the target: %+v", ecs)
	}
	for _, tc := range []struct {
		who, op, body string
		code          int
		want          string
	}{
		{owner, "ephemeral", `{"namespace":"kdebug","pod":"kd-api","image":"alpine:3"}`, 403, `spec.ephemeralContainers[1].image "alpine:3" is not allowed by template ephemeral-debug`},
		{owner, "ephemeral", `{"namespace":"demo","pod":"web","image":"busybox:1"}`, 403, `namespace "demo" is not the session's debug namespace`},
		{owner, "ephemeral", `{"namespace":"kdebug","image":"busybox:1"}`, 400, "pod: Required value"},
		{owner, "ephemeral", `{"namespace":"kdebug","pod":"kd-api","image":"busybox:1","privileged":true}`, 400, "unknown field"},
		{owner, "node", `{"node":"kwok-node","image":"busybox:1.36","hostNamespaces":true}`, 403, "allowHostNamespaces"},
		{owner, "copy", `{"namespace":"kdebug","pod":"kd-api","image":"busybox:1.36","name":"Bad_Name"}`, 400, "name: Invalid value"},
		{"kd-viewer@example.com", "ephemeral", `{"namespace":"kdebug","pod":"kd-api","image":"busybox:1.36"}`, 403, "only the owner or a participant"},
		{stranger, "ephemeral", `{"namespace":"kdebug","pod":"kd-api","image":"busybox:1.36"}`, 404, "not found"},
	} {
		if r := post(tc.who, tc.op, tc.body); r.code != tc.code || !strings.Contains(r.st.Message, tc.want) {
			t.Errorf("%s POST %s %s: %d %s, want %d naming %q", tc.who, tc.op, tc.body, r.code, r.body, tc.code, tc.want)
		}
	}
	if ecs := kdEphemeral(t, "kd-api"); len(ecs) != 1 {
		t.Fatalf("a refused container reached the target: %+v", ecs)
	}

	if r := post(helper, "node", `{"node":"kwok-node","image":"busybox:1.36"}`); r.code != 201 {
		t.Fatalf("a participant's POST node: %d %s", r.code, r.body)
	}
	out, err := sgctlAs(t, token(t, owner), "debug", "copy", "kd-api", "-n", kdNamespace, "--image", "busybox:1.36", "--copy-to", "kd-api-copy")
	if err != nil || strings.TrimSpace(out) == "" || !strings.HasPrefix(out, "kd-api-copy/debugger-") {
		t.Fatalf("sgctl debug copy: %q, %v", out, err)
	}
	out, err = sgctlAs(t, token(t, owner), "debug", "ephemeral", "kd-api", "-n", kdNamespace, "--image", "busybox:1.37", "--session", s.Name)
	if err != nil || !strings.HasPrefix(out, "kd-api/debugger-") {
		t.Fatalf("sgctl debug ephemeral: %q, %v", out, err)
	}
	if _, err = sgctlAs(t, token(t, owner), "debug", "node", "kwok-node", "--image", "alpine:3"); err == nil || !strings.Contains(err.Error(), `"alpine:3" is not allowed`) {
		t.Fatalf("sgctl debug node with a refused image: %v", err)
	}
	if _, err = sgctlAs(t, token(t, stranger), "debug", "node", "kwok-node", "--image", "busybox:1"); err == nil || !strings.Contains(err.Error(), "no Active debug session") {
		t.Fatalf("sgctl debug without a session: %v", err)
	}

	pods := kdSessionPods(t, s.Name)
	if len(pods) != 2 {
		t.Fatalf("pods of the session: %d", len(pods))
	}
	for _, p := range pods {
		if p.Labels[credentials.LabelSessionUID] != string(s.UID) || p.Labels[kubectldebug.LabelDebugKind] == "" {
			t.Errorf("pod %s labels %v", p.Name, p.Labels)
		}
	}
	created := kdCreated(t, s, 4)
	if created[1].By != helper {
		t.Errorf("status.debug.created: %+v", created)
	}
}

// The debug endpoints let in whom the proxy lets in: a participant the
// owner added who is not among the granting policy's requesters creates
// nothing through the session, as they could send it no request.
func TestDebugEndpointsLetInOnlyThePolicysGuests(t *testing.T) {
	const owner, guest, outsider = "kd-guests@example.com", "kd-guest@example.com", "kd-outsider@example.com"
	kdPod(t, "kd-guests")
	s := kdSession(t, "kd-guests", owner, v1alpha1.ModeKubectlDebug, kdRules(), func(s *v1alpha1.Session) {
		s.Spec.Participants = []v1alpha1.Participant{{User: guest, Role: v1alpha1.RoleParticipant}, {User: outsider, Role: v1alpha1.RoleParticipant}}
	})
	// As the leader records a policy's requesters when it grants a session.
	cur := &v1alpha1.Session{}
	testenv.Must(t, mgmt.Client.Get(context.Background(), client.ObjectKeyFromObject(s), cur))
	patch := client.MergeFrom(cur.DeepCopy())
	cur.Status.Limits = &v1alpha1.SessionLimits{Guests: &v1alpha1.Subjects{Users: []string{guest}, Groups: []string{"kd-team"}}}
	testenv.Must(t, mgmt.Client.Status().Patch(context.Background(), cur, patch))

	post := func(who string, groups ...string) response {
		t.Helper()
		return call(t, "POST", "/api/v1/sessions/"+s.Name+"/debug/ephemeral", []byte(`{"namespace":"kdebug","pod":"kd-guests","image":"busybox:1.36"}`), bearer(token(t, who, groups...)))
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if r := post(outsider); r.code != 403 || !strings.Contains(r.st.Message, "does not name you") {
			return fmt.Errorf("a participant outside the policy's requesters: %d %s", r.code, r.body)
		}
		return nil
	})
	if ecs := kdEphemeral(t, "kd-guests"); len(ecs) != 0 {
		t.Fatalf("the refused container reached the target: %+v", ecs)
	}
	// The policy names the guest; a group of the outsider's it names lets
	// them in too.
	if r := post(guest); r.code != 201 {
		t.Fatalf("a guest the policy names: %d %s", r.code, r.body)
	}
	if r := post(outsider, "kd-team"); r.code != 201 {
		t.Fatalf("a participant in a group the policy names: %d %s", r.code, r.body)
	}
	if ecs := kdEphemeral(t, "kd-guests"); len(ecs) != 2 {
		t.Fatalf("ephemeral containers on the target: %+v", ecs)
	}
}

// kdDebugStatus changes the session's status.debug as the leader would,
// and waits until every replica serves the change.
func kdDebugStatus(t *testing.T, s *v1alpha1.Session, mutate func(*v1alpha1.DebugStatus)) {
	t.Helper()
	ctx := context.Background()
	cur := &v1alpha1.Session{}
	testenv.Must(t, mgmt.Client.Get(ctx, client.ObjectKeyFromObject(s), cur))
	patch := client.MergeFrom(cur.DeepCopy())
	mutate(cur.Status.Debug)
	testenv.Must(t, mgmt.Client.Status().Patch(ctx, cur, patch))
	want := cur.Status.Debug
	testenv.Eventually(t, 30*time.Second, func() error {
		for i, gw := range replicas {
			if rs, ok := gw.Registry.Get(s.Name); !ok || !equality.Semantic.DeepEqual(rs.Limits().Debug, want) {
				return fmt.Errorf("replica %d does not serve the new status.debug of %s yet", i, s.Name)
			}
		}
		return nil
	})
}

// TestKubectlDebugEphemeralContainersReadNoSecrets: a debug container
// reads no Secret through its env and mounts none of the pod's volumes,
// however the write is spelled; nothing of a refused one reaches the target.
func TestKubectlDebugEphemeralContainersReadNoSecrets(t *testing.T) {
	const owner = "kd-sec@example.com"
	kdPod(t, "kd-sec", func(p *corev1.Pod) {
		p.Spec.Volumes = []corev1.Volume{{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "kd-sec-creds"}}}}
		p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "creds", MountPath: "/creds"}}
	})
	s := kdSession(t, "kd-sec", owner, v1alpha1.ModeKubectlDebug, kdRules())
	kc := kubeconfig(t, 0, s.Name, token(t, owner))

	// kubectl debug --custom merges a partial container into the debugger.
	custom := filepath.Join(t.TempDir(), "custom.json")
	testenv.Must(t, os.WriteFile(custom, []byte(`{"envFrom":[{"secretRef":{"name":"cluster-admin-token"}}]}`), 0o600))
	out, err := runKubectl(t, kc, nil, "", "debug", "kd-sec", "-n", kdNamespace, "--image", "busybox:1.36", "--profile=baseline", "--custom", custom, "--", "true")
	kdMustFail(t, out, err, `envFrom[0].secretRef: a container the session adds may not read Secret "cluster-admin-token"`)

	pods := clientset(t, 1, s.Name, token(t, owner)).CoreV1().Pods(kdNamespace)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		pt   types.PatchType
		body string
		want string
	}{
		{"json patch envFrom", types.JSONPatchType, `[{"op":"add","path":"/spec/ephemeralContainers","value":[{"name":"jp","image":"busybox:1.36","envFrom":[{"secretRef":{"name":"cluster-admin-token"}}]}]}]`, `envFrom[0].secretRef`},
		{"strategic patch secretKeyRef", types.StrategicMergePatchType, `{"spec":{"ephemeralContainers":[{"name":"sp","image":"busybox:1.36","env":[{"name":"T","valueFrom":{"secretKeyRef":{"name":"kd-sec-creds","key":"password"}}}]}]}}`, `env[0].valueFrom.secretKeyRef: a container the session adds may not read Secret "kd-sec-creds"`},
		{"strategic patch mounting the pod's Secret", types.StrategicMergePatchType, `{"spec":{"ephemeralContainers":[{"name":"mp","image":"busybox:1.36","volumeMounts":[{"name":"creds","mountPath":"/x"}]}]}}`, `mounts secret volume "creds" of the pod`},
		{"merge patch envFrom", types.MergePatchType, `{"spec":{"ephemeralContainers":[{"name":"mg","image":"busybox:1.36","envFrom":[{"secretRef":{"name":"kd-sec-creds"}}]}]}}`, `envFrom[0].secretRef`},
	} {
		_, err := pods.Patch(ctx, "kd-sec", tc.pt, []byte(tc.body), metav1.PatchOptions{}, "ephemeralcontainers")
		var st apierrors.APIStatus
		if !errors.As(err, &st) || st.Status().Code != 403 || !strings.Contains(st.Status().Message, tc.want) {
			t.Errorf("%s: %v, want 403 naming %q", tc.name, err, tc.want)
		}
	}
	if ecs := kdEphemeral(t, "kd-sec"); len(ecs) != 0 {
		t.Fatalf("a refused debug container reached the target: %+v", ecs)
	}
	refused := false
	for _, ev := range auditRecords(t) {
		refused = refused || ev.Annotations[audit.AnnotationSession] == s.Name && ev.ResponseStatus.Code == 403 && ev.Annotations[audit.AnnotationRefusedBy] == "kubectlDebug.secrets"
	}
	if !refused {
		t.Error("no audit record names kubectlDebug.secrets")
	}
}

// TestKubectlDebugCopyGetsNoTokenNorTheCallersMetadata: what the target
// receives of a copy has no ServiceAccount token, joins no Service of its
// source's, has no owner or finalizer, and keeps its source's node only if
// the scheduler says so.
func TestKubectlDebugCopyGetsNoTokenNorTheCallersMetadata(t *testing.T) {
	const owner = "kd-meta@example.com"
	const tokenVol = "kube-api-access-kdmeta"
	kdPod(t, "kd-meta", func(p *corev1.Pod) {
		p.Annotations = map[string]string{"example.com/note": "web"}
		// What the API server adds to a pod whose token is automounted.
		p.Spec.ServiceAccountName = "default"
		p.Spec.Volumes = []corev1.Volume{{Name: tokenVol, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
		}}}}}
		p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: tokenVol, MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true}}
	})
	s := kdSession(t, "kd-meta", owner, v1alpha1.ModeKubectlDebug, kdRules())
	kc := kubeconfig(t, 0, s.Name, token(t, owner))

	out, err := runKubectl(t, kc, nil, "", "debug", "kd-meta", "-n", kdNamespace, "--image", "busybox:1.36", "--copy-to", "kd-meta-same", "--same-node", "--", "true")
	kdMustFail(t, out, err, `spec.nodeName "kwok-node": a copy is placed by the scheduler`, "--same-node")
	out, err = runKubectl(t, kc, nil, "", "debug", "kd-meta", "-n", kdNamespace, "--image", "busybox:1.36", "--copy-to", "kd-meta-copy", "--keep-labels", "--keep-annotations", "--", "true")
	if err != nil {
		t.Fatalf("kubectl debug --copy-to --keep-labels: %v\n%s", err, out)
	}

	// What kubectl does not send: the source's owner, a finalizer, a
	// legacy profile annotation, a label of a production Service.
	ctx := context.Background()
	src, err := target.Kube.CoreV1().Pods(kdNamespace).Get(ctx, "kd-meta", metav1.GetOptions{})
	testenv.Must(t, err)
	raw := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "kd-meta-raw", Namespace: kdNamespace,
			Labels:          map[string]string{"app": "kd-meta", credentials.LabelSessionUID: "someone-else"},
			Annotations:     map[string]string{"seccomp.security.alpha.kubernetes.io/pod": "unconfined"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: src.Name, UID: src.UID}},
			Finalizers:      []string{"example.com/hold"},
		},
		Spec: *src.Spec.DeepCopy(),
	}
	raw.Spec.NodeName = ""
	raw.Spec.Containers = append(raw.Spec.Containers, corev1.Container{Name: "dbg", Image: "busybox:1.36"})
	if _, err := clientset(t, 1, s.Name, token(t, owner)).CoreV1().Pods(kdNamespace).Create(ctx, raw, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating a copy with the caller's metadata: %v", err)
	}

	for _, name := range []string{"kd-meta-copy", "kd-meta-raw"} {
		p, err := target.Kube.CoreV1().Pods(kdNamespace).Get(ctx, name, metav1.GetOptions{})
		testenv.Must(t, err)
		if a := p.Spec.AutomountServiceAccountToken; a == nil || *a {
			t.Errorf("%s: automountServiceAccountToken %v", name, a)
		}
		for _, v := range p.Spec.Volumes {
			if v.Projected != nil {
				t.Errorf("%s: projected volume %s on the target", name, v.Name)
			}
		}
		if p.Labels["app"] != "" || p.Labels[credentials.LabelSessionUID] != string(s.UID) || p.Labels[kubectldebug.LabelDebugKind] != "PodCopy" {
			t.Errorf("%s: labels %v", name, p.Labels)
		}
		if len(p.Annotations) != 0 || len(p.OwnerReferences) != 0 || len(p.Finalizers) != 0 {
			t.Errorf("%s: annotations %v, owners %v, finalizers %v", name, p.Annotations, p.OwnerReferences, p.Finalizers)
		}
	}
	// The source's Service selects no copy.
	l, err := target.Kube.CoreV1().Pods(kdNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=kd-meta"})
	testenv.Must(t, err)
	if len(l.Items) != 1 || l.Items[0].Name != "kd-meta" {
		t.Errorf("pods labelled app=kd-meta: %d", len(l.Items))
	}
}

// TestKubectlDebugSessionDeletesOnlyItsOwnPods: delete, delete of the
// collection and eviction of a pod the session did not create are refused
// and the pod stays; the session's own copy is deleted.
func TestKubectlDebugSessionDeletesOnlyItsOwnPods(t *testing.T) {
	const owner = "kd-del@example.com"
	kdPod(t, "kd-del")
	s := kdSession(t, "kd-del", owner, v1alpha1.ModeKubectlDebug, kdRules())
	kc := kubeconfig(t, 0, s.Name, token(t, owner))
	ctx := context.Background()

	out, err := runKubectl(t, kc, nil, "", "delete", "pod", "kd-del", "-n", kdNamespace, "--wait=false")
	kdMustFail(t, out, err, "pod kdebug/kd-del was not created by the session")
	cs := clientset(t, 1, s.Name, token(t, owner))
	for name, del := range map[string]func() error{
		"deletecollection": func() error {
			return cs.CoreV1().Pods(kdNamespace).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
		},
		"eviction": func() error {
			return cs.PolicyV1().Evictions(kdNamespace).Evict(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: "kd-del", Namespace: kdNamespace}})
		},
	} {
		if err := del(); !apierrors.IsForbidden(err) {
			t.Errorf("%s: %v, want 403", name, err)
		}
	}
	p, err := target.Kube.CoreV1().Pods(kdNamespace).Get(ctx, "kd-del", metav1.GetOptions{})
	if err != nil || p.DeletionTimestamp != nil {
		t.Fatalf("the pod on the target: %v, %v", err, p.DeletionTimestamp)
	}
	var refused bool
	for _, ev := range auditRecords(t) {
		refused = refused || ev.Annotations[audit.AnnotationSession] == s.Name && ev.ResponseStatus.Code == 403 && ev.Annotations[audit.AnnotationRefusedBy] == "kubectlDebug.createdPods"
	}
	if !refused {
		t.Error("no audit record names kubectlDebug.createdPods")
	}

	out, err = runKubectl(t, kc, nil, "", "debug", "kd-del", "-n", kdNamespace, "--image", "busybox:1.36", "--copy-to", "kd-del-copy", "--", "true")
	if err != nil {
		t.Fatalf("kubectl debug --copy-to: %v\n%s", err, out)
	}
	kdCreated(t, s, 1)
	// Served once the replica sees the status that lists it.
	testenv.Eventually(t, 30*time.Second, func() error {
		if out, err := runKubectl(t, kc, nil, "", "delete", "pod", "kd-del-copy", "-n", kdNamespace, "--wait=false"); err != nil {
			return fmt.Errorf("kubectl delete of the session's copy: %v\n%s", err, out)
		}
		return nil
	})
	testenv.Eventually(t, 30*time.Second, func() error {
		p, err := target.Kube.CoreV1().Pods(kdNamespace).Get(ctx, "kd-del-copy", metav1.GetOptions{})
		if apierrors.IsNotFound(err) || err == nil && p.DeletionTimestamp != nil {
			return nil
		}
		return fmt.Errorf("the copy on the target: %v", err)
	})
}

// TestKubectlDebugNodeObeysDeniedNodeLabels: a node carrying a label the
// template denies runs no node debug pod, through kubectl or the REST API.
func TestKubectlDebugNodeObeysDeniedNodeLabels(t *testing.T) {
	const owner = "kd-labels@example.com"
	s := kdSession(t, "kd-labels", owner, v1alpha1.ModeKubectlDebug, kdRules())
	kdDebugStatus(t, s, func(d *v1alpha1.DebugStatus) { d.DeniedNodeLabels = []string{"type=kwok"} })
	kc := kubeconfig(t, 0, s.Name, token(t, owner))
	out, err := runKubectl(t, kc, nil, "", "debug", "node/"+testenv.NodeName, "-n", kdNamespace, "--image", "busybox:1.36", "--profile=baseline", "--", "true")
	kdMustFail(t, out, err, `spec.nodeName "kwok-node" carries label type=kwok, which template ephemeral-debug denies`)
	r := call(t, "POST", "/api/v1/sessions/"+s.Name+"/debug/node", []byte(`{"node":"kwok-node","image":"busybox:1.36"}`), bearer(token(t, owner)))
	if r.code != 403 || !strings.Contains(r.st.Message, "carries label type=kwok") {
		t.Errorf("POST node: %d %s", r.code, r.body)
	}
	if pods := kdSessionPods(t, s.Name); len(pods) != 0 {
		t.Fatalf("a refused node pod reached the target: %d", len(pods))
	}
	kdDebugStatus(t, s, func(d *v1alpha1.DebugStatus) { d.DeniedNodeLabels = []string{"type=other"} })
	if out, err := runKubectl(t, kc, nil, "", "debug", "node/"+testenv.NodeName, "-n", kdNamespace, "--image", "busybox:1.36", "--profile=baseline", "--", "true"); err != nil {
		t.Fatalf("kubectl debug node on a node without a denied label: %v\n%s", err, out)
	}
}
