package api

import (
	"net/http"
	"strings"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/apistatus"
	"sessiongate.dev/sessiongate/internal/audit"
	"sessiongate.dev/sessiongate/internal/authn"
)

// auditRef is what an audit record is about: a session, a cluster, or
// (a revocation) neither.
type auditRef struct {
	session, cluster string
}

// refOf is the session when there is one, else the name the caller gave.
func refOf(s *v1alpha1.Session, name string) auditRef {
	if s == nil {
		return auditRef{session: name}
	}
	return auditRef{session: s.Name, cluster: s.Spec.Cluster}
}

// audit writes one record for a lifecycle call of the API that was done.
func (h *Handler) audit(r *http.Request, id *authn.Identity, verb string, s *v1alpha1.Session, note string) {
	h.record(r, id, verb, refOf(s, ""), &metav1.Status{Code: http.StatusOK}, note)
}

// refuse answers with st and records the refusal: every decision of the
// API, a no as much as a yes, is an audit record with its code and message.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, id *authn.Identity, verb string, ref auditRef, st *apierrors.StatusError) {
	apistatus.Write(w, st)
	es := st.ErrStatus
	h.record(r, id, verb, ref, &metav1.Status{Status: metav1.StatusFailure, Code: es.Code, Reason: es.Reason, Message: truncate(es.Message, audit.MaxAnnotationValue)}, "")
}

func (h *Handler) record(r *http.Request, id *authn.Identity, verb string, ref auditRef, status *metav1.Status, note string) {
	if h.Audit == nil {
		return
	}
	now := metav1.NewMicroTime(time.Now())
	ev := &auditv1.Event{
		Level: auditv1.LevelMetadata, AuditID: uuid.NewUUID(), Stage: auditv1.StageResponseComplete,
		RequestURI: r.URL.RequestURI(), Verb: verb,
		User:      authnv1.UserInfo{Username: id.Username, Groups: id.Groups},
		SourceIPs: []string{remoteIP(r)}, UserAgent: r.UserAgent(),
		ObjectRef:                &auditv1.ObjectReference{Resource: "sessions", Namespace: h.Namespace, Name: ref.session, APIGroup: v1alpha1.GroupVersion.Group, APIVersion: v1alpha1.GroupVersion.Version},
		ResponseStatus:           status,
		RequestReceivedTimestamp: now, StageTimestamp: now,
		Annotations: map[string]string{},
	}
	if ref.session != "" {
		ev.Annotations[audit.AnnotationSession] = ref.session
	}
	if ref.cluster != "" {
		ev.Annotations[audit.AnnotationCluster] = ref.cluster
	}
	if note != "" {
		ev.Annotations[audit.AnnotationDecision] = note
	}
	h.Audit.Log(ev)
}

// truncate cuts s to at most n bytes, on a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
