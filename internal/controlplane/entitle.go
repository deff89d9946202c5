package controlplane

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/entitlement"
)

// entitle is the step a request (a Session with spec.requester) passes
// before anything is minted: the leader judges it against the AccessPolicies
// once, snapshots the granting policy's limits into the status, and then holds
// it until its approvers have decided. done is true when the reconcile ends
// here.
func (r *SessionReconciler) entitle(ctx context.Context, s *v1alpha1.Session, cluster *v1alpha1.Cluster, now time.Time) (done bool, res ctrl.Result, err error) {
	if s.Status.Policy == "" {
		policies := &v1alpha1.AccessPolicyList{}
		if err := r.List(ctx, policies, client.InNamespace(s.Namespace)); err != nil {
			return true, ctrl.Result{}, fmt.Errorf("listing access policies: %w", err)
		}
		g, err := entitlement.Decide(policies.Items, entitlement.Request{
			User: s.Spec.Requester.User, Groups: s.Spec.Requester.Groups, Cluster: cluster,
			AccessLevel: s.Spec.AccessLevel, TTL: s.Spec.TTL.Duration, Reason: s.Spec.Reason, Policy: s.Spec.Policy,
		})
		var denied *entitlement.Denied
		switch {
		case errors.As(err, &denied):
			res, err := r.fail(ctx, s, v1alpha1.ReasonPolicyDenied, denied.Error())
			return true, res, err
		case err != nil:
			return true, ctrl.Result{}, err
		}
		s.Status.Policy = g.Policy.Name
		s.Status.Limits = &g.Limits
		r.Recorder.Eventf(s, nil, corev1.EventTypeNormal, "Granted", "Entitle",
			"requested by %s; granted by AccessPolicy %s%s", s.Spec.Requester.User, g.Policy.Name, approvalNote(g.Limits.Approval))
	}
	a := s.Status.Limits.Approval
	if a == nil {
		return false, ctrl.Result{}, nil
	}
	o := entitlement.Tally(a, s.Spec.Requester, s.Status.Decisions)
	switch {
	case o.Rejected != nil:
		msg := "rejected by " + o.Rejected.Approver
		if o.Rejected.Comment != "" {
			msg += ": " + o.Rejected.Comment
		}
		res, err := r.end(ctx, s, v1alpha1.ReasonRejected, msg)
		return true, res, err
	case o.Approved():
		if !isApproved(s) {
			r.Recorder.Eventf(s, nil, corev1.EventTypeNormal, "Approved", "Approve", "approved by %s", approvers(s.Spec.Requester, s.Status.Decisions))
		}
		return false, ctrl.Result{}, nil
	}
	deadline := s.CreationTimestamp.Add(a.Timeout.Duration)
	if !now.Before(deadline) {
		res, err := r.end(ctx, s, v1alpha1.ReasonApprovalTimeout, fmt.Sprintf("no decision within the policy's approval timeout of %s", a.Timeout.Duration))
		return true, res, err
	}
	setCondition(s, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonPendingApproval,
		fmt.Sprintf("waiting for %d more approval(s) from %s until %s", o.Needed-o.Approvals, describeSubjects(a.Approvers), deadline.UTC().Format(time.RFC3339)))
	return true, requeueAt(now, deadline), nil
}

// isApproved reports whether the session already left PendingApproval.
func isApproved(s *v1alpha1.Session) bool {
	return phaseOf(s.Status.Conditions) != v1alpha1.PhasePendingApproval
}

func approvalNote(a *v1alpha1.Approval) string {
	if a == nil {
		return ", no approval needed"
	}
	return fmt.Sprintf(", waiting for %d approval(s) from %s", a.MinApprovals, describeSubjects(a.Approvers))
}

func describeSubjects(s v1alpha1.Subjects) string {
	var parts []string
	if len(s.Groups) > 0 {
		parts = append(parts, "group(s) "+strings.Join(s.Groups, ", "))
	}
	if len(s.Users) > 0 {
		parts = append(parts, "user(s) "+strings.Join(s.Users, ", "))
	}
	if len(parts) == 0 {
		return "nobody (the policy names no approvers)"
	}
	return strings.Join(parts, " or ")
}

// approvers names who approved, leaving out the requester, whose own
// approval never counts.
func approvers(requester *v1alpha1.Requester, ds []v1alpha1.Decision) string {
	var names []string
	for _, d := range ds {
		if d.Decision == v1alpha1.DecisionApproved && d.Approver != requester.User && !slices.Contains(names, d.Approver) {
			names = append(names, d.Approver)
		}
	}
	return strings.Join(names, ", ")
}
