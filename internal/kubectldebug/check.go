// Package kubectldebug owns the rules of kubectl-debug mode: what a debug
// session may create on its target (ephemeral containers, pod copies, node
// debug pods) under its template's KubectlDebugRules, the objects the gateway
// builds for its own REST endpoints, and the labels and status records that
// let the leader remove them at the end. Everything here but Recorder is pure:
// the proxy and the REST API decide with the same functions.
package kubectldebug

import (
	"encoding/json"
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
	RuleDeniedNodeLabels    = "deniedNodeLabels"
	RuleServiceAccount      = "serviceAccount"
	RuleMaxCreated          = "maxCreated"
	// RuleSecrets: a container the session adds reads no Secret or
	// ConfigMap through its env, and mounts none of the pod's volumes.
	RuleSecrets = "secrets"
	// RuleVolumes: a created pod adds only emptyDir (and, where allowed,
	// hostPath) volumes of its own.
	RuleVolumes = "volumes"
	// RuleScheduling: a copy is placed by the scheduler, as its source
	// would be, with no toleration or priority of its own.
	RuleScheduling = "scheduling"
	// RuleRuntimeClass: a copy runs in its source's runtime class, a node
	// debug pod in the default one.
	RuleRuntimeClass = "runtimeClassName"
	// RuleCreatedPods: a debug session deletes only the pods it created.
	RuleCreatedPods = "createdPods"
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
	// DeniedNodeLabels (key or key=value): no node debug pod runs on a
	// node carrying one.
	DeniedNodeLabels []string
	// Created is how many objects the session has created so far.
	Created int
	// Records are what the session created, as status.debug.created lists
	// them.
	Records []v1alpha1.DebugCreated
}

// New is the checker for a session's status.debug, with the template's
// denied nodes as snapshotted there.
func New(st *v1alpha1.DebugStatus) *Checker {
	if st == nil {
		return &Checker{}
	}
	return &Checker{
		Template: st.Template, Mode: st.Mode, Namespace: st.Namespace, Rules: st.KubectlDebug,
		DeniedNodes: st.DeniedNodes, DeniedNodeLabels: st.DeniedNodeLabels,
		Created: len(st.Created), Records: st.Created,
	}
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

// Origin is what a container judged may keep of the pod it is in.
type Origin struct {
	// Copied: an unchanged container of the pod a copy copies (same name,
	// image, env and mounts). It keeps its image without the image rules,
	// and its env and mounts: the copy is that pod as it was.
	Copied bool
	// Host: the pod may reach into its node — mount hostPath volumes and
	// bind host ports (node debug pods with allowHostNamespaces).
	Host bool
	// Own are the volumes the request itself adds to the pod, not the
	// joined or copied pod's: an added container may mount their
	// emptyDirs, and no other volume.
	Own map[string]bool
}

// CheckContainer applies the template's rules to a container (an ephemeral
// container is one too: (*corev1.Container)(&ec.EphemeralContainerCommon))
// at fld in a pod of spec: its image (unless copied), privileges,
// capabilities, user, host ports and hostPath mounts (node debug pods with
// allowHostNamespaces only), and, for a container the session adds, what it reads:
// no Secret or ConfigMap through its env, no volume of the pod but an
// emptyDir of its own or (where allowed) a hostPath.
func (c *Checker) CheckContainer(fld *field.Path, ctr *corev1.Container, spec *corev1.PodSpec, o Origin) error {
	r := c.Rules
	if !o.Copied {
		if err := c.CheckImage(fld.Child("image").String(), ctr.Image); err != nil {
			return err
		}
	}
	if err := c.checkSecurityContext(fld.Child("securityContext"), ctr.SecurityContext, spec.SecurityContext); err != nil {
		return err
	}
	sc := ctr.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	scf := fld.Child("securityContext")
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
	for i, m := range ctr.VolumeMounts {
		if v := volume(spec, m.Name); v != nil && v.HostPath != nil && !o.Host {
			f := fld.Child("volumeMounts").Index(i)
			return c.refuse(f.String(), RuleAllowHostNamespaces, "%s mounts hostPath volume %q, which %s allows only in node debug pods with allowHostNamespaces", f, m.Name, c.template())
		}
	}
	for i, p := range ctr.Ports {
		if p.HostPort != 0 && !o.Host {
			f := fld.Child("ports").Index(i).Child("hostPort")
			return c.refuse(f.String(), RuleAllowHostNamespaces, "%s %d binds a port of the node, which %s allows only in node debug pods with allowHostNamespaces", f, p.HostPort, c.template())
		}
	}
	if o.Copied {
		return nil
	}
	if err := c.checkEnv(fld, ctr); err != nil {
		return err
	}
	for i, m := range ctr.VolumeMounts {
		v := volume(spec, m.Name)
		if v != nil && (v.HostPath != nil || v.EmptyDir != nil && o.Own[m.Name]) {
			continue
		}
		f := fld.Child("volumeMounts").Index(i)
		return c.refuse(f.String(), RuleSecrets, "%s mounts %s volume %q of the pod: a container the session adds may mount only an emptyDir volume the request adds itself, never the pod's secrets, tokens, config or storage", f, volumeKind(v), m.Name)
	}
	if len(ctr.VolumeDevices) > 0 {
		f := fld.Child("volumeDevices").Index(0)
		return c.refuse(f.String(), RuleSecrets, "%s: a container the session adds may not use the pod's block devices (volume %q)", f, ctr.VolumeDevices[0].Name)
	}
	return nil
}

// checkEnv: a container the session adds takes its env from literal values
// and the downward API only: a Secret or ConfigMap its env named would be
// read with the pod's rights, which the session's own need not include.
func (c *Checker) checkEnv(fld *field.Path, ctr *corev1.Container) error {
	for i, e := range ctr.Env {
		vf := e.ValueFrom
		if vf == nil {
			continue
		}
		f := fld.Child("env").Index(i).Child("valueFrom")
		var what string
		switch {
		case vf.SecretKeyRef != nil:
			f, what = f.Child("secretKeyRef"), fmt.Sprintf("Secret %q", vf.SecretKeyRef.Name)
		case vf.ConfigMapKeyRef != nil:
			f, what = f.Child("configMapKeyRef"), fmt.Sprintf("ConfigMap %q", vf.ConfigMapKeyRef.Name)
		case vf.FileKeyRef != nil:
			f, what = f.Child("fileKeyRef"), fmt.Sprintf("a file of volume %q", vf.FileKeyRef.VolumeName)
		default:
			continue
		}
		return c.refuse(f.String(), RuleSecrets, "%s: a container the session adds may not read %s (env from value, fieldRef and resourceFieldRef only)", f, what)
	}
	for i, e := range ctr.EnvFrom {
		f := fld.Child("envFrom").Index(i)
		switch {
		case e.SecretRef != nil:
			return c.refuse(f.Child("secretRef").String(), RuleSecrets, "%s: a container the session adds may not read Secret %q", f.Child("secretRef"), e.SecretRef.Name)
		case e.ConfigMapRef != nil:
			return c.refuse(f.Child("configMapRef").String(), RuleSecrets, "%s: a container the session adds may not read ConfigMap %q", f.Child("configMapRef"), e.ConfigMapRef.Name)
		}
	}
	return nil
}

// unconfined names the first of a container's or a pod's settings that
// loosens its confinement, and what it is; "" when none does.
func unconfined(seccomp *corev1.SeccompProfile, apparmor *corev1.AppArmorProfile, selinux *corev1.SELinuxOptions, windows *corev1.WindowsSecurityContextOptions) (fld, what string) {
	switch {
	case seccomp != nil && seccomp.Type == corev1.SeccompProfileTypeUnconfined:
		return "seccompProfile", "an unconfined seccomp profile is"
	case apparmor != nil && apparmor.Type == corev1.AppArmorProfileTypeUnconfined:
		return "appArmorProfile", "an unconfined AppArmor profile is"
	case selinux != nil:
		return "seLinuxOptions", "an SELinux label of the caller's choosing is"
	case windows != nil && windows.HostProcess != nil && *windows.HostProcess:
		return "windowsOptions.hostProcess", "a Windows host process is"
	}
	return "", ""
}

// checkSecurityContext holds a container's security context, over its
// pod's, to the template's privilege rules.
func (c *Checker) checkSecurityContext(scf *field.Path, sc *corev1.SecurityContext, pod *corev1.PodSecurityContext) error {
	r := c.Rules
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	if !r.AllowPrivileged {
		priv := func(fld, what string) error {
			return c.refuse(scf.Child(fld).String(), RuleAllowPrivileged, "%s: %s not allowed by %s (allowPrivileged is false)", scf.Child(fld), what, c.template())
		}
		switch {
		case sc.Privileged != nil && *sc.Privileged:
			return c.refuse(scf.Child("privileged").String(), RuleAllowPrivileged, "%s: privileged containers are not allowed by %s", scf.Child("privileged"), c.template())
		case sc.AllowPrivilegeEscalation != nil && *sc.AllowPrivilegeEscalation:
			return priv("allowPrivilegeEscalation", "privilege escalation is")
		case sc.ProcMount != nil && *sc.ProcMount == corev1.UnmaskedProcMount:
			return priv("procMount", "an unmasked /proc is")
		}
		if fld, what := unconfined(sc.SeccompProfile, sc.AppArmorProfile, sc.SELinuxOptions, sc.WindowsOptions); fld != "" {
			return priv(fld, what)
		}
	}
	if r.RequireRunAsNonRoot {
		var podSC corev1.PodSecurityContext
		if pod != nil {
			podSC = *pod
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
	return nil
}

// volumeKind names the source of v as its field does: secret, projected, ….
func volumeKind(v *corev1.Volume) string {
	if v == nil {
		return "a missing"
	}
	b, err := json.Marshal(v.VolumeSource)
	var m map[string]json.RawMessage
	if err != nil || json.Unmarshal(b, &m) != nil || len(m) != 1 {
		return "a"
	}
	for k := range m {
		return k
	}
	return "a"
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
	// A container added to a pod runs on the pod's node.
	if node := before.Spec.NodeName; node != "" {
		if err := c.CheckNode("spec.nodeName", node); err != nil {
			return nil, err
		}
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
		if err := c.CheckContainer(f, (*corev1.Container)(&ec.EphemeralContainerCommon), &before.Spec, Origin{}); err != nil {
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
