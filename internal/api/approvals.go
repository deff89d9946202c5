package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/apistatus"
	"sessiongate.dev/sessiongate/internal/authn"
	"sessiongate.dev/sessiongate/internal/authz"
	"sessiongate.dev/sessiongate/internal/entitlement"
)

// DecisionRequest is the body of POST .../approve and .../reject.
type DecisionRequest struct {
	Comment string `json:"comment,omitempty"`
}

// maxComment bounds a decision's comment, as the CRD does.
const maxComment = 1024

// +kubebuilder:rbac:groups=sessiongate.dev,namespace=sessiongate,resources=accesspolicies,verbs=get;list;watch

// visible: owners and participants see their sessions, approvers those they may decide or
// have decided.
func visible(id *authn.Identity, s *v1alpha1.Session) bool {
	return authz.RoleOf(id, s.Spec.Owner, s.Spec.Participants) != authz.None || mayDecide(id, s) || decided(id, s)
}

// mayDecide: the caller is one of the session's approvers — of the request
// or of its renewals — whatever the session's phase.
func mayDecide(id *authn.Identity, s *v1alpha1.Session) bool {
	l := s.Status.Limits
	return l != nil && (entitlement.CanDecide(l.Approval, s.Spec.Requester, id.Username, id.Groups) ||
		entitlement.CanDecide(l.RenewalApproval, s.Spec.Requester, id.Username, id.Groups))
}

func decided(id *authn.Identity, s *v1alpha1.Session) bool {
	byCaller := func(d v1alpha1.Decision) bool { return d.Approver == id.Username }
	if rr := s.Status.RenewalRequest; rr != nil && slices.ContainsFunc(rr.Decisions, byCaller) {
		return true
	}
	return slices.ContainsFunc(s.Status.Decisions, byCaller)
}

// pendingDecision is what approvers may decide on the session now: the
// request itself while PendingApproval, or a renewal that needs approval
// while Active. a is nil when there is nothing to decide.
func pendingDecision(s *v1alpha1.Session) (a *v1alpha1.Approval, requester *v1alpha1.Requester, decisions *[]v1alpha1.Decision) {
	l := s.Status.Limits
	switch {
	case l == nil:
	case s.Status.Phase == v1alpha1.PhasePendingApproval && l.Approval != nil:
		return l.Approval, s.Spec.Requester, &s.Status.Decisions
	case s.Status.Phase == v1alpha1.PhaseActive && s.Status.RenewalRequest != nil && l.RenewalApproval != nil:
		rr := s.Status.RenewalRequest
		return l.RenewalApproval, &v1alpha1.Requester{User: rr.RequestedBy}, &rr.Decisions
	}
	return nil, nil, nil
}

// decide records an approver's decision in the session's status. The leader
// acts on it; only it moves the session.
func (h *Handler) decide(decision v1alpha1.DecisionType) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, id *authn.Identity) {
		var req DecisionRequest
		if r.ContentLength != 0 {
			dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&req); err != nil {
				apistatus.Write(w, apierrors.NewBadRequest("request body: "+err.Error()))
				return
			}
		}
		name := r.PathValue("name")
		verb := strings.ToLower(string(decision))
		switch {
		case len(req.Comment) > maxComment:
			h.refuse(w, r, id, verb, auditRef{session: name}, apierrors.NewBadRequest(fmt.Sprintf("comment: must be at most %d characters", maxComment)))
			return
		case decision == v1alpha1.DecisionRejected && strings.TrimSpace(req.Comment) == "":
			h.refuse(w, r, id, verb, auditRef{session: name}, apierrors.NewBadRequest("comment: a rejection needs a comment saying why"))
			return
		}
		var s *v1alpha1.Session
		var refusal *apierrors.StatusError
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			// Read fresh: the status patch below is guarded by this
			// resourceVersion, and a cache may lag.
			if s, refusal = h.lookup(r.Context(), h.reader(), name, id); refusal != nil {
				return nil
			}
			if refusal = checkDecision(id, s); refusal != nil {
				return nil
			}
			patch := client.MergeFromWithOptions(s.DeepCopy(), client.MergeFromWithOptimisticLock{})
			_, _, decisions := pendingDecision(s)
			*decisions = append(*decisions, v1alpha1.Decision{
				Approver: id.Username, Decision: decision, Time: metav1.Now(), Comment: req.Comment,
			})
			return h.Client.Status().Patch(r.Context(), s, patch)
		})
		switch {
		case err != nil:
			klog.ErrorS(err, "Recording a decision", "session", name, "approver", id.Username)
			apistatus.Write(w, apierrors.NewInternalError(errors.New("the decision could not be recorded")))
			return
		case refusal != nil:
			h.refuse(w, r, id, verb, refOf(s, name), refusal)
			return
		}
		klog.V(2).InfoS("Decision recorded", "session", name, "approver", id.Username, "decision", decision)
		h.audit(r, id, verb, s, string(decision)+": "+req.Comment)
		writeJSON(w, http.StatusOK, s)
	}
}

// checkDecision says why the caller may not decide s now, or nil.
func checkDecision(id *authn.Identity, s *v1alpha1.Session) *apierrors.StatusError {
	a, requester, decisions := pendingDecision(s)
	switch {
	case a == nil:
		return statusError(http.StatusConflict, metav1.StatusReasonConflict, fmt.Sprintf("session %s is %s, not PendingApproval, and has no renewal waiting for approval", s.Name, s.Status.Phase))
	case requester != nil && requester.User == id.Username:
		return statusError(http.StatusForbidden, metav1.StatusReasonForbidden, "you cannot decide your own request")
	case !entitlement.CanDecide(a, requester, id.Username, id.Groups):
		return statusError(http.StatusForbidden, metav1.StatusReasonForbidden, fmt.Sprintf("you are not an approver of session %s", s.Name))
	case slices.ContainsFunc(*decisions, func(d v1alpha1.Decision) bool { return d.Approver == id.Username }):
		return statusError(http.StatusConflict, metav1.StatusReasonConflict, fmt.Sprintf("you have already decided session %s", s.Name))
	}
	return nil
}

func statusError(code int32, reason metav1.StatusReason, msg string) *apierrors.StatusError {
	return &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: code, Reason: reason, Message: msg}}
}

// approvals lists the requests the caller may decide now.
func (h *Handler) approvals(w http.ResponseWriter, r *http.Request, id *authn.Identity) {
	all := &v1alpha1.SessionList{}
	if err := h.Client.List(r.Context(), all, client.InNamespace(h.Namespace)); err != nil {
		apistatus.Write(w, apierrors.NewInternalError(err))
		return
	}
	out := &v1alpha1.SessionList{TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "SessionList"}}
	for _, s := range all.Items {
		if checkDecision(id, &s) == nil {
			out.Items = append(out.Items, s)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// PolicyView is what a caller may request under one policy on one cluster:
// enough for a client to offer the choices.
type PolicyView struct {
	Policy        string                       `json:"policy"`
	Cluster       string                       `json:"cluster"`
	AccessLevels  []v1alpha1.PolicyAccessLevel `json:"accessLevels"`
	MaxTTL        string                       `json:"maxTTL"`
	DefaultTTL    string                       `json:"defaultTTL"`
	NeedsApproval bool                         `json:"needsApproval"`
	MinApprovals  int32                        `json:"minApprovals,omitempty"`
	Approvers     *v1alpha1.Subjects           `json:"approvers,omitempty"`
	RequireReason bool                         `json:"requireReason,omitempty"`
	Renewal       *v1alpha1.Renewal            `json:"renewal,omitempty"`
	IdleTimeout   string                       `json:"idleTimeout,omitempty"`
	// Schedule says whether a later start may be asked for, and how far
	// ahead (maxDelay, default 168h).
	Schedule *v1alpha1.Schedule `json:"schedule,omitempty"`
	// Streams are the exec and attach limits a session gets.
	Streams *v1alpha1.StreamPolicy `json:"streams,omitempty"`
}

// PolicyViewList is the body of GET /api/v1/policies.
type PolicyViewList struct {
	Items []PolicyView `json:"items"`
}

// policies lists, per cluster, what the caller may request.
func (h *Handler) policies(w http.ResponseWriter, r *http.Request, id *authn.Identity) {
	views, err := h.policyViews(r.Context(), id)
	if err != nil {
		apistatus.Write(w, apierrors.NewInternalError(err))
		return
	}
	writeJSON(w, http.StatusOK, &PolicyViewList{Items: views})
}

func (h *Handler) policyViews(ctx context.Context, id *authn.Identity) ([]PolicyView, error) {
	policies := &v1alpha1.AccessPolicyList{}
	if err := h.Client.List(ctx, policies, client.InNamespace(h.Namespace)); err != nil {
		return nil, err
	}
	clusters := &v1alpha1.ClusterList{}
	if err := h.Client.List(ctx, clusters, client.InNamespace(h.Namespace)); err != nil {
		return nil, err
	}
	views := []PolicyView{}
	for i := range clusters.Items {
		c := &clusters.Items[i]
		if !c.DeletionTimestamp.IsZero() {
			continue
		}
		for j := range policies.Items {
			p := &policies.Items[j]
			if !entitlement.Covers(p, id.Username, id.Groups, c) {
				continue
			}
			v := PolicyView{
				Policy: p.Name, Cluster: c.Name, AccessLevels: p.Spec.AccessLevels,
				MaxTTL: p.Spec.MaxTTL.Duration.String(), DefaultTTL: p.Spec.MaxTTL.Duration.String(),
				Renewal: p.Spec.Renewal, Streams: p.Spec.Streams,
			}
			if p.Spec.DefaultTTL != nil {
				v.DefaultTTL = p.Spec.DefaultTTL.Duration.String()
			}
			if p.Spec.IdleTimeout != nil {
				v.IdleTimeout = p.Spec.IdleTimeout.Duration.String()
			}
			if sch := p.Spec.Schedule; sch != nil && sch.Allowed {
				v.Schedule = sch.DeepCopy()
				if v.Schedule.MaxDelay == nil {
					v.Schedule.MaxDelay = &metav1.Duration{Duration: entitlement.DefaultMaxScheduleDelay}
				}
			}
			// Whether this caller waits for approvers depends only on the
			// policy's approval and the caller's groups, whatever it asks for.
			if a := p.Spec.Approval; a != nil {
				v.RequireReason = a.RequireReason
				if entitlement.NeedsApproval(a, id.Groups) {
					v.NeedsApproval, v.MinApprovals, v.Approvers = true, entitlement.MinApprovals(a), &a.Approvers
				}
			}
			views = append(views, v)
		}
	}
	return views, nil
}
