package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"sessiongate.dev/sessiongate/api/v1alpha1"
)

// ClusterReconciler keeps a Cluster's Ready condition true to what the gateway
// finds when it uses the Cluster — the kubeconfig Secret, the CA, the target
// itself — and, when a Cluster is deleted, holds it until every session on it
// has ended and been revoked there.
type ClusterReconciler struct {
	client.Client
	Recorder events.EventRecorder
	// Interval is how often a Cluster's target is probed again.
	Interval time.Duration

	targets *targets
}

func (r *ClusterReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	c := &v1alpha1.Cluster{}
	if err := r.Get(ctx, req.NamespacedName, c); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !c.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, c)
	}
	if err := addFinalizer(ctx, r.Client, c, v1alpha1.ClusterFinalizer); err != nil {
		return ctrl.Result{}, err
	}
	reason, msg := r.probe(ctx, c)
	status := metav1.ConditionFalse
	if reason == v1alpha1.ReasonClusterReady {
		status = metav1.ConditionTrue
	}
	if err := r.setReady(ctx, c, status, reason, msg); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: r.Interval}, nil
}

// probe uses the Cluster as a session would: it builds the minting client
// and asks the target who it is, so a wrong server, CA or credential shows on
// the Cluster instead of in sessions that go Active and then fail.
func (r *ClusterReconciler) probe(ctx context.Context, c *v1alpha1.Cluster) (reason, msg string) {
	t, err := r.targets.forCluster(ctx, c)
	if err != nil {
		var ce *clusterError
		if errors.As(err, &ce) {
			return ce.reason, ce.msg
		}
		return v1alpha1.ReasonKubeconfigInvalid, err.Error()
	}
	review, err := t.Client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	var netErr net.Error
	switch {
	case err == nil:
		return v1alpha1.ReasonClusterReady, fmt.Sprintf("target %s reached as %s", c.Spec.Server, review.Status.UserInfo.Username)
	case x509Failure(err):
		return v1alpha1.ReasonTargetTLSFailed, fmt.Sprintf("the serving certificate of %s does not verify against spec.caBundle: %v", c.Spec.Server, err)
	case apierrors.IsUnauthorized(err):
		return v1alpha1.ReasonTargetAuthFailed, fmt.Sprintf("target %s refused the kubeconfig Secret's credential", c.Spec.Server)
	case errors.As(err, &netErr):
		return v1alpha1.ReasonTargetUnreachable, fmt.Sprintf("target %s: %v", c.Spec.Server, err)
	default:
		return v1alpha1.ReasonTargetUnreachable, fmt.Sprintf("target %s: %v", c.Spec.Server, err)
	}
}

// finalize waits until no session on the Cluster still holds anything on the
// target, then lets the Cluster go. The session controller ends them (reason
// ClusterDeleted) as soon as it sees the deletion.
func (r *ClusterReconciler) finalize(ctx context.Context, c *v1alpha1.Cluster) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(c, v1alpha1.ClusterFinalizer) {
		return ctrl.Result{}, nil
	}
	sessions := &v1alpha1.SessionList{}
	if err := r.List(ctx, sessions, client.InNamespace(c.Namespace), client.MatchingFields{indexSessionCluster: c.Name}); err != nil {
		return ctrl.Result{}, err
	}
	waiting := 0
	for i := range sessions.Items {
		if !isRevoked(&sessions.Items[i]) {
			waiting++
		}
	}
	if waiting > 0 {
		msg := fmt.Sprintf("waiting for %d session(s) to end and be revoked on the target", waiting)
		if err := r.setReady(ctx, c, metav1.ConditionFalse, v1alpha1.ReasonDeleting, msg); err != nil {
			return ctrl.Result{}, err
		}
		// Sessions that end enqueue this Cluster; the requeue is a backstop.
		return ctrl.Result{RequeueAfter: 10 * time.Second}, nil
	}
	klog.V(2).InfoS("Every session of the cluster has ended; releasing it", "cluster", klog.KObj(c))
	r.Recorder.Eventf(c, nil, corev1.EventTypeNormal, v1alpha1.ReasonDeleting, "Delete", "every session on cluster %s has ended and been revoked", c.Name)
	return ctrl.Result{}, removeFinalizer(ctx, r.Client, c, v1alpha1.ClusterFinalizer)
}

// setReady patches the Ready condition when it changes, with an Event for
// each change.
func (r *ClusterReconciler) setReady(ctx context.Context, c *v1alpha1.Cluster, status metav1.ConditionStatus, reason, msg string) error {
	before := c.DeepCopy()
	meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{
		Type: v1alpha1.ClusterConditionReady, Status: status, Reason: reason, Message: msg, ObservedGeneration: c.Generation,
	})
	if equality.Semantic.DeepEqual(before.Status, c.Status) {
		return nil
	}
	if err := r.Status().Patch(ctx, c, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("patching status of cluster %s: %w", c.Name, err)
	}
	eventType := corev1.EventTypeNormal
	if status != metav1.ConditionTrue {
		eventType = corev1.EventTypeWarning
	}
	r.Recorder.Eventf(c, nil, eventType, reason, "Probe", "%s", msg)
	klog.V(2).InfoS("Cluster condition changed", "cluster", klog.KObj(c), "ready", status, "reason", reason, "message", msg)
	return nil
}
