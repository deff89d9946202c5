package kubectldebug

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"

	"sessiongate.dev/sessiongate/internal/credentials"
)

// Labels on the pods a debug session creates (besides the session labels
// every object the gateway makes on a target carries).
const (
	// LabelDebugKind is the pod's Kind: PodCopy or NodePod.
	LabelDebugKind = "sessiongate.dev/debug-kind"
	LabelManagedBy = credentials.LabelManagedBy
)

// Owner is the session a created pod belongs to, for its labels.
type Owner struct {
	// Gateway names the installation (credentials.LabelGateway).
	Gateway   string
	Namespace string
	Name      string
	UID       types.UID
}

// Label gives pod the session's labels and no others: the leader finds and
// removes the pod by them at the end of the session, and a label of the
// caller's (app=web) could make it one of a production Service's endpoints.
func Label(pod *corev1.Pod, o Owner, kind Kind) {
	pod.Labels = map[string]string{}
	pod.Labels[credentials.LabelManagedBy] = credentials.ManagedByValue
	pod.Labels[credentials.LabelGateway] = o.Gateway
	pod.Labels[credentials.LabelSessionUID] = string(o.UID)
	pod.Labels[credentials.LabelSessionName] = o.Name
	pod.Labels[credentials.LabelSessionNamespace] = o.Namespace
	pod.Labels[LabelDebugKind] = string(kind)
}

// Options shape the debug container the builders make.
type Options struct {
	// RunAsNonRoot sets runAsNonRoot: true (templates with
	// requireRunAsNonRoot).
	RunAsNonRoot bool
}

// OptionsFor are the options a template's rules need.
func (c *Checker) OptionsFor() Options {
	return Options{RunAsNonRoot: c.Rules != nil && c.Rules.RequireRunAsNonRoot}
}

// securityContext is the debug container's: no privilege escalation, and
// non-root when asked. Nothing is added: a builder asks for no capability.
func (o Options) securityContext() *corev1.SecurityContext {
	sc := &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false)}
	if o.RunAsNonRoot {
		sc.RunAsNonRoot = ptr.To(true)
	}
	return sc
}

// containerName is name, or a debugger-xxxxx that no container of pod has.
func containerName(pod *corev1.Pod, name string) string {
	if name != "" {
		return name
	}
	for {
		n := "debugger-" + utilrand.String(5)
		if !hasName(pod, n) {
			return n
		}
	}
}

func hasName(pod *corev1.Pod, name string) bool {
	for _, c := range pod.Spec.Containers {
		if c.Name == name {
			return true
		}
	}
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return true
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		if c.Name == name {
			return true
		}
	}
	return false
}

// EphemeralContainer is the container kubectl debug POD --image I
// [--target C] -it would add to pod: interactive, so that it can be
// attached to. name may be empty.
func EphemeralContainer(pod *corev1.Pod, name, image, target string, o Options) corev1.EphemeralContainer {
	return corev1.EphemeralContainer{
		EphemeralContainerCommon: corev1.EphemeralContainerCommon(o.container(containerName(pod, name), image)),
		TargetContainerName:      target,
	}
}

// container is a debug container: interactive, so that it can be attached
// to.
func (o Options) container(name, image string) corev1.Container {
	return corev1.Container{
		Name:                     name,
		Image:                    image,
		Stdin:                    true,
		TTY:                      true,
		TerminationMessagePolicy: corev1.TerminationMessageReadFile,
		SecurityContext:          o.securityContext(),
	}
}

// PodCopy is the copy kubectl debug POD --copy-to NAME --image I -it makes
// of src (its baseline profile): without src's labels, annotations, probes,
// init containers, ephemeral containers and node, processes shared, and a
// debug container added; and, unlike kubectl's, without src's
// ServiceAccount token. name may be empty. It returns the pod and the
// debug container's name.
func PodCopy(src *corev1.Pod, name, image string, o Options) (*corev1.Pod, string) {
	if name == "" {
		name = truncate(src.Name, 57) + "-" + utilrand.String(5)
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: src.Namespace},
		Spec:       *src.Spec.DeepCopy(),
	}
	p.Spec.EphemeralContainers = nil
	p.Spec.InitContainers = nil
	p.Spec.NodeName = ""
	p.Spec.ShareProcessNamespace = ptr.To(true)
	dropTokens(&p.Spec)
	for i := range p.Spec.Containers {
		c := &p.Spec.Containers[i]
		c.LivenessProbe, c.ReadinessProbe, c.StartupProbe = nil, nil, nil
	}
	cn := containerName(p, "")
	p.Spec.Containers = append(p.Spec.Containers, o.container(cn, image))
	return p, cn
}

// NodePod is the pod kubectl debug node/NODE --image I -it makes: on the
// node, tolerating everything, with the host's PID, network and IPC
// namespaces and its root at /host when hostNamespaces; without a
// ServiceAccount token. It returns the pod and its container's name.
func NodePod(namespace, node, image string, hostNamespaces bool, o Options) (*corev1.Pod, string) {
	const cn = "debugger"
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:      "node-debugger-" + truncate(node, 40) + "-" + utilrand.String(5),
			Namespace: namespace,
			Labels:    map[string]string{LabelDebugKind: string(KindNodePod)},
		},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: ptr.To(false),
			NodeName:                     node,
			RestartPolicy:                corev1.RestartPolicyNever,
			Tolerations:                  []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers:                   []corev1.Container{o.container(cn, image)},
		},
	}
	if hostNamespaces {
		p.Spec.HostPID, p.Spec.HostNetwork, p.Spec.HostIPC = true, true, true
		p.Spec.Volumes = []corev1.Volume{{Name: "host-root", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}
		p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "host-root", MountPath: "/host"}}
	}
	return p, cn
}

// truncate keeps a name part short enough for the suffix, without a
// trailing dash or dot.
func truncate(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.TrimRight(s, "-.")
}

// AttachCommand is how to attach to what was created.
func AttachCommand(kubeconfig, namespace, pod, container string) string {
	return fmt.Sprintf("kubectl --kubeconfig %s attach -it -n %s %s -c %s", kubeconfig, namespace, pod, container)
}
