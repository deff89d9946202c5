package kubectldebug

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/credentials"
)

const sha = "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func checker(mutate ...func(*v1alpha1.KubectlDebugRules)) *Checker {
	r := &v1alpha1.KubectlDebugRules{Ephemeral: true, Copy: true, Node: true, Images: []string{"busybox:*", "registry.example.com/tools/*"}, AllowedCapabilities: []string{"SYS_PTRACE"}}
	for _, m := range mutate {
		m(r)
	}
	return &Checker{Template: "ephemeral-debug", Mode: v1alpha1.ModeKubectlDebug, Namespace: "apps", Rules: r, DeniedNodes: []string{"control-plane-*"}}
}

// refusedBy fails unless err is an *Error of rule whose message names want.
func refusedBy(t *testing.T, err error, rule, want string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want a refusal by %s", err, rule)
	}
	if e.Rule != rule || !strings.Contains(e.Message, want) {
		t.Fatalf("refused by %q with %q, want rule %q and a message naming %q", e.Rule, e.Message, rule, want)
	}
}

func TestImagesMatchTheReferenceAsWritten(t *testing.T) {
	for _, tc := range []struct {
		image, rule string
		digest      bool
	}{
		{image: "busybox:1.36"},
		{image: "busybox:1" + sha},
		{image: "registry.example.com/tools/netshoot:v1"},
		{image: "alpine:3", rule: RuleImages},
		{image: "evil.io/busybox:1", rule: RuleImages},
		{image: "docker.io/library/busybox:1", rule: RuleImages},
		{image: "BUSYBOX:1", rule: RuleImages},
		{image: "busybox", rule: RuleImages},
		{image: "busybox:1/../../evil", rule: RuleImages},
		{image: "registry.example.com/tools/a/b:1", rule: RuleImages},
		{image: "registry.example.com/toolsx/a:1", rule: RuleImages},
		{image: "busybox:1.36", digest: true, rule: RuleRequireDigest},
		{image: "busybox:1@sha256:short", digest: true, rule: RuleRequireDigest},
		{image: "busybox:1@sha256:" + strings.ToUpper(sha[8:]), digest: true, rule: RuleRequireDigest},
		{image: "busybox:1" + sha + "x", digest: true, rule: RuleRequireDigest},
		{image: "busybox:1" + sha, digest: true},
	} {
		c := checker(func(r *v1alpha1.KubectlDebugRules) { r.RequireDigest = tc.digest })
		err := c.CheckImage("spec.ephemeralContainers[0].image", tc.image)
		if tc.rule == "" {
			if err != nil {
				t.Errorf("image %q (digest %v) refused: %v", tc.image, tc.digest, err)
			}
			continue
		}
		var e *Error
		if !errors.As(err, &e) || e.Rule != tc.rule {
			t.Errorf("image %q (digest %v): got %v, want a refusal by %s", tc.image, tc.digest, err, tc.rule)
		}
	}
}

func TestImageRefusalNamesTheFieldTheTemplateAndTheList(t *testing.T) {
	c := checker(func(r *v1alpha1.KubectlDebugRules) { r.Images = []string{"busybox:*"} })
	err := c.CheckImage("spec.ephemeralContainers[0].image", "alpine:3")
	want := `spec.ephemeralContainers[0].image "alpine:3" is not allowed by template ephemeral-debug (allowed: busybox:*)`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

func TestMalformedImagesAreBadRequests(t *testing.T) {
	for _, image := range []string{"", " busybox:1", "busybox:1\n", "busy\tbox:1", "busybox:1\x00"} {
		err := checker().CheckImage("image", image)
		var e *Error
		if !errors.As(err, &e) || !e.Invalid {
			t.Errorf("image %q: got %v, want a bad request", image, err)
		}
	}
}

func TestContainerRules(t *testing.T) {
	spec := &corev1.PodSpec{Volumes: []corev1.Volume{
		{Name: "root", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}},
		{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}}
	for _, tc := range []struct {
		name   string
		rules  func(*v1alpha1.KubectlDebugRules)
		sc     *corev1.SecurityContext
		podSC  *corev1.PodSecurityContext
		mounts []string
		rule   string
		field  string
	}{
		{name: "plain"},
		{name: "privileged", sc: &corev1.SecurityContext{Privileged: ptr.To(true)}, rule: RuleAllowPrivileged, field: "securityContext.privileged"},
		{name: "privileged allowed", sc: &corev1.SecurityContext{Privileged: ptr.To(true)}, rules: func(r *v1alpha1.KubectlDebugRules) { r.AllowPrivileged = true }},
		{name: "privileged false", sc: &corev1.SecurityContext{Privileged: ptr.To(false)}},
		{name: "escalation", sc: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(true)}, rule: RuleAllowPrivileged, field: "allowPrivilegeEscalation"},
		{name: "unmasked proc", sc: &corev1.SecurityContext{ProcMount: ptr.To(corev1.UnmaskedProcMount)}, rule: RuleAllowPrivileged, field: "procMount"},
		{name: "unconfined seccomp", sc: &corev1.SecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}}, rule: RuleAllowPrivileged, field: "seccompProfile"},
		{name: "unconfined apparmor", sc: &corev1.SecurityContext{AppArmorProfile: &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeUnconfined}}, rule: RuleAllowPrivileged, field: "appArmorProfile"},
		{name: "allowed capability", sc: caps("SYS_PTRACE")},
		{name: "capability in other case and CAP_", sc: caps("cap_sys_ptrace")},
		{name: "allowed list with CAP_", sc: caps("SYS_PTRACE"), rules: func(r *v1alpha1.KubectlDebugRules) { r.AllowedCapabilities = []string{"cap_sys_ptrace"} }},
		{name: "SYS_ADMIN", sc: caps("SYS_PTRACE", "SYS_ADMIN"), rule: RuleAllowedCapabilities, field: "capabilities.add[1]"},
		{name: "cap_sys_admin", sc: caps("cap_sys_admin"), rule: RuleAllowedCapabilities, field: `"cap_sys_admin"`},
		{name: "ALL", sc: caps("ALL"), rule: RuleAllowedCapabilities},
		{name: "none allowed", sc: caps("NET_RAW"), rules: func(r *v1alpha1.KubectlDebugRules) { r.AllowedCapabilities = nil }, rule: RuleAllowedCapabilities, field: "allowedCapabilities: none"},
		{name: "dropping is fine", sc: &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}, rules: func(r *v1alpha1.KubectlDebugRules) { r.AllowedCapabilities = nil }},
		{name: "root refused", rules: nonRoot, rule: RuleRequireRunAsNonRoot, field: "runAsNonRoot must be true"},
		{name: "non-root container", rules: nonRoot, sc: &corev1.SecurityContext{RunAsNonRoot: ptr.To(true)}},
		{name: "non-root pod", rules: nonRoot, podSC: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}},
		{name: "container undoes pod", rules: nonRoot, podSC: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}, sc: &corev1.SecurityContext{RunAsNonRoot: ptr.To(false)}, rule: RuleRequireRunAsNonRoot},
		{name: "non-root as uid 0", rules: nonRoot, sc: &corev1.SecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](0)}, rule: RuleRequireRunAsNonRoot, field: "runAsUser"},
		{name: "pod uid 0", rules: nonRoot, podSC: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](0)}, rule: RuleRequireRunAsNonRoot},
		{name: "container uid over pod 0", rules: nonRoot, podSC: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](0)}, sc: &corev1.SecurityContext{RunAsUser: ptr.To[int64](1000)}},
		{name: "hostPath mount", mounts: []string{"scratch", "root"}, rule: RuleAllowHostNamespaces, field: "volumeMounts[1]"},
		{name: "emptyDir mount", mounts: []string{"scratch"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := checker()
			if tc.rules != nil {
				tc.rules(c.Rules)
			}
			ctr := &corev1.Container{Name: "debugger", Image: "busybox:1.36", SecurityContext: tc.sc}
			for _, m := range tc.mounts {
				ctr.VolumeMounts = append(ctr.VolumeMounts, corev1.VolumeMount{Name: m, MountPath: "/" + m})
			}
			s := spec.DeepCopy()
			s.SecurityContext = tc.podSC
			err := c.CheckContainer(field.NewPath("spec", "ephemeralContainers").Index(0), ctr, s, false, false)
			if tc.rule == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			refusedBy(t, err, tc.rule, tc.field)
			if !strings.Contains(err.Error(), "spec.ephemeralContainers[0]") {
				t.Errorf("%q does not name the container's field", err)
			}
		})
	}
}

func caps(add ...corev1.Capability) *corev1.SecurityContext {
	return &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: add}}
}

func nonRoot(r *v1alpha1.KubectlDebugRules) { r.RequireRunAsNonRoot = true }

func TestModeAndNamespace(t *testing.T) {
	c := checker()
	c.Mode = v1alpha1.ModeWorkload
	refusedBy(t, c.CheckMode(), RuleMode, "does not allow kubectl debug (mode workload)")
	c.Mode = v1alpha1.ModeHybrid
	if err := c.CheckMode(); err != nil {
		t.Errorf("hybrid refused: %v", err)
	}
	c.Created = MaxCreated
	refusedBy(t, c.CheckMode(), RuleMaxCreated, "128")
	refusedBy(t, checker().CheckNamespace("kube-system"), RuleNamespace, `namespace "kube-system" is not the session's debug namespace "apps"`)
	if err := checker().CheckNamespace("apps"); err != nil {
		t.Error(err)
	}
	empty := checker()
	empty.Namespace = ""
	refusedBy(t, empty.CheckNamespace(""), RuleNamespace, "no debug namespace")
	refusedBy(t, New(nil).CheckMode(), RuleMode, "mode none")
}

func pod(name string, containers ...corev1.Container) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: name}, Spec: corev1.PodSpec{Containers: containers}}
}

func TestEphemeralContainers(t *testing.T) {
	before := pod("web", corev1.Container{Name: "app", Image: "example.invalid/web:1"})
	before.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "old", Image: "alpine:3"}}}
	add := func(ecs ...corev1.EphemeralContainer) *corev1.Pod {
		p := before.DeepCopy()
		p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, ecs...)
		return p
	}
	ec := func(name, image string) corev1.EphemeralContainer {
		return corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: name, Image: image}}
	}
	for _, tc := range []struct {
		name    string
		after   *corev1.Pod
		rules   func(*v1alpha1.KubectlDebugRules)
		rule    string
		invalid bool
		want    string
	}{
		{name: "one new", after: add(ec("dbg", "busybox:1.36"))},
		{name: "an existing one keeps an image no longer allowed", after: add(ec("dbg", "busybox:1"))},
		{name: "refused image", after: add(ec("dbg", "alpine:3")), rule: RuleImages, want: `spec.ephemeralContainers[1].image "alpine:3"`},
		{name: "second new refused", after: add(ec("a", "busybox:1"), ec("b", "alpine:3")), rule: RuleImages, want: "spec.ephemeralContainers[2].image"},
		{name: "duplicate new", after: add(ec("dbg", "busybox:1"), ec("dbg", "alpine:3")), invalid: true, want: `"dbg"`},
		{name: "named like a container", after: add(ec("app", "busybox:1")), invalid: true},
		{name: "no name", after: add(ec("", "busybox:1")), invalid: true},
		{name: "changed existing", after: func() *corev1.Pod { p := add(); p.Spec.EphemeralContainers[0].Image = "busybox:1"; return p }(), invalid: true, want: `"old" exists and cannot be changed`},
		{name: "removed existing", after: func() *corev1.Pod { p := add(); p.Spec.EphemeralContainers = nil; return p }(), invalid: true, want: "cannot be removed"},
		{name: "nothing new", after: add(), invalid: true, want: "adds no ephemeral container"},
		{name: "ephemeral not allowed", after: add(ec("dbg", "busybox:1")), rules: func(r *v1alpha1.KubectlDebugRules) { r.Ephemeral = false }, rule: RuleEphemeral},
		{name: "privileged", after: add(corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "dbg", Image: "busybox:1", SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)}}}), rule: RuleAllowPrivileged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := checker()
			if tc.rules != nil {
				tc.rules(c.Rules)
			}
			added, err := c.CheckEphemeral(before, tc.after)
			switch {
			case tc.invalid:
				var e *Error
				if !errors.As(err, &e) || !e.Invalid || !strings.Contains(e.Message, tc.want) {
					t.Fatalf("got %v, want a bad request naming %q", err, tc.want)
				}
			case tc.rule != "":
				refusedBy(t, err, tc.rule, tc.want)
			case err != nil:
				t.Fatalf("refused: %v", err)
			case len(added) != len(tc.after.Spec.EphemeralContainers)-1:
				t.Fatalf("added %v", added)
			}
		})
	}
	other := before.DeepCopy()
	other.Namespace = "kube-system"
	_, err := checker().CheckEphemeral(other, add(ec("dbg", "busybox:1")))
	refusedBy(t, err, RuleNamespace, "kube-system")
}

// TestEphemeralMountOfTheTargetsHostPath: a pod's own hostPath volume is no
// way in for a debug container.
func TestEphemeralMountOfTheTargetsHostPath(t *testing.T) {
	before := pod("agent", corev1.Container{Name: "app", Image: "example.invalid/agent:1"})
	before.Spec.Volumes = []corev1.Volume{{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/run"}}}}
	after := before.DeepCopy()
	after.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
		Name: "dbg", Image: "busybox:1", VolumeMounts: []corev1.VolumeMount{{Name: "host", MountPath: "/h"}},
	}}}
	_, err := checker().CheckEphemeral(before, after)
	refusedBy(t, err, RuleAllowHostNamespaces, `mounts hostPath volume "host"`)
}

func TestPodCreates(t *testing.T) {
	source := pod("web", corev1.Container{Name: "app", Image: "example.invalid/web:1"})
	source.Spec.ServiceAccountName = "web"
	copyOf := func(mutate ...func(*corev1.Pod)) *corev1.Pod {
		p, _ := PodCopy(source, "web-debug", "busybox:1.36", Options{})
		for _, m := range mutate {
			m(p)
		}
		return p
	}
	node := func(host bool, mutate ...func(*corev1.Pod)) *corev1.Pod {
		p, _ := NodePod("apps", "worker-1", "busybox:1.36", host, Options{})
		Label(p, Owner{}, KindNodePod)
		for _, m := range mutate {
			m(p)
		}
		return p
	}
	kubectlNode := func(p *corev1.Pod) { p.Labels = map[string]string{LabelManagedBy: KubectlManagedBy} }
	hostNS := func(r *v1alpha1.KubectlDebugRules) { r.AllowHostNamespaces = true }
	for _, tc := range []struct {
		name    string
		pod     *corev1.Pod
		rules   func(*v1alpha1.KubectlDebugRules)
		kind    Kind
		rule    string
		invalid bool
		want    string
	}{
		{name: "copy", pod: copyOf(), kind: KindPodCopy},
		{name: "copy with an image set on a copied container", pod: copyOf(func(p *corev1.Pod) { p.Spec.Containers[0].Image = "example.invalid/web:2" }), kind: KindPodCopy, rule: RuleImages, want: "spec.containers[0].image"},
		{name: "copy renaming a copied container", pod: copyOf(func(p *corev1.Pod) { p.Spec.Containers[0].Name = "other" }), kind: KindPodCopy, rule: RuleImages},
		{name: "copy of a privileged container", pod: copyOf(func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
		}), kind: KindPodCopy, rule: RuleAllowPrivileged, want: "spec.containers[0].securityContext.privileged"},
		{name: "copies not allowed", pod: copyOf(), rules: func(r *v1alpha1.KubectlDebugRules) { r.Copy = false }, kind: KindPodCopy, rule: RuleCopy},
		{name: "copy with host network", pod: copyOf(func(p *corev1.Pod) { p.Spec.HostNetwork = true }), rules: hostNS, kind: KindPodCopy, rule: RuleAllowHostNamespaces, want: "spec.hostNetwork"},
		{name: "copy as another service account", pod: copyOf(func(p *corev1.Pod) { p.Spec.ServiceAccountName = "admin" }), kind: KindPodCopy, rule: RuleServiceAccount, want: `"admin"`},
		{name: "copy smuggling the deprecated service account", pod: copyOf(func(p *corev1.Pod) { p.Spec.DeprecatedServiceAccount = "admin" }), kind: KindPodCopy, rule: RuleServiceAccount},
		{name: "copy on the same node", pod: copyOf(func(p *corev1.Pod) { p.Spec.NodeName = "worker-1" }), kind: KindPodCopy},
		{name: "copy on a denied node", pod: copyOf(func(p *corev1.Pod) { p.Spec.NodeName = "control-plane-0" }), kind: KindPodCopy, rule: RuleDeniedNodes, want: `spec.nodeName "control-plane-0"`},
		{name: "copy with an ephemeral container", pod: copyOf(func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "x", Image: "busybox:1"}}}
		}), kind: KindPodCopy, invalid: true},
		{name: "copy with duplicate containers", pod: copyOf(func(p *corev1.Pod) { p.Spec.Containers = append(p.Spec.Containers, p.Spec.Containers[1]) }), kind: KindPodCopy, invalid: true, want: "a name of its own"},
		{name: "copy of a pod that is not there", pod: copyOf(func(p *corev1.Pod) {
			p.Spec.Containers[0].Image = "example.invalid/miner:1"
			p.Spec.ServiceAccountName = ""
		}), kind: KindPodCopy, rule: RuleImages},
		{name: "any other pod", pod: pod("x", corev1.Container{Name: "x", Image: "evil.io/x:1"}), kind: KindPodCopy, rule: RuleImages},
		{name: "elsewhere", pod: func() *corev1.Pod { p := copyOf(); p.Namespace = "kube-system"; return p }(), kind: KindPodCopy, rule: RuleNamespace},
		{name: "node pod", pod: node(false), kind: KindNodePod},
		{name: "kubectl's node pod", pod: node(false, kubectlNode), kind: KindNodePod},
		{name: "node pods not allowed", pod: node(false), rules: func(r *v1alpha1.KubectlDebugRules) { r.Node = false }, kind: KindNodePod, rule: RuleNode},
		{name: "node pod with host namespaces", pod: node(true), kind: KindNodePod, rule: RuleAllowHostNamespaces, want: "spec.hostPID"},
		{name: "node pod with host namespaces allowed", pod: node(true), rules: hostNS, kind: KindNodePod},
		{name: "node pod with hostPath only", pod: node(true, func(p *corev1.Pod) { p.Spec.HostPID, p.Spec.HostNetwork, p.Spec.HostIPC = false, false, false }), kind: KindNodePod, rule: RuleAllowHostNamespaces, want: `hostPath volume "host-root"`},
		{name: "node pod on a denied node", pod: node(false, func(p *corev1.Pod) { p.Spec.NodeName = "control-plane-1" }), kind: KindNodePod, rule: RuleDeniedNodes},
		{name: "node pod with a refused image", pod: node(false, func(p *corev1.Pod) { p.Spec.Containers[0].Image = "alpine:3" }), kind: KindNodePod, rule: RuleImages},
		{name: "node pod claiming to copy", pod: node(false, func(p *corev1.Pod) { p.Spec.Containers[0] = source.Spec.Containers[0] }), kind: KindNodePod, rule: RuleImages},
		{name: "node pod as another service account", pod: node(false, func(p *corev1.Pod) { p.Spec.ServiceAccountName = "web" }), kind: KindNodePod, rule: RuleServiceAccount},
		{name: "privileged node pod", pod: node(true, func(p *corev1.Pod) { p.Spec.Containers[0].SecurityContext.Privileged = ptr.To(true) }), rules: hostNS, kind: KindNodePod, rule: RuleAllowPrivileged},
		{name: "hostPID without a node is a copy", pod: node(false, func(p *corev1.Pod) { p.Spec.NodeName = ""; p.Spec.HostPID = true }), kind: KindPodCopy, rule: RuleAllowHostNamespaces},
		{name: "no containers", pod: pod("x"), kind: KindPodCopy, invalid: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := checker()
			if tc.rules != nil {
				tc.rules(c.Rules)
			}
			kind, _, err := c.CheckPodCreate(tc.pod, []corev1.Pod{*source})
			if kind != tc.kind {
				t.Errorf("kind %q, want %q", kind, tc.kind)
			}
			switch {
			case tc.invalid:
				var e *Error
				if !errors.As(err, &e) || !e.Invalid || !strings.Contains(e.Message, tc.want) {
					t.Fatalf("got %v, want a bad request naming %q", err, tc.want)
				}
			case tc.rule != "":
				refusedBy(t, err, tc.rule, tc.want)
			case err != nil:
				t.Fatalf("refused: %v", err)
			}
		})
	}
}

// TestCopySourcesAreThePodsOfTheNamespace: a debug pod of the session, or a
// pod of another namespace, is no source to copy an image from.
func TestCopySourcesAreThePodsOfTheNamespace(t *testing.T) {
	miner := corev1.Container{Name: "app", Image: "evil.io/miner:1"}
	copied := pod("copy", miner, corev1.Container{Name: "dbg", Image: "busybox:1"})
	elsewhere := pod("src", miner)
	elsewhere.Namespace = "other"
	earlier := pod("earlier", miner)
	Label(earlier, Owner{UID: "u"}, KindPodCopy)
	self := pod("copy", miner)
	_, src, err := checker().CheckPodCreate(copied, []corev1.Pod{*elsewhere, *earlier, *self})
	refusedBy(t, err, RuleImages, "evil.io/miner:1")
	if src != nil {
		t.Errorf("source %s", src.Name)
	}
	real := pod("src", miner)
	if _, src, err = checker().CheckPodCreate(copied, []corev1.Pod{*elsewhere, *real}); err != nil || src == nil || src.Name != "src" {
		t.Errorf("source %v, %v", src, err)
	}
}

func TestStatusCodes(t *testing.T) {
	for _, tc := range []struct {
		err  *Error
		code int32
	}{
		{&Error{Message: "no", Rule: RuleImages}, 403},
		{&Error{Message: "bad", Invalid: true}, 400},
		{unsupported("apply"), 415},
	} {
		st := tc.err.Status("pods", "web")
		if st.ErrStatus.Code != tc.code || !strings.Contains(st.ErrStatus.Message, tc.err.Message) {
			t.Errorf("%v: %d %q", tc.err, st.ErrStatus.Code, st.ErrStatus.Message)
		}
	}
}

func TestLabelOverwritesTheCallersLabels(t *testing.T) {
	p := pod("x", corev1.Container{Name: "c", Image: "busybox:1"})
	p.Labels = map[string]string{credentials.LabelSessionUID: "someone-else", LabelManagedBy: KubectlManagedBy, "app": "x"}
	Label(p, Owner{Gateway: "gw", Namespace: "sessiongate", Name: "alice-1", UID: "uid-1"}, KindNodePod)
	want := map[string]string{
		credentials.LabelManagedBy: credentials.ManagedByValue, credentials.LabelGateway: "gw", credentials.LabelSessionUID: "uid-1",
		credentials.LabelSessionName: "alice-1", credentials.LabelSessionNamespace: "sessiongate", LabelDebugKind: "NodePod", "app": "x",
	}
	for k, v := range want {
		if p.Labels[k] != v {
			t.Errorf("label %s=%q, want %q", k, p.Labels[k], v)
		}
	}
}
