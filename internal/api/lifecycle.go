package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"

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

// RenewRequest is the body of POST .../renew.
type RenewRequest struct {
	// TTL to add, e.g. "30m"; default the policy's maxTTL.
	TTL string `json:"ttl,omitempty"`
}

// renew records an owner's request to extend an Active session; the leader
// applies it (after the renewal's approvers, if the policy wants them).
func (h *Handler) renew(w http.ResponseWriter, r *http.Request, id *authn.Identity) {
	var req RenewRequest
	if r.ContentLength != 0 {
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			apistatus.Write(w, apierrors.NewBadRequest("request body: "+err.Error()))
			return
		}
	}
	name := r.PathValue("name")
	var s *v1alpha1.Session
	var refusal *apierrors.StatusError
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if s, refusal = h.lookup(r.Context(), h.reader(), name, id); refusal != nil {
			return nil
		}
		var ttl time.Duration
		ttl, refusal = h.checkRenewal(id, s, req.TTL)
		if refusal != nil {
			return nil
		}
		patch := client.MergeFromWithOptions(s.DeepCopy(), client.MergeFromWithOptimisticLock{})
		s.Status.RenewalRequest = &v1alpha1.RenewalRequest{TTL: metav1.Duration{Duration: ttl}, RequestedBy: id.Username, RequestedAt: metav1.Now()}
		return h.Client.Status().Patch(r.Context(), s, patch)
	})
	switch {
	case err != nil:
		klog.ErrorS(err, "Recording a renewal", "session", name, "user", id.Username)
		apistatus.Write(w, apierrors.NewInternalError(errors.New("the renewal could not be recorded")))
		return
	case refusal != nil:
		h.refuse(w, r, id, "renew", refOf(s, name), refusal)
		return
	}
	h.audit(r, id, "renew", s, "ttl "+s.Status.RenewalRequest.TTL.Duration.String())
	writeJSON(w, http.StatusOK, s)
}

func (h *Handler) checkRenewal(id *authn.Identity, s *v1alpha1.Session, ttlText string) (time.Duration, *apierrors.StatusError) {
	switch {
	case !authz.Owns(id, s.Spec.Owner):
		return 0, statusError(http.StatusForbidden, metav1.StatusReasonForbidden, "only the session's owner may renew it")
	case s.Status.Phase != v1alpha1.PhaseActive:
		return 0, statusError(http.StatusConflict, metav1.StatusReasonConflict, fmt.Sprintf("session %s is %s, not Active", s.Name, s.Status.Phase))
	case s.Status.RenewalRequest != nil:
		return 0, statusError(http.StatusConflict, metav1.StatusReasonConflict, fmt.Sprintf("session %s already has a renewal waiting", s.Name))
	case s.Status.Limits == nil:
		return 0, statusError(http.StatusForbidden, metav1.StatusReasonForbidden, "no AccessPolicy granted this session, so none allows its renewal")
	}
	ttl := entitlement.MaxRenewal(s.Status.Limits, h.Policy.MaxTTL)
	if ttlText != "" {
		var err error
		if ttl, err = time.ParseDuration(ttlText); err != nil {
			return 0, statusError(http.StatusBadRequest, metav1.StatusReasonBadRequest, fmt.Sprintf("ttl: Invalid value: %q: must be a duration such as 30m", ttlText))
		}
	}
	if err := entitlement.CheckRenewal(s.Status.Limits, s.Status.Renewals, s.Status.ActivatedAt.Time, s.Status.ExpiresAt.Time, ttl, h.Policy.MaxTTL); err != nil {
		return 0, statusError(http.StatusForbidden, metav1.StatusReasonForbidden, err.Error())
	}
	return ttl, nil
}

// RevocationRequest is the body of POST /api/v1/revocations: one of user
// or group.
type RevocationRequest struct {
	User  string `json:"user,omitempty"`
	Group string `json:"group,omitempty"`
}

// RevocationResult says what a revocation ended.
type RevocationResult struct {
	Ended []string `json:"ended"`
}

// revoke is the incident button: it ends every session of a user (including
// those they take part in) or group that is not over yet, on every cluster; each replica cuts their
// connections as soon as it sees them terminated.
func (h *Handler) revoke(w http.ResponseWriter, r *http.Request, id *authn.Identity) {
	if !slices.ContainsFunc(id.Groups, func(g string) bool { return slices.Contains(h.AdminGroups, g) }) {
		h.refuse(w, r, id, "revoke", auditRef{}, statusError(http.StatusForbidden, metav1.StatusReasonForbidden, "revocation is for members of the gateway's admin groups (--admin-groups)"))
		return
	}
	var req RevocationRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		apistatus.Write(w, apierrors.NewBadRequest("request body: "+err.Error()))
		return
	}
	if (req.User == "") == (req.Group == "") {
		h.refuse(w, r, id, "revoke", auditRef{}, apierrors.NewBadRequest("name exactly one of user or group"))
		return
	}
	all := &v1alpha1.SessionList{}
	if err := h.reader().List(r.Context(), all, client.InNamespace(h.Namespace)); err != nil {
		apistatus.Write(w, apierrors.NewInternalError(err))
		return
	}
	res := RevocationResult{Ended: []string{}}
	var errs []error
	for i := range all.Items {
		s := &all.Items[i]
		if s.Spec.Terminated || isOver(s) || !belongsTo(s, req) {
			continue
		}
		if err := h.terminateAs(r.Context(), s, id.Username+" (revocation)"); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("%s: %w", s.Name, err))
			continue
		}
		res.Ended = append(res.Ended, s.Name)
		h.audit(r, id, "revoke", s, "revocation of "+req.User+req.Group)
	}
	klog.V(0).InfoS("Revocation", "by", id.Username, "user", req.User, "group", req.Group, "ended", len(res.Ended))
	if len(errs) > 0 {
		klog.ErrorS(errors.Join(errs...), "Revocation left sessions running")
		apistatus.Write(w, apierrors.NewInternalError(fmt.Errorf("ended %d session(s), but %d could not be ended: retry", len(res.Ended), len(errs))))
		return
	}
	writeJSON(w, http.StatusOK, &res)
}

// isOver: the session has ended already.
func isOver(s *v1alpha1.Session) bool {
	switch s.Status.Phase {
	case v1alpha1.PhaseExpired, v1alpha1.PhaseIdleExpired, v1alpha1.PhaseTerminated, v1alpha1.PhaseRejected, v1alpha1.PhaseApprovalTimeout, v1alpha1.PhaseFailed:
		return true
	}
	return false
}

// belongsTo: owned or requested by the user or one the user takes part in,
// or owned by or requested by a member of the group.
func belongsTo(s *v1alpha1.Session, req RevocationRequest) bool {
	o, rq := s.Spec.Owner, s.Spec.Requester
	if req.User != "" {
		return (o.UserPrincipal != nil && o.UserPrincipal.Name == req.User) || (rq != nil && rq.User == req.User) ||
			slices.ContainsFunc(s.Spec.Participants, func(p v1alpha1.Participant) bool { return p.User == req.User })
	}
	return (o.Group != nil && o.Group.Name == req.Group) || (rq != nil && slices.Contains(rq.Groups, req.Group))
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
