package controlplane

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/notify"
)

// DefaultExpiringSoon is how long before expiry the expiring-soon
// notification goes out unless a policy says otherwise.
const DefaultExpiringSoon = 10 * time.Minute

// ReasonNotificationFailed is the Event reason of a notification given up on.
const ReasonNotificationFailed = "NotificationFailed"

// newNotifier delivers for the control plane; a failure becomes a Warning
// Event on the session.
func newNotifier(opts notify.Options, rec events.EventRecorder) *notify.Notifier {
	opts.OnFailure = func(f notify.Failure) {
		if s, ok := f.Subject.(*v1alpha1.Session); ok {
			rec.Eventf(s, nil, corev1.EventTypeWarning, ReasonNotificationFailed, "Notify",
				"%s notification to %s not delivered: %v", f.Event.Type, f.Sink, f.Err)
		}
	}
	return notify.New(opts)
}

// notifications returns the policy's notification settings, or nil.
func (r *SessionReconciler) notifications(ctx context.Context, s *v1alpha1.Session) *v1alpha1.Notifications {
	if r.notifier == nil || s.Status.Policy == "" {
		return nil
	}
	p := &v1alpha1.AccessPolicy{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: s.Namespace, Name: s.Status.Policy}, p); err != nil {
		return nil
	}
	return p.Spec.Notifications
}

// expiringSoon arms the expiring-soon notification of an Active session: it
// returns when to come back, or marks the status (the event goes out once
// the status is written) when the moment has come.
func (r *SessionReconciler) expiringSoon(ctx context.Context, s *v1alpha1.Session, now time.Time) time.Time {
	n := r.notifications(ctx, s)
	exp := s.Status.ExpiresAt
	if n == nil || exp == nil || (s.Status.ExpiringSoonNotified != nil && s.Status.ExpiringSoonNotified.Equal(exp)) {
		return time.Time{}
	}
	lead := DefaultExpiringSoon
	if n.ExpiringSoon != nil {
		lead = n.ExpiringSoon.Duration
	}
	if at := exp.Add(-lead); now.Before(at) {
		return at
	}
	s.Status.ExpiringSoonNotified = exp.DeepCopy()
	return time.Time{}
}

// notify sends the events of the transition from before to s.Status, once
// that status is written.
func (r *SessionReconciler) notify(ctx context.Context, s *v1alpha1.Session, before *v1alpha1.SessionStatus) {
	events := transitions(before, &s.Status)
	if len(events) == 0 {
		return
	}
	n := r.notifications(ctx, s)
	if n == nil {
		return
	}
	sinks := r.sinks(ctx, s, n)
	if len(sinks) == 0 {
		return
	}
	for _, t := range events {
		r.notifier.Send(event(s, t, r.Clock.Now()), sinks, s.DeepCopy())
	}
}

// transitions lists the notifiable events between two statuses.
func transitions(before, after *v1alpha1.SessionStatus) []notify.EventType {
	var out []notify.EventType
	if before.Policy == "" && after.Policy != "" {
		out = append(out, notify.Requested)
	}
	changed := before.Phase != after.Phase
	if changed && before.Phase == v1alpha1.PhasePendingApproval {
		switch after.Phase {
		case v1alpha1.PhaseScheduled, v1alpha1.PhaseActive, v1alpha1.PhasePending:
			out = append(out, notify.Approved)
		}
	}
	if before.ActivatedAt == nil && after.ActivatedAt != nil {
		out = append(out, notify.Activated)
	}
	if after.ExpiringSoonNotified != nil && !after.ExpiringSoonNotified.Equal(before.ExpiringSoonNotified) && after.Phase == v1alpha1.PhaseActive {
		out = append(out, notify.ExpiringSoon)
	}
	if changed {
		switch after.Phase {
		case v1alpha1.PhaseRejected, v1alpha1.PhaseApprovalTimeout:
			out = append(out, notify.Rejected)
		case v1alpha1.PhaseExpired, v1alpha1.PhaseIdleExpired:
			out = append(out, notify.Expired)
		case v1alpha1.PhaseTerminated:
			out = append(out, notify.Terminated)
		case v1alpha1.PhaseFailed:
			out = append(out, notify.Failed)
		}
	}
	return out
}

// sinks reads each sink's Secrets; a sink that is misconfigured is skipped
// with a Warning Event that says why (never what the Secret holds).
func (r *SessionReconciler) sinks(ctx context.Context, s *v1alpha1.Session, n *v1alpha1.Notifications) []notify.Sink {
	var out []notify.Sink
	for i, c := range n.Sinks {
		name := fmt.Sprintf("AccessPolicy %s notifications.sinks[%d]", s.Status.Policy, i)
		sink := notify.Sink{Kind: notify.Kind(c.Kind), CA: c.CABundle, Name: name}
		url, err := r.secretValue(ctx, s.Namespace, c.URLSecretRef, "url")
		if err == nil {
			sink.URL = strings.TrimSpace(string(url))
			if c.SigningSecretRef != nil {
				sink.Key, err = r.secretValue(ctx, s.Namespace, *c.SigningSecretRef, "key")
			}
		}
		if err == nil {
			err = sink.Check()
		}
		if err != nil {
			klog.V(2).InfoS("Notification sink skipped", "session", klog.KObj(s), "sink", name, "err", err.Error())
			r.Recorder.Eventf(s, nil, corev1.EventTypeWarning, ReasonNotificationFailed, "Notify", "%s skipped: %v", name, err)
			continue
		}
		out = append(out, sink)
	}
	return out
}

func (r *SessionReconciler) secretValue(ctx context.Context, namespace string, ref v1alpha1.SecretKeyRef, defaultKey string) ([]byte, error) {
	key := ref.Key
	if key == "" {
		key = defaultKey
	}
	// The cache holds only the gateway's own Secrets: read the API server.
	var c client.Reader = r.Client
	if r.APIReader != nil {
		c = r.APIReader
	}
	sec := &corev1.Secret{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: ref.Name}, sec); err != nil {
		return nil, fmt.Errorf("reading Secret %s: %w", ref.Name, err)
	}
	v, ok := sec.Data[key]
	if !ok || len(v) == 0 {
		return nil, fmt.Errorf("Secret %s has no key %q", ref.Name, key)
	}
	return v, nil
}

// event describes a session for its notification.
func event(s *v1alpha1.Session, t notify.EventType, now time.Time) notify.Event {
	ev := notify.Event{
		ID:        string(s.UID) + "/" + strings.TrimPrefix(string(t), "session."),
		Type:      t,
		Time:      now.UTC(),
		Session:   s.Name,
		Namespace: s.Namespace,
		Cluster:   s.Spec.Cluster,
		Owner:     ownerOf(s.Spec.Owner),
		Policy:    s.Status.Policy,
		Reason:    s.Spec.Reason,
		Phase:     string(s.Status.Phase),
	}
	if s.Spec.Requester != nil {
		ev.Requester = s.Spec.Requester.User
	}
	ev.AccessLevel = describeAccess(s.Spec.AccessLevel)
	if e := s.Status.ExpiresAt; e != nil {
		at := e.UTC()
		ev.ExpiresAt = &at
		if t == notify.ExpiringSoon {
			// One per expiry: a renewal arms a new one.
			ev.ID += fmt.Sprintf("/%d", at.Unix())
		}
	}
	ev.Message = message(s, t)
	return ev
}

func message(s *v1alpha1.Session, t notify.EventType) string {
	switch t {
	case notify.Requested:
		return fmt.Sprintf("requested for %s, granted by AccessPolicy %s", s.Spec.TTL.Duration, s.Status.Policy)
	case notify.Approved:
		var by []string
		for _, d := range s.Status.Decisions {
			if d.Decision == v1alpha1.DecisionApproved {
				by = append(by, d.Approver)
			}
		}
		return "approved by " + strings.Join(by, ", ")
	case notify.ExpiringSoon:
		return fmt.Sprintf("expires at %s", s.Status.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if c := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady); c != nil {
		return c.Message
	}
	return string(s.Status.Phase)
}

func ownerOf(o v1alpha1.Owner) string {
	switch {
	case o.UserPrincipal != nil:
		return o.UserPrincipal.Name
	case o.Group != nil:
		return "group " + o.Group.Name
	}
	return ""
}

func describeAccess(a v1alpha1.AccessLevel) string {
	var s string
	switch {
	case a.Group != "":
		s = "group " + a.Group
	default:
		s = a.ClusterRole
	}
	if len(a.Namespaces) > 0 {
		return s + " in " + strings.Join(a.Namespaces, ", ")
	}
	return s + " cluster-wide"
}
