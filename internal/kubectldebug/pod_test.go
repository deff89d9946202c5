package kubectldebug

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"sessiongate.dev/sessiongate/api/v1alpha1"
)

// TestSanitizeKeepsNothingOfTheCallersMetadataNorTheToken: what the target
// receives of a copy joins no Service, has no owner to adopt or collect it,
// no finalizer to outlive the session, no legacy profile annotation and no
// ServiceAccount token.
func TestSanitizeKeepsNothingOfTheCallersMetadataNorTheToken(t *testing.T) {
	p := kubectlCopy(webPod())
	p.Annotations = map[string]string{
		"container.apparmor.security.beta.kubernetes.io/debugger-abcde": "unconfined",
		"seccomp.security.alpha.kubernetes.io/pod":                      "unconfined",
	}
	p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-7d4", UID: "rs-uid", Controller: ptr.To(true)}}
	p.Finalizers = []string{"example.com/keep"}
	p.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "x"}}
	p.Spec.AutomountServiceAccountToken = ptr.To(true)
	if p.Spec.ServiceAccountName = "web"; Sanitize(p) != KindPodCopy || p.Spec.ServiceAccountName != "default" {
		t.Errorf("a sanitized copy runs as %q, want the namespace's default service account", p.Spec.ServiceAccountName)
	}
	if kind := Sanitize(p); kind != KindPodCopy {
		t.Errorf("kind %s", kind)
	}
	if len(p.Labels) != 1 || p.Labels[LabelDebugKind] != string(KindPodCopy) || p.Annotations != nil || p.OwnerReferences != nil || p.Finalizers != nil || p.ManagedFields != nil {
		t.Errorf("metadata left: %+v", p.ObjectMeta)
	}
	if a := p.Spec.AutomountServiceAccountToken; a == nil || *a {
		t.Errorf("automountServiceAccountToken %v", a)
	}
	if len(p.Spec.Volumes) != 1 || p.Spec.Volumes[0].Name != "tls" {
		t.Errorf("volumes %+v", p.Spec.Volumes)
	}
	for _, c := range p.Spec.Containers {
		for _, m := range c.VolumeMounts {
			if strings.HasPrefix(m.Name, "kube-api-access") {
				t.Errorf("container %s mounts %s", c.Name, m.Name)
			}
		}
	}
	if _, src, err := checker().CheckPodCreate(p, []corev1.Pod{*webPod()}); err != nil || src == nil || src.Name != "web" {
		t.Errorf("the sanitized copy: source %v, %v", src, err)
	}

	// kubectl's node debug pod stays one, its label gone.
	n := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{LabelManagedBy: KubectlManagedBy, "app": "web"}}, Spec: corev1.PodSpec{NodeName: "worker-1"}}
	if kind := Sanitize(n); kind != KindNodePod || PodKind(n) != KindNodePod || n.Labels["app"] != "" {
		t.Errorf("node pod: %s %v", kind, n.Labels)
	}
}

func TestBuildersMountNoToken(t *testing.T) {
	cp, _ := PodCopy(webPod(), "", "busybox:1.36", Options{})
	np, _ := NodePod("apps", "worker-1", "busybox:1.36", true, Options{})
	for _, p := range []*corev1.Pod{cp, np} {
		if a := p.Spec.AutomountServiceAccountToken; a == nil || *a || len(tokenVolumes(&p.Spec)) > 0 {
			t.Errorf("pod %s: automount %v, volumes %+v", p.Name, a, p.Spec.Volumes)
		}
	}
	if PodKind(np) != KindNodePod {
		t.Errorf("NodePod is a %s", PodKind(np))
	}
}

// TestCopyRunsInItsSourcesRuntimeClass: a copy does not leave its sandbox,
// and no pod without a source picks a runtime class.
func TestCopyRunsInItsSourcesRuntimeClass(t *testing.T) {
	src := webPod()
	src.Spec.RuntimeClassName = ptr.To("gvisor")
	cp, _ := PodCopy(src, "web-debug", "busybox:1.36", Options{})
	if _, _, err := checker().CheckPodCreate(cp, []corev1.Pod{*src}); err != nil {
		t.Fatalf("copy in its source's runtime class: %v", err)
	}
	cp.Spec.RuntimeClassName = nil
	_, _, err := checker().CheckPodCreate(cp, []corev1.Pod{*src})
	refusedBy(t, err, RuleRuntimeClass, `runtime class "gvisor"`)
	lone := pod("lone", corev1.Container{Name: "dbg", Image: "busybox:1"})
	lone.Spec.RuntimeClassName = ptr.To("gvisor")
	Sanitize(lone)
	_, _, err = checker().CheckPodCreate(lone, []corev1.Pod{*src})
	refusedBy(t, err, RuleRuntimeClass, `spec.runtimeClassName "gvisor"`)
}

func TestDeniedNodeLabels(t *testing.T) {
	c := checker()
	c.DeniedNodeLabels = []string{"node-role.kubernetes.io/control-plane", "pool=payments"}
	for _, tc := range []struct {
		labels map[string]string
		denied bool
	}{
		{labels: nil},
		{labels: map[string]string{"pool": "batch"}},
		{labels: map[string]string{"pool": "payments"}, denied: true},
		{labels: map[string]string{"node-role.kubernetes.io/control-plane": ""}, denied: true},
		{labels: map[string]string{"node-role.kubernetes.io/control-plane-x": ""}},
	} {
		err := c.CheckNodeLabels("spec.nodeName", "n1", tc.labels)
		if !tc.denied {
			if err != nil {
				t.Errorf("%v refused: %v", tc.labels, err)
			}
			continue
		}
		refusedBy(t, err, RuleDeniedNodeLabels, `spec.nodeName "n1" carries label`)
	}
}

// TestNodeLabelsAreReadAsTheSession: a node the session cannot read is
// refused; one it reads is judged by its labels; without denied labels
// nothing is read.
func TestNodeLabelsAreReadAsTheSession(t *testing.T) {
	ctx := context.Background()
	kube := fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "cp-1", Labels: map[string]string{"node-role.kubernetes.io/control-plane": ""}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "worker-1"}})
	c := checker()
	if err := c.CheckNodeLabelsOn(ctx, fake.NewClientset(), "spec.nodeName", "missing"); err != nil {
		t.Errorf("no denied labels, yet: %v", err)
	}
	c.DeniedNodeLabels = []string{"node-role.kubernetes.io/control-plane"}
	if err := c.CheckNodeLabelsOn(ctx, kube, "spec.nodeName", "worker-1"); err != nil {
		t.Errorf("worker-1: %v", err)
	}
	refusedBy(t, c.CheckNodeLabelsOn(ctx, kube, "spec.nodeName", "cp-1"), RuleDeniedNodeLabels, "node-role.kubernetes.io/control-plane")
	refusedBy(t, c.CheckNodeLabelsOn(ctx, kube, "spec.nodeName", "gone"), RuleDeniedNodeLabels, `"gone": the node cannot be read as the session (NotFound)`)
	forbidden := fake.NewClientset()
	forbidden.PrependReactor("get", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, newForbidden("nodes", "worker-1")
	})
	refusedBy(t, c.CheckNodeLabelsOn(ctx, forbidden, "spec.nodeName", "worker-1"), RuleDeniedNodeLabels, "(Forbidden)")
}

func TestPodDeletesAreOfTheSessionsOwnPods(t *testing.T) {
	c := New(&v1alpha1.DebugStatus{Template: "t", Mode: v1alpha1.ModeWorkload, Namespace: "apps", Created: []v1alpha1.DebugCreated{
		{Kind: string(KindEphemeral), Namespace: "apps", Pod: "web", Container: "debugger-1"},
		{Kind: string(KindPodCopy), Namespace: "apps", Pod: "web-copy"},
		{Kind: string(KindNodePod), Namespace: "apps", Pod: "node-debugger-w1-abcde"},
	}})
	for _, name := range []string{"web-copy", "node-debugger-w1-abcde"} {
		if err := c.CheckPodDelete("apps", name); err != nil {
			t.Errorf("delete %s: %v", name, err)
		}
	}
	refusedBy(t, c.CheckPodDelete("apps", "web"), RuleCreatedPods, "pod apps/web was not created by the session")
	refusedBy(t, c.CheckPodDelete("other", "web-copy"), RuleCreatedPods, "apps/web-copy")
	refusedBy(t, c.CheckPodDelete("apps", ""), RuleCreatedPods, "may not delete a collection of pods")
	refusedBy(t, New(nil).CheckPodDelete("apps", "web"), RuleCreatedPods, "(none)")
}

func newForbidden(resource, name string) error {
	return apierrors.NewForbidden(schema.GroupResource{Resource: resource}, name, errors.New("no"))
}
