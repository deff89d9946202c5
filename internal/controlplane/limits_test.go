package controlplane_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/dataplane"
	"sessiongate.dev/sessiongate/internal/registry"
	"sessiongate.dev/sessiongate/internal/testenv"
)

// askRenewal records a renewal request as the REST API does.
func (e *env) askRenewal(name string, ttl time.Duration) {
	e.t.Helper()
	s := &v1alpha1.Session{}
	testenv.Must(e.t, mgmt.Client.Get(e.ctx, client.ObjectKey{Namespace: e.namespace, Name: name}, s))
	patch := client.MergeFromWithOptions(s.DeepCopy(), client.MergeFromWithOptimisticLock{})
	s.Status.RenewalRequest = &v1alpha1.RenewalRequest{TTL: metav1.Duration{Duration: ttl}, RequestedBy: s.Spec.Requester.User, RequestedAt: metav1.Now()}
	testenv.Must(e.t, mgmt.Client.Status().Patch(e.ctx, s, patch))
}

// renewalRefused waits until the leader refuses s's renewal request with
// an Event saying why, and checks that the session kept its renewals and
// expiry.
func (e *env) renewalRefused(s *v1alpha1.Session, why string, renewals int32, expiresAt time.Time) {
	e.t.Helper()
	testenv.Eventually(e.t, 30*time.Second, func() error {
		testenv.Must(e.t, mgmt.Client.Get(e.ctx, client.ObjectKeyFromObject(s), s))
		if s.Status.RenewalRequest != nil || !strings.Contains(e.eventNotes(s.Name), why) {
			return fmt.Errorf("renewal not refused (%q) yet: request %+v", why, s.Status.RenewalRequest)
		}
		return nil
	})
	if s.Status.Renewals != renewals || !s.Status.ExpiresAt.Time.Equal(expiresAt) {
		e.t.Errorf("a refused renewal changed the session: renewals %d, expiresAt %s", s.Status.Renewals, s.Status.ExpiresAt)
	}
}

// events are the Events about session name.
func (e *env) events(name string) []eventsv1.Event {
	e.t.Helper()
	events := &eventsv1.EventList{}
	testenv.Must(e.t, mgmt.Client.List(e.ctx, events, client.InNamespace(e.namespace)))
	var out []eventsv1.Event
	for _, ev := range events.Items {
		if ev.Regarding.Kind == "Session" && ev.Regarding.Name == name {
			out = append(out, ev)
		}
	}
	return out
}

func (e *env) eventNotes(name string) string {
	var notes []string
	for _, ev := range e.events(name) {
		notes = append(notes, ev.Note)
	}
	return strings.Join(notes, "\n")
}

func TestRenewalsExtendUpToThePolicysLimit(t *testing.T) {
	e := newEnv(t)
	e.accessPolicy("renewable", func(s *v1alpha1.AccessPolicySpec) {
		s.Renewal = &v1alpha1.Renewal{Allowed: true, MaxRenewals: 1}
	})
	e.request("renew-me", "alice@example.com", "dev")
	s := e.waitPhase("renew-me", v1alpha1.PhaseActive, 20*time.Second)
	before := s.Status.ExpiresAt.Time

	e.askRenewal("renew-me", 30*time.Minute)
	testenv.Eventually(t, 30*time.Second, func() error {
		testenv.Must(t, mgmt.Client.Get(e.ctx, client.ObjectKeyFromObject(s), s))
		if s.Status.Renewals != 1 || !s.Status.ExpiresAt.Time.Equal(before.Add(30*time.Minute)) || s.Status.RenewalRequest != nil {
			return fmt.Errorf("renewals %d, expiresAt %s (was %s), request %+v", s.Status.Renewals, s.Status.ExpiresAt, before, s.Status.RenewalRequest)
		}
		return nil
	})
	// One renewal is the limit: the next is refused and changes nothing.
	e.askRenewal("renew-me", 10*time.Minute)
	e.renewalRefused(s, "renewed 1 time(s), the policy's maximum", 1, before.Add(30*time.Minute))
}

// A policy's maxTTL longer than the gateway's --max-ttl (8h here) grants
// no more than the gateway allows: not per renewal, nor in all.
func TestRenewalsAreHeldToTheGatewaysMaxTTL(t *testing.T) {
	e := newEnv(t)
	e.accessPolicy("renewable-long", func(s *v1alpha1.AccessPolicySpec) {
		s.MaxTTL = metav1.Duration{Duration: 24 * time.Hour}
		s.Renewal = &v1alpha1.Renewal{Allowed: true, MaxRenewals: 2}
	})
	e.request("renew-long", "alice@example.com", "dev")
	s := e.waitPhase("renew-long", v1alpha1.PhaseActive, 20*time.Second)
	if s.Status.Limits == nil || s.Status.Limits.MaxTTL.Duration != testPolicy.MaxTTL {
		t.Fatalf("limits %+v, want maxTTL %s (the gateway's)", s.Status.Limits, testPolicy.MaxTTL)
	}
	before := s.Status.ExpiresAt.Time
	e.askRenewal("renew-long", 20*time.Hour)
	e.renewalRefused(s, "at most the session's maximum of 8h0m0s", 0, before)
	e.askRenewal("renew-long", 8*time.Hour)
	testenv.Eventually(t, 20*time.Second, func() error {
		testenv.Must(t, mgmt.Client.Get(e.ctx, client.ObjectKeyFromObject(s), s))
		if s.Status.Renewals != 1 || !s.Status.ExpiresAt.Time.Equal(before.Add(8*time.Hour)) {
			return fmt.Errorf("renewals %d, expiresAt %s (was %s)", s.Status.Renewals, s.Status.ExpiresAt, before)
		}
		return nil
	})
}

func TestRenewalThatNeedsApprovalWaitsForAnApprover(t *testing.T) {
	e := newEnv(t)
	e.accessPolicy("renew-reviewed", func(s *v1alpha1.AccessPolicySpec) {
		s.Renewal = &v1alpha1.Renewal{Allowed: true, MaxRenewals: 2, RequiresApproval: true}
		s.Approval = &v1alpha1.Approval{Approvers: v1alpha1.Subjects{Users: []string{"bob@example.com"}}, AutoApprove: &v1alpha1.AutoApprove{Groups: []string{"dev"}}}
	})
	e.request("renew-reviewed", "alice@example.com", "dev")
	s := e.waitPhase("renew-reviewed", v1alpha1.PhaseActive, 20*time.Second)
	before := s.Status.ExpiresAt.Time
	e.askRenewal("renew-reviewed", 20*time.Minute)

	s.Status.RenewalRequest = nil
	testenv.Eventually(t, 30*time.Second, func() error {
		testenv.Must(t, mgmt.Client.Get(e.ctx, client.ObjectKeyFromObject(s), s))
		if s.Status.RenewalRequest == nil {
			return fmt.Errorf("renewal request not recorded yet")
		}
		return nil
	})
	if s.Status.Renewals != 0 || !s.Status.ExpiresAt.Time.Equal(before) {
		t.Fatalf("a renewal needing approval was applied at once")
	}
	patch := client.MergeFromWithOptions(s.DeepCopy(), client.MergeFromWithOptimisticLock{})
	s.Status.RenewalRequest.Decisions = append(s.Status.RenewalRequest.Decisions, v1alpha1.Decision{Approver: "bob@example.com", Decision: v1alpha1.DecisionApproved, Time: metav1.Now(), Comment: "one more hour is fine"})
	testenv.Must(t, mgmt.Client.Status().Patch(e.ctx, s, patch))
	testenv.Eventually(t, 30*time.Second, func() error {
		testenv.Must(t, mgmt.Client.Get(e.ctx, client.ObjectKeyFromObject(s), s))
		if s.Status.Renewals != 1 || !s.Status.ExpiresAt.Time.Equal(before.Add(20*time.Minute)) {
			return fmt.Errorf("approved renewal not applied: renewals %d, expiresAt %s", s.Status.Renewals, s.Status.ExpiresAt)
		}
		if notes := e.eventNotes("renew-reviewed"); !strings.Contains(notes, `approved by bob@example.com ("one more hour is fine")`) {
			return fmt.Errorf("no Event names the renewal's approver and comment:\n%s", notes)
		}
		return nil
	})
}

func TestScheduledSessionStartsAtItsTimeAndCountsItsTTLFromThen(t *testing.T) {
	e := newEnv(t)
	e.accessPolicy("schedulable", func(s *v1alpha1.AccessPolicySpec) {
		s.Schedule = &v1alpha1.Schedule{Allowed: true}
	})
	s := e.viewSession("later")
	s.Spec.Requester = &v1alpha1.Requester{User: "alice@example.com", Groups: []string{"dev"}}
	start := metav1.NewTime(time.Now().Add(3 * time.Second).Truncate(time.Second))
	s.Spec.StartAt = &start
	e.create(s)
	s = e.waitPhase("later", v1alpha1.PhaseScheduled, 10*time.Second)
	if e.onTarget(s) {
		t.Fatal("a scheduled session was minted before its start")
	}
	s = e.waitPhase("later", v1alpha1.PhaseActive, 20*time.Second)
	if s.Status.ActivatedAt.Before(&start) || s.Status.ExpiresAt.Sub(s.Status.ActivatedAt.Time) != s.Spec.TTL.Duration {
		t.Errorf("activated %s (start %s), expires %s: ttl not counted from activation", s.Status.ActivatedAt, start, s.Status.ExpiresAt)
	}

	// A policy that does not allow scheduling refuses the request.
	e.accessPolicy("no-schedule", func(s *v1alpha1.AccessPolicySpec) { s.Requesters.Groups = []string{"ops"} })
	s = e.viewSession("later-refused")
	s.Spec.Requester = &v1alpha1.Requester{User: "olga@example.com", Groups: []string{"ops"}}
	s.Spec.StartAt = &start
	e.create(s)
	s = e.waitPhase("later-refused", v1alpha1.PhaseFailed, 10*time.Second)
	if r := readyOf(s); !strings.Contains(r.Message, "a scheduled start is not allowed") {
		t.Errorf("Ready %+v, want a refusal of the scheduled start", r)
	}
}

// idleSession is an Active session, and policy, of that name with a 3s
// idle timeout.
func (e *env) idleSession(name string) *v1alpha1.Session {
	e.t.Helper()
	e.accessPolicy(name, func(s *v1alpha1.AccessPolicySpec) {
		s.IdleTimeout = &metav1.Duration{Duration: 3 * time.Second}
	})
	e.request(name, "alice@example.com", "dev")
	return e.waitPhase(name, v1alpha1.PhaseActive, 20*time.Second)
}

func TestIdleSessionEndsAndReportedActivityKeepsItAlive(t *testing.T) {
	e := newEnv(t)
	s := e.idleSession("idle")
	kube, _ := e.sessionClient(s)

	// What a replica reports while traffic flows pushes the deadline on.
	for range 3 {
		testenv.Must(t, mgmt.Client.Get(e.ctx, client.ObjectKeyFromObject(s), s))
		patch := client.MergeFrom(s.DeepCopy())
		s.Status.LastActivityAt = &metav1.Time{Time: time.Now()}
		testenv.Must(t, mgmt.Client.Status().Patch(e.ctx, s, patch))
		testenv.Eventually(t, 30*time.Second, func() error {
			cur := &v1alpha1.Session{}
			testenv.Must(t, mgmt.Client.Get(e.ctx, client.ObjectKeyFromObject(s), cur))
			if cur.Status.Phase != v1alpha1.PhaseActive {
				return fmt.Errorf("session with reported activity is %s", cur.Status.Phase)
			}
			if time.Since(cur.Status.LastActivityAt.Time) < 2*time.Second {
				return fmt.Errorf("waiting for 2s of quiet")
			}
			return nil
		})
	}
	s = e.waitPhase("idle", v1alpha1.PhaseIdleExpired, 10*time.Second)
	if r := readyOf(s); !strings.Contains(r.Message, "no request for 3s") {
		t.Errorf("Ready %+v", r)
	}
	e.assertRevoked(s, kube)
}

// A replica with the default report interval (30s) still keeps a session
// with a 3s idle timeout alive while it is in use: each session is reported
// at least three times per idle timeout.
func TestShortIdleTimeoutOutlivesTheDefaultReportInterval(t *testing.T) {
	e := newEnv(t)
	s := e.idleSession("idle-short")

	// This replica's data plane, as the gateway wires it; its proxy's only
	// part in idle expiry is touching the session on each request.
	reg := registry.New(nil)
	rs := &registry.Session{Name: s.Name, Namespace: s.Namespace, UID: s.UID, ExpiresAt: s.Status.ExpiresAt.Time, IdleTimeout: 3 * time.Second}
	reg.Put(rs, &registry.Backend{})
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() {
		done <- (&dataplane.ActivityReporter{Client: mgmt.Client, Registry: reg, Namespace: e.namespace}).Start(ctx)
	}()
	defer func() { cancel(); <-done }()

	// Three idle timeouts of steady traffic.
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	for end := time.Now().Add(9 * time.Second); time.Now().Before(end); <-tick.C {
		rs.Touch(time.Now())
		testenv.Must(t, mgmt.Client.Get(e.ctx, client.ObjectKeyFromObject(s), s))
		if s.Status.Phase != v1alpha1.PhaseActive {
			t.Fatalf("a session in use is %s: %+v", s.Status.Phase, readyOf(s))
		}
	}
	// Once the traffic stops, it ends.
	e.waitPhase("idle-short", v1alpha1.PhaseIdleExpired, 30*time.Second)
}
