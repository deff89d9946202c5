// Package api is the gateway's REST API for users: request, list, get and
// terminate their own sessions at /api/v1/sessions. It authenticates like the
// proxy (the caller's OIDC token) and authorises like it: a caller sees only
// sessions it owns, and a session it requests is always its own.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/apistatus"
	"sessiongate.dev/sessiongate/internal/audit"
	"sessiongate.dev/sessiongate/internal/authn"
	"sessiongate.dev/sessiongate/internal/authz"
	"sessiongate.dev/sessiongate/internal/credentials"
	"sessiongate.dev/sessiongate/internal/entitlement"
	"sessiongate.dev/sessiongate/internal/policy"
	"sessiongate.dev/sessiongate/internal/recording"
	"sessiongate.dev/sessiongate/internal/registry"
)

// SessionRequest is the body of POST /api/v1/sessions.
type SessionRequest struct {
	Cluster     string               `json:"cluster"`
	AccessLevel v1alpha1.AccessLevel `json:"accessLevel"`
	// TTL is a Go duration, e.g. "30m"; empty takes the policy's default.
	TTL    string `json:"ttl,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Policy names the AccessPolicy to be judged by; empty lets the gateway
	// choose among those that grant the request.
	Policy string `json:"policy,omitempty"`
	// StartAt asks for a later start (RFC 3339), where the policy allows it.
	StartAt string `json:"startAt,omitempty"`
	// Debug asks for a debug session from a DebugSessionTemplate instead
	// of an access level.
	Debug *v1alpha1.DebugRequest `json:"debug,omitempty"`
}

// maxRequesterGroups is how many token groups a request may carry into its
// Session.
const maxRequesterGroups = 256

// Handler serves the API.
type Handler struct {
	Client    client.Client
	Authn     *authn.Authenticator
	Policy    policy.Policy
	Namespace string
	// OwnerClaim is the token claim that names a requested session's owner.
	OwnerClaim string
	// APIReader reads uncached, where a write depends on what was read;
	// default Client.
	APIReader client.Reader
	// Audit receives a record of every decision, renewal, termination and
	// revocation.
	Audit *audit.Logger
	// AdminGroups may revoke every session of a user or group.
	AdminGroups []string
	// Recordings holds exec and attach casts; nil when nothing is recorded.
	Recordings recording.Sink
	// AuditorGroups may list and fetch every session's recordings.
	AuditorGroups []string
	// Registry has the backends of the sessions this replica serves, for
	// the debug endpoints, which act on the target as the session.
	Registry *registry.Registry
	// Gateway names the installation, for the labels of debug pods.
	Gateway string
}

func (h *Handler) reader() client.Reader {
	if h.APIReader != nil {
		return h.APIReader
	}
	return h.Client
}

// Register adds the API's routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/sessions", h.authed(h.create))
	mux.HandleFunc("GET /api/v1/sessions", h.authed(h.list))
	mux.HandleFunc("GET /api/v1/sessions/{name}", h.authed(h.get))
	mux.HandleFunc("POST /api/v1/sessions/{name}/terminate", h.authed(h.terminate))
	mux.HandleFunc("POST /api/v1/sessions/{name}/approve", h.authed(h.decide(v1alpha1.DecisionApproved)))
	mux.HandleFunc("POST /api/v1/sessions/{name}/reject", h.authed(h.decide(v1alpha1.DecisionRejected)))
	mux.HandleFunc("GET /api/v1/approvals", h.authed(h.approvals))
	mux.HandleFunc("GET /api/v1/policies", h.authed(h.policies))
	mux.HandleFunc("POST /api/v1/sessions/{name}/renew", h.authed(h.renew))
	mux.HandleFunc("POST /api/v1/revocations", h.authed(h.revoke))
	mux.HandleFunc("GET /api/v1/sessions/{name}/recordings", h.authed(h.recordings))
	mux.HandleFunc("GET /api/v1/recordings/{id}", h.authed(h.recording))
	mux.HandleFunc("GET /api/v1/debug-templates", h.authed(h.debugTemplates))
	mux.HandleFunc("POST /api/v1/sessions/{name}/participants", h.authed(h.addParticipant))
	mux.HandleFunc("DELETE /api/v1/sessions/{name}/participants/{user}", h.authed(h.removeParticipant))
	h.registerDebug(mux)
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, id *authn.Identity)

func (h *Handler) authed(next handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := h.Authn.Authenticate(r)
		if err != nil {
			apistatus.Unauthorized(w, err)
			return
		}
		next(w, r, id)
	}
}

// +kubebuilder:rbac:groups=sessiongate.dev,namespace=sessiongate,resources=sessions,verbs=create

func (h *Handler) create(w http.ResponseWriter, r *http.Request, id *authn.Identity) {
	var req SessionRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		apistatus.Write(w, apierrors.NewBadRequest("request body: "+err.Error()))
		return
	}
	ownerName := id.Claims[h.OwnerClaim]
	if ownerName == "" {
		apistatus.Write(w, apierrors.NewBadRequest(fmt.Sprintf("your token has no %q claim to own a session with", h.OwnerClaim)))
		return
	}
	s := &v1alpha1.Session{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.Namespace, Name: sessionName(ownerName)},
		Spec: v1alpha1.SessionSpec{
			Cluster:     req.Cluster,
			AccessLevel: req.AccessLevel,
			Reason:      req.Reason,
			// The caller owns what it requests: there is no field to name
			// anyone else.
			Owner: v1alpha1.Owner{Type: v1alpha1.OwnerUser, UserPrincipal: &v1alpha1.UserPrincipal{Name: ownerName, Claim: h.OwnerClaim}},
		},
	}
	if len(id.Groups) > maxRequesterGroups {
		apistatus.Write(w, apierrors.NewBadRequest(fmt.Sprintf("your token carries %d groups; a request may carry at most %d", len(id.Groups), maxRequesterGroups)))
		return
	}
	s.Spec.Requester = &v1alpha1.Requester{User: id.Username, Groups: id.Groups}
	refuse := func(st *apierrors.StatusError) { h.refuse(w, r, id, "request", auditRef{cluster: req.Cluster}, st) }
	if req.Debug != nil {
		h.createDebug(w, r, id, s, &req, refuse)
		return
	}

	// Whether any policy covers the caller on the cluster is decided before
	// anything else about the request: a caller no policy covers gets the
	// same answer for a Cluster that does not exist and for one that does,
	// whatever else is wrong with the request. The API is no oracle for
	// registered clusters.
	cluster, err := h.cluster(r.Context(), req.Cluster)
	if err != nil {
		apistatus.Write(w, apierrors.NewInternalError(errors.New("the request could not be checked")))
		return
	}
	policies, err := h.listPolicies(r.Context(), h.Client)
	if err == nil && !coversAny(policies, id, cluster) {
		// Refuse on what the API server holds, not on a cache that may not
		// have the policy an operator created a moment ago.
		policies, err = h.listPolicies(r.Context(), h.reader())
	}
	if err != nil {
		klog.ErrorS(err, "Listing access policies")
		apistatus.Write(w, apierrors.NewInternalError(errors.New("the request could not be checked")))
		return
	}
	if !coversAny(policies, id, cluster) {
		refuse(statusError(http.StatusForbidden, metav1.StatusReasonForbidden, fmt.Sprintf("no policy lets you request access to cluster %q", req.Cluster)))
		return
	}

	ttl, startAt, errs := timing(&req, s)
	if len(errs) == 0 {
		// The gateway's own guards first: they hold whatever a policy says.
		// Whether a cluster-wide grant is allowed is the policy's to say.
		probe := s.Spec.DeepCopy()
		probe.TTL.Duration = max(ttl, h.Policy.MinTTL)
		errs = h.Policy.Validate(probe, credentials.SessionNamespace(cluster), true)
	}
	if len(errs) > 0 {
		// Messages name the request's fields, not the Session's.
		refuse(apierrors.NewBadRequest(strings.ReplaceAll(errs.ToAggregate().Error(), "spec.", "")))
		return
	}
	judge := func(policies []v1alpha1.AccessPolicy) (*entitlement.Grant, error) {
		return entitlement.Decide(policies, entitlement.Request{
			User: id.Username, Groups: id.Groups, Cluster: cluster, AccessLevel: req.AccessLevel,
			TTL: ttl, Reason: req.Reason, Policy: req.Policy, StartAt: startAt, Now: time.Now(),
		})
	}
	g, err := judge(policies)
	if err != nil {
		// As above: a refusal is made on what the API server holds.
		fresh, lerr := h.listPolicies(r.Context(), h.reader())
		if lerr != nil {
			klog.ErrorS(lerr, "Listing access policies")
			apistatus.Write(w, apierrors.NewInternalError(errors.New("the request could not be checked")))
			return
		}
		g, err = judge(fresh)
	}
	if err != nil {
		klog.V(2).InfoS("Request refused", "user", id.Username, "cluster", req.Cluster, "reason", err.Error())
		refuse(statusError(http.StatusForbidden, metav1.StatusReasonForbidden, err.Error()))
		return
	}
	s.Spec.Policy = g.Policy.Name
	s.Spec.TTL = metav1.Duration{Duration: g.TTL}
	if errs := h.Policy.Validate(&s.Spec, credentials.SessionNamespace(cluster), true); len(errs) > 0 {
		refuse(apierrors.NewBadRequest(strings.ReplaceAll(errs.ToAggregate().Error(), "spec.", "")))
		return
	}
	if err := h.Client.Create(r.Context(), s); err != nil {
		klog.ErrorS(err, "Creating session", "user", id.Username)
		apistatus.Write(w, apierrors.NewInternalError(errors.New("the session could not be created")))
		return
	}
	klog.V(2).InfoS("Session requested", "session", s.Name, "user", id.Username, "cluster", s.Spec.Cluster, "policy", s.Spec.Policy, "reason", s.Spec.Reason)
	h.audit(r, id, "request", s, "policy "+s.Spec.Policy)
	writeJSON(w, http.StatusCreated, h.awaitJudged(r.Context(), s))
}

// cluster reads the named Cluster; nil when there is none.
func (h *Handler) cluster(ctx context.Context, name string) (*v1alpha1.Cluster, error) {
	cluster := &v1alpha1.Cluster{}
	if err := h.Client.Get(ctx, client.ObjectKey{Namespace: h.Namespace, Name: name}, cluster); apierrors.IsNotFound(err) || name == "" {
		return nil, nil
	} else if err != nil {
		klog.ErrorS(err, "Reading cluster", "cluster", name)
		return nil, err
	}
	return cluster, nil
}

// timing reads the request's ttl and startAt; a start is put in s.
func timing(req *SessionRequest, s *v1alpha1.Session) (ttl time.Duration, startAt time.Time, errs field.ErrorList) {
	if req.StartAt != "" {
		var err error
		if startAt, err = time.Parse(time.RFC3339, req.StartAt); err != nil || !startAt.After(time.Now()) {
			errs = append(errs, field.Invalid(field.NewPath("startAt"), req.StartAt, "must be a time in the future, in RFC 3339 (2026-11-24T18:00:00Z)"))
		} else {
			s.Spec.StartAt = &metav1.Time{Time: startAt}
		}
	}
	if req.TTL != "" {
		var err error
		if ttl, err = time.ParseDuration(req.TTL); err != nil {
			errs = append(errs, field.Invalid(field.NewPath("ttl"), req.TTL, "must be a duration such as 30m or 1h"))
		} else if ttl <= 0 {
			errs = append(errs, field.Invalid(field.NewPath("ttl"), req.TTL, "must be greater than zero"))
		}
	}
	return ttl, startAt, errs
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request, id *authn.Identity) {
	all := &v1alpha1.SessionList{}
	if err := h.Client.List(r.Context(), all, client.InNamespace(h.Namespace)); err != nil {
		apistatus.Write(w, apierrors.NewInternalError(err))
		return
	}
	mine := &v1alpha1.SessionList{TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "SessionList"}}
	for _, s := range all.Items {
		if visible(id, &s) {
			mine.Items = append(mine.Items, s)
		}
	}
	writeJSON(w, http.StatusOK, mine)
}

// lookup finds a session the caller owns, or may decide or has decided as an
// approver; any other gets the same 404.
func (h *Handler) lookup(ctx context.Context, reader client.Reader, name string, id *authn.Identity) (*v1alpha1.Session, *apierrors.StatusError) {
	s := &v1alpha1.Session{}
	err := reader.Get(ctx, client.ObjectKey{Namespace: h.Namespace, Name: name}, s)
	if err != nil && !apierrors.IsNotFound(err) {
		klog.ErrorS(err, "Reading session", "session", name)
		return nil, apierrors.NewInternalError(errors.New("the session could not be read"))
	}
	if err != nil || !visible(id, s) {
		return nil, apierrors.NewNotFound(v1alpha1.GroupVersion.WithResource("sessions").GroupResource(), name)
	}
	return s, nil
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request, id *authn.Identity) {
	s, st := h.lookup(r.Context(), h.Client, r.PathValue("name"), id)
	if st != nil {
		apistatus.Write(w, st)
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (h *Handler) terminate(w http.ResponseWriter, r *http.Request, id *authn.Identity) {
	name := r.PathValue("name")
	s, st := h.lookup(r.Context(), h.Client, name, id)
	if st != nil {
		h.refuse(w, r, id, "terminate", auditRef{session: name}, st)
		return
	}
	if !authz.Owns(id, s.Spec.Owner) && !mayDecide(id, s) && !decided(id, s) {
		h.refuse(w, r, id, "terminate", refOf(s, name), statusError(http.StatusForbidden, metav1.StatusReasonForbidden,
			fmt.Sprintf("only the owner or an approver of session %s may terminate it", s.Name)))
		return
	}
	if !s.Spec.Terminated {
		if err := h.terminateAs(r.Context(), s, id.Username); err != nil {
			apistatus.Write(w, apierrors.NewInternalError(err))
			return
		}
		klog.V(2).InfoS("Session terminated through the API", "session", s.Name, "user", id.Username)
		h.audit(r, id, "terminate", s, "")
	}
	writeJSON(w, http.StatusOK, s)
}

// terminateAs sets spec.terminated, naming who did it.
func (h *Handler) terminateAs(ctx context.Context, s *v1alpha1.Session, who string) error {
	patch := client.MergeFrom(s.DeepCopy())
	s.Spec.Terminated = true
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[v1alpha1.AnnotationTerminatedBy] = who
	return h.Client.Patch(ctx, s, patch)
}

// sessionName derives a readable, unique name from the owner's name.
func sessionName(owner string) string {
	local, _, _ := strings.Cut(strings.ToLower(owner), "@")
	var b strings.Builder
	for _, c := range local {
		if b.Len() >= 30 {
			break
		}
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
		} else if b.Len() > 0 && !strings.HasSuffix(b.String(), "-") {
			b.WriteByte('-')
		}
	}
	prefix := strings.Trim(b.String(), "-")
	if prefix == "" {
		prefix = "session"
	}
	return prefix + "-" + utilrand.String(5)
}

// judgeWait bounds how long a request's answer waits for the leader's
// judgement, so the caller learns at once whether it waits for approvers.
const judgeWait = 5 * time.Second

// awaitJudged returns the session once the leader has judged it (it left
// Pending), or as it is after judgeWait.
func (h *Handler) awaitJudged(ctx context.Context, s *v1alpha1.Session) *v1alpha1.Session {
	ctx, cancel := context.WithTimeout(ctx, judgeWait)
	defer cancel()
	latest := s
	_ = wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		cur := &v1alpha1.Session{}
		if err := h.Client.Get(ctx, client.ObjectKeyFromObject(s), cur); err != nil {
			return false, nil
		}
		latest = cur
		return cur.Status.Phase != "" && cur.Status.Phase != v1alpha1.PhasePending, nil
	})
	return latest
}

// listPolicies reads the gateway's AccessPolicies from c.
func (h *Handler) listPolicies(ctx context.Context, c client.Reader) ([]v1alpha1.AccessPolicy, error) {
	policies := &v1alpha1.AccessPolicyList{}
	if err := c.List(ctx, policies, client.InNamespace(h.Namespace)); err != nil {
		return nil, err
	}
	return policies.Items, nil
}

// coversAny reports whether any policy lets the caller request access to
// the cluster at all; a nil cluster (one that does not exist) none does.
func coversAny(policies []v1alpha1.AccessPolicy, id *authn.Identity, cluster *v1alpha1.Cluster) bool {
	return cluster != nil && slices.ContainsFunc(policies, func(p v1alpha1.AccessPolicy) bool {
		return entitlement.Covers(&p, id.Username, id.Groups, cluster)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	if s, ok := v.(*v1alpha1.Session); ok {
		s.APIVersion, s.Kind = v1alpha1.GroupVersion.String(), "Session"
		s.ManagedFields = nil
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
