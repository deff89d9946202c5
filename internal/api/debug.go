package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/apistatus"
	"sessiongate.dev/sessiongate/internal/authn"
	"sessiongate.dev/sessiongate/internal/authz"
	"sessiongate.dev/sessiongate/internal/kubectldebug"
	"sessiongate.dev/sessiongate/internal/registry"
)

// DebugEphemeralRequest is the body of POST .../debug/ephemeral.
type DebugEphemeralRequest struct {
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	Image     string `json:"image"`
	// Target is the container whose processes the debug container sees.
	Target string `json:"target,omitempty"`
	// Name of the container; default debugger-xxxxx.
	Name string `json:"name,omitempty"`
}

// DebugCopyRequest is the body of POST .../debug/copy.
type DebugCopyRequest struct {
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	Image     string `json:"image"`
	// Name of the copy; default <pod>-xxxxx.
	Name string `json:"name,omitempty"`
}

// DebugNodeRequest is the body of POST .../debug/node.
type DebugNodeRequest struct {
	Node  string `json:"node"`
	Image string `json:"image"`
	// HostNamespaces asks for the host's PID, network and IPC namespaces
	// and its root at /host, where the template allows them.
	HostNamespaces bool `json:"hostNamespaces,omitempty"`
}

// DebugResult says what a debug endpoint created.
type DebugResult struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	Container string `json:"container"`
	Image     string `json:"image"`
}

// debugTimeout bounds a debug endpoint's calls to the target.
const debugTimeout = 20 * time.Second

// debugAction judges and performs one kubectl-debug operation on the
// target, as the session.
type debugAction func(ctx context.Context, kube kubernetes.Interface, chk *kubectldebug.Checker, o kubectldebug.Owner) (*DebugResult, error)

// registerDebug adds the kubectl-debug endpoints.
func (h *Handler) registerDebug(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/sessions/{name}/debug/ephemeral", h.authed(h.debugEphemeral))
	mux.HandleFunc("POST /api/v1/sessions/{name}/debug/copy", h.authed(h.debugCopy))
	mux.HandleFunc("POST /api/v1/sessions/{name}/debug/node", h.authed(h.debugNode))
}

func (h *Handler) debugEphemeral(w http.ResponseWriter, r *http.Request, id *authn.Identity) {
	req := &DebugEphemeralRequest{}
	h.serveDebug(w, r, id, "debug ephemeral", req, ephemeralAction(req))
}

func (h *Handler) debugCopy(w http.ResponseWriter, r *http.Request, id *authn.Identity) {
	req := &DebugCopyRequest{}
	h.serveDebug(w, r, id, "debug copy", req, copyAction(req))
}

func (h *Handler) debugNode(w http.ResponseWriter, r *http.Request, id *authn.Identity) {
	req := &DebugNodeRequest{}
	h.serveDebug(w, r, id, "debug node", req, nodeAction(req))
}

// serveDebug serves a debug endpoint: the caller the session's owner or a
// participant, the session Active and of a template that allows kubectl
// debug, the body decoded into req, and act (which reads req) judged before
// anything is created on the target, as the session.
func (h *Handler) serveDebug(w http.ResponseWriter, r *http.Request, id *authn.Identity, verb string, req any, act debugAction) {
	name := r.PathValue("name")
	s, st := h.debugSession(r.Context(), name, id)
	if st != nil {
		h.refuse(w, r, id, verb, refOf(s, name), st)
		return
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(req); err != nil {
		h.refuse(w, r, id, verb, refOf(s, name), apierrors.NewBadRequest("request body: "+err.Error()))
		return
	}
	var sess *registry.Session
	if h.Registry != nil {
		sess, _ = h.Registry.Get(s.Name)
	}
	if sess == nil || sess.UID != s.UID {
		// Active a moment ago (or made again under the same name); this
		// replica serves it within seconds.
		apistatus.Write(w, apierrors.NewServiceUnavailable(fmt.Sprintf("session %s is not served by this replica yet: retry", s.Name)))
		return
	}
	b := sess.Backend()
	kube, err := kubectldebug.TargetClient(b.URL, b.Token, b.Transport)
	if err != nil {
		klog.ErrorS(err, "Building the target client", "session", s.Name)
		apistatus.Write(w, apierrors.NewInternalError(errors.New("the target could not be reached")))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), debugTimeout)
	defer cancel()
	res, err := act(ctx, kube, kubectldebug.New(s.Status.Debug), kubectldebug.Owner{Gateway: h.Gateway, Namespace: s.Namespace, Name: s.Name, UID: s.UID})
	if err != nil {
		h.refuse(w, r, id, verb, refOf(s, name), debugStatus(err, s.Name))
		return
	}
	item := kubectldebug.Created(kubectldebug.Kind(res.Kind), res.Namespace, res.Pod, res.Container, res.Image, id.Username, time.Now())
	// Recorded even if the caller goes away now: what was created is the
	// session's, and its status is what lets it be attached to and removed.
	recordCtx, cancelRecord := context.WithTimeout(context.WithoutCancel(r.Context()), debugTimeout)
	defer cancelRecord()
	if err := (&kubectldebug.Recorder{Client: h.Client, Reader: h.reader()}).Record(recordCtx, s.Namespace, s.Name, s.UID, item); err != nil {
		// Created on the target and labelled for the session: the leader
		// removes it at the end whether or not the status lists it.
		klog.ErrorS(err, "Recording what kubectl debug created", "session", s.Name, "pod", res.Pod)
	}
	klog.V(2).InfoS("Debug object created", "session", s.Name, "user", id.Username, "kind", res.Kind, "pod", res.Namespace+"/"+res.Pod, "container", res.Container, "image", res.Image)
	h.audit(r, id, verb, s, kubectldebug.Describe([]v1alpha1.DebugCreated{item}))
	writeJSON(w, http.StatusCreated, res)
}

// debugSession is the caller's Active debug session, or the answer: the
// same 404 as lookup to a caller who is neither owner, participant nor
// approver, 403 to an approver or viewer.
func (h *Handler) debugSession(ctx context.Context, name string, id *authn.Identity) (*v1alpha1.Session, *apierrors.StatusError) {
	s := &v1alpha1.Session{}
	err := h.reader().Get(ctx, client.ObjectKey{Namespace: h.Namespace, Name: name}, s)
	if err != nil && !apierrors.IsNotFound(err) {
		klog.ErrorS(err, "Reading session", "session", name)
		return nil, apierrors.NewInternalError(errors.New("the session could not be read"))
	}
	role := authz.None
	if err == nil {
		role = authz.RoleOf(id, s.Spec.Owner, s.Spec.Participants)
	}
	switch {
	case err != nil || role == authz.None && !visible(id, s):
		return nil, apierrors.NewNotFound(v1alpha1.GroupVersion.WithResource("sessions").GroupResource(), name)
	case role != authz.Owner && role != authz.Participant:
		return s, statusError(http.StatusForbidden, metav1.StatusReasonForbidden, fmt.Sprintf("only the owner or a participant of session %s may debug through it", name))
	case !authz.Admitted(id, role, guestsOf(s)):
		return s, statusError(http.StatusForbidden, metav1.StatusReasonForbidden, authz.NotAdmitted(name).Error())
	case s.Status.Phase != v1alpha1.PhaseActive:
		return s, statusError(http.StatusConflict, metav1.StatusReasonConflict, fmt.Sprintf("session %s is %s, not Active", name, phaseOf(s)))
	case s.Status.Debug == nil:
		return s, statusError(http.StatusForbidden, metav1.StatusReasonForbidden, fmt.Sprintf("session %s is not a debug session", name))
	}
	if err := kubectldebug.New(s.Status.Debug).CheckMode(); err != nil {
		return s, debugStatus(err, name)
	}
	return s, nil
}

// guestsOf is who the owner of s may let in, as its policy granted it.
func guestsOf(s *v1alpha1.Session) *v1alpha1.Subjects {
	if s.Status.Limits == nil {
		return nil
	}
	return s.Status.Limits.Guests
}

func phaseOf(s *v1alpha1.Session) v1alpha1.SessionPhase {
	if s.Status.Phase == "" {
		return v1alpha1.PhasePending
	}
	return s.Status.Phase
}

// debugStatus is the answer for a failed debug operation: the rule that
// refused it, the target's own answer, or a generic error.
func debugStatus(err error, session string) *apierrors.StatusError {
	var ke *kubectldebug.Error
	if errors.As(err, &ke) {
		if ke.Code == 0 && !ke.Invalid {
			return statusError(http.StatusForbidden, metav1.StatusReasonForbidden, fmt.Sprintf("session %s: %s", session, ke.Message))
		}
		return ke.Status("sessions", session)
	}
	var st *apierrors.StatusError
	if errors.As(err, &st) {
		return st
	}
	klog.ErrorS(err, "Debug operation failed", "session", session)
	return apierrors.NewInternalError(errors.New("the target could not be reached"))
}

// required checks that the named fields of a request are set and are names
// the target could hold.
func required(fields ...[2]string) error {
	for _, f := range fields {
		if f[1] == "" {
			return &kubectldebug.Error{Field: f[0], Invalid: true, Message: f[0] + ": Required value"}
		}
		if f[0] != "image" {
			if msgs := validation.IsDNS1123Subdomain(f[1]); len(msgs) > 0 {
				return &kubectldebug.Error{Field: f[0], Invalid: true, Message: fmt.Sprintf("%s: Invalid value: %q: %s", f[0], f[1], msgs[0])}
			}
		}
	}
	return nil
}

func ephemeralAction(req *DebugEphemeralRequest) debugAction {
	return func(ctx context.Context, kube kubernetes.Interface, chk *kubectldebug.Checker, _ kubectldebug.Owner) (*DebugResult, error) {
		if err := required([2]string{"namespace", req.Namespace}, [2]string{"pod", req.Pod}, [2]string{"image", req.Image}); err != nil {
			return nil, err
		}
		if err := chk.CheckNamespace(req.Namespace); err != nil {
			return nil, err
		}
		pods := kube.CoreV1().Pods(req.Namespace)
		before, err := pods.Get(ctx, req.Pod, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		after := before.DeepCopy()
		ec := kubectldebug.EphemeralContainer(before, req.Name, req.Image, req.Target, chk.OptionsFor())
		after.Spec.EphemeralContainers = append(after.Spec.EphemeralContainers, ec)
		if _, err := chk.CheckEphemeral(before, after); err != nil {
			return nil, err
		}
		// At the version judged: a pod changed meanwhile is a conflict.
		if _, err := pods.UpdateEphemeralContainers(ctx, req.Pod, after, metav1.UpdateOptions{}); err != nil {
			return nil, err
		}
		return &DebugResult{Kind: string(kubectldebug.KindEphemeral), Namespace: req.Namespace, Pod: req.Pod, Container: ec.Name, Image: ec.Image}, nil
	}
}

func copyAction(req *DebugCopyRequest) debugAction {
	return func(ctx context.Context, kube kubernetes.Interface, chk *kubectldebug.Checker, o kubectldebug.Owner) (*DebugResult, error) {
		if err := required([2]string{"namespace", req.Namespace}, [2]string{"pod", req.Pod}, [2]string{"image", req.Image}); err != nil {
			return nil, err
		}
		if req.Name != "" {
			if err := required([2]string{"name", req.Name}); err != nil {
				return nil, err
			}
		}
		if err := chk.CheckNamespace(req.Namespace); err != nil {
			return nil, err
		}
		pods := kube.CoreV1().Pods(req.Namespace)
		src, err := pods.Get(ctx, req.Pod, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		cp, cn := kubectldebug.PodCopy(src, req.Name, req.Image, chk.OptionsFor())
		return createPod(ctx, kube, chk, o, cp, cn, []corev1.Pod{*src})
	}
}

func nodeAction(req *DebugNodeRequest) debugAction {
	return func(ctx context.Context, kube kubernetes.Interface, chk *kubectldebug.Checker, o kubectldebug.Owner) (*DebugResult, error) {
		if err := required([2]string{"node", req.Node}, [2]string{"image", req.Image}); err != nil {
			return nil, err
		}
		p, cn := kubectldebug.NodePod(chk.Namespace, req.Node, req.Image, req.HostNamespaces, chk.OptionsFor())
		return createPod(ctx, kube, chk, o, p, cn, nil)
	}
}

// createPod judges pod as the proxy judges a pod kubectl debug creates
// (node labels read as the session, with kube), labels it for the session
// and creates it.
func createPod(ctx context.Context, kube kubernetes.Interface, chk *kubectldebug.Checker, o kubectldebug.Owner, pod *corev1.Pod, container string, sources []corev1.Pod) (*DebugResult, error) {
	kubectldebug.Sanitize(pod)
	kind, _, err := chk.CheckPodCreate(pod, sources)
	if err != nil {
		return nil, err
	}
	if kind == kubectldebug.KindNodePod {
		if err := chk.CheckNodeLabelsOn(ctx, kube, "node", pod.Spec.NodeName); err != nil {
			return nil, err
		}
	}
	kubectldebug.Label(pod, o, kind)
	created, err := kube.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	image := ""
	for _, c := range created.Spec.Containers {
		if c.Name == container {
			image = c.Image
		}
	}
	return &DebugResult{Kind: string(kind), Namespace: created.Namespace, Pod: created.Name, Container: container, Image: image}, nil
}
