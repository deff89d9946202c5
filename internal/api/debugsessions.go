package api

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/apistatus"
	"sessiongate.dev/sessiongate/internal/authn"
	"sessiongate.dev/sessiongate/internal/credentials"
	"sessiongate.dev/sessiongate/internal/debug"
	"sessiongate.dev/sessiongate/internal/entitlement"
)

// +kubebuilder:rbac:groups=sessiongate.dev,namespace=sessiongate,resources=debugsessiontemplates;debugpodtemplates,verbs=get;list;watch

// createDebug requests a debug session: the template judges who may ask
// and resolves the namespace, variables and scheduling option, all before
// the Session exists, so that the requester hears at once what is wrong.
func (h *Handler) createDebug(w http.ResponseWriter, r *http.Request, id *authn.Identity, s *v1alpha1.Session, req *SessionRequest, refuse func(*apierrors.StatusError)) {
	if !reflect.DeepEqual(req.AccessLevel, v1alpha1.AccessLevel{}) || req.Policy != "" {
		refuse(apierrors.NewBadRequest("a debug session request names debug.template; accessLevel and policy are for other requests"))
		return
	}
	cluster, err := h.cluster(r.Context(), req.Cluster)
	if err != nil {
		apistatus.Write(w, apierrors.NewInternalError(errors.New("the request could not be checked")))
		return
	}
	t, pt, err := debug.Load(r.Context(), h.Client, h.Namespace, req.Debug.Template)
	if errors.Is(err, debug.ErrNoTemplate) || errors.Is(err, debug.ErrNoPodTemplate) {
		// A template made a moment ago may not be cached yet.
		t, pt, err = debug.Load(r.Context(), h.reader(), h.Namespace, req.Debug.Template)
	}
	switch {
	case errors.Is(err, debug.ErrNoTemplate):
		t = nil
	case errors.Is(err, debug.ErrNoPodTemplate):
		// The operator's mistake, but only one the template lets in may
		// hear of it.
	case err != nil:
		klog.ErrorS(err, "Reading debug session template", "template", req.Debug.Template)
		apistatus.Write(w, apierrors.NewInternalError(errors.New("the request could not be checked")))
		return
	}
	// The same answer for a template or a cluster that does not exist as
	// for one the caller may not use: the API is no oracle for either.
	if t == nil || cluster == nil || !entitlement.Covers(entitlement.PolicyOf(t), id.Username, id.Groups, cluster) {
		refuse(statusError(http.StatusForbidden, metav1.StatusReasonForbidden,
			fmt.Sprintf("no debug session template %q lets you request access to cluster %q", req.Debug.Template, req.Cluster)))
		return
	}
	if err != nil {
		refuse(statusError(http.StatusInternalServerError, metav1.StatusReasonInternalError, err.Error()))
		return
	}
	ttl, startAt, errs := timing(req, s)
	if len(errs) > 0 {
		refuse(apierrors.NewBadRequest(errs.ToAggregate().Error()))
		return
	}
	g, err := entitlement.DecideDebug(t, entitlement.Request{
		User: id.Username, Groups: id.Groups, Cluster: cluster, TTL: ttl, Reason: req.Reason, StartAt: startAt, Now: time.Now(),
	})
	if err != nil {
		refuse(statusError(http.StatusForbidden, metav1.StatusReasonForbidden, err.Error()))
		return
	}
	s.Spec.AccessLevel = v1alpha1.AccessLevel{}
	s.Spec.Debug = req.Debug.DeepCopy()
	s.Spec.TTL = metav1.Duration{Duration: g.TTL}
	if _, errs := debug.Resolve(t, pt, debug.Request{
		Session: s.Name, Owner: s.Spec.Owner.UserPrincipal.Name, Cluster: cluster.Name, Groups: id.Groups,
		Debug: *req.Debug, DeniedNamespaces: h.Policy.NeverGranted(credentials.SessionNamespace(cluster)),
	}); len(errs) > 0 {
		code, reason := int32(http.StatusBadRequest), metav1.StatusReasonBadRequest
		for _, e := range errs {
			if e.Type == "FieldValueForbidden" {
				code, reason = http.StatusForbidden, metav1.StatusReasonForbidden
			}
		}
		refuse(statusError(code, reason, errs.ToAggregate().Error()))
		return
	}
	if errs := h.Policy.Validate(&s.Spec, credentials.SessionNamespace(cluster), false); len(errs) > 0 {
		refuse(apierrors.NewBadRequest(strings.ReplaceAll(errs.ToAggregate().Error(), "spec.", "")))
		return
	}
	if err := h.Client.Create(r.Context(), s); err != nil {
		klog.ErrorS(err, "Creating debug session", "user", id.Username)
		apistatus.Write(w, apierrors.NewInternalError(errors.New("the session could not be created")))
		return
	}
	klog.V(2).InfoS("Debug session requested", "session", s.Name, "user", id.Username, "cluster", s.Spec.Cluster, "template", t.Name, "reason", s.Spec.Reason)
	h.audit(r, id, "request", s, "debug session template "+t.Name)
	writeJSON(w, http.StatusCreated, h.awaitJudged(r.Context(), s))
}

// DebugTemplateInfo is what GET /api/v1/debug-templates says of a template
// the caller may use.
type DebugTemplateInfo struct {
	Name        string                      `json:"name"`
	Description string                      `json:"description,omitempty"`
	Mode        v1alpha1.DebugMode          `json:"mode"`
	Clusters    []string                    `json:"clusters"`
	MaxTTL      string                      `json:"maxTTL"`
	Namespace   v1alpha1.DebugNamespace     `json:"namespace"`
	Operations  v1alpha1.PodOperations      `json:"operations"`
	Variables   []v1alpha1.DebugVariable    `json:"variables,omitempty"`
	Scheduling  []string                    `json:"scheduling,omitempty"`
	Kubectl     *v1alpha1.KubectlDebugRules `json:"kubectlDebug,omitempty"`
	// NeedsApproval for the caller's groups.
	NeedsApproval bool `json:"needsApproval"`
}

// debugTemplates lists the templates the caller may request on some
// Cluster, and on which.
func (h *Handler) debugTemplates(w http.ResponseWriter, r *http.Request, id *authn.Identity) {
	templates := &v1alpha1.DebugSessionTemplateList{}
	clusters := &v1alpha1.ClusterList{}
	if err := h.Client.List(r.Context(), templates, client.InNamespace(h.Namespace)); err != nil {
		apistatus.Write(w, apierrors.NewInternalError(err))
		return
	}
	if err := h.Client.List(r.Context(), clusters, client.InNamespace(h.Namespace)); err != nil {
		apistatus.Write(w, apierrors.NewInternalError(err))
		return
	}
	out := []DebugTemplateInfo{}
	for i := range templates.Items {
		t := &templates.Items[i]
		p := entitlement.PolicyOf(t)
		info := DebugTemplateInfo{
			Name: t.Name, Description: t.Spec.Description, Mode: t.Spec.Mode, MaxTTL: t.Spec.MaxTTL.Duration.String(),
			Namespace: t.Spec.Namespace, Operations: debug.DefaultOperations, Kubectl: t.Spec.KubectlDebug,
			NeedsApproval: entitlement.NeedsApproval(t.Spec.Approval, id.Groups),
		}
		if t.Spec.AllowedPodOperations != nil {
			info.Operations = *t.Spec.AllowedPodOperations
		}
		for j := range clusters.Items {
			if entitlement.Covers(p, id.Username, id.Groups, &clusters.Items[j]) {
				info.Clusters = append(info.Clusters, clusters.Items[j].Name)
			}
		}
		if len(info.Clusters) == 0 {
			continue
		}
		if sched := t.Spec.Scheduling; sched != nil {
			for _, o := range sched.Options {
				if len(o.Groups) == 0 || slices.ContainsFunc(id.Groups, func(g string) bool { return slices.Contains(o.Groups, g) }) {
					info.Scheduling = append(info.Scheduling, o.Name)
				}
			}
		}
		if debug.NeedsPodTemplate(t) {
			pt := &v1alpha1.DebugPodTemplate{}
			if err := h.Client.Get(r.Context(), client.ObjectKey{Namespace: h.Namespace, Name: t.Spec.Workload.PodTemplate}, pt); err == nil {
				info.Variables = pt.Spec.Variables
			}
		}
		out = append(out, info)
	}
	writeJSON(w, http.StatusOK, out)
}
