package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/apistatus"
	"sessiongate.dev/sessiongate/internal/authn"
	"sessiongate.dev/sessiongate/internal/authz"
)

// maxParticipants is how many people a session may let in, as the CRD says.
const maxParticipants = 32

// ParticipantRequest is the body of POST /api/v1/sessions/{name}/participants.
type ParticipantRequest struct {
	// User by the gateway's username claim.
	User string `json:"user"`
	// Role: participant or viewer.
	Role v1alpha1.ParticipantRole `json:"role"`
}

func objectKey(ns, name string) client.ObjectKey { return client.ObjectKey{Namespace: ns, Name: name} }

func inNamespace(ns string) client.ListOption { return client.InNamespace(ns) }

// addParticipant lets someone into the caller's session; only the owner
// may. Setting a user again changes their role.
func (h *Handler) addParticipant(w http.ResponseWriter, r *http.Request, id *authn.Identity) {
	name := r.PathValue("name")
	var req ParticipantRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		apistatus.Write(w, apierrors.NewBadRequest("request body: "+err.Error()))
		return
	}
	s, st := h.ownSession(r, id, name)
	if st != nil {
		h.refuse(w, r, id, "add-participant", auditRef{session: name}, st)
		return
	}
	switch {
	case req.User == "" || len(req.User) > 1024:
		st = apierrors.NewBadRequest("user: name the participant by the gateway's username claim (1 to 1024 characters)")
	case req.Role != v1alpha1.RoleParticipant && req.Role != v1alpha1.RoleViewer:
		st = apierrors.NewBadRequest(fmt.Sprintf("role: %q is not participant or viewer", req.Role))
	case req.User == id.Username:
		st = apierrors.NewBadRequest("user: you own the session already")
	case isOver(s):
		st = statusError(http.StatusConflict, metav1.StatusReasonConflict, fmt.Sprintf("session %s has ended", s.Name))
	}
	if st != nil {
		h.refuse(w, r, id, "add-participant", refOf(s, name), st)
		return
	}
	patch := client.MergeFromWithOptions(s.DeepCopy(), client.MergeFromWithOptimisticLock{})
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	p := v1alpha1.Participant{User: req.User, Role: req.Role, AddedBy: id.Username, AddedAt: &now}
	if i := slices.IndexFunc(s.Spec.Participants, func(p v1alpha1.Participant) bool { return p.User == req.User }); i >= 0 {
		s.Spec.Participants[i] = p
	} else if len(s.Spec.Participants) >= maxParticipants {
		h.refuse(w, r, id, "add-participant", refOf(s, name), apierrors.NewBadRequest(fmt.Sprintf("session %s has %d participants, the most a session may have", s.Name, maxParticipants)))
		return
	} else {
		s.Spec.Participants = append(s.Spec.Participants, p)
	}
	if err := h.Client.Patch(r.Context(), s, patch); err != nil {
		if apierrors.IsConflict(err) {
			apistatus.Write(w, statusError(http.StatusConflict, metav1.StatusReasonConflict, "the session changed meanwhile; try again"))
			return
		}
		klog.ErrorS(err, "Adding participant", "session", s.Name)
		apistatus.Write(w, apierrors.NewInternalError(fmt.Errorf("the participant could not be added")))
		return
	}
	klog.V(2).InfoS("Participant added", "session", s.Name, "by", id.Username, "user", req.User, "role", req.Role)
	h.audit(r, id, "add-participant", s, fmt.Sprintf("%s as %s", req.User, req.Role))
	writeJSON(w, http.StatusOK, s)
}

// removeParticipant lets someone out again; their next request through the
// gateway is refused.
func (h *Handler) removeParticipant(w http.ResponseWriter, r *http.Request, id *authn.Identity) {
	name, user := r.PathValue("name"), r.PathValue("user")
	s, st := h.ownSession(r, id, name)
	if st != nil {
		h.refuse(w, r, id, "remove-participant", auditRef{session: name}, st)
		return
	}
	i := slices.IndexFunc(s.Spec.Participants, func(p v1alpha1.Participant) bool { return p.User == user })
	if i < 0 {
		h.refuse(w, r, id, "remove-participant", refOf(s, name), statusError(http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("%q is not a participant of session %s", user, s.Name)))
		return
	}
	patch := client.MergeFromWithOptions(s.DeepCopy(), client.MergeFromWithOptimisticLock{})
	s.Spec.Participants = slices.Delete(s.Spec.Participants, i, i+1)
	if err := h.Client.Patch(r.Context(), s, patch); err != nil {
		klog.ErrorS(err, "Removing participant", "session", s.Name)
		apistatus.Write(w, apierrors.NewInternalError(fmt.Errorf("the participant could not be removed")))
		return
	}
	klog.V(2).InfoS("Participant removed", "session", s.Name, "by", id.Username, "user", user)
	h.audit(r, id, "remove-participant", s, user)
	writeJSON(w, http.StatusOK, s)
}

// ownSession is the named session if the caller owns it; anyone else gets
// the 404 lookup gives, or 403 when they may see it but not share it.
func (h *Handler) ownSession(r *http.Request, id *authn.Identity, name string) (*v1alpha1.Session, *apierrors.StatusError) {
	s, st := h.lookup(r.Context(), h.reader(), name, id)
	if st != nil {
		return nil, st
	}
	if !authz.Owns(id, s.Spec.Owner) {
		return nil, statusError(http.StatusForbidden, metav1.StatusReasonForbidden, fmt.Sprintf("only the owner of session %s may change who takes part", s.Name))
	}
	return s, nil
}
