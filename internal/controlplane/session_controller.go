// Package controlplane holds the leader-only reconcilers: the Session
// controller that validates, mints, activates, expires and revokes sessions,
// and the sweep that removes target-side objects whose session is gone.
package controlplane

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/credentials"
	"sessiongate.dev/sessiongate/internal/notify"
	"sessiongate.dev/sessiongate/internal/policy"
)

// Finalizer keeps a Session until its credentials are revoked on the target.
const Finalizer = "sessiongate.dev/revoke-credentials"

// refreshBefore is how long before a credential runs out (while its session
// still lasts) a fresh one is minted.
const refreshBefore = 2 * time.Minute

// SessionReconciler drives a Session from Pending to Active and on to an end.
// Every step is idempotent: a crash between two steps leaves nothing that the
// next pass does not finish or clean up.
type SessionReconciler struct {
	client.Client
	// APIReader reads uncached: a refusal is never made on a stale cache.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Clock     clock.PassiveClock
	Policy    policy.Policy
	// IngressBaseURL is the gateway's external URL, e.g. https://gw.example.com.
	IngressBaseURL string
	// Istio, when set, gives each Active session an AuthorizationPolicy.
	Istio *IstioOptions

	targets  *targets
	notifier *notify.Notifier
	written  *ownWrites
}

// +kubebuilder:rbac:groups=sessiongate.dev,namespace=sessiongate,resources=sessions;clusters,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=sessiongate.dev,namespace=sessiongate,resources=accesspolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=sessiongate.dev,namespace=sessiongate,resources=sessions/status;clusters/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=sessiongate.dev,namespace=sessiongate,resources=sessions/finalizers;clusters/finalizers,verbs=update
// +kubebuilder:rbac:groups="",namespace=sessiongate,resources=secrets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,namespace=sessiongate,resources=events,verbs=create;patch
// Leader election still records its Events with the core API.
// +kubebuilder:rbac:groups="",namespace=sessiongate,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=sessiongate,resources=leases,verbs=get;list;watch;create;update;patch;delete

func (r *SessionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	s := &v1alpha1.Session{}
	if err := r.Get(ctx, req.NamespacedName, s); err != nil {
		if apierrors.IsNotFound(err) {
			r.written.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if r.written.past(req.NamespacedName, s.ResourceVersion) {
		// The watch brings the leader's own write, and another pass.
		klog.V(4).InfoS("Session read from the cache predates the leader's own write; waiting for it", "session", klog.KObj(s))
		return ctrl.Result{RequeueAfter: staleRequeue}, nil
	}
	ev := &passEvents{EventRecorder: r.Recorder, session: s}
	defer ev.flush()
	pass := *r
	pass.Recorder = ev
	return pass.reconcilePass(ctx, s, ev)
}

// reconcilePass is one pass over s; ev is its recorder.
func (r *SessionReconciler) reconcilePass(ctx context.Context, s *v1alpha1.Session, ev *passEvents) (ctrl.Result, error) {
	if !s.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, s)
	}
	if !controllerutil.ContainsFinalizer(s, Finalizer) {
		// A patch of the finalizers alone: writing the whole object back
		// would re-encode the spec (ttl: 10m becomes 10m0s) for nothing.
		from := s.ResourceVersion
		if err := addFinalizer(ctx, r.Client, s, Finalizer); err != nil {
			return ctrl.Result{}, err
		}
		r.written.wrote(client.ObjectKeyFromObject(s), from, s.ResourceVersion)
	}

	before := s.Status.DeepCopy()
	res, err := r.reconcile(ctx, s)
	s.Status.Phase = phaseOf(s.Status.Conditions)
	s.Status.ObservedGeneration = s.Generation
	if !equality.Semantic.DeepEqual(before, &s.Status) {
		if perr := r.patchStatus(ctx, s, before); perr != nil {
			if apierrors.IsConflict(perr) {
				// Someone wrote since the read: decide again on what is there,
				// and tell what that pass decides.
				ev.drop()
				klog.V(4).InfoS("Session changed while reconciling; again", "session", klog.KObj(s))
				return ctrl.Result{RequeueAfter: 10 * time.Millisecond}, nil
			}
			return ctrl.Result{}, perr
		}
		if before.Phase != s.Status.Phase {
			klog.V(2).InfoS("Session phase changed", "session", klog.KObj(s), "from", before.Phase, "to", s.Status.Phase)
		}
		r.notify(ctx, s, before)
	}
	return res, err
}

// patchStatus sends only what changed, and only onto the version it read:
// a decision made on a stale cache (a second activation moving expiresAt,
// a renewal applied twice) is refused with a conflict and made again on
// fresh state.
func (r *SessionReconciler) patchStatus(ctx context.Context, s *v1alpha1.Session, before *v1alpha1.SessionStatus) error {
	orig := s.DeepCopy()
	orig.Status = *before
	if err := r.Status().Patch(ctx, s, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("patching status of session %s: %w", s.Name, err)
	}
	r.written.wrote(client.ObjectKeyFromObject(s), orig.ResourceVersion, s.ResourceVersion)
	return nil
}

// ownWrites are, per session, the versions the leader has written past. A
// write comes back through the watch a moment later; a pass that reads the
// cache before then sees a version the leader has already moved on from,
// and would only decide again what it decided (and tell it in Events) to
// meet a conflict. At a burst of activations that was a wasted pass per
// session. A session is remembered until a pass reads another version, or
// for ownWriteWait at most: a cache that lags longer (a watch refused) gets
// the passes it got before, which the optimistic lock keeps safe.
type ownWrites struct {
	mu  sync.Mutex
	m   map[types.NamespacedName]*ownWrite
	now func() time.Time
}

type ownWrite struct {
	past []string  // versions written past
	made string    // the version of the last write
	at   time.Time // when
}

// ownWriteWait is how long a pass waits, at most, for the leader's own write
// to reach the cache.
const ownWriteWait = 5 * time.Second

// wrote records a write that moved key from one version to another. A write
// the API server found nothing new in keeps the version, and no watch event
// follows it: it is not one to wait for.
func (w *ownWrites) wrote(key types.NamespacedName, from, to string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if from == to {
		delete(w.m, key)
		return
	}
	if w.m == nil {
		w.m = map[types.NamespacedName]*ownWrite{}
	}
	e := w.m[key]
	if e == nil || e.made != from {
		e = &ownWrite{}
		w.m[key] = e
	}
	e.past = append(e.past, from)
	e.made, e.at = to, w.now()
}

// past reports whether version of key is one the leader has written past
// within ownWriteWait; reading any other version forgets the writes.
func (w *ownWrites) past(key types.NamespacedName, version string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.m[key]
	if e == nil {
		return false
	}
	if slices.Contains(e.past, version) && w.now().Sub(e.at) < ownWriteWait {
		return true
	}
	delete(w.m, key)
	return false
}

// forget drops a session that is gone.
func (w *ownWrites) forget(key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, key)
}

// reconcile runs the steps in order; the first that has more to do returns.
func (r *SessionReconciler) reconcile(ctx context.Context, s *v1alpha1.Session) (ctrl.Result, error) {
	now := r.Clock.Now()
	switch {
	case isFinal(s):
		return r.ensureRevoked(ctx, s)
	case s.Spec.Terminated:
		by := "spec.terminated"
		if who := s.Annotations[v1alpha1.AnnotationTerminatedBy]; who != "" {
			by = who
		}
		return r.end(ctx, s, v1alpha1.ReasonTerminated, "terminated by "+by)
	}
	renewalDue := r.renew(s, now)
	switch idle := idleDeadline(s); {
	case s.Status.ExpiresAt != nil && !now.Before(s.Status.ExpiresAt.Time):
		return r.end(ctx, s, v1alpha1.ReasonExpired, fmt.Sprintf("TTL ran out at %s", s.Status.ExpiresAt.UTC().Format(time.RFC3339)))
	case !idle.IsZero() && !now.Before(idle):
		return r.end(ctx, s, v1alpha1.ReasonIdleExpired, fmt.Sprintf("no request for %s (the policy's idleTimeout)", s.Status.Limits.IdleTimeout.Duration))
	}
	cluster, err := r.targets.cluster(ctx, s.Spec.Cluster)
	if err != nil {
		return r.stepFailed(ctx, s, err)
	}
	if !cluster.DeletionTimestamp.IsZero() {
		return r.end(ctx, s, v1alpha1.ReasonClusterDeleted, fmt.Sprintf("Cluster %s is being deleted", cluster.Name))
	}
	if s.Spec.Requester != nil && s.Status.ActivatedAt == nil {
		if done, res, err := r.entitle(ctx, s, cluster, now); done {
			return res, err
		}
	}
	// Only an AccessPolicy grants cluster-wide rights beyond view, and the
	// entitlement step above has judged exactly that for a request.
	grantedClusterWide := s.Status.Policy != ""
	if errs := r.Policy.Validate(&s.Spec, credentials.SessionNamespace(cluster), grantedClusterWide); len(errs) > 0 {
		return r.fail(ctx, s, v1alpha1.ReasonInvalidSpec, errs.ToAggregate().Error())
	}
	// The target's kubeconfig is read from the API server, not a cache: only
	// when the pass acts on the target. A session whose credentials are
	// fresh costs no read, and at 10,000 sessions a pass over all of them
	// is not 10,000 GETs ahead of a new one.
	var target credentials.Target
	var targetErr error
	read := false
	onTarget := func() (credentials.Target, error) {
		if !read {
			target, targetErr = r.targets.forCluster(ctx, cluster)
			read = true
		}
		return target, targetErr
	}
	res, err := r.activate(ctx, s, cluster, onTarget, now)
	var warnAt time.Time
	if err == nil {
		warnAt = r.expiringSoon(ctx, s, now)
	}
	// Come back for whatever is due first: the idle deadline, a renewal's
	// approval timeout, the expiring-soon notification.
	for _, t := range []time.Time{idleDeadline(s), renewalDue, warnAt} {
		if !t.IsZero() && err == nil && (res.RequeueAfter == 0 || t.Sub(now) < res.RequeueAfter) {
			res = requeueAt(now, t)
		}
	}
	return res, err
}

// activate makes sure a fresh credential is stored and the status says Active.
func (r *SessionReconciler) activate(ctx context.Context, s *v1alpha1.Session, cluster *v1alpha1.Cluster, onTarget func() (credentials.Target, error), now time.Time) (ctrl.Result, error) {
	expiresAt := now.Add(s.Spec.TTL.Duration)
	if s.Status.ExpiresAt != nil {
		expiresAt = s.Status.ExpiresAt.Time
	}

	secret, err := r.credentialsSecret(ctx, s)
	if err != nil {
		return r.stepFailed(ctx, s, err)
	}
	notAfter, fresh := time.Time{}, false
	if secret != nil {
		notAfter, fresh = credentials.NotAfterOf(secret)
		fresh = fresh && (!now.Add(refreshBefore).After(notAfter) || !notAfter.Before(expiresAt))
	}
	if !fresh {
		// Minting acts on the target before any status says so: never on
		// a stale read, which would give a session revoked a moment ago
		// credentials again that no later pass revokes.
		if stale, err := r.staleRead(ctx, s); err != nil || stale {
			// The watch brings the newer version and another pass.
			return ctrl.Result{RequeueAfter: staleRequeue}, err
		}
		target, err := onTarget()
		if err != nil {
			return r.stepFailed(ctx, s, err)
		}
		minter, err := credentials.NewMinter(target)
		if err != nil {
			return r.stepFailed(ctx, s, err)
		}
		cred, err := minter.Mint(ctx, s, expiresAt)
		if err != nil {
			return r.stepFailed(ctx, s, fmt.Errorf("minting credentials on cluster %s: %w", s.Spec.Cluster, err))
		}
		if err := r.storeCredential(ctx, s, secret, target, cred); err != nil {
			return r.stepFailed(ctx, s, err)
		}
		notAfter = cred.NotAfter
		r.Recorder.Eventf(s, nil, corev1.EventTypeNormal, v1alpha1.ReasonMinted, "Mint",
			"minted credentials on cluster %s for %s, valid until %s", s.Spec.Cluster, cred.Identity, cred.NotAfter.UTC().Format(time.RFC3339))
	}
	if s.Spec.Debug != nil {
		// A debug session is Active once its pods are ready; until then
		// this step holds it back and polls.
		target, err := onTarget()
		if err != nil {
			return r.stepFailed(ctx, s, err)
		}
		if done, res, err := r.ensureDebug(ctx, s, target, now); done {
			return res, err
		}
	}

	if err := r.ensureAuthorizationPolicy(ctx, s); err != nil {
		return r.stepFailed(ctx, s, err)
	}
	if s.Status.ActivatedAt == nil {
		s.Status.ActivatedAt = &metav1.Time{Time: now}
		s.Status.ExpiresAt = &metav1.Time{Time: expiresAt}
		how := "granted by " + grantedBy(s)
		if s.Spec.Requester == nil {
			how = "created directly as a Session by a management-cluster principal (admin path; no AccessPolicy applies)"
		}
		r.Recorder.Eventf(s, nil, corev1.EventTypeNormal, v1alpha1.ReasonActive, "Activate",
			"session active on cluster %s until %s, %s", s.Spec.Cluster, expiresAt.UTC().Format(time.RFC3339), how)
	}
	s.Status.Endpoint = strings.TrimRight(r.IngressBaseURL, "/") + "/sessiongate/" + s.Name + "/kas"
	s.Status.BackendKASURL = cluster.Spec.Server
	s.Status.CredentialsSecretRef = secretName(s)
	setCondition(s, v1alpha1.ConditionCredentialsAvailable, metav1.ConditionTrue, v1alpha1.ReasonMinted,
		"credentials valid until "+notAfter.UTC().Format(time.RFC3339))
	setCondition(s, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonActive,
		"session active until "+expiresAt.UTC().Format(time.RFC3339))

	next := expiresAt
	if refresh := notAfter.Add(-refreshBefore); notAfter.Before(expiresAt) && refresh.Before(next) {
		next = refresh
	}
	if s.Spec.Debug != nil && next.Sub(now) > debugRefresh {
		next = now.Add(debugRefresh)
	}
	return requeueAt(now, next), nil
}

// staleRequeue is when a pass that met a stale cache comes back, should the
// watch event that brings the newer version not come first.
const staleRequeue = 500 * time.Millisecond

// staleRead reports whether s, as read from the cache, is older than what
// the API server holds.
func (r *SessionReconciler) staleRead(ctx context.Context, s *v1alpha1.Session) (bool, error) {
	if r.APIReader == nil {
		return false, nil
	}
	cur := &v1alpha1.Session{}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(s), cur); err != nil {
		// Gone from the API server: stale too.
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	}
	if cur.ResourceVersion != s.ResourceVersion {
		klog.V(4).InfoS("Session read from a stale cache; not minting on it", "session", klog.KObj(s))
		return true, nil
	}
	return false, nil
}

// stepFailed records why a step did not finish: permanent errors fail the
// session, transient ones keep it Pending and retry with backoff.
func (r *SessionReconciler) stepFailed(ctx context.Context, s *v1alpha1.Session, err error) (ctrl.Result, error) {
	reason, permanent := classify(err)
	if permanent {
		return r.fail(ctx, s, reason, err.Error())
	}
	if s.Status.ActivatedAt == nil {
		setCondition(s, v1alpha1.ConditionReady, metav1.ConditionFalse, reason, err.Error())
	}
	setCondition(s, v1alpha1.ConditionCredentialsAvailable, metav1.ConditionFalse, reason, err.Error())
	r.Recorder.Eventf(s, nil, corev1.EventTypeWarning, reason, "Mint", "%s (retrying)", err.Error())
	return retry(err)
}

// fail ends the session as Failed, and revokes whatever it may have, like
// every other end: a session that was Active when a policy change failed it
// must not keep its ServiceAccount, bindings or Secret.
func (r *SessionReconciler) fail(ctx context.Context, s *v1alpha1.Session, reason, msg string) (ctrl.Result, error) {
	setCondition(s, v1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
	r.Recorder.Eventf(s, nil, corev1.EventTypeWarning, reason, "Fail", "%s", msg)
	klog.V(2).InfoS("Session failed", "session", klog.KObj(s), "reason", reason, "message", msg)
	return r.ensureRevoked(ctx, s)
}

// end marks the session Expired or Terminated and revokes its credentials.
func (r *SessionReconciler) end(ctx context.Context, s *v1alpha1.Session, reason, msg string) (ctrl.Result, error) {
	setCondition(s, v1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
	r.Recorder.Eventf(s, nil, corev1.EventTypeNormal, reason, "End", "%s", msg)
	return r.ensureRevoked(ctx, s)
}

// ensureRevoked deletes the session's Secret and its objects on the target.
// It runs on every terminal transition and is idempotent; only a successful
// revocation marks CredentialsAvailable Revoked.
func (r *SessionReconciler) ensureRevoked(ctx context.Context, s *v1alpha1.Session) (ctrl.Result, error) {
	if !needsRevocation(s) {
		return ctrl.Result{}, nil
	}
	if err := r.revoke(ctx, s); err != nil {
		setCondition(s, v1alpha1.ConditionCredentialsAvailable, metav1.ConditionFalse, v1alpha1.ReasonRevocationRetrying, err.Error())
		return retry(err)
	}
	setCondition(s, v1alpha1.ConditionCredentialsAvailable, metav1.ConditionFalse, v1alpha1.ReasonRevoked,
		"credentials deleted on the target and in the gateway")
	r.Recorder.Eventf(s, nil, corev1.EventTypeNormal, v1alpha1.ReasonRevoked, "Revoke", "credentials revoked on cluster %s", s.Spec.Cluster)
	if left := ephemeralContainers(s); left != "" {
		// The API server never removes an ephemeral container: it runs
		// until its process ends or its pod is replaced.
		r.Recorder.Eventf(s, nil, corev1.EventTypeWarning, "EphemeralContainersRemain", "Revoke",
			"ephemeral containers the session added stay in their pods until those are replaced: %s", left)
	}
	return ctrl.Result{}, nil
}

// revoke deletes the session's own Secret first — every replica stops
// serving the session the moment it is gone — and then, by the session's UID,
// whatever the gateway made for it on the target.
func (r *SessionReconciler) revoke(ctx context.Context, s *v1alpha1.Session) error {
	sec := &corev1.Secret{}
	err := r.Get(ctx, types.NamespacedName{Namespace: s.Namespace, Name: secretName(s)}, sec)
	switch {
	case err == nil && metav1.IsControlledBy(sec, s):
		uid := sec.UID
		if err := r.Delete(ctx, sec, &client.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting credentials Secret %s: %w", sec.Name, err)
		}
	case err != nil && !apierrors.IsNotFound(err):
		return fmt.Errorf("reading credentials Secret %s: %w", secretName(s), err)
	}
	if err := r.deleteAuthorizationPolicy(ctx, s); err != nil {
		return err
	}

	target, err := r.targets.get(ctx, s.Spec.Cluster)
	switch {
	case err == nil:
		if err := credentials.Revoke(ctx, target, s.UID); err != nil {
			return fmt.Errorf("revoking on cluster %s: %w", s.Spec.Cluster, err)
		}
	case isClusterNotFound(err):
		// Nothing of this gateway can reach that target any more; the gateway
		// itself refuses the session, which is what counts.
		klog.V(2).InfoS("Cluster gone; nothing to revoke there", "session", klog.KObj(s), "cluster", s.Spec.Cluster)
	default:
		return err
	}
	klog.V(2).InfoS("Revoked session credentials", "session", klog.KObj(s), "cluster", s.Spec.Cluster)
	return nil
}

// finalize revokes a deleted session and lets it go.
func (r *SessionReconciler) finalize(ctx context.Context, s *v1alpha1.Session) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(s, Finalizer) {
		return ctrl.Result{}, nil
	}
	if err := r.revoke(ctx, s); err != nil {
		r.Recorder.Eventf(s, nil, corev1.EventTypeWarning, v1alpha1.ReasonRevocationRetrying, "Revoke", "%s (retrying)", err.Error())
		return retry(err)
	}
	return ctrl.Result{}, removeFinalizer(ctx, r.Client, s, Finalizer)
}

func isClusterNotFound(err error) bool {
	reason, _ := classify(err)
	return reason == v1alpha1.ReasonClusterNotFound
}

// SecretName is the name of a session's credentials Secret.
func secretName(s *v1alpha1.Session) string { return s.Name + "-credentials" }

// credentialsSecret returns the session's Secret, or nil when there is none.
func (r *SessionReconciler) credentialsSecret(ctx context.Context, s *v1alpha1.Session) (*corev1.Secret, error) {
	sec := &corev1.Secret{}
	err := r.Get(ctx, types.NamespacedName{Namespace: s.Namespace, Name: secretName(s)}, sec)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, &managementError{fmt.Errorf("reading credentials Secret: %w", err)}
	case !metav1.IsControlledBy(sec, s):
		return nil, &credentials.PermanentError{Reason: v1alpha1.ReasonNameConflict,
			Msg: fmt.Sprintf("Secret %s/%s exists and does not belong to session %s; it was left alone", sec.Namespace, sec.Name, s.Name)}
	}
	return sec, nil
}

// storeCredential writes the credential to the session's Secret, creating it
// on first use. The Secret is the only place a credential is kept.
func (r *SessionReconciler) storeCredential(ctx context.Context, s *v1alpha1.Session, existing *corev1.Secret, t credentials.Target, cred *credentials.Credential) error {
	sec := existing
	if sec == nil {
		sec = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: secretName(s)}}
	}
	sec.Type = credentials.SecretType
	sec.Labels = map[string]string{credentials.LabelManagedBy: credentials.ManagedByValue, credentials.LabelSessionName: s.Name}
	sec.Annotations = map[string]string{
		credentials.AnnotationNotAfter: cred.NotAfter.UTC().Format(time.RFC3339),
		credentials.AnnotationIdentity: cred.Identity,
	}
	sec.Data = cred.SecretData(t.Cluster.Spec.Server, t.Cluster.Spec.CABundle)
	if err := controllerutil.SetControllerReference(s, sec, r.Scheme()); err != nil {
		return err
	}
	var err error
	if existing == nil {
		err = r.Create(ctx, sec)
	} else {
		err = r.Update(ctx, sec)
	}
	if err != nil {
		return &managementError{fmt.Errorf("storing credentials in Secret %s: %w", sec.Name, err)}
	}
	return nil
}
