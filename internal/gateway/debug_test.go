package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/config"
	"sessiongate.dev/sessiongate/internal/credentials"
	"sessiongate.dev/sessiongate/internal/testenv"
)

// debugReady applies, once, what a target used for debug sessions needs
// (config/target/rbac-debug.yaml) and the sandbox's debug templates with
// kubectl, as an operator would, pointed at this suite's cluster "target".
var debugReady = sync.OnceValue(func() error {
	ctx := context.Background()
	rbac, err := config.File(config.TargetDebugRBACPath)
	if err != nil {
		return err
	}
	if err := testenv.Apply(ctx, target.Client, config.TargetDebugRBACPath, rbac, ""); err != nil {
		return err
	}
	templates, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "dev", "debug.yaml"))
	if err != nil {
		return err
	}
	return kubectlApply(strings.ReplaceAll(string(templates), "[dev-target]", "[target]"))
})

// kubectlApply applies YAML to the management cluster with the real kubectl,
// as an operator would.
func kubectlApply(doc string) error {
	kc, err := mgmt.AdminKubeconfig()
	if err != nil {
		return err
	}
	path := filepath.Join(workDir, "mgmt-admin.kubeconfig")
	if err := os.WriteFile(path, kc, 0o600); err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(testenv.BinDir(), "kubectl"), "--kubeconfig", path, "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(doc)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("kubectl apply: %v\n%s", err, out)
	}
	return nil
}

// debugRequest asks for a debug session through the REST API and returns
// its name.
func debugRequest(t *testing.T, who http.Header, body string) string {
	t.Helper()
	r := requestAs(t, who, body)
	if r.code != http.StatusCreated {
		t.Fatalf("request %s: %d %s", body, r.code, r.body)
	}
	var s v1alpha1.Session
	testenv.Must(t, json.Unmarshal([]byte(r.body), &s))
	t.Cleanup(func() { _ = mgmt.Client.Delete(context.Background(), &s) })
	return s.Name
}

// targetAs is a client of the target itself with the session's minted
// credential: what the target allows it, whatever the gateway says.
func targetAs(t *testing.T, s *v1alpha1.Session) kubernetes.Interface {
	t.Helper()
	sec := &corev1.Secret{}
	testenv.Must(t, mgmt.Client.Get(context.Background(), client.ObjectKey{Namespace: s.Namespace, Name: s.Status.CredentialsSecretRef}, sec))
	c, err := kubernetes.NewForConfig(&rest.Config{Host: target.Config.Host, BearerToken: string(sec.Data[credentials.KeyToken]),
		TLSClientConfig: rest.TLSClientConfig{CAData: target.Config.CAData}})
	testenv.Must(t, err)
	return c
}

func allowed(t *testing.T, c kubernetes.Interface, verb, ns, subresource, name string) bool {
	t.Helper()
	r, err := c.AuthorizationV1().SelfSubjectAccessReviews().Create(context.Background(), &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
			Verb: verb, Namespace: ns, Resource: "pods", Subresource: subresource, Name: name,
		}},
	}, metav1.CreateOptions{})
	testenv.Must(t, err)
	return r.Status.Allowed
}

func TestDebugSessionDeploysPodsAndNarrowsAccessToThem(t *testing.T) {
	testenv.Must(t, debugReady())
	ctx := context.Background()
	bobTok := token(t, "bob@example.com", "sre")
	bob := bearer(bobTok)
	name := debugRequest(t, bob, `{"cluster":"target","debug":{"template":"debug-pods","variables":{"sleep":"600"}},"ttl":"10m","reason":"INC-7 node disk"}`)
	s := waitDebugActive(t, name)
	d := s.Status.Debug
	if d == nil || d.Namespace != "sessiongate-debug" || len(d.Pods) != 1 || !d.Pods[0].Ready || d.Pods[0].Node != testenv.NodeName {
		t.Fatalf("status.debug = %+v, want one ready pod on %s in sessiongate-debug", d, testenv.NodeName)
	}
	pod := d.Pods[0].Name
	// What the template says reached the target: the variable, the
	// session's labels.
	onTarget, err := target.Kube.CoreV1().Pods("sessiongate-debug").Get(ctx, pod, metav1.GetOptions{})
	testenv.Must(t, err)
	if c := onTarget.Spec.Containers[0]; strings.Join(c.Command, " ") != "sleep 600" || c.Image != "busybox:1.36" {
		t.Errorf("debug pod's container on the target: %s %v", c.Image, c.Command)
	}
	if onTarget.Labels[credentials.LabelSessionUID] != string(s.UID) {
		t.Errorf("debug pod labels %v carry no session UID", onTarget.Labels)
	}

	kc := kubeconfig(t, 0, name, bobTok)
	if out, err := runKubectl(t, kc, nil, "", "exec", "-n", "sessiongate-debug", pod, "--", "echo", "in the debug pod"); err != nil || !strings.Contains(out, "in the debug pod") {
		t.Fatalf("kubectl exec into the debug pod: %v\n%s", err, out)
	}
	if out, err := runKubectl(t, kc, nil, "", "logs", "-n", "sessiongate-debug", pod); err != nil {
		t.Errorf("kubectl logs of the debug pod: %v\n%s", err, out)
	}
	// Any other pod, or an operation the template does not allow: refused
	// by the gateway, naming the rule...
	if out, err := runKubectl(t, kc, nil, "", "exec", "-n", "demo", "web", "--", "echo", "escaped"); err == nil || !strings.Contains(out, "Forbidden") {
		t.Errorf("kubectl exec into demo/web through a debug session: %v\n%s", err, out)
	}
	r := call(t, "POST", "/sessiongate/"+name+"/kas/api/v1/namespaces/demo/pods/web/exec?command=echo&stdout=true", nil, bob)
	if r.code != http.StatusForbidden || !strings.Contains(r.st.Message, "it is not one of the session's debug pods (sessiongate-debug/"+pod+")") {
		t.Errorf("exec into demo/web through a debug session: %d %s", r.code, r.body)
	}
	r = call(t, "POST", "/sessiongate/"+name+"/kas/api/v1/namespaces/sessiongate-debug/pods/"+pod+"/portforward", nil, bob)
	if r.code != http.StatusForbidden || !strings.Contains(r.st.Message, "template debug-pods allows only exec, logs") {
		t.Errorf("port-forward to the debug pod: %d %s", r.code, r.body)
	}
	// ...and by the target, with the session's own credential.
	direct := targetAs(t, s)
	for _, c := range []struct {
		verb, ns, sub, pod string
		want               bool
	}{
		{"create", "sessiongate-debug", "exec", pod, true},
		{"get", "sessiongate-debug", "log", pod, true},
		{"create", "sessiongate-debug", "exec", "another-pod", false},
		{"create", "demo", "exec", "web", false},
		{"create", "sessiongate-debug", "portforward", pod, false},
		{"create", "sessiongate-debug", "attach", pod, false},
		{"delete", "sessiongate-debug", "", pod, false},
		{"create", "sessiongate-debug", "", "", false},
	} {
		if got := allowed(t, direct, c.verb, c.ns, c.sub, c.pod); got != c.want {
			t.Errorf("on the target, the session may %s pods/%s %s/%s: %v, want %v", c.verb, c.sub, c.ns, c.pod, got, c.want)
		}
	}
	if _, err := direct.CoreV1().Pods("demo").Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("reading demo/web on the target with the session's credential: %v, want Forbidden", err)
	}

	// At the end nothing of the session is left on the target.
	if r := call(t, "POST", "/api/v1/sessions/"+name+"/terminate", nil, bob); r.code != http.StatusOK {
		t.Fatalf("terminate: %d %s", r.code, r.body)
	}
	waitNothingLeft(t, s)
}

// waitDebugActive waits until the debug session is Active on every replica.
func waitDebugActive(t *testing.T, name string) *v1alpha1.Session {
	t.Helper()
	s := &v1alpha1.Session{}
	testenv.Eventually(t, 90*time.Second, func() error {
		testenv.Must(t, mgmt.Client.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, s))
		if s.Status.Phase != v1alpha1.PhaseActive {
			return fmt.Errorf("debug session %s is %q: %+v", name, s.Status.Phase, s.Status.Conditions)
		}
		for i, gw := range replicas {
			if _, ok := gw.Registry.Get(name); !ok {
				return fmt.Errorf("replica %d does not serve session %s yet", i, name)
			}
		}
		return nil
	})
	return s
}

// waitNothingLeft waits until the target holds nothing labelled with the
// session, and the namespace the gateway made for it is gone.
func waitNothingLeft(t *testing.T, s *v1alpha1.Session) {
	t.Helper()
	ctx := context.Background()
	sel := metav1.ListOptions{LabelSelector: labels.Set{credentials.LabelSessionUID: string(s.UID)}.String()}
	testenv.Eventually(t, 60*time.Second, func() error {
		var left []string
		if l, err := target.Kube.AppsV1().DaemonSets("").List(ctx, sel); err == nil {
			for _, o := range l.Items {
				left = append(left, "DaemonSet "+o.Namespace+"/"+o.Name)
			}
		}
		if l, err := target.Kube.AppsV1().Deployments("").List(ctx, sel); err == nil {
			for _, o := range l.Items {
				left = append(left, "Deployment "+o.Namespace+"/"+o.Name)
			}
		}
		if l, err := target.Kube.CoreV1().Pods("").List(ctx, sel); err == nil {
			for _, o := range l.Items {
				left = append(left, "Pod "+o.Namespace+"/"+o.Name)
			}
		}
		if l, err := target.Kube.RbacV1().Roles("").List(ctx, sel); err == nil {
			for _, o := range l.Items {
				left = append(left, "Role "+o.Namespace+"/"+o.Name)
			}
		}
		if l, err := target.Kube.RbacV1().RoleBindings("").List(ctx, sel); err == nil {
			for _, o := range l.Items {
				left = append(left, "RoleBinding "+o.Namespace+"/"+o.Name)
			}
		}
		if l, err := target.Kube.CoreV1().Namespaces().List(ctx, sel); err == nil {
			for _, o := range l.Items {
				left = append(left, "Namespace "+o.Name)
			}
		}
		if len(left) > 0 {
			return fmt.Errorf("left on the target: %s", strings.Join(left, ", "))
		}
		return nil
	})
}

func TestDebugSessionRequestsRefusedBeforeAnythingIsMade(t *testing.T) {
	testenv.Must(t, debugReady())
	bob := bearer(token(t, "bob@example.com", "sre"))
	before := &v1alpha1.SessionList{}
	testenv.Must(t, mgmt.Client.List(context.Background(), before, client.InNamespace(namespace)))
	for body, want := range map[string]struct {
		code int
		msg  string
	}{
		`{"cluster":"target","debug":{"template":"debug-pods","variables":{"sleep":"5"}},"reason":"x"}`:            {400, `debug.variables[sleep]: Invalid value: "5": must be at least 60`},
		`{"cluster":"target","debug":{"template":"debug-pods","variables":{"image":"alpine:3"}},"reason":"x"}`:     {400, `must match busybox:[0-9.]+`},
		`{"cluster":"target","debug":{"template":"debug-pods","variables":{"privileged":"true"}},"reason":"x"}`:    {400, `debug.variables[privileged]: Unsupported value`},
		`{"cluster":"target","debug":{"template":"debug-pods","namespace":"demo"},"reason":"x"}`:                   {403, `namespace "demo" is not allowed by template debug-pods`},
		`{"cluster":"target","debug":{"template":"debug-pods","namespace":"kube-system"},"reason":"x"}`:            {403, `namespace "kube-system" is not allowed`},
		`{"cluster":"target","debug":{"template":"debug-pods","scheduling":"gpu"},"reason":"x"}`:                   {400, `debug.scheduling: Unsupported value: "gpu"`},
		`{"cluster":"target","debug":{"template":"debug-pods"},"ttl":"3h","reason":"x"}`:                           {403, `ttl 3h0m0s is over the policy's maximum of 2h0m0s`},
		`{"cluster":"target","debug":{"template":"no-such-template"},"reason":"x"}`:                                {403, `no debug session template "no-such-template" lets you request access to cluster "target"`},
		`{"cluster":"elsewhere","debug":{"template":"debug-pods"},"reason":"x"}`:                                   {403, `no debug session template "debug-pods" lets you request access to cluster "elsewhere"`},
		`{"cluster":"target","debug":{"template":"debug-pods"},"accessLevel":{"clusterRole":"edit"},"reason":"x"}`: {400, `accessLevel and policy are for other requests`},
	} {
		r := requestAs(t, bob, body)
		if r.code != want.code || !strings.Contains(r.st.Message, want.msg) {
			t.Errorf("request %s: %d %q, want %d with %q", body, r.code, r.st.Message, want.code, want.msg)
		}
	}
	// A scheduling option only some groups may choose.
	testenv.Must(t, kubectlApply(`
apiVersion: sessiongate.dev/v1alpha1
kind: DebugSessionTemplate
metadata: {name: gpu-debug, namespace: sessiongate}
spec:
  mode: workload
  requesters: {groups: [sre, dev]}
  clusters: {names: [target]}
  maxTTL: 1h
  namespace: {default: gpu-debug, create: true}
  workload: {podTemplate: tools, kind: DaemonSet}
  scheduling:
    options:
    - {name: gpu, nodeSelector: {pool: gpu}, groups: [sre]}
`))
	eveTok := token(t, "eve@example.com", "dev")
	if r := requestAs(t, bearer(eveTok), `{"cluster":"target","debug":{"template":"gpu-debug","scheduling":"gpu"},"reason":"x"}`); r.code != http.StatusForbidden ||
		!strings.Contains(r.st.Message, `scheduling option "gpu" of template gpu-debug is only for groups sre`) {
		t.Errorf("a developer choosing the SREs' scheduling option: %d %s", r.code, r.body)
	}

	// A requester the template does not name hears the same as for a
	// template that does not exist.
	if r := requestAs(t, bearer(token(t, "mallory@example.com", "guests")), `{"cluster":"target","debug":{"template":"debug-pods"},"reason":"x"}`); r.code != http.StatusForbidden ||
		r.st.Message != `no debug session template "debug-pods" lets you request access to cluster "target"` {
		t.Errorf("a stranger's request: %d %s", r.code, r.body)
	}
	after := &v1alpha1.SessionList{}
	testenv.Must(t, mgmt.Client.List(context.Background(), after, client.InNamespace(namespace)))
	if len(after.Items) > len(before.Items) {
		t.Errorf("a refused request made a Session: %d before, %d after", len(before.Items), len(after.Items))
	}

	// A developer's request waits for an SRE, as the template says.
	eve := bearer(eveTok)
	name := debugRequest(t, eve, `{"cluster":"target","debug":{"template":"debug-pods"},"ttl":"10m","reason":"INC-8"}`)
	waitPhaseAPI(t, eve, name, v1alpha1.PhasePendingApproval)
}

func TestKubectlDebugSessionFromTheSandboxTemplate(t *testing.T) {
	testenv.Must(t, debugReady())
	ctx := context.Background()
	bobTok := token(t, "bob@example.com", "sre")
	name := debugRequest(t, bearer(bobTok), `{"cluster":"target","debug":{"template":"ephemeral-debug"},"ttl":"10m","reason":"INC-9 web hangs"}`)
	s := waitDebugActive(t, name)
	if d := s.Status.Debug; d == nil || d.Mode != v1alpha1.ModeKubectlDebug || d.Namespace != "demo" || d.KubectlDebug == nil || !d.KubectlDebug.Ephemeral {
		t.Fatalf("status.debug = %+v", s.Status.Debug)
	}
	kc := kubeconfig(t, 0, name, bobTok)
	before, err := target.Kube.CoreV1().Pods("demo").Get(ctx, "web", metav1.GetOptions{})
	testenv.Must(t, err)

	// An image off the template's list never reaches the target.
	if out, err := runKubectl(t, kc, nil, "", "debug", "web", "-n", "demo", "--image", "alpine:3", "--target", "main", "--", "true"); err == nil || !strings.Contains(out, `"alpine:3" is not allowed by template ephemeral-debug`) {
		t.Errorf("kubectl debug --image alpine:3: %v\n%s", err, out)
	}
	// kubectl's sysadmin profile asks for a privileged container.
	if out, err := runKubectl(t, kc, nil, "", "debug", "web", "-n", "demo", "--image", "busybox:1.36", "--profile", "sysadmin", "--", "true"); err == nil || !strings.Contains(out, "privileged") {
		t.Errorf("kubectl debug --profile sysadmin: %v\n%s", err, out)
	}
	if p, _ := target.Kube.CoreV1().Pods("demo").Get(ctx, "web", metav1.GetOptions{}); len(p.Spec.EphemeralContainers) != len(before.Spec.EphemeralContainers) {
		t.Fatalf("a refused kubectl debug reached the target: %+v", p.Spec.EphemeralContainers)
	}
	// With the session's own Role on the target (the leader's, not the
	// test's), an allowed image goes through.
	if out, err := runKubectl(t, kc, nil, "", "debug", "web", "-n", "demo", "--image", "busybox:1.36", "--target", "main", "--", "true"); err != nil {
		t.Fatalf("kubectl debug --image busybox:1.36: %v\n%s", err, out)
	}
	after, err := target.Kube.CoreV1().Pods("demo").Get(ctx, "web", metav1.GetOptions{})
	testenv.Must(t, err)
	if n := len(after.Spec.EphemeralContainers); n != len(before.Spec.EphemeralContainers)+1 || after.Spec.EphemeralContainers[n-1].Image != "busybox:1.36" {
		t.Fatalf("ephemeral containers on the target: %+v", after.Spec.EphemeralContainers)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		cur := &v1alpha1.Session{}
		testenv.Must(t, mgmt.Client.Get(ctx, client.ObjectKeyFromObject(s), cur))
		if cur.Status.Debug == nil || len(cur.Status.Debug.Created) != 1 || cur.Status.Debug.Created[0].Pod != "web" {
			return fmt.Errorf("status.debug.created = %+v", cur.Status.Debug)
		}
		return nil
	})
	// This template allows no node debugging.
	if out, err := runKubectl(t, kc, nil, "", "debug", "node/"+testenv.NodeName, "-n", "demo", "--image", "busybox:1.36", "--", "true"); err == nil {
		t.Errorf("kubectl debug node under ephemeral-debug: allowed\n%s", out)
	}
	if r := call(t, "POST", "/api/v1/sessions/"+name+"/terminate", nil, bearer(bobTok)); r.code != http.StatusOK {
		t.Fatalf("terminate: %d %s", r.code, r.body)
	}
	waitNothingLeft(t, s)
}

func TestHybridDebugSessionDeploysPodsAndTakesKubectlDebug(t *testing.T) {
	testenv.Must(t, debugReady())
	testenv.Must(t, kubectlApply(`
apiVersion: sessiongate.dev/v1alpha1
kind: DebugSessionTemplate
metadata: {name: hybrid-debug, namespace: sessiongate}
spec:
  mode: hybrid
  requesters: {groups: [sre]}
  clusters: {names: [target]}
  maxTTL: 1h
  namespace: {default: hybrid-debug, create: true}
  workload: {podTemplate: tools, kind: Deployment, replicas: 1, readinessTimeout: 1m}
  allowedPodOperations: {exec: true, attach: true, logs: true}
  kubectlDebug:
    ephemeral: true
    images: ["busybox:*"]
    allowedCapabilities: [SYS_PTRACE]
`))
	ctx := context.Background()
	bobTok := token(t, "bob@example.com", "sre")
	name := debugRequest(t, bearer(bobTok), `{"cluster":"target","debug":{"template":"hybrid-debug"},"ttl":"10m","reason":"INC-10"}`)
	s := waitDebugActive(t, name)
	d := s.Status.Debug
	if d.Mode != v1alpha1.ModeHybrid || len(d.Pods) != 1 || !d.NamespaceCreated {
		t.Fatalf("status.debug = %+v", d)
	}
	pod := d.Pods[0].Name
	kc := kubeconfig(t, 0, name, bobTok)
	if out, err := runKubectl(t, kc, nil, "", "exec", "-n", "hybrid-debug", pod, "--", "echo", "hybrid"); err != nil || !strings.Contains(out, "hybrid") {
		t.Fatalf("kubectl exec into the debug pod: %v\n%s", err, out)
	}
	// kubectl debug on the session's own pod: an ephemeral container beside
	// the tools container reaches the target.
	if out, err := runKubectl(t, kc, nil, "", "debug", pod, "-n", "hybrid-debug", "--image", "busybox:1.36", "--target", "tools", "--", "true"); err != nil {
		t.Fatalf("kubectl debug on the debug pod: %v\n%s", err, out)
	}
	p, err := target.Kube.CoreV1().Pods("hybrid-debug").Get(ctx, pod, metav1.GetOptions{})
	testenv.Must(t, err)
	if len(p.Spec.EphemeralContainers) != 1 || p.Spec.EphemeralContainers[0].Image != "busybox:1.36" {
		t.Fatalf("ephemeral containers on the target: %+v", p.Spec.EphemeralContainers)
	}
	// Outside its namespace a hybrid session debugs nothing.
	web, err := target.Kube.CoreV1().Pods("demo").Get(ctx, "web", metav1.GetOptions{})
	testenv.Must(t, err)
	if out, err := runKubectl(t, kc, nil, "", "debug", "web", "-n", "demo", "--image", "busybox:1.36", "--", "true"); err == nil {
		t.Errorf("kubectl debug on demo/web under hybrid-debug: allowed\n%s", out)
	}
	after, err := target.Kube.CoreV1().Pods("demo").Get(ctx, "web", metav1.GetOptions{})
	testenv.Must(t, err)
	if len(after.Spec.EphemeralContainers) != len(web.Spec.EphemeralContainers) {
		t.Errorf("an ephemeral container of session %s reached demo/web: %+v", name, after.Spec.EphemeralContainers)
	}
	if r := call(t, "POST", "/api/v1/sessions/"+name+"/terminate", nil, bearer(bobTok)); r.code != http.StatusOK {
		t.Fatalf("terminate: %d %s", r.code, r.body)
	}
	waitNothingLeft(t, s)
}
