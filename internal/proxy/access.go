package proxy

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/endpoints/request"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/authz"
)

// Rules named in the audit record of a request checkAccess refuses.
const (
	RuleViewer               = "viewer"
	RuleAllowedPodOperations = "allowedPodOperations"
	RuleDebugPods            = "debugPods"
)

// checkAccess holds a viewer to reading, and a debug session's pod
// operations (exec, attach, log, portforward) to its own debug pods and the
// operations its template allows. The target's RBAC, which the leader
// narrows to the same pods, refuses them again.
func checkAccess(session string, role authz.Role, d *v1alpha1.DebugStatus, info *request.RequestInfo, u *url.URL) (rule string, err *apierrors.StatusError) {
	if role == authz.Viewer && !reads(info) {
		what := "this request"
		if info != nil {
			what = info.Verb + " " + resourceOf(info)
		}
		return RuleViewer, apierrors.NewForbidden(schema.GroupResource{Group: groupOf(info), Resource: resourceOf(info)}, nameOf(info),
			fmt.Errorf("you are a viewer of session %s: viewers may only get, list, watch (no Secrets) and read logs, not %s", session, what))
	}
	if d == nil || info == nil || !info.IsResourceRequest || info.APIGroup != "" || info.Resource != "pods" {
		return "", nil
	}
	op := info.Subresource
	switch op {
	case "exec", "attach", "log", "portforward":
	case "proxy":
		// A pod's proxy reaches its ports as port-forward does.
		op = "portforward"
	default:
		return "", nil
	}
	gr := schema.GroupResource{Resource: "pods/" + op}
	pod := info.Namespace + "/" + info.Name
	switch {
	case isDebugPod(d, info.Namespace, info.Name):
		if !allows(d.Operations, op) {
			return RuleAllowedPodOperations, apierrors.NewForbidden(gr, info.Name,
				fmt.Errorf("session %s may not %s pod %s: template %s allows only %s on its debug pods", session, verbOf(op), pod, d.Template, describeOps(d.Operations)))
		}
	case isCreated(d, info.Namespace, info.Name):
		// What kubectl debug made through the session is attached to,
		// exec'd into and read like kubectl debug itself does; in a pod
		// that only received an ephemeral container, that container alone.
		if !allows(d.Operations, op) {
			return RuleAllowedPodOperations, apierrors.NewForbidden(gr, info.Name,
				fmt.Errorf("session %s may not %s pod %s: template %s allows only %s", session, verbOf(op), pod, d.Template, describeOps(d.Operations)))
		}
		if own := ownContainers(d, info.Namespace, info.Name); own != nil {
			if c := u.Query().Get("container"); !slices.Contains(own, c) {
				return RuleDebugPods, apierrors.NewForbidden(gr, info.Name,
					fmt.Errorf("session %s may %s pod %s only in the ephemeral containers it added (%s), not %q", session, verbOf(op), pod, strings.Join(own, ", "), c))
			}
		}
	default:
		return RuleDebugPods, apierrors.NewForbidden(gr, info.Name,
			fmt.Errorf("session %s may not %s pod %s: it is not one of the session's debug pods (%s)", session, verbOf(op), pod, describePods(d)))
	}
	return "", nil
}

// reads: discovery and version reads, and get, list and watch of resources
// and their logs and status. Not proxy, exec, attach or port-forward, which
// are reads by method only.
func reads(info *request.RequestInfo) bool {
	if info == nil {
		return false
	}
	if !info.IsResourceRequest {
		return info.Verb == "get"
	}
	switch info.Verb {
	case "get", "list", "watch":
	default:
		return false
	}
	if info.Resource == "secrets" && info.APIGroup == "" {
		// Reading a Secret is reading a credential: no viewer's business.
		return false
	}
	switch info.Subresource {
	case "", "status":
		return true
	case "log":
		return info.Resource == "pods" && info.APIGroup == ""
	}
	return false
}

func isDebugPod(d *v1alpha1.DebugStatus, ns, name string) bool {
	for _, p := range d.Pods {
		if p.Namespace == ns && p.Name == name {
			return true
		}
	}
	return false
}

// ownContainers are the ephemeral containers the session added to a pod it
// did not make, or nil when it made the pod (a copy or a node pod).
func ownContainers(d *v1alpha1.DebugStatus, ns, name string) []string {
	var own []string
	for _, c := range d.Created {
		if c.Namespace != ns || c.Pod != name {
			continue
		}
		if c.Kind != "EphemeralContainer" {
			return nil
		}
		own = append(own, c.Container)
	}
	return own
}

func isCreated(d *v1alpha1.DebugStatus, ns, name string) bool {
	for _, c := range d.Created {
		if c.Namespace == ns && c.Pod == name {
			return true
		}
	}
	return false
}

func allows(o v1alpha1.PodOperations, op string) bool {
	switch op {
	case "exec":
		return o.Exec
	case "attach":
		return o.Attach
	case "log":
		return o.Logs
	case "portforward":
		return o.PortForward
	}
	return false
}

func describeOps(o v1alpha1.PodOperations) string {
	var ops []string
	for _, c := range []struct {
		on   bool
		name string
	}{{o.Exec, "exec"}, {o.Attach, "attach"}, {o.Logs, "logs"}, {o.PortForward, "port-forward"}} {
		if c.on {
			ops = append(ops, c.name)
		}
	}
	if len(ops) == 0 {
		return "nothing"
	}
	return strings.Join(ops, ", ")
}

func describePods(d *v1alpha1.DebugStatus) string {
	if len(d.Pods) == 0 {
		return "none"
	}
	const shown = 5
	var names []string
	for i, p := range d.Pods {
		if i == shown {
			names = append(names, fmt.Sprintf("and %d more", len(d.Pods)-shown))
			break
		}
		names = append(names, p.Namespace+"/"+p.Name)
	}
	return strings.Join(names, ", ")
}

func verbOf(op string) string {
	switch op {
	case "exec":
		return "exec into"
	case "attach":
		return "attach to"
	case "log":
		return "read the logs of"
	}
	return "port-forward"
}

func resourceOf(info *request.RequestInfo) string {
	if info == nil {
		return ""
	}
	if !info.IsResourceRequest {
		return info.Path
	}
	if info.Subresource != "" {
		return info.Resource + "/" + info.Subresource
	}
	return info.Resource
}

func groupOf(info *request.RequestInfo) string {
	if info == nil {
		return ""
	}
	return info.APIGroup
}

func nameOf(info *request.RequestInfo) string {
	if info == nil {
		return ""
	}
	return info.Name
}
