package kubectldebug

import (
	"errors"
	"maps"
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
		{Name: "app-data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "db-password", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "db"}}},
		{Name: "kube-api-access-x1", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}}}}}},
		{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}}}},
		{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}},
	}}
	secretEnv := func(vf corev1.EnvVarSource) func(*corev1.Container) {
		return func(c *corev1.Container) {
			c.Env = []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", ValueFrom: &vf}}
		}
	}
	for _, tc := range []struct {
		name   string
		rules  func(*v1alpha1.KubectlDebugRules)
		sc     *corev1.SecurityContext
		podSC  *corev1.PodSecurityContext
		mounts []string
		ctr    func(*corev1.Container)
		origin Origin
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
		{name: "hostPath mount", mounts: []string{"scratch", "root"}, origin: Origin{Own: map[string]bool{"scratch": true}}, rule: RuleAllowHostNamespaces, field: "volumeMounts[1]"},
		{name: "hostPath mount where allowed", mounts: []string{"root"}, origin: Origin{Host: true}},
		{name: "own emptyDir mount", mounts: []string{"scratch"}, origin: Origin{Own: map[string]bool{"scratch": true}}},
		{name: "the pod's emptyDir", mounts: []string{"app-data"}, origin: Origin{Own: map[string]bool{"scratch": true}}, rule: RuleSecrets, field: `mounts emptyDir volume "app-data" of the pod`},
		{name: "the pod's secret", mounts: []string{"db-password"}, rule: RuleSecrets, field: `volumeMounts[0] mounts secret volume "db-password"`},
		{name: "the pod's token", mounts: []string{"kube-api-access-x1"}, rule: RuleSecrets, field: `projected volume "kube-api-access-x1"`},
		{name: "the pod's config", mounts: []string{"config"}, rule: RuleSecrets, field: "configMap volume"},
		{name: "the pod's claim", mounts: []string{"data"}, rule: RuleSecrets, field: "persistentVolumeClaim volume"},
		{name: "a volume the pod lacks", mounts: []string{"nowhere"}, rule: RuleSecrets},
		{name: "the pod's secret with host paths allowed", mounts: []string{"db-password"}, origin: Origin{Host: true}, rule: RuleSecrets},
		{name: "a copied container keeps its mounts", mounts: []string{"db-password", "config"}, origin: Origin{Copied: true}},
		{name: "a copied container keeps no hostPath", mounts: []string{"root"}, origin: Origin{Copied: true}, rule: RuleAllowHostNamespaces},
		{name: "host port", ctr: func(c *corev1.Container) {
			c.Ports = []corev1.ContainerPort{{ContainerPort: 8080}, {ContainerPort: 10250, HostPort: 10250}}
		}, rule: RuleAllowHostNamespaces, field: "ports[1].hostPort 10250 binds a port of the node"},
		{name: "a copied container keeps no host port", ctr: func(c *corev1.Container) {
			c.Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 80}}
		}, origin: Origin{Copied: true}, rule: RuleAllowHostNamespaces},
		{name: "host port where allowed", ctr: func(c *corev1.Container) {
			c.Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 80}}
		}, origin: Origin{Host: true}},
		{name: "container ports alone", ctr: func(c *corev1.Container) {
			c.Ports = []corev1.ContainerPort{{ContainerPort: 80}}
		}},
		{name: "block device", ctr: func(c *corev1.Container) {
			c.VolumeDevices = []corev1.VolumeDevice{{Name: "data", DevicePath: "/dev/x"}}
		}, rule: RuleSecrets, field: "volumeDevices[0]"},
		{name: "secretKeyRef", ctr: secretEnv(corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}), rule: RuleSecrets, field: `env[1].valueFrom.secretKeyRef: a container the session adds may not read Secret "db"`},
		{name: "configMapKeyRef", ctr: secretEnv(corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}, Key: "k"}}), rule: RuleSecrets, field: `ConfigMap "app"`},
		{name: "fileKeyRef", ctr: secretEnv(corev1.EnvVarSource{FileKeyRef: &corev1.FileKeySelector{VolumeName: "app-data", Path: "p", Key: "k"}}), rule: RuleSecrets, field: `a file of volume "app-data"`},
		{name: "fieldRef", ctr: secretEnv(corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}})},
		{name: "resourceFieldRef", ctr: secretEnv(corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu"}})},
		{name: "envFrom secretRef", ctr: func(c *corev1.Container) {
			c.EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "admin-token"}}}}
		}, rule: RuleSecrets, field: `envFrom[0].secretRef: a container the session adds may not read Secret "admin-token"`},
		{name: "envFrom configMapRef with a prefix", ctr: func(c *corev1.Container) {
			c.EnvFrom = []corev1.EnvFromSource{{Prefix: "X_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}}}}
		}, rule: RuleSecrets, field: "envFrom[0].configMapRef"},
		{name: "a copied container keeps its env", ctr: func(c *corev1.Container) {
			secretEnv(corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}}})(c)
			c.EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}}}}
		}, origin: Origin{Copied: true}},
		{name: "a copied container is still held to privileges", sc: &corev1.SecurityContext{Privileged: ptr.To(true)}, origin: Origin{Copied: true}, rule: RuleAllowPrivileged},
		{name: "SELinux options", sc: &corev1.SecurityContext{SELinuxOptions: &corev1.SELinuxOptions{Type: "spc_t"}}, rule: RuleAllowPrivileged, field: "securityContext.seLinuxOptions"},
		{name: "SELinux options allowed", sc: &corev1.SecurityContext{SELinuxOptions: &corev1.SELinuxOptions{Type: "spc_t"}}, rules: func(r *v1alpha1.KubectlDebugRules) { r.AllowPrivileged = true }},
		{name: "Windows host process", sc: &corev1.SecurityContext{WindowsOptions: &corev1.WindowsSecurityContextOptions{HostProcess: ptr.To(true)}}, rule: RuleAllowPrivileged, field: "windowsOptions.hostProcess"},
		{name: "Windows, no host process", sc: &corev1.SecurityContext{WindowsOptions: &corev1.WindowsSecurityContextOptions{HostProcess: ptr.To(false)}}},
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
			if tc.ctr != nil {
				tc.ctr(ctr)
			}
			s := spec.DeepCopy()
			s.SecurityContext = tc.podSC
			err := c.CheckContainer(field.NewPath("spec", "ephemeralContainers").Index(0), ctr, s, tc.origin)
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
	// A pod on a denied node takes no debug container.
	onDenied := before.DeepCopy()
	onDenied.Spec.NodeName = "control-plane-0"
	joined := add(ec("dbg", "busybox:1"))
	joined.Spec.NodeName = onDenied.Spec.NodeName
	_, err = checker().CheckEphemeral(onDenied, joined)
	refusedBy(t, err, RuleDeniedNodes, `spec.nodeName "control-plane-0" is denied`)
}

// TestEphemeralContainersReadNothingOfThePods: a pod's volumes (hostPath,
// secret, token, even its emptyDirs) and the Secrets its env could name are
// no way in for a debug container.
func TestEphemeralContainersReadNothingOfThePods(t *testing.T) {
	before := pod("agent", corev1.Container{Name: "app", Image: "example.invalid/agent:1", VolumeMounts: []corev1.VolumeMount{{Name: "creds", MountPath: "/creds"}}})
	before.Spec.Volumes = []corev1.Volume{
		{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/run"}}},
		{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "agent-creds"}}},
		{Name: "kube-api-access-abcde", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}}}}}},
		{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	mount := func(v string) func(*corev1.EphemeralContainer) {
		return func(ec *corev1.EphemeralContainer) {
			ec.VolumeMounts = []corev1.VolumeMount{{Name: v, MountPath: "/x"}}
		}
	}
	for _, tc := range []struct {
		name   string
		mutate func(*corev1.EphemeralContainer)
		rule   string
		want   string
	}{
		{"hostPath", mount("host"), RuleAllowHostNamespaces, `mounts hostPath volume "host"`},
		{"secret", mount("creds"), RuleSecrets, `spec.ephemeralContainers[0].volumeMounts[0] mounts secret volume "creds"`},
		{"token", mount("kube-api-access-abcde"), RuleSecrets, `projected volume "kube-api-access-abcde"`},
		{"emptyDir", mount("cache"), RuleSecrets, `emptyDir volume "cache"`},
		{"envFrom secretRef", func(ec *corev1.EphemeralContainer) {
			ec.EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cluster-admin-token"}}}}
		}, RuleSecrets, `envFrom[0].secretRef: a container the session adds may not read Secret "cluster-admin-token"`},
		{"secretKeyRef", func(ec *corev1.EphemeralContainer) {
			ec.Env = []corev1.EnvVar{{Name: "T", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "agent-creds"}, Key: "k"}}}}
		}, RuleSecrets, "env[0].valueFrom.secretKeyRef"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ec := corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "dbg", Image: "busybox:1"}}
			tc.mutate(&ec)
			after := before.DeepCopy()
			after.Spec.EphemeralContainers = []corev1.EphemeralContainer{ec}
			_, err := checker().CheckEphemeral(before, after)
			refusedBy(t, err, tc.rule, tc.want)
		})
	}
}

// tokenVolume is what the API server adds to a pod whose token is
// automounted.
func tokenVolume(name string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
		{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{ExpirationSeconds: ptr.To[int64](3607), Path: "token"}},
		{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}}},
	}}}}
}

// webPod is a pod as the API server keeps it: its token mounted, a Secret
// in its env and one mounted, a toleration of its own and the defaults.
func webPod() *corev1.Pod {
	const token = "kube-api-access-x1"
	source := pod("web",
		corev1.Container{Name: "app", Image: "example.invalid/web:1",
			EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "web-db"}}}},
			VolumeMounts: []corev1.VolumeMount{
				{Name: "tls", MountPath: "/tls"},
				{Name: token, MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true},
			}},
		corev1.Container{Name: "sidecar", Image: "busybox:1.36", VolumeMounts: []corev1.VolumeMount{{Name: token, MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true}}},
	)
	source.Labels = map[string]string{"app": "web"}
	source.Spec.ServiceAccountName = "web"
	source.Spec.NodeName = "worker-1"
	source.Spec.SchedulerName = corev1.DefaultSchedulerName
	source.Spec.Volumes = []corev1.Volume{
		{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "web-tls"}}},
		tokenVolume(token),
	}
	source.Spec.Tolerations = []corev1.Toleration{
		{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "web", Effect: corev1.TaintEffectNoSchedule},
		{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)},
	}
	return source
}

// kubectlCopy is the copy kubectl debug --copy-to sends of src, with the
// labels it keeps with --keep-labels, as Sanitize leaves it.
func kubectlCopy(src *corev1.Pod, mutate ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: src.Namespace, Name: src.Name + "-debug", Labels: src.Labels}, Spec: *src.Spec.DeepCopy()}
	p.Spec.NodeName = ""
	p.Spec.ShareProcessNamespace = ptr.To(true)
	p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "debugger-abcde", Image: "busybox:1.36", Stdin: true, TTY: true})
	for _, m := range mutate {
		m(p)
	}
	return p
}

func TestPodCreates(t *testing.T) {
	source := webPod()
	copyOf := func(mutate ...func(*corev1.Pod)) *corev1.Pod {
		p, _ := PodCopy(source, "web-debug", "busybox:1.36", Options{})
		for _, m := range mutate {
			m(p)
		}
		return p
	}
	debugger := func(m func(*corev1.Container)) func(*corev1.Pod) {
		return func(p *corev1.Pod) { m(&p.Spec.Containers[len(p.Spec.Containers)-1]) }
	}
	addVolume := func(v corev1.Volume) func(*corev1.Pod) {
		return func(p *corev1.Pod) { p.Spec.Volumes = append(p.Spec.Volumes, v) }
	}
	secretVolume := corev1.Volume{Name: "admin", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "cluster-admin"}}}
	scratch := corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
	podSC := func(sc corev1.PodSecurityContext) func(*corev1.Pod) {
		return func(p *corev1.Pod) { p.Spec.SecurityContext = &sc }
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
	privileged := func(r *v1alpha1.KubectlDebugRules) { r.AllowPrivileged = true }
	sanitized := func(p *corev1.Pod) *corev1.Pod { Sanitize(p); return p }
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
		{name: "copy on the same node", pod: copyOf(func(p *corev1.Pod) { p.Spec.NodeName = "worker-1" }), kind: KindPodCopy, rule: RuleScheduling, want: `spec.nodeName "worker-1": a copy is placed by the scheduler`},
		{name: "copy pinned to a node by selector", pod: copyOf(func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{corev1.LabelHostname: "control-plane-0"} }), kind: KindPodCopy, rule: RuleScheduling, want: "spec.nodeSelector: a copy keeps its source's node selector"},
		{name: "copy with an affinity of its own", pod: copyOf(func(p *corev1.Pod) { p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{}} }), kind: KindPodCopy, rule: RuleScheduling, want: "spec.affinity"},
		{name: "copy on a denied node", pod: copyOf(func(p *corev1.Pod) { p.Spec.NodeName = "control-plane-0" }), kind: KindPodCopy, rule: RuleScheduling, want: "--same-node"},
		{name: "kubectl's copy", pod: sanitized(kubectlCopy(source)), kind: KindPodCopy},
		{name: "kubectl's copy unsanitized keeps the token", pod: kubectlCopy(source), kind: KindPodCopy, rule: RuleServiceAccount, want: `projected volume "kube-api-access-x1" holds a ServiceAccount token`},
		{name: "copy with its token automounted", pod: copyOf(func(p *corev1.Pod) { p.Spec.AutomountServiceAccountToken = nil }), kind: KindPodCopy, rule: RuleServiceAccount, want: "automountServiceAccountToken must be false"},
		{name: "copy adding a token volume", pod: copyOf(addVolume(tokenVolume("mine"))), kind: KindPodCopy, rule: RuleServiceAccount, want: `"mine"`},
		{name: "debugger reading the copy's Secret env", pod: copyOf(debugger(func(c *corev1.Container) { c.EnvFrom = source.Spec.Containers[0].EnvFrom })), kind: KindPodCopy, rule: RuleSecrets, want: `spec.containers[2].envFrom[0].secretRef: a container the session adds may not read Secret "web-db"`},
		{name: "debugger reading a Secret key", pod: copyOf(debugger(func(c *corev1.Container) {
			c.Env = []corev1.EnvVar{{Name: "P", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cluster-admin"}, Key: "token"}}}}
		})), kind: KindPodCopy, rule: RuleSecrets, want: "spec.containers[2].env[0].valueFrom.secretKeyRef"},
		{name: "debugger mounting the copy's Secret", pod: copyOf(debugger(func(c *corev1.Container) { c.VolumeMounts = []corev1.VolumeMount{{Name: "tls", MountPath: "/tls"}} })), kind: KindPodCopy, rule: RuleSecrets, want: `spec.containers[2].volumeMounts[0] mounts secret volume "tls"`},
		{name: "debugger mounting an emptyDir of its own", pod: copyOf(addVolume(scratch), debugger(func(c *corev1.Container) { c.VolumeMounts = []corev1.VolumeMount{{Name: "scratch", MountPath: "/s"}} })), kind: KindPodCopy},
		{name: "copied sidecar given a Secret env", pod: copyOf(func(p *corev1.Pod) {
			p.Spec.Containers[1].EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cluster-admin"}}}}
		}), kind: KindPodCopy, rule: RuleSecrets, want: `spec.containers[1].envFrom[0].secretRef`},
		{name: "copied sidecar given the app's mount", pod: copyOf(func(p *corev1.Pod) {
			p.Spec.Containers[1].VolumeMounts = []corev1.VolumeMount{{Name: "tls", MountPath: "/tls"}}
		}), kind: KindPodCopy, rule: RuleSecrets, want: `spec.containers[1].volumeMounts[0] mounts secret volume "tls"`},
		{name: "copied app mounting another Secret", pod: copyOf(addVolume(secretVolume), func(p *corev1.Pod) { p.Spec.Containers[0].VolumeMounts[0].Name = "admin" }), kind: KindPodCopy, rule: RuleVolumes, want: `spec.volumes[1]: secret volume "admin" is not allowed`},
		{name: "copy's Secret volume swapped", pod: copyOf(func(p *corev1.Pod) { p.Spec.Volumes[0].Secret.SecretName = "cluster-admin" }), kind: KindPodCopy, rule: RuleVolumes, want: `secret volume "tls"`},
		{name: "copy adding a configMap volume", pod: copyOf(addVolume(corev1.Volume{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}})), kind: KindPodCopy, rule: RuleVolumes, want: "configMap volume"},
		{name: "copy adding a CSI volume", pod: copyOf(addVolume(corev1.Volume{Name: "csi", VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: "secrets-store.csi.k8s.io"}}})), kind: KindPodCopy, rule: RuleVolumes, want: "csi volume"},
		{name: "copy adding an NFS volume", pod: copyOf(addVolume(corev1.Volume{Name: "nfs", VolumeSource: corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "10.0.0.1", Path: "/"}}})), kind: KindPodCopy, rule: RuleVolumes},
		{name: "copy adding a gitRepo volume", pod: copyOf(addVolume(corev1.Volume{Name: "git", VolumeSource: corev1.VolumeSource{GitRepo: &corev1.GitRepoVolumeSource{Repository: "x"}}})), kind: KindPodCopy, rule: RuleVolumes},
		{name: "copy adding a claim", pod: copyOf(addVolume(corev1.Volume{Name: "pvc", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "db-data"}}})), kind: KindPodCopy, rule: RuleVolumes, want: "persistentVolumeClaim"},
		{name: "copy adding an image volume", pod: copyOf(addVolume(corev1.Volume{Name: "img", VolumeSource: corev1.VolumeSource{Image: &corev1.ImageVolumeSource{Reference: "evil.io/tools:1"}}})), kind: KindPodCopy, rule: RuleVolumes, want: "image volume"},
		{name: "copy tolerating everything", pod: copyOf(func(p *corev1.Pod) {
			p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Operator: corev1.TolerationOpExists})
		}), kind: KindPodCopy, rule: RuleScheduling, want: "spec.tolerations[2]"},
		{name: "copy with the default tolerations", pod: copyOf(func(p *corev1.Pod) {
			p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)})
		}), kind: KindPodCopy},
		{name: "copy with a priority class", pod: copyOf(func(p *corev1.Pod) { p.Spec.PriorityClassName = "system-node-critical" }), kind: KindPodCopy, rule: RuleScheduling, want: "spec.priorityClassName"},
		{name: "copy with a scheduler of its own", pod: copyOf(func(p *corev1.Pod) { p.Spec.SchedulerName = "mine" }), kind: KindPodCopy, rule: RuleScheduling, want: "spec.schedulerName"},
		{name: "copy in another runtime class", pod: copyOf(func(p *corev1.Pod) { p.Spec.RuntimeClassName = ptr.To("runc-unsandboxed") }), kind: KindPodCopy, rule: RuleRuntimeClass, want: `spec.runtimeClassName "runc-unsandboxed"`},
		{name: "copy with an unconfined pod seccomp", pod: copyOf(podSC(corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}})), kind: KindPodCopy, rule: RuleAllowPrivileged, want: "spec.securityContext.seccompProfile"},
		{name: "copy with an unconfined pod AppArmor", pod: copyOf(podSC(corev1.PodSecurityContext{AppArmorProfile: &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeUnconfined}})), kind: KindPodCopy, rule: RuleAllowPrivileged, want: "spec.securityContext.appArmorProfile"},
		{name: "copy with a pod SELinux label", pod: copyOf(podSC(corev1.PodSecurityContext{SELinuxOptions: &corev1.SELinuxOptions{Type: "spc_t"}})), kind: KindPodCopy, rule: RuleAllowPrivileged, want: "spec.securityContext.seLinuxOptions"},
		{name: "copy as a Windows host process", pod: copyOf(podSC(corev1.PodSecurityContext{WindowsOptions: &corev1.WindowsSecurityContextOptions{HostProcess: ptr.To(true)}})), kind: KindPodCopy, rule: RuleAllowPrivileged, want: "windowsOptions.hostProcess"},
		{name: "copy with sysctls", pod: copyOf(podSC(corev1.PodSecurityContext{Sysctls: []corev1.Sysctl{{Name: "kernel.shm_rmid_forced", Value: "1"}}})), kind: KindPodCopy, rule: RuleAllowPrivileged, want: "spec.securityContext.sysctls"},
		{name: "copy with sysctls allowed", pod: copyOf(podSC(corev1.PodSecurityContext{Sysctls: []corev1.Sysctl{{Name: "kernel.shm_rmid_forced", Value: "1"}}})), rules: privileged, kind: KindPodCopy},
		{name: "copy with a container SELinux label", pod: copyOf(debugger(func(c *corev1.Container) { c.SecurityContext.SELinuxOptions = &corev1.SELinuxOptions{User: "system_u"} })), kind: KindPodCopy, rule: RuleAllowPrivileged, want: "spec.containers[2].securityContext.seLinuxOptions"},
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
		{name: "node pod binding a node port", pod: node(false, func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 10250, HostPort: 10250}}
		}), kind: KindNodePod, rule: RuleAllowHostNamespaces, want: "spec.containers[0].ports[0].hostPort 10250"},
		{name: "node pod binding a node port with host namespaces allowed", pod: node(true, func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 10250, HostPort: 10250}}
		}), rules: hostNS, kind: KindNodePod},
		{name: "copy binding node ports", pod: copyOf(func(p *corev1.Pod) {
			for i := range p.Spec.Containers {
				p.Spec.Containers[i].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 80}}
			}
		}), kind: KindPodCopy, rule: RuleAllowHostNamespaces, want: "ports[0].hostPort 80 binds a port of the node"},
		{name: "node pod with hostPath only", pod: node(true, func(p *corev1.Pod) { p.Spec.HostPID, p.Spec.HostNetwork, p.Spec.HostIPC = false, false, false }), kind: KindNodePod, rule: RuleAllowHostNamespaces, want: `hostPath volume "host-root"`},
		{name: "node pod on a denied node", pod: node(false, func(p *corev1.Pod) { p.Spec.NodeName = "control-plane-1" }), kind: KindNodePod, rule: RuleDeniedNodes},
		{name: "node pod with a refused image", pod: node(false, func(p *corev1.Pod) { p.Spec.Containers[0].Image = "alpine:3" }), kind: KindNodePod, rule: RuleImages},
		{name: "node pod claiming to copy", pod: node(false, func(p *corev1.Pod) { p.Spec.Containers[0] = source.Spec.Containers[0] }), kind: KindNodePod, rule: RuleImages},
		{name: "node pod as another service account", pod: node(false, func(p *corev1.Pod) { p.Spec.ServiceAccountName = "web" }), kind: KindNodePod, rule: RuleServiceAccount},
		{name: "privileged node pod", pod: node(true, func(p *corev1.Pod) { p.Spec.Containers[0].SecurityContext.Privileged = ptr.To(true) }), rules: hostNS, kind: KindNodePod, rule: RuleAllowPrivileged},
		{name: "node pod mounting a Secret", pod: node(false, addVolume(secretVolume), func(p *corev1.Pod) {
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "admin", MountPath: "/a"}}
		}), kind: KindNodePod, rule: RuleVolumes, want: `secret volume "admin"`},
		{name: "node pod with host namespaces mounting a Secret", pod: node(true, addVolume(secretVolume)), rules: hostNS, kind: KindNodePod, rule: RuleVolumes},
		{name: "node pod with a token", pod: node(false, addVolume(tokenVolume("t"))), kind: KindNodePod, rule: RuleServiceAccount},
		{name: "node pod with its token automounted", pod: node(false, func(p *corev1.Pod) { p.Spec.AutomountServiceAccountToken = ptr.To(true) }), kind: KindNodePod, rule: RuleServiceAccount, want: "automountServiceAccountToken"},
		{name: "node pod with an emptyDir", pod: node(false, addVolume(scratch), func(p *corev1.Pod) {
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "scratch", MountPath: "/s"}}
		}), kind: KindNodePod},
		{name: "node pod reading a Secret", pod: node(false, func(p *corev1.Pod) {
			p.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cluster-admin"}}}}
		}), kind: KindNodePod, rule: RuleSecrets, want: "spec.containers[0].envFrom[0].secretRef"},
		{name: "node pod in a runtime class", pod: node(false, func(p *corev1.Pod) { p.Spec.RuntimeClassName = ptr.To("kata") }), kind: KindNodePod, rule: RuleRuntimeClass},
		{name: "node pod with a priority class", pod: node(false, func(p *corev1.Pod) { p.Spec.PriorityClassName = "system-node-critical" }), kind: KindNodePod, rule: RuleScheduling},
		{name: "node pod with sysctls", pod: node(true, podSC(corev1.PodSecurityContext{Sysctls: []corev1.Sysctl{{Name: "net.ipv4.ip_forward", Value: "1"}}})), rules: hostNS, kind: KindNodePod, rule: RuleAllowPrivileged},
		{name: "node pod with an unconfined seccomp", pod: node(false, podSC(corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}})), kind: KindNodePod, rule: RuleAllowPrivileged},
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
	Sanitize(copied)
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

func TestLabelReplacesTheCallersLabels(t *testing.T) {
	p := pod("x", corev1.Container{Name: "c", Image: "busybox:1"})
	p.Labels = map[string]string{credentials.LabelSessionUID: "someone-else", LabelManagedBy: KubectlManagedBy, "app": "x"}
	Label(p, Owner{Gateway: "gw", Namespace: "sessiongate", Name: "alice-1", UID: "uid-1"}, KindNodePod)
	want := map[string]string{
		credentials.LabelManagedBy: credentials.ManagedByValue, credentials.LabelGateway: "gw", credentials.LabelSessionUID: "uid-1",
		credentials.LabelSessionName: "alice-1", credentials.LabelSessionNamespace: "sessiongate", LabelDebugKind: "NodePod",
	}
	if !maps.Equal(p.Labels, want) {
		t.Errorf("labels %v, want %v", p.Labels, want)
	}
}
