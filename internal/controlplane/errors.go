package controlplane

import (
	"errors"
	"net"
	"net/url"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/credentials"
)

// errClusterNotFound means spec.cluster names no Cluster.
var errClusterNotFound = errors.New("cluster not found")

// managementError is an error from the management cluster, where a refusal
// means the gateway's own Role lacks a verb, not that a target refused.
type managementError struct{ err error }

func (e *managementError) Error() string { return e.err.Error() }
func (e *managementError) Unwrap() error { return e.err }

// classify decides once, for every step, what an error means: a permanent
// error fails the session; anything else is retried with backoff, with a
// reason that tells an operator where to look.
func classify(err error) (reason string, permanent bool) {
	var netErr net.Error
	var urlErr *url.Error
	var ce *clusterError
	if reason, ok := credentials.ReasonOf(err); ok {
		return reason, true
	}
	switch {
	case errors.As(err, &ce):
		// The operator can fix a Cluster; its sessions wait and say why.
		return ce.reason, false
	case x509Failure(err):
		return v1alpha1.ReasonTargetTLSFailed, false
	case errors.Is(err, errClusterNotFound):
		return v1alpha1.ReasonClusterNotFound, true
	case errors.As(err, new(*managementError)) && (apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err)):
		return reasonGatewayForbidden, false
	case apierrors.IsUnauthorized(err), apierrors.IsForbidden(err):
		return reasonTargetRefused, false
	case errors.As(err, &netErr), errors.As(err, &urlErr),
		apierrors.IsTimeout(err), apierrors.IsServerTimeout(err), apierrors.IsServiceUnavailable(err):
		return v1alpha1.ReasonTargetUnreachable, false
	default:
		return reasonMintRetrying, false
	}
}

// retry turns a transient error into a result: errors go to controller-runtime's
// rate limiter, which backs off per session.
func retry(err error) (ctrl.Result, error) {
	return reconcile.Result{}, err
}

// requeueAt asks for another pass at t (and at least a moment from now).
func requeueAt(now, t time.Time) ctrl.Result {
	d := t.Sub(now)
	if d < 100*time.Millisecond {
		d = 100 * time.Millisecond
	}
	return ctrl.Result{RequeueAfter: d}
}
