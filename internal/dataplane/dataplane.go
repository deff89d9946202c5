// Package dataplane keeps this replica's session registry in step with the
// API. It runs on every replica — leader or not — from shared informers on
// Sessions and their credentials Secrets.
package dataplane

import (
	"context"
	"fmt"
	"time"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/credentials"
	"sessiongate.dev/sessiongate/internal/registry"
)

// Reconciler registers Ready sessions and unregisters all others.
type Reconciler struct {
	client.Client
	Registry   *registry.Registry
	Clock      clock.PassiveClock
	Transports *registry.Transports
}

// Setup adds the data plane to mgr; it does not need leadership.
func Setup(mgr ctrl.Manager, namespace string, reg *registry.Registry) error {
	r := &Reconciler{Client: mgr.GetClient(), Registry: reg, Clock: clock.RealClock{}, Transports: registry.NewTransports()}
	inNamespace := predicate.NewPredicateFuncs(func(o client.Object) bool { return o.GetNamespace() == namespace })
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.Session{}, builder.WithPredicates(inNamespace)).
		Owns(&corev1.Secret{}).
		Named("session-dataplane").
		WithOptions(controller.Options{NeedLeaderElection: ptr.To(false), MaxConcurrentReconciles: 4}).
		Complete(r)
}

func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	s := &v1alpha1.Session{}
	if err := r.Get(ctx, req.NamespacedName, s); err != nil {
		if apierrors.IsNotFound(err) {
			r.Registry.Remove(req.Name, &registry.EndedError{Session: req.Name, Reason: "Deleted", Message: "the Session object was deleted"})
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if !r.servable(s) {
		r.Registry.Remove(s.Name, endedCause(s))
		return ctrl.Result{}, nil
	}
	sec := &corev1.Secret{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: s.Namespace, Name: s.Status.CredentialsSecretRef}, sec); err != nil {
		if apierrors.IsNotFound(err) {
			r.Registry.Remove(s.Name, &registry.EndedError{Session: s.Name, Reason: "Revoked", Message: "its credentials were revoked"})
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if !metav1.IsControlledBy(sec, s) {
		r.Registry.Remove(s.Name, &registry.EndedError{Session: s.Name, Reason: "Revoked", Message: "its credentials Secret is not its own"})
		return ctrl.Result{}, nil
	}
	want := &registry.Session{
		Name:         s.Name,
		Namespace:    s.Namespace,
		UID:          s.UID,
		Cluster:      s.Spec.Cluster,
		Owner:        s.Spec.Owner,
		ExpiresAt:    s.Status.ExpiresAt.Time,
		Identity:     sec.Annotations[credentials.AnnotationIdentity],
		IdleTimeout:  idleTimeout(s),
		Streams:      streams(s),
		Debug:        s.Status.Debug,
		Participants: s.Spec.Participants,
		Guests:       guests(s),
	}
	if cur, ok := r.Registry.Get(s.Name); ok && cur.UID == s.UID && cur.Expires().Equal(s.Status.ExpiresAt.Time) && cur.Backend().Version == sec.ResourceVersion && equality.Semantic.DeepEqual(cur.Limits(), want.Given()) {
		return ctrl.Result{}, nil
	}
	b, err := r.Transports.NewBackend(registry.BackendConfig{
		Server:  cachedString(sec.Data[credentials.KeyServer]),
		CA:      sec.Data[credentials.KeyCA],
		Token:   cachedString(sec.Data[credentials.KeyToken]),
		CertPEM: sec.Data[credentials.KeyClientCert],
		KeyPEM:  sec.Data[credentials.KeyClientKey],
		Version: sec.ResourceVersion,
	})
	if err != nil {
		// A broken Secret must not leave an older credential serving.
		r.Registry.Remove(s.Name, &registry.EndedError{Session: s.Name, Reason: "Revoked", Message: "its credentials cannot be used"})
		return ctrl.Result{}, fmt.Errorf("credentials Secret %s of session %s: %w", sec.Name, s.Name, err)
	}
	r.Registry.Put(want, b)
	klog.V(4).InfoS("Session served", "session", klog.KObj(s), "credentialVersion", sec.ResourceVersion)
	return ctrl.Result{}, nil
}

// cachedString is b, a value of a cached Secret, as a string without a copy:
// the replica's cache hands the data plane its own objects (see
// gateway.dataPlaneCache), which are replaced on update and never changed,
// so an idle session's token (and server) is held once, not twice. Nothing here may
// write to a Secret it read.
func cachedString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// servable: Ready, not terminated, not expired by this replica's clock, and
// the status names its Secret and backend.
func (r *Reconciler) servable(s *v1alpha1.Session) bool {
	return s.DeletionTimestamp.IsZero() &&
		!s.Spec.Terminated &&
		meta.IsStatusConditionTrue(s.Status.Conditions, v1alpha1.ConditionReady) &&
		s.Status.ExpiresAt != nil && r.Clock.Now().Before(s.Status.ExpiresAt.Time) &&
		s.Status.CredentialsSecretRef != "" && s.Status.BackendKASURL != ""
}

// endedCause says why a session that is not servable stops being served, in
// the words of its own status, so that a client whose stream is cut is told.
func endedCause(s *v1alpha1.Session) error {
	e := &registry.EndedError{Session: s.Name, Reason: "Inactive"}
	switch ready := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady); {
	case !s.DeletionTimestamp.IsZero():
		e.Reason, e.Message = "Deleted", "the Session object is being deleted"
	case s.Spec.Terminated:
		e.Reason, e.Message = v1alpha1.ReasonTerminated, "it was terminated"
	case ready != nil && ready.Status != metav1.ConditionTrue:
		e.Reason, e.Message = ready.Reason, ready.Message
	case s.Status.ExpiresAt != nil:
		e.Reason, e.Message = v1alpha1.ReasonExpired, "its TTL ran out at "+s.Status.ExpiresAt.UTC().Format("2006-01-02T15:04:05Z")
	}
	return e
}

// idleTimeout is the idle limit the session was granted, or zero.
func idleTimeout(s *v1alpha1.Session) time.Duration {
	if l := s.Status.Limits; l != nil && l.IdleTimeout != nil {
		return l.IdleTimeout.Duration
	}
	return 0
}

// streams are the exec and attach limits the session was granted, or nil.
func streams(s *v1alpha1.Session) *v1alpha1.StreamPolicy {
	if l := s.Status.Limits; l != nil {
		return l.Streams
	}
	return nil
}

// guests are who the session's owner may let in, or nil for anyone.
func guests(s *v1alpha1.Session) *v1alpha1.Subjects {
	if l := s.Status.Limits; l != nil {
		return l.Guests
	}
	return nil
}
