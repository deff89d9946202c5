package api

import (
	"encoding/json"
	"fmt"
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
	s, st := h.changeParticipants(r, id, name, func(s *v1alpha1.Session) *apierrors.StatusError {
		switch {
		case req.User == "" || len(req.User) > 1024:
			return apierrors.NewBadRequest("user: name the participant by the gateway's username claim (1 to 1024 characters)")
		case req.Role != v1alpha1.RoleParticipant && req.Role != v1alpha1.RoleViewer:
			return apierrors.NewBadRequest(fmt.Sprintf("role: %q is not participant or viewer", req.Role))
		case req.User == id.Username:
			return apierrors.NewBadRequest("user: you own the session already")
		case isOver(s):
			return statusError(http.StatusConflict, metav1.StatusReasonConflict, fmt.Sprintf("session %s has ended", s.Name))
		}
		now := metav1.NewTime(time.Now().Truncate(time.Second))
		p := v1alpha1.Participant{User: req.User, Role: req.Role, AddedBy: id.Username, AddedAt: &now}
		switch i := slices.IndexFunc(s.Spec.Participants, func(p v1alpha1.Participant) bool { return p.User == req.User }); {
		case i >= 0:
			s.Spec.Participants[i] = p
		case len(s.Spec.Participants) >= maxParticipants:
			return apierrors.NewBadRequest(fmt.Sprintf("session %s has %d participants, the most a session may have", s.Name, maxParticipants))
		default:
			s.Spec.Participants = append(s.Spec.Participants, p)
		}
		return nil
	})
	if st != nil {
		h.refuse(w, r, id, "add-participant", refOf(s, name), st)
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
	s, st := h.changeParticipants(r, id, name, func(s *v1alpha1.Session) *apierrors.StatusError {
		i := slices.IndexFunc(s.Spec.Participants, func(p v1alpha1.Participant) bool { return p.User == user })
		if i < 0 {
			return statusError(http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("%q is not a participant of session %s", user, s.Name))
		}
		s.Spec.Participants = slices.Delete(s.Spec.Participants, i, i+1)
		return nil
	})
	if st != nil {
		h.refuse(w, r, id, "remove-participant", refOf(s, name), st)
		return
	}
	klog.V(2).InfoS("Participant removed", "session", s.Name, "by", id.Username, "user", user)
	h.audit(r, id, "remove-participant", s, user)
	writeJSON(w, http.StatusOK, s)
}

// changeParticipants applies change to the caller's own session, on the
// version it read, again on a conflict (the leader writes the status all
// the while).
func (h *Handler) changeParticipants(r *http.Request, id *authn.Identity, name string, change func(*v1alpha1.Session) *apierrors.StatusError) (*v1alpha1.Session, *apierrors.StatusError) {
	var s *v1alpha1.Session
	var refusal *apierrors.StatusError
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if s, refusal = h.ownSession(r, id, name); refusal != nil {
			return nil
		}
		patch := client.MergeFromWithOptions(s.DeepCopy(), client.MergeFromWithOptimisticLock{})
		if refusal = change(s); refusal != nil {
			return nil
		}
		return h.Client.Patch(r.Context(), s, patch)
	})
	if err != nil {
		klog.ErrorS(err, "Changing participants", "session", name, "user", id.Username)
		return s, apierrors.NewInternalError(fmt.Errorf("the participants could not be changed"))
	}
	return s, refusal
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
