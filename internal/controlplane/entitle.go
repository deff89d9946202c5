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
	"sessiongate.dev/sessiongate/internal/credentials"
	"sessiongate.dev/sessiongate/internal/debug"
	"sessiongate.dev/sessiongate/internal/entitlement"
)

// entitle is the step a request (a Session with spec.requester) passes
// before anything is minted: the leader judges it against the AccessPolicies
// once, snapshots the granting policy's limits into the status, and then holds
// it until its approvers have decided. done is true when the reconcile ends
// here.
func (r *SessionReconciler) entitle(ctx context.Context, s *v1alpha1.Session, cluster *v1alpha1.Cluster, now time.Time) (done bool, res ctrl.Result, err error) {
	if !judged(s) {
		judge := r.judge
		if s.Spec.Debug != nil {
			judge = r.judgeDebug
		}
		g, err := judge(ctx, r.Client, s, cluster)
		var denied *entitlement.Denied
		if errors.As(err, &denied) && r.APIReader != nil {
			// A policy created a moment ago may not be in the cache yet;
			// a refusal is final, so it is made on what the API server says.
			g, err = judge(ctx, r.APIReader, s, cluster)
		}
		var invalid *invalidRequest
		switch {
		case errors.As(err, &denied):
			res, err := r.fail(ctx, s, v1alpha1.ReasonPolicyDenied, denied.Error())
			return true, res, err
		case errors.As(err, &invalid):
			res, err := r.fail(ctx, s, v1alpha1.ReasonInvalidSpec, invalid.Error())
			return true, res, err
		case err != nil:
			return true, ctrl.Result{}, err
		}
		if s.Spec.Debug == nil {
			s.Status.Policy = g.Policy.Name
		}
		// No policy grants longer than the gateway allows (--max-ttl),
		// and the limit bounds each renewal and the session's total.
		g.Limits.MaxTTL.Duration = entitlement.MaxRenewal(&g.Limits, r.Policy.MaxTTL)
		s.Status.Limits = &g.Limits
		r.Recorder.Eventf(s, nil, corev1.EventTypeNormal, "Granted", "Entitle",
			"requested by %s; granted by %s%s", s.Spec.Requester.User, grantedBy(s), approvalNote(g.Limits.Approval))
		if a := g.Policy.Spec.Approval; a != nil && !g.NeedsApproval {
			// The leader decided in the approvers' place: say so, and why.
			r.Recorder.Eventf(s, nil, corev1.EventTypeNormal, "AutoApproved", "Approve",
				"approved by the gateway without an approver: %s auto-approves %s", grantedBy(s), describeAutoApprove(a.AutoApprove, s.Spec.Requester.Groups))
		}
	}
	if done, res, err := r.approval(ctx, s, now); done {
		return done, res, err
	}
	if at := startAt(s); now.Before(at) {
		setCondition(s, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonScheduled,
			"starts at "+at.UTC().Format(time.RFC3339))
		return true, requeueAt(now, at), nil
	}
	return false, ctrl.Result{}, nil
}

// judge decides a request against the AccessPolicies read from c.
func (r *SessionReconciler) judge(ctx context.Context, c client.Reader, s *v1alpha1.Session, cluster *v1alpha1.Cluster) (*entitlement.Grant, error) {
	policies := &v1alpha1.AccessPolicyList{}
	if err := c.List(ctx, policies, client.InNamespace(s.Namespace)); err != nil {
		return nil, fmt.Errorf("listing access policies: %w", err)
	}
	return entitlement.Decide(policies.Items, entitlement.Request{
		User: s.Spec.Requester.User, Groups: s.Spec.Requester.Groups, Cluster: cluster,
		AccessLevel: s.Spec.AccessLevel, TTL: s.Spec.TTL.Duration, Reason: s.Spec.Reason, Policy: s.Spec.Policy,
		StartAt: startAt(s), Now: s.CreationTimestamp.Time,
	})
}

// judged: the leader has judged the request and snapshotted what it
// grants.
func judged(s *v1alpha1.Session) bool {
	if s.Spec.Debug != nil {
		return s.Status.Limits != nil && s.Status.Debug != nil
	}
	return s.Status.Policy != ""
}

// grantedBy names what granted the session, for Events and messages.
func grantedBy(s *v1alpha1.Session) string {
	if s.Spec.Debug != nil {
		return "DebugSessionTemplate " + s.Spec.Debug.Template
	}
	return "AccessPolicy " + s.Status.Policy
}

// invalidRequest is a request the template refuses as asked (a variable out
// of range, a namespace it does not allow); the session fails with its
// message.
type invalidRequest struct{ msg string }

func (e *invalidRequest) Error() string { return e.msg }

// judgeDebug decides a debug session request against its template read
// from c, and snapshots what the template grants into the status.
func (r *SessionReconciler) judgeDebug(ctx context.Context, c client.Reader, s *v1alpha1.Session, cluster *v1alpha1.Cluster) (*entitlement.Grant, error) {
	t, pt, err := debugTemplates(ctx, c, s.Namespace, s.Spec.Debug.Template)
	if err != nil {
		return nil, err
	}
	g, err := entitlement.DecideDebug(t, entitlement.Request{
		User: s.Spec.Requester.User, Groups: s.Spec.Requester.Groups, Cluster: cluster,
		TTL: s.Spec.TTL.Duration, Reason: s.Spec.Reason, StartAt: startAt(s), Now: s.CreationTimestamp.Time,
	})
	if err != nil {
		return nil, err
	}
	plan, errs := debug.Resolve(t, pt, debug.Request{
		Session: s.Name, Owner: ownerName(s), Cluster: s.Spec.Cluster, Groups: s.Spec.Requester.Groups,
		Debug: *s.Spec.Debug, DeniedNamespaces: r.Policy.NeverGranted(credentials.SessionNamespace(cluster)),
	})
	if len(errs) > 0 {
		return nil, &invalidRequest{msg: "spec." + errs.ToAggregate().Error()}
	}
	s.Status.Debug = plan.Status()
	return g, nil
}

// debugTemplates reads a debug session's templates; a template that is
// missing is a refusal, a pod template that is missing an invalid request.
func debugTemplates(ctx context.Context, c client.Reader, ns, name string) (*v1alpha1.DebugSessionTemplate, *v1alpha1.DebugPodTemplate, error) {
	t, pt, err := debug.Load(ctx, c, ns, name)
	switch {
	case errors.Is(err, debug.ErrNoTemplate):
		return nil, nil, entitlement.Deny("%v", err)
	case errors.Is(err, debug.ErrNoPodTemplate):
		return nil, nil, &invalidRequest{msg: err.Error()}
	}
	return t, pt, err
}

// ownerName is the owner's user or group name.
func ownerName(s *v1alpha1.Session) string {
	switch o := s.Spec.Owner; {
	case o.UserPrincipal != nil:
		return o.UserPrincipal.Name
	case o.Group != nil:
		return o.Group.Name
	}
	return ""
}

func startAt(s *v1alpha1.Session) time.Time {
	if s.Spec.StartAt == nil {
		return time.Time{}
	}
	return s.Spec.StartAt.Time
}

// approval holds a request until its approvers have decided.
func (r *SessionReconciler) approval(ctx context.Context, s *v1alpha1.Session, now time.Time) (done bool, res ctrl.Result, err error) {
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

// renew applies a pending renewal request of an Active session: the leader
// re-checks it against the snapshotted limits, waits for the renewal's
// approvers if the policy says so, and moves expiresAt.
func (r *SessionReconciler) renew(s *v1alpha1.Session, now time.Time) (requeue time.Time) {
	req := s.Status.RenewalRequest
	if req == nil || s.Status.ActivatedAt == nil || s.Status.ExpiresAt == nil {
		return time.Time{}
	}
	l := s.Status.Limits
	drop := func(eventType, reason, format string, args ...any) {
		s.Status.RenewalRequest = nil
		r.Recorder.Eventf(s, nil, eventType, reason, "Renew", format, args...)
	}
	if err := entitlement.CheckRenewal(l, s.Status.Renewals, s.Status.ActivatedAt.Time, s.Status.ExpiresAt.Time, req.TTL.Duration, r.Policy.MaxTTL); err != nil {
		drop(corev1.EventTypeWarning, "RenewalRefused", "renewal requested by %s refused: %v", req.RequestedBy, err)
		return time.Time{}
	}
	if a := l.RenewalApproval; a != nil {
		o := entitlement.Tally(a, &v1alpha1.Requester{User: req.RequestedBy}, req.Decisions)
		switch {
		case o.Rejected != nil:
			drop(corev1.EventTypeNormal, "RenewalRejected", "renewal rejected by %s: %s", o.Rejected.Approver, o.Rejected.Comment)
			return time.Time{}
		case !o.Approved():
			deadline := req.RequestedAt.Add(a.Timeout.Duration)
			if !now.Before(deadline) {
				drop(corev1.EventTypeNormal, "RenewalTimeout", "no decision on the renewal within %s", a.Timeout.Duration)
				return time.Time{}
			}
			return deadline
		}
	}
	s.Status.ExpiresAt = &metav1.Time{Time: s.Status.ExpiresAt.Add(req.TTL.Duration)}
	s.Status.Renewals++
	approvedBy := ""
	if l.RenewalApproval != nil {
		approvedBy = ", approved by " + approvers(&v1alpha1.Requester{User: req.RequestedBy}, req.Decisions)
	}
	drop(corev1.EventTypeNormal, v1alpha1.ReasonRenewed, "renewed by %s for %s, until %s%s", req.RequestedBy, req.TTL.Duration, s.Status.ExpiresAt.UTC().Format(time.RFC3339), approvedBy)
	return time.Time{}
}

// idleDeadline is when an Active session with an idle limit ends unless a
// replica reports activity; zero without a limit.
func idleDeadline(s *v1alpha1.Session) time.Time {
	l := s.Status.Limits
	if l == nil || l.IdleTimeout == nil || s.Status.ActivatedAt == nil {
		return time.Time{}
	}
	last := s.Status.ActivatedAt.Time
	if a := s.Status.LastActivityAt; a != nil && a.After(last) {
		last = a.Time
	}
	return last.Add(l.IdleTimeout.Duration)
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

// approvers names who approved, each with its comment, leaving out the
// requester, whose own approval never counts.
func approvers(requester *v1alpha1.Requester, ds []v1alpha1.Decision) string {
	var seen, names []string
	for _, d := range ds {
		if d.Decision != v1alpha1.DecisionApproved || d.Approver == requester.User || slices.Contains(seen, d.Approver) {
			continue
		}
		seen = append(seen, d.Approver)
		if d.Comment != "" {
			names = append(names, fmt.Sprintf("%s (%q)", d.Approver, d.Comment))
		} else {
			names = append(names, d.Approver)
		}
	}
	return strings.Join(names, ", ")
}

// describeAutoApprove says why autoApprove let a requester in groups through.
func describeAutoApprove(aa *v1alpha1.AutoApprove, groups []string) string {
	if aa.All {
		return "every request (autoApprove.all)"
	}
	var in []string
	for _, g := range groups {
		if slices.Contains(aa.Groups, g) {
			in = append(in, g)
		}
	}
	return "requests of group(s) " + strings.Join(in, ", ") + " (autoApprove.groups)"
}
