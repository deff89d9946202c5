// Package kubectldebug owns the rules of kubectl-debug mode: what a debug
// session may create on its target (ephemeral containers, pod copies, node
// debug pods) under its template's KubectlDebugRules, the objects the gateway
// builds for its own REST endpoints, and the labels and status records that
// let the leader remove them at the end. Everything here but Recorder is pure:
// the proxy and the REST API decide with the same functions.
package kubectldebug

import (
	"fmt"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/credentials"
)

// Kind is what kubectl-debug mode made, as status.debug.created names it.
type Kind string

const (
	KindEphemeral Kind = "EphemeralContainer"
	KindPodCopy   Kind = "PodCopy"
	KindNodePod   Kind = "NodePod"
)

// Rules that refuse, as Error.Rule and audit records name them: the fields
// of KubectlDebugRules and DebugStatus they come from.
const (
	RuleMode                = "mode"
	RuleNamespace           = "namespace"
	RuleEphemeral           = "ephemeral"
	RuleCopy                = "copy"
	RuleNode                = "node"
	RuleImages              = "images"
	RuleRequireDigest       = "requireDigest"
	RuleAllowPrivileged     = "allowPrivileged"
	RuleAllowedCapabilities = "allowedCapabilities"
	RuleRequireRunAsNonRoot = "requireRunAsNonRoot"
	RuleAllowHostNamespaces = "allowHostNamespaces"
	RuleDeniedNodes         = "deniedNodes"
	RuleServiceAccount      = "serviceAccount"
	RuleMaxCreated          = "maxCreated"
)

// MaxCreated is how many objects one session may create through
// kubectl-debug mode: status.debug.created stays small.
const MaxCreated = 128

// Error is a refusal that names the field and the rule.
type Error struct {
	// Field is the request's field, e.g. spec.ephemeralContainers[0].image.
	Field string
	// Rule is the template rule that refused it (Rule* constants).
	Rule string
	// Message says both, for the caller.
	Message string
	// Invalid: the request is malformed (400) rather than refused (403).
	Invalid bool
	// Code, if set, is the HTTP status instead (415 for a body the
	// gateway does not read).
	Code int32
}

func (e *Error) Error() string { return e.Message }

// Status is the Kubernetes Status a caller gets for the refusal: 403
// Forbidden, or 400 BadRequest for a malformed request.
func (e *Error) Status(resource, name string) *apierrors.StatusError {
	if e.Code == http.StatusUnsupportedMediaType {
		return &apierrors.StatusError{ErrStatus: metav1.Status{
			Status: metav1.StatusFailure, Code: http.StatusUnsupportedMediaType, Reason: metav1.StatusReasonUnsupportedMediaType, Message: e.Message,
		}}
	}
	if e.Invalid {
		return apierrors.NewBadRequest(e.Message)
	}
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden,
		Message: fmt.Sprintf("%s %q is forbidden: %s", resource, name, e.Message),
		Details: &metav1.StatusDetails{Name: name, Kind: resource},
	}}
}

// Checker judges requests of one debug session.
type Checker struct {
	// Template names the session's template in messages.
	Template string
	// Mode is the template's mode.
	Mode v1alpha1.DebugMode
	// Namespace is the only namespace the session acts in.
	Namespace string
	// Rules are the template's kubectlDebug rules; nil allows nothing.
	Rules *v1alpha1.KubectlDebugRules
	// DeniedNodes (globs) never run a debug pod.
	DeniedNodes []string
	// Created is how many objects the session has created so far.
	Created int
}

// New is the checker for a session's status.debug, with the template's
// denied nodes as snapshotted there.
func New(st *v1alpha1.DebugStatus) *Checker {
	if st == nil {
		return &Checker{}
	}
	return &Checker{Template: st.Template, Mode: st.Mode, Namespace: st.Namespace, Rules: st.KubectlDebug, DeniedNodes: st.DeniedNodes, Created: len(st.Created)}
}

func (c *Checker) template() string {
	if c.Template == "" {
		return "the session's template"
	}
	return "template " + c.Template
}

func (c *Checker) refuse(fld, rule, format string, args ...any) *Error {
	return &Error{Field: fld, Rule: rule, Message: fmt.Sprintf(format, args...)}
}

func invalid(fld, format string, args ...any) *Error {
	return &Error{Field: fld, Message: fmt.Sprintf(format, args...), Invalid: true}
}

// CheckMode refuses every kubectl-debug operation of a session whose
// template does not allow them, and of one that has created its fill.
func (c *Checker) CheckMode() error {
	switch {
	case c.Mode != v1alpha1.ModeKubectlDebug && c.Mode != v1alpha1.ModeHybrid:
		mode := string(c.Mode)
		if mode == "" {
			mode = "none"
		}
		return c.refuse("", RuleMode, "the session's %s does not allow kubectl debug (mode %s)", c.template(), mode)
	case c.Rules == nil:
		return c.refuse("", RuleMode, "the session's %s has no kubectlDebug rules", c.template())
	case c.Created >= MaxCreated:
		return c.refuse("", RuleMaxCreated, "the session has created %d objects through kubectl debug, the most a session may", c.Created)
	}
	return nil
}

// CheckNamespace: a debug session acts only in its namespace.
func (c *Checker) CheckNamespace(ns string) error {
	if c.Namespace == "" {
		return c.refuse("metadata.namespace", RuleNamespace, "the session has no debug namespace yet")
	}
	if ns != c.Namespace {
		return c.refuse("metadata.namespace", RuleNamespace, "namespace %q is not the session's debug namespace %q: a debug session acts only in its namespace", ns, c.Namespace)
	}
	return nil
}

// CheckNode refuses a node the template denies.
func (c *Checker) CheckNode(fld, node string) error {
	for _, g := range c.DeniedNodes {
		if ok, err := path.Match(g, node); ok && err == nil {
			return c.refuse(fld, RuleDeniedNodes, "%s %q is denied by %s (deniedNodes: %s)", fld, node, c.template(), strings.Join(c.DeniedNodes, ", "))
		}
	}
	return nil
}

// digest is how requireDigest wants an image pinned.
var digest = regexp.MustCompile(`@sha256:[0-9a-f]{64}$`)

// CheckImage: the reference as written must match one of the template's
// globs (path.Match: "*" stops at "/", so busybox:* is no
// evil.io/busybox:1), and carry a sha256 digest when the template wants one.
func (c *Checker) CheckImage(fld, image string) error {
	r := c.Rules
	if image == "" {
		return invalid(fld, "%s: an image is required", fld)
	}
	if strings.TrimSpace(image) != image || strings.ContainsFunc(image, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return invalid(fld, "%s %q is not an image reference", fld, image)
	}
	if !slices.ContainsFunc(r.Images, func(g string) bool { ok, err := path.Match(g, image); return ok && err == nil }) {
		return c.refuse(fld, RuleImages, "%s %q is not allowed by %s (allowed: %s)", fld, image, c.template(), strings.Join(r.Images, ", "))
	}
	if r.RequireDigest && !digest.MatchString(image) {
		return c.refuse(fld, RuleRequireDigest, "%s %q is not pinned by digest (@sha256: and 64 hex digits), as %s requires", fld, image, c.template())
	}
	return nil
}

// capability is a capability's name as compared: upper case, no CAP_.
func capability(s string) string {
	s = strings.ToUpper(strings.TrimSpace(s))
	return strings.TrimPrefix(s, "CAP_")
}

// CheckContainer applies the template's rules to a container (an ephemeral
// container is one too: (*corev1.Container)(&ec.EphemeralContainerCommon))
// at fld in a pod of spec: its image (unless copied, an unchanged
// container of the pod it copies), privileges, capabilities, user, and
// the pod volumes it mounts (hostPath only where hostPaths).
func (c *Checker) CheckContainer(fld *field.Path, ctr *corev1.Container, spec *corev1.PodSpec, copied, hostPaths bool) error {
	r := c.Rules
	if !copied {
		if err := c.CheckImage(fld.Child("image").String(), ctr.Image); err != nil {
			return err
		}
	}
	sc := ctr.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	scf := fld.Child("securityContext")
	if !r.AllowPrivileged {
		if sc.Privileged != nil && *sc.Privileged {
			return c.refuse(scf.Child("privileged").String(), RuleAllowPrivileged, "%s: privileged containers are not allowed by %s", scf.Child("privileged"), c.template())
		}
		if sc.AllowPrivilegeEscalation != nil && *sc.AllowPrivilegeEscalation {
			return c.refuse(scf.Child("allowPrivilegeEscalation").String(), RuleAllowPrivileged, "%s: privilege escalation is not allowed by %s (allowPrivileged is false)", scf.Child("allowPrivilegeEscalation"), c.template())
		}
		if sc.ProcMount != nil && *sc.ProcMount == corev1.UnmaskedProcMount {
			return c.refuse(scf.Child("procMount").String(), RuleAllowPrivileged, "%s: an unmasked /proc is not allowed by %s (allowPrivileged is false)", scf.Child("procMount"), c.template())
		}
		if sp := sc.SeccompProfile; sp != nil && sp.Type == corev1.SeccompProfileTypeUnconfined {
			return c.refuse(scf.Child("seccompProfile").String(), RuleAllowPrivileged, "%s: an unconfined seccomp profile is not allowed by %s (allowPrivileged is false)", scf.Child("seccompProfile"), c.template())
		}
		if ap := sc.AppArmorProfile; ap != nil && ap.Type == corev1.AppArmorProfileTypeUnconfined {
			return c.refuse(scf.Child("appArmorProfile").String(), RuleAllowPrivileged, "%s: an unconfined AppArmor profile is not allowed by %s (allowPrivileged is false)", scf.Child("appArmorProfile"), c.template())
		}
	}
	if caps := sc.Capabilities; caps != nil {
		allowed := make([]string, len(r.AllowedCapabilities))
		for i, a := range r.AllowedCapabilities {
			allowed[i] = capability(a)
		}
		for i, add := range caps.Add {
			if !slices.Contains(allowed, capability(string(add))) {
				f := scf.Child("capabilities", "add").Index(i)
				list := "none"
				if len(r.AllowedCapabilities) > 0 {
					list = strings.Join(r.AllowedCapabilities, ", ")
				}
				return c.refuse(f.String(), RuleAllowedCapabilities, "%s %q is not allowed by %s (allowedCapabilities: %s)", f, add, c.template(), list)
			}
		}
	}
	if r.RequireRunAsNonRoot {
		var podSC corev1.PodSecurityContext
		if spec.SecurityContext != nil {
			podSC = *spec.SecurityContext
		}
		nonRoot, user := podSC.RunAsNonRoot, podSC.RunAsUser
		if sc.RunAsNonRoot != nil {
			nonRoot = sc.RunAsNonRoot
		}
		if sc.RunAsUser != nil {
			user = sc.RunAsUser
		}
		if nonRoot == nil || !*nonRoot {
			return c.refuse(scf.Child("runAsNonRoot").String(), RuleRequireRunAsNonRoot, "%s must be true (in the container or the pod), as %s requires", scf.Child("runAsNonRoot"), c.template())
		}
		if user != nil && *user == 0 {
			return c.refuse(scf.Child("runAsUser").String(), RuleRequireRunAsNonRoot, "%s is 0 (root), which %s does not allow (requireRunAsNonRoot)", scf.Child("runAsUser"), c.template())
		}
	}
	for i, m := range ctr.VolumeMounts {
		if v := volume(spec, m.Name); v != nil && v.HostPath != nil && !hostPaths {
			f := fld.Child("volumeMounts").Index(i)
			return c.refuse(f.String(), RuleAllowHostNamespaces, "%s mounts hostPath volume %q, which %s allows only in node debug pods with allowHostNamespaces", f, m.Name, c.template())
		}
	}
	return nil
}

func volume(spec *corev1.PodSpec, name string) *corev1.Volume {
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i]
		}
	}
	return nil
}

// CheckEphemeral judges what an ephemeralcontainers write makes of pod
// before: every ephemeral container in after that before lacks must pass
// the rules, and none that before has may change. It returns the new ones.
func (c *Checker) CheckEphemeral(before, after *corev1.Pod) ([]corev1.EphemeralContainer, error) {
	if err := c.CheckMode(); err != nil {
		return nil, err
	}
	if err := c.CheckNamespace(before.Namespace); err != nil {
		return nil, err
	}
	if !c.Rules.Ephemeral {
		return nil, c.refuse("spec.ephemeralContainers", RuleEphemeral, "ephemeral containers are not allowed by %s", c.template())
	}
	old := map[string]*corev1.EphemeralContainer{}
	for i := range before.Spec.EphemeralContainers {
		old[before.Spec.EphemeralContainers[i].Name] = &before.Spec.EphemeralContainers[i]
	}
	names := map[string]bool{}
	for _, ctr := range slices.Concat(before.Spec.Containers, before.Spec.InitContainers) {
		names[ctr.Name] = true
	}
	var added []corev1.EphemeralContainer
	list := field.NewPath("spec", "ephemeralContainers")
	for i := range after.Spec.EphemeralContainers {
		ec := &after.Spec.EphemeralContainers[i]
		f := list.Index(i)
		if prev, ok := old[ec.Name]; ok {
			if !equalEphemeral(prev, ec) {
				return nil, invalid(f.String(), "%s: ephemeral container %q exists and cannot be changed", f, ec.Name)
			}
			delete(old, ec.Name)
			continue
		}
		if ec.Name == "" || names[ec.Name] {
			return nil, invalid(f.Child("name").String(), "%s %q: a new ephemeral container needs a name no other container of the pod has", f.Child("name"), ec.Name)
		}
		names[ec.Name] = true
		if err := c.CheckContainer(f, (*corev1.Container)(&ec.EphemeralContainerCommon), &before.Spec, false, false); err != nil {
			return nil, err
		}
		added = append(added, *ec)
	}
	for name := range old {
		return nil, invalid(list.String(), "%s: ephemeral container %q cannot be removed", list, name)
	}
	if len(added) == 0 {
		return nil, invalid(list.String(), "%s: the request adds no ephemeral container", list)
	}
	return added, nil
}

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

// CheckPodCreate judges a pod created in a debug session's namespace: a
// node debug pod (rules.node) or a copy (rules.copy) of one of sources,
// the pods of the namespace. A container of a copy that is unchanged from
// the source's (same name and image) keeps its image without the image
// rules; every other rule holds for every container. It returns the pod's
// kind and, for a copy, its source (nil when every container passes alone).
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
		for i, v := range spec.Volumes {
			if v.HostPath != nil {
				f := field.NewPath("spec", "volumes").Index(i)
				return kind, nil, c.refuse(f.String(), RuleAllowHostNamespaces, "%s: hostPath volume %q is allowed by %s only in node debug pods with allowHostNamespaces", f, v.Name, c.template())
			}
		}
	}
	var source *corev1.Pod
	if kind == KindPodCopy {
		source = copySource(c, pod, sources)
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
			copied := source != nil && hasContainer(source, ctr)
			if err := c.CheckContainer(f, ctr, spec, copied, hostOK); err != nil {
				return kind, nil, err
			}
		}
	}
	if err := c.checkServiceAccount(pod, source); err != nil {
		return kind, nil, err
	}
	return kind, source, nil
}

// checkServiceAccount: a debug pod runs as the namespace's default service
// account, a copy as its source's; no other identity is to be had by
// creating a pod.
func (c *Checker) checkServiceAccount(pod *corev1.Pod, source *corev1.Pod) error {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = pod.Spec.DeprecatedServiceAccount
	}
	want := "default"
	if source != nil && source.Spec.ServiceAccountName != "" {
		want = source.Spec.ServiceAccountName
	}
	if sa != "" && sa != want || pod.Spec.DeprecatedServiceAccount != "" && pod.Spec.DeprecatedServiceAccount != sa {
		return c.refuse("spec.serviceAccountName", RuleServiceAccount, "spec.serviceAccountName %q: a debug pod runs as service account %q", sa, want)
	}
	return nil
}

// copySource is the pod of sources that the copy's containers with images
// the rules refuse were copied from: the first whose containers (same name,
// same image) cover all of them.
func copySource(c *Checker, pod *corev1.Pod, sources []corev1.Pod) *corev1.Pod {
	var foreign []*corev1.Container
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			if c.CheckImage("image", list[i].Image) != nil {
				foreign = append(foreign, &list[i])
			}
		}
	}
	if len(foreign) == 0 {
		return nil
	}
	for i := range sources {
		src := &sources[i]
		if src.Name == pod.Name || src.Namespace != pod.Namespace || src.Labels[credentials.LabelSessionUID] != "" {
			// A copy is of a pod of the namespace that is not itself a
			// debug pod.
			continue
		}
		if !slices.ContainsFunc(foreign, func(ctr *corev1.Container) bool { return !hasContainer(src, ctr) }) {
			return src
		}
	}
	return nil
}

// DebugContainer is the first container of pod that is not its source's:
// the one to attach to.
func DebugContainer(pod, source *corev1.Pod) *corev1.Container {
	for i := range pod.Spec.Containers {
		if source == nil || !hasContainer(source, &pod.Spec.Containers[i]) {
			return &pod.Spec.Containers[i]
		}
	}
	return &pod.Spec.Containers[0]
}

// hasContainer: src has a container (or init container) of ctr's name and
// image.
func hasContainer(src *corev1.Pod, ctr *corev1.Container) bool {
	return slices.ContainsFunc(slices.Concat(src.Spec.InitContainers, src.Spec.Containers), func(s corev1.Container) bool {
		return s.Name == ctr.Name && s.Image == ctr.Image
	})
}

// equalEphemeral: the API server refuses every change to an existing
// ephemeral container too, so a strict comparison is no loss.
func equalEphemeral(a, b *corev1.EphemeralContainer) bool { return equality.Semantic.DeepEqual(a, b) }

// describe is one created object for the audit log: kind ns/pod[/container] image.
func describe(kind Kind, ns, pod, container, image string) string {
	s := string(kind) + " " + ns + "/" + pod
	if container != "" {
		s += "/" + container
	}
	return s + " " + strconv.Quote(image)
}
