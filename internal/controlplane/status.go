package controlplane

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sessiongate.dev/sessiongate/api/v1alpha1"
)

// Reasons that only this package sets on the Ready and CredentialsAvailable
// conditions, beside those the API names.
const (
	reasonTargetRefused = "TargetRefused"
	// reasonGatewayForbidden: the management cluster refused the gateway
	// (its Role, config/rbac/role.yaml, lacks a verb).
	reasonGatewayForbidden = "GatewayForbidden"
	reasonMintRetrying     = "MintRetrying"
)

// phaseByReadyReason maps the reason of a False Ready condition to the phase it
// means. Any reason not listed means the session is still Pending.
var phaseByReadyReason = map[string]v1alpha1.SessionPhase{
	v1alpha1.ReasonExpired:           v1alpha1.PhaseExpired,
	v1alpha1.ReasonTerminated:        v1alpha1.PhaseTerminated,
	v1alpha1.ReasonInvalidSpec:       v1alpha1.PhaseFailed,
	v1alpha1.ReasonClusterNotFound:   v1alpha1.PhaseFailed,
	v1alpha1.ReasonMintFailed:        v1alpha1.PhaseFailed,
	v1alpha1.ReasonClusterDeleted:    v1alpha1.PhaseTerminated,
	v1alpha1.ReasonNamespaceNotFound: v1alpha1.PhaseFailed,
	v1alpha1.ReasonTargetForbidden:   v1alpha1.PhaseFailed,
	v1alpha1.ReasonNameConflict:      v1alpha1.PhaseFailed,
	v1alpha1.ReasonPolicyDenied:      v1alpha1.PhaseFailed,
	v1alpha1.ReasonPendingApproval:   v1alpha1.PhasePendingApproval,
	v1alpha1.ReasonRejected:          v1alpha1.PhaseRejected,
	v1alpha1.ReasonApprovalTimeout:   v1alpha1.PhaseApprovalTimeout,
	v1alpha1.ReasonScheduled:         v1alpha1.PhaseScheduled,
	v1alpha1.ReasonIdleExpired:       v1alpha1.PhaseIdleExpired,
	v1alpha1.ReasonTemplateInvalid:   v1alpha1.PhaseFailed,
	v1alpha1.ReasonDebugPodsNotReady: v1alpha1.PhaseFailed,
}

// phaseOf derives the phase from the conditions; it is the only place that
// decides a phase.
func phaseOf(conds []metav1.Condition) v1alpha1.SessionPhase {
	ready := meta.FindStatusCondition(conds, v1alpha1.ConditionReady)
	switch {
	case ready == nil:
		return v1alpha1.PhasePending
	case ready.Status == metav1.ConditionTrue:
		return v1alpha1.PhaseActive
	}
	if p, ok := phaseByReadyReason[ready.Reason]; ok {
		return p
	}
	return v1alpha1.PhasePending
}

// isFinal reports whether a session has ended for good.
func isFinal(s *v1alpha1.Session) bool {
	switch phaseOf(s.Status.Conditions) {
	case v1alpha1.PhaseExpired, v1alpha1.PhaseTerminated, v1alpha1.PhaseFailed, v1alpha1.PhaseRejected, v1alpha1.PhaseApprovalTimeout, v1alpha1.PhaseIdleExpired:
		return true
	}
	return false
}

// needsRevocation reports whether anything may still exist on the target or
// in the credentials Secret for s: only a revocation that succeeded says no.
func needsRevocation(s *v1alpha1.Session) bool {
	return !isRevoked(s)
}

// isRevoked reports whether the session's credentials were revoked.
func isRevoked(s *v1alpha1.Session) bool {
	c := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionCredentialsAvailable)
	return c != nil && c.Reason == v1alpha1.ReasonRevoked
}

func setCondition(s *v1alpha1.Session, condType string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&s.Status.Conditions, metav1.Condition{
		Type: condType, Status: status, Reason: reason, Message: msg, ObservedGeneration: s.Generation,
	})
}
