package api

import (
	"errors"
	"io"
	"net/http"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/apistatus"
	"sessiongate.dev/sessiongate/internal/authn"
	"sessiongate.dev/sessiongate/internal/authz"
	"sessiongate.dev/sessiongate/internal/recording"
)

// RecordingList is the answer of GET /api/v1/sessions/{name}/recordings.
type RecordingList struct {
	Items []recording.Info `json:"items"`
}

// auditor: a member of --auditor-groups sees every session's recordings.
func (h *Handler) auditor(id *authn.Identity) bool {
	return slices.ContainsFunc(id.Groups, func(g string) bool { return slices.Contains(h.AuditorGroups, g) })
}

// recordingSession returns the session whose recordings the caller may see:
// its owner's, its approvers', an auditor's. Anyone else, and every caller
// when the session is gone and they are no auditor, gets the same 404.
func (h *Handler) recordingSession(r *http.Request, name string, id *authn.Identity) (s *v1alpha1.Session, ok bool) {
	s = &v1alpha1.Session{}
	err := h.Client.Get(r.Context(), client.ObjectKey{Namespace: h.Namespace, Name: name}, s)
	switch {
	case err == nil && (authz.Owns(id, s.Spec.Owner) || mayDecide(id, s) || decided(id, s) || h.auditor(id)):
		// Not participants or viewers: a cast holds whatever the owner's
		// terminal showed.
		return s, true
	case apierrors.IsNotFound(err) && h.auditor(id):
		// The session is gone; its recordings stay for auditors.
		s.Namespace, s.Name = h.Namespace, name
		return s, true
	case err != nil && !apierrors.IsNotFound(err):
		klog.ErrorS(err, "Reading session", "session", name)
	}
	return nil, false
}

func (h *Handler) recordings(w http.ResponseWriter, r *http.Request, id *authn.Identity) {
	name := r.PathValue("name")
	s, ok := h.recordingSession(r, name, id)
	if !ok {
		apistatus.Write(w, apierrors.NewNotFound(v1alpha1.GroupVersion.WithResource("sessions").GroupResource(), name))
		return
	}
	list := RecordingList{Items: []recording.Info{}}
	if h.Recordings != nil {
		items, err := h.Recordings.List(r.Context(), s.Name)
		if err != nil {
			klog.ErrorS(err, "Listing recordings", "session", s.Name)
			apistatus.Write(w, apierrors.NewInternalError(errors.New("the recordings could not be listed")))
			return
		}
		list.Items = append(list.Items, items...)
	}
	writeJSON(w, http.StatusOK, list)
}

func (h *Handler) recording(w http.ResponseWriter, r *http.Request, id *authn.Identity) {
	castID := r.PathValue("id")
	notFound := func() {
		apistatus.Write(w, apierrors.NewNotFound(v1alpha1.GroupVersion.WithResource("recordings").GroupResource(), castID))
	}
	session, valid := recording.SessionOf(castID)
	if !valid || recording.ValidID(castID) != nil || h.Recordings == nil {
		notFound()
		return
	}
	s, ok := h.recordingSession(r, session, id)
	if !ok {
		notFound()
		return
	}
	rc, err := h.Recordings.Open(r.Context(), castID)
	switch {
	case errors.Is(err, recording.ErrNotFound):
		notFound()
		return
	case err != nil:
		klog.ErrorS(err, "Opening recording", "recording", castID)
		apistatus.Write(w, apierrors.NewInternalError(errors.New("the recording could not be read")))
		return
	}
	defer rc.Close()
	// Who watched a recording is itself worth a record.
	h.audit(r, id, "get-recording", s, castID)
	w.Header().Set("Content-Type", "application/x-asciicast")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, rc); err != nil {
		klog.V(2).InfoS("Sending a recording ended early", "recording", castID, "err", err.Error())
	}
}
