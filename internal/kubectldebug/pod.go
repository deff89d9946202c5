package kubectldebug

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"sessiongate.dev/sessiongate/internal/credentials"
)

// PodKind is what kubectl debug means by a pod it creates: a node debug pod
// (spec.nodeName set and labelled as kubectl debug node and the gateway
// label them), or else a copy of a pod.
func PodKind(pod *corev1.Pod) Kind {
	if pod.Spec.NodeName != "" && (pod.Labels[LabelDebugKind] == string(KindNodePod) || pod.Labels[LabelManagedBy] == KubectlManagedBy) {
		return KindNodePod
	}
	return KindPodCopy
}

// KubectlManagedBy is how kubectl debug node labels its pods.
const KubectlManagedBy = "kubectl-debug"

// Sanitize makes a pod a debug session creates what the target is to
// receive, whatever the caller sent, and returns its kind (kept as its
// LabelDebugKind label, for Label to complete). None of the caller's labels
// (a copy labelled app=web would join web's Service), annotations (the
// legacy AppArmor and seccomp ones among them; kubectl debug sets none),
// owners (the pod would be adopted or collected by what it names),
// finalizers (it would stay Terminating after the session) or managed
// fields; the namespace's default ServiceAccount; and no ServiceAccount
// token: automountServiceAccountToken false,
// and the projected token volumes a copy has from its source (the
// kube-api-access-* the API server added to it) removed with their mounts.
func Sanitize(pod *corev1.Pod) Kind {
	kind := PodKind(pod)
	pod.Labels = map[string]string{LabelDebugKind: string(kind)}
	pod.Annotations = nil
	pod.OwnerReferences = nil
	pod.Finalizers = nil
	pod.ManagedFields = nil
	// Not the copied pod's ServiceAccount either: a webhook on the target
	// (a cloud's workload identity, a mesh's token) would give the copy
	// that identity back after the gateway judged it.
	pod.Spec.ServiceAccountName, pod.Spec.DeprecatedServiceAccount = "default", ""
	dropTokens(&pod.Spec)
	return kind
}

// dropTokens removes every volume holding a ServiceAccount token, and its
// mounts, and turns the token's automount off.
func dropTokens(spec *corev1.PodSpec) {
	spec.AutomountServiceAccountToken = ptr.To(false)
	tokens := tokenVolumes(spec)
	if len(tokens) == 0 {
		return
	}
	spec.Volumes = slices.DeleteFunc(spec.Volumes, func(v corev1.Volume) bool { return tokens[v.Name] })
	for _, list := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range list {
			list[i].VolumeMounts = withoutTokens(list[i].VolumeMounts, tokens)
		}
	}
}

func withoutTokens(mounts []corev1.VolumeMount, tokens map[string]bool) []corev1.VolumeMount {
	return slices.DeleteFunc(slices.Clone(mounts), func(m corev1.VolumeMount) bool { return tokens[m.Name] })
}

// tokenVolumes are the names of spec's volumes that project a
// ServiceAccount token.
func tokenVolumes(spec *corev1.PodSpec) map[string]bool {
	tokens := map[string]bool{}
	for i := range spec.Volumes {
		if isTokenVolume(&spec.Volumes[i]) {
			tokens[spec.Volumes[i].Name] = true
		}
	}
	return tokens
}

func isTokenVolume(v *corev1.Volume) bool {
	return v.Projected != nil && slices.ContainsFunc(v.Projected.Sources, func(s corev1.VolumeProjection) bool { return s.ServiceAccountToken != nil })
}

// CheckPodCreate judges a pod created in a debug session's namespace, as
// Sanitize made it: a node debug pod (rules.node) or a copy (rules.copy) of
// one of sources, the pods of the namespace. A container of a copy that is
// unchanged from the source's (same name, image, env and mounts) keeps its
// image, env and mounts; every other container is one the session adds,
// held to the image rules and reading no Secret; every privilege rule holds
// for every container. It returns the pod's kind and, for a copy, its
// source (nil when no container is unchanged from a pod of sources).
func (c *Checker) CheckPodCreate(pod *corev1.Pod, sources []corev1.Pod) (Kind, *corev1.Pod, error) {
	kind := PodKind(pod)
	if err := c.CheckMode(); err != nil {
		return kind, nil, err
	}
	if err := c.CheckNamespace(pod.Namespace); err != nil {
		return kind, nil, err
	}
	spec := &pod.Spec
	switch {
	case kind == KindNodePod && !c.Rules.Node:
		return kind, nil, c.refuse("spec.nodeName", RuleNode, "node debug pods are not allowed by %s", c.template())
	case kind == KindPodCopy && !c.Rules.Copy:
		return kind, nil, c.refuse("spec", RuleCopy, "only copies of pods (kubectl debug --copy-to) and node debug pods may be created in a debug session, and %s allows no copies", c.template())
	}
	if len(spec.Containers) == 0 {
		return kind, nil, invalid("spec.containers", "spec.containers: a pod needs a container")
	}
	if len(spec.EphemeralContainers) > 0 {
		return kind, nil, invalid("spec.ephemeralContainers", "spec.ephemeralContainers: a new pod cannot have ephemeral containers")
	}
	if spec.NodeName != "" {
		if kind == KindPodCopy {
			return kind, nil, c.refuse("spec.nodeName", RuleScheduling, "spec.nodeName %q: a copy is placed by the scheduler, as its source would be, never on a node of the caller's choosing (kubectl debug --same-node is not allowed in a debug session)", spec.NodeName)
		}
		if err := c.CheckNode("spec.nodeName", spec.NodeName); err != nil {
			return kind, nil, err
		}
	}
	hostOK := kind == KindNodePod && c.Rules.AllowHostNamespaces
	if !hostOK {
		for _, h := range []struct {
			name string
			on   bool
		}{{"hostPID", spec.HostPID}, {"hostNetwork", spec.HostNetwork}, {"hostIPC", spec.HostIPC}} {
			if h.on {
				return kind, nil, c.refuse("spec."+h.name, RuleAllowHostNamespaces, "spec.%s: the host's namespaces are allowed by %s only in node debug pods with allowHostNamespaces", h.name, c.template())
			}
		}
	}
	var source *corev1.Pod
	if kind == KindPodCopy {
		source = copySource(pod, sources)
	}
	own, err := c.checkVolumes(spec, source, hostOK)
	if err != nil {
		return kind, nil, err
	}
	if err := c.checkPodSecurity(spec, source); err != nil {
		return kind, nil, err
	}
	if err := c.checkScheduling(kind, spec, source); err != nil {
		return kind, nil, err
	}
	names := map[string]bool{}
	for _, group := range []struct {
		path string
		list []corev1.Container
	}{{"initContainers", spec.InitContainers}, {"containers", spec.Containers}} {
		for i := range group.list {
			ctr := &group.list[i]
			f := field.NewPath("spec", group.path).Index(i)
			if ctr.Name == "" || names[ctr.Name] {
				return kind, nil, invalid(f.Child("name").String(), "%s %q: every container needs a name of its own", f.Child("name"), ctr.Name)
			}
			names[ctr.Name] = true
			o := Origin{Copied: source != nil && copiedFrom(source, ctr), Host: hostOK, Own: own}
			if err := c.CheckContainer(f, ctr, spec, o); err != nil {
				return kind, nil, err
			}
		}
	}
	if err := c.checkServiceAccount(pod, source); err != nil {
		return kind, nil, err
	}
	return kind, source, nil
}

// checkVolumes: a copy keeps its source's volumes as they were, but for
// its ServiceAccount token; what else a created pod has is an emptyDir of
// its own, or, in a node debug pod with allowHostNamespaces, a hostPath.
// No Secret, ConfigMap, projected, image, storage or network volume is to
// be had by creating a pod. It returns the names of the pod's own volumes.
func (c *Checker) checkVolumes(spec *corev1.PodSpec, source *corev1.Pod, hostOK bool) (map[string]bool, error) {
	for i := range spec.Volumes {
		if v := &spec.Volumes[i]; isTokenVolume(v) {
			f := field.NewPath("spec", "volumes").Index(i)
			return nil, c.refuse(f.String(), RuleServiceAccount, "%s: projected volume %q holds a ServiceAccount token, which no debug pod gets", f, v.Name)
		}
	}
	own := map[string]bool{}
	for i := range spec.Volumes {
		v := &spec.Volumes[i]
		f := field.NewPath("spec", "volumes").Index(i)
		switch {
		case v.HostPath != nil:
			if !hostOK {
				return nil, c.refuse(f.String(), RuleAllowHostNamespaces, "%s: hostPath volume %q is allowed by %s only in node debug pods with allowHostNamespaces", f, v.Name, c.template())
			}
		case source != nil && slices.ContainsFunc(source.Spec.Volumes, func(s corev1.Volume) bool { return equality.Semantic.DeepEqual(&s, v) }):
			// The copied pod's, as it was.
		case v.EmptyDir != nil:
			own[v.Name] = true
		default:
			return nil, c.refuse(f.String(), RuleVolumes, "%s: %s volume %q is not allowed: a debug pod adds only emptyDir volumes of its own (a copy keeps its source's as they were)", f, volumeKind(v), v.Name)
		}
	}
	return own, nil
}

// checkPodSecurity holds the pod's security context to the privilege
// rules, and its runtime class to its source's (a copy) or the default (a
// node debug pod): a runtime class may isolate less.
func (c *Checker) checkPodSecurity(spec *corev1.PodSpec, source *corev1.Pod) error {
	if psc := spec.SecurityContext; psc != nil && !c.Rules.AllowPrivileged {
		f := field.NewPath("spec", "securityContext")
		priv := func(fld, what string) error {
			return c.refuse(f.Child(fld).String(), RuleAllowPrivileged, "%s: %s not allowed by %s (allowPrivileged is false)", f.Child(fld), what, c.template())
		}
		if fld, what := unconfined(psc.SeccompProfile, psc.AppArmorProfile, psc.SELinuxOptions, psc.WindowsOptions); fld != "" {
			return priv(fld, what)
		}
		if len(psc.Sysctls) > 0 {
			return priv("sysctls", "setting sysctls is")
		}
	}
	want := ""
	if source != nil {
		want = ptr.Deref(source.Spec.RuntimeClassName, "")
	}
	if got := ptr.Deref(spec.RuntimeClassName, ""); got != want {
		return c.refuse("spec.runtimeClassName", RuleRuntimeClass, "spec.runtimeClassName %q: a debug pod runs in runtime class %q (a copy in its source's, a node debug pod in the default)", got, want)
	}
	return nil
}

// checkScheduling: a created pod takes no priority of its own (it would
// preempt others), and a copy goes where its source could: its scheduler
// and tolerations are its source's (and the two the API server adds to
// every pod).
func (c *Checker) checkScheduling(kind Kind, spec *corev1.PodSpec, source *corev1.Pod) error {
	var src corev1.PodSpec
	if source != nil {
		src = source.Spec
	}
	if spec.PriorityClassName != src.PriorityClassName {
		return c.refuse("spec.priorityClassName", RuleScheduling, "spec.priorityClassName %q: a debug pod has priority class %q (a copy its source's, a node debug pod none)", spec.PriorityClassName, src.PriorityClassName)
	}
	if kind != KindPodCopy {
		return nil
	}
	if sn := spec.SchedulerName; sn != src.SchedulerName && sn != "" && sn != corev1.DefaultSchedulerName {
		return c.refuse("spec.schedulerName", RuleScheduling, "spec.schedulerName %q: a copy is placed by its source's scheduler", sn)
	}
	// Where the source could go, and no further: its node selector,
	// affinity and spread as they are (a hostname selector would pin a
	// copy to a denied node).
	switch {
	case !equality.Semantic.DeepEqual(spec.NodeSelector, src.NodeSelector):
		return c.refuse("spec.nodeSelector", RuleScheduling, "spec.nodeSelector: a copy keeps its source's node selector (%v)", src.NodeSelector)
	case !equality.Semantic.DeepEqual(spec.Affinity, src.Affinity):
		return c.refuse("spec.affinity", RuleScheduling, "spec.affinity: a copy keeps its source's affinity")
	case !equality.Semantic.DeepEqual(spec.TopologySpreadConstraints, src.TopologySpreadConstraints):
		return c.refuse("spec.topologySpreadConstraints", RuleScheduling, "spec.topologySpreadConstraints: a copy keeps its source's")
	}
	for i, t := range spec.Tolerations {
		if defaultToleration(t) || slices.ContainsFunc(src.Tolerations, func(s corev1.Toleration) bool { return equality.Semantic.DeepEqual(s, t) }) {
			continue
		}
		f := field.NewPath("spec", "tolerations").Index(i)
		return c.refuse(f.String(), RuleScheduling, "%s (key %q, operator %s) is not one of the copied pod's tolerations: a copy goes only where its source could", f, t.Key, t.Operator)
	}
	return nil
}

// defaultToleration is one the API server's DefaultTolerationSeconds
// admission adds to every pod.
func defaultToleration(t corev1.Toleration) bool {
	return (t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable) &&
		t.Operator == corev1.TolerationOpExists && t.Effect == corev1.TaintEffectNoExecute && t.Value == ""
}

// checkServiceAccount: a debug pod runs as the namespace's default service
// account; a copy may ask for its source's (kubectl copies it), but Sanitize
// makes it the default one too. Neither has its token mounted; no other
// identity is to be had by creating a pod.
func (c *Checker) checkServiceAccount(pod *corev1.Pod, source *corev1.Pod) error {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = pod.Spec.DeprecatedServiceAccount
	}
	want := "default"
	if source != nil && source.Spec.ServiceAccountName != "" && sa == source.Spec.ServiceAccountName {
		want = source.Spec.ServiceAccountName
	}
	if sa != "" && sa != want || pod.Spec.DeprecatedServiceAccount != "" && pod.Spec.DeprecatedServiceAccount != sa {
		return c.refuse("spec.serviceAccountName", RuleServiceAccount, "spec.serviceAccountName %q: a debug pod runs as service account %q", sa, want)
	}
	if a := pod.Spec.AutomountServiceAccountToken; a == nil || *a {
		return c.refuse("spec.automountServiceAccountToken", RuleServiceAccount, "spec.automountServiceAccountToken must be false: a debug pod gets no ServiceAccount token")
	}
	return nil
}

// copySource is the pod of sources the copy was made of: the one with the
// most containers the copy has unchanged, if any. A debug pod of a session,
// a pod of another namespace and the copy's namesake are none.
func copySource(pod *corev1.Pod, sources []corev1.Pod) *corev1.Pod {
	var best *corev1.Pod
	most := 0
	for i := range sources {
		src := &sources[i]
		if src.Name == pod.Name || src.Namespace != pod.Namespace || src.Labels[credentials.LabelSessionUID] != "" {
			continue
		}
		n := 0
		for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
			for j := range list {
				if copiedFrom(src, &list[j]) {
					n++
				}
			}
		}
		if n > most {
			best, most = src, n
		}
	}
	return best
}

// copiedFrom: src has a container (or init container) of ctr's name and
// image, with the same env and mounts (but for src's token volumes, which
// Sanitize removes from a copy).
func copiedFrom(src *corev1.Pod, ctr *corev1.Container) bool {
	tokens := tokenVolumes(&src.Spec)
	return slices.ContainsFunc(slices.Concat(src.Spec.InitContainers, src.Spec.Containers), func(s corev1.Container) bool {
		return s.Name == ctr.Name && s.Image == ctr.Image &&
			equality.Semantic.DeepEqual(s.Env, ctr.Env) && equality.Semantic.DeepEqual(s.EnvFrom, ctr.EnvFrom) &&
			equality.Semantic.DeepEqual(withoutTokens(s.VolumeMounts, tokens), ctr.VolumeMounts) &&
			equality.Semantic.DeepEqual(s.VolumeDevices, ctr.VolumeDevices)
	})
}

// DebugContainer is the first container of pod that is not its source's:
// the one to attach to.
func DebugContainer(pod, source *corev1.Pod) *corev1.Container {
	for i := range pod.Spec.Containers {
		if source == nil || !copiedFrom(source, &pod.Spec.Containers[i]) {
			return &pod.Spec.Containers[i]
		}
	}
	return &pod.Spec.Containers[0]
}

// CheckNodeLabels refuses a node debug pod on a node carrying a label the
// template denies (key, or key=value).
func (c *Checker) CheckNodeLabels(fld, node string, labels map[string]string) error {
	for _, l := range c.DeniedNodeLabels {
		k, v, hasValue := strings.Cut(l, "=")
		if got, ok := labels[k]; ok && (!hasValue || got == v) {
			return c.refuse(fld, RuleDeniedNodeLabels, "%s %q carries label %s=%s, which %s denies (deniedNodeLabels: %s)", fld, node, k, got, c.template(), strings.Join(c.DeniedNodeLabels, ", "))
		}
	}
	return nil
}

// CheckPodDelete: a debug session, whatever its mode, deletes only the pods
// it created (its copies and node debug pods), one by name.
func (c *Checker) CheckPodDelete(namespace, name string) error {
	var own []string
	for _, r := range c.Records {
		if r.Kind != string(KindPodCopy) && r.Kind != string(KindNodePod) {
			continue
		}
		if r.Namespace == namespace && r.Pod == name && name != "" {
			return nil
		}
		own = append(own, r.Namespace+"/"+r.Pod)
	}
	list := "none"
	if len(own) > 5 {
		own = append(own[:5], fmt.Sprintf("and %d more", len(own)-5))
	}
	if len(own) > 0 {
		list = strings.Join(own, ", ")
	}
	if name == "" {
		return c.refuse("metadata.name", RuleCreatedPods, "a debug session may not delete a collection of pods: it deletes the pods it created, by name (%s)", list)
	}
	return c.refuse("metadata.name", RuleCreatedPods, "pod %s/%s was not created by the session: a debug session deletes only the copies and node debug pods it created (%s)", namespace, name, list)
}
