package controlplane_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/testenv"
)

func (e *env) accessPolicy(name string, mutate func(*v1alpha1.AccessPolicySpec)) *v1alpha1.AccessPolicy {
	e.t.Helper()
	p := &v1alpha1.AccessPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: e.namespace, Name: name}, Spec: v1alpha1.AccessPolicySpec{
		Requesters:   v1alpha1.Subjects{Groups: []string{"dev"}},
		Clusters:     v1alpha1.ClusterSelector{Names: []string{"target"}},
		AccessLevels: []v1alpha1.PolicyAccessLevel{{ClusterRole: "view", Scope: v1alpha1.ScopeCluster}},
		MaxTTL:       metav1.Duration{Duration: time.Hour},
	}}
	if mutate != nil {
		mutate(&p.Spec)
	}
	testenv.Must(e.t, mgmt.Client.Create(e.ctx, p))
	return p
}

// request is a Session as the REST API makes it: with the verified requester.
func (e *env) request(name, user string, groups ...string) *v1alpha1.Session {
	s := e.viewSession(name)
	s.Spec.Owner.UserPrincipal.Name = user
	s.Spec.Requester = &v1alpha1.Requester{User: user, Groups: groups}
	e.create(s)
	return s
}

// decide records a decision the way the REST API does: in the status.
func (e *env) decide(name, approver string, d v1alpha1.DecisionType, comment string) {
	e.t.Helper()
	s := &v1alpha1.Session{}
	testenv.Must(e.t, mgmt.Client.Get(e.ctx, client.ObjectKey{Namespace: e.namespace, Name: name}, s))
	patch := client.MergeFromWithOptions(s.DeepCopy(), client.MergeFromWithOptimisticLock{})
	s.Status.Decisions = append(s.Status.Decisions, v1alpha1.Decision{Approver: approver, Decision: d, Time: metav1.Now(), Comment: comment})
	testenv.Must(e.t, mgmt.Client.Status().Patch(e.ctx, s, patch))
}

func readyOf(s *v1alpha1.Session) *metav1.Condition {
	return meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady)
}

func TestRequestNoPolicyGrantsIsDeniedAndGetsNothing(t *testing.T) {
	e := newEnv(t)
	e.accessPolicy("elsewhere", func(s *v1alpha1.AccessPolicySpec) { s.Clusters.Names = []string{"prod-*"} })
	e.request("nothing-grants", "alice@example.com", "dev")
	s := e.waitPhase("nothing-grants", v1alpha1.PhaseFailed, 20*time.Second)
	if r := readyOf(s); r.Reason != v1alpha1.ReasonPolicyDenied || !strings.Contains(r.Message, `no policy lets you request access to cluster "target"`) {
		t.Errorf("Ready %+v, want PolicyDenied saying no policy covers the cluster", r)
	}
	if e.onTarget(s) || s.Status.CredentialsSecretRef != "" {
		t.Errorf("a denied request got credentials")
	}
}

func TestQuorumOfTwoApproversActivatesAndTheRequesterNeverCounts(t *testing.T) {
	e := newEnv(t)
	e.accessPolicy("two-eyes", func(s *v1alpha1.AccessPolicySpec) {
		s.Approval = &v1alpha1.Approval{Approvers: v1alpha1.Subjects{Groups: []string{"sre"}}, MinApprovals: 2}
	})
	// alice is in the approver group herself.
	e.request("needs-two", "alice@example.com", "dev", "sre")
	s := e.waitPhase("needs-two", v1alpha1.PhasePendingApproval, 20*time.Second)
	if s.Status.Policy != "two-eyes" || s.Status.Limits == nil || s.Status.Limits.Approval.MinApprovals != 2 {
		t.Fatalf("status does not record the policy and its limits: %+v", s.Status)
	}
	if r := readyOf(s); !strings.Contains(r.Message, "waiting for 2 more approval(s) from group(s) sre") {
		t.Errorf("PendingApproval message %q does not say what it waits for", r.Message)
	}

	e.decide("needs-two", "alice@example.com", v1alpha1.DecisionApproved, "")
	e.decide("needs-two", "bob@example.com", v1alpha1.DecisionApproved, "ok")
	testenv.Eventually(t, 30*time.Second, func() error {
		testenv.Must(t, mgmt.Client.Get(e.ctx, client.ObjectKeyFromObject(s), s))
		if r := readyOf(s); s.Status.Phase != v1alpha1.PhasePendingApproval || !strings.Contains(r.Message, "waiting for 1 more") {
			return fmt.Errorf("after alice's own and bob's approval: %s, %q; want PendingApproval waiting for 1 more", s.Status.Phase, r.Message)
		}
		return nil
	})
	if e.onTarget(s) {
		t.Fatal("credentials were minted before the quorum")
	}
	// Editing the policy does not change what the request was granted.
	p := &v1alpha1.AccessPolicy{}
	testenv.Must(t, mgmt.Client.Get(e.ctx, client.ObjectKey{Namespace: e.namespace, Name: "two-eyes"}, p))
	p.Spec.Approval.MinApprovals = 1
	p.Spec.MaxTTL = metav1.Duration{Duration: 8 * time.Hour}
	testenv.Must(t, mgmt.Client.Update(e.ctx, p))

	e.decide("needs-two", "carol@example.com", v1alpha1.DecisionApproved, "")
	s = e.waitPhase("needs-two", v1alpha1.PhaseActive, 20*time.Second)
	if s.Status.Limits.MaxTTL.Duration != time.Hour || s.Status.Limits.Approval.MinApprovals != 2 {
		t.Errorf("limits changed with the policy: %+v", s.Status.Limits)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		events := &eventsv1.EventList{}
		testenv.Must(t, mgmt.Client.List(e.ctx, events, client.InNamespace(e.namespace)))
		var notes []string
		for _, ev := range events.Items {
			if ev.Regarding.Name == "needs-two" {
				notes = append(notes, ev.Note)
			}
		}
		all := strings.Join(notes, "\n")
		for _, want := range []string{"requested by alice@example.com; granted by AccessPolicy two-eyes", `approved by bob@example.com ("ok"), carol@example.com`} {
			if !strings.Contains(all, want) {
				return fmt.Errorf("Events do not say %q:\n%s", want, all)
			}
		}
		return nil
	})
}

func TestRejectedRequestEndsWithTheComment(t *testing.T) {
	e := newEnv(t)
	e.accessPolicy("reviewed", func(s *v1alpha1.AccessPolicySpec) {
		s.Approval = &v1alpha1.Approval{Approvers: v1alpha1.Subjects{Users: []string{"bob@example.com"}}}
	})
	e.request("turned-down", "alice@example.com", "dev")
	e.waitPhase("turned-down", v1alpha1.PhasePendingApproval, 20*time.Second)
	e.decide("turned-down", "bob@example.com", v1alpha1.DecisionRejected, "use the runbook")
	s := e.waitPhase("turned-down", v1alpha1.PhaseRejected, 20*time.Second)
	if r := readyOf(s); r.Message != "rejected by bob@example.com: use the runbook" {
		t.Errorf("Ready message %q", r.Message)
	}
	if e.onTarget(s) {
		t.Errorf("a rejected request has objects on the target")
	}
}

func TestUndecidedRequestTimesOut(t *testing.T) {
	e := newEnv(t)
	e.accessPolicy("slow", func(s *v1alpha1.AccessPolicySpec) {
		s.Approval = &v1alpha1.Approval{Approvers: v1alpha1.Subjects{Groups: []string{"sre"}}, Timeout: &metav1.Duration{Duration: 2 * time.Second}}
	})
	e.request("forgotten", "alice@example.com", "dev")
	s := e.waitPhase("forgotten", v1alpha1.PhaseApprovalTimeout, 20*time.Second)
	if r := readyOf(s); !strings.Contains(r.Message, "no decision within the policy's approval timeout of 2s") {
		t.Errorf("Ready message %q", r.Message)
	}
	// The leader decided this one: an Event says so.
	testenv.Eventually(t, 30*time.Second, func() error {
		if notes := e.eventNotes("forgotten"); !strings.Contains(notes, "no decision within the policy's approval timeout of 2s") {
			return fmt.Errorf("no Event of the approval timeout:\n%s", notes)
		}
		return nil
	})
}

func TestAutoApprovedRequestIsActiveAndAdminPathIsSaidSo(t *testing.T) {
	e := newEnv(t)
	e.accessPolicy("auto", func(s *v1alpha1.AccessPolicySpec) {
		s.Approval = &v1alpha1.Approval{Approvers: v1alpha1.Subjects{Groups: []string{"sre"}}, AutoApprove: &v1alpha1.AutoApprove{Groups: []string{"dev"}}}
	})
	e.request("auto", "alice@example.com", "dev")
	s := e.waitPhase("auto", v1alpha1.PhaseActive, 20*time.Second)
	if s.Status.Policy != "auto" || s.Status.Limits.Approval != nil {
		t.Errorf("auto-approved request: policy %q, approval %+v", s.Status.Policy, s.Status.Limits.Approval)
	}
	// Granted, auto-approved, minted and activated in one pass: one Event
	// tells it all (the leader keeps each Event it sends for minutes).
	testenv.Eventually(t, 30*time.Second, func() error {
		events := e.events("auto")
		if len(events) != 1 {
			return fmt.Errorf("%d Events about session auto, want 1:\n%s", len(events), e.eventNotes("auto"))
		}
		ev := events[0]
		if ev.Type != "Normal" || ev.Reason != v1alpha1.ReasonActive {
			return fmt.Errorf("the Event is %s %s, want Normal %s", ev.Type, ev.Reason, v1alpha1.ReasonActive)
		}
		for _, want := range []string{
			"requested by alice@example.com; granted by AccessPolicy auto",
			"approved by the gateway without an approver: AccessPolicy auto auto-approves requests of group(s) dev (autoApprove.groups)",
			"minted credentials on cluster target for ",
			"session active on cluster target until ",
		} {
			if !strings.Contains(ev.Note, want) {
				return fmt.Errorf("the Event does not say %q:\n%s", want, ev.Note)
			}
		}
		return nil
	})

	e.create(e.viewSession("admin-made"))
	s = e.waitPhase("admin-made", v1alpha1.PhaseActive, 20*time.Second)
	if s.Status.Policy != "" {
		t.Errorf("an admin-path session names policy %q", s.Status.Policy)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		events := &eventsv1.EventList{}
		testenv.Must(t, mgmt.Client.List(e.ctx, events, client.InNamespace(e.namespace)))
		for _, ev := range events.Items {
			if ev.Regarding.Name == "admin-made" && strings.Contains(ev.Note, "admin path") {
				return nil
			}
		}
		return fmt.Errorf("no Event says session admin-made came through the admin path")
	})
}

func TestInvalidPoliciesAreRefusedWithFieldPaths(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		mutate func(*v1alpha1.AccessPolicySpec)
		want   string
	}{
		{func(s *v1alpha1.AccessPolicySpec) { s.Clusters = v1alpha1.ClusterSelector{} }, "spec.clusters: Invalid value"},
		{func(s *v1alpha1.AccessPolicySpec) { s.AccessLevels = nil }, "spec.accessLevels: Required value"},
		{func(s *v1alpha1.AccessPolicySpec) {
			s.AccessLevels = []v1alpha1.PolicyAccessLevel{{ClusterRole: "edit", Group: "sre"}}
		}, "set exactly one of clusterRole or group"},
		{func(s *v1alpha1.AccessPolicySpec) { s.DefaultTTL = &metav1.Duration{Duration: 2 * time.Hour} }, "spec.defaultTTL: Invalid value: defaultTTL must not exceed maxTTL"},
		{func(s *v1alpha1.AccessPolicySpec) {
			s.Renewal = &v1alpha1.Renewal{Allowed: true, RequiresApproval: true}
		},
			"spec.renewal.requiresApproval: Invalid value: renewal.requiresApproval needs approval.approvers"},
		{func(s *v1alpha1.AccessPolicySpec) { s.Approval = &v1alpha1.Approval{MinApprovals: 11} }, "spec.approval.minApprovals: Invalid value"},
		{func(s *v1alpha1.AccessPolicySpec) {
			s.Notifications = &v1alpha1.Notifications{Sinks: []v1alpha1.NotificationSink{{Kind: v1alpha1.NotificationWebhook, URLSecretRef: v1alpha1.SecretKeyRef{Name: "hooks"}}}}
		}, "spec.notifications.sinks[0].signingSecretRef: Invalid value"},
		{func(s *v1alpha1.AccessPolicySpec) { s.Notifications = &v1alpha1.Notifications{} }, "spec.notifications.sinks: Required value"},
		// Exec patterns that would match nothing as meant: a relative or
		// unclean path, a space at either end.
		{func(s *v1alpha1.AccessPolicySpec) {
			s.Streams = &v1alpha1.StreamPolicy{Exec: &v1alpha1.ExecRules{Deny: []string{"rm", "bin/rm"}}}
		}, "spec.streams.exec.deny: Invalid value: a path in a pattern (the pattern, or a whole-line pattern's first word) must be clean and absolute"},
		{func(s *v1alpha1.AccessPolicySpec) {
			s.Streams = &v1alpha1.StreamPolicy{Exec: &v1alpha1.ExecRules{Allow: []string{"/usr/bin/../bin/ls"}}}
		}, "spec.streams.exec.allow: Invalid value: a path in a pattern (the pattern, or a whole-line pattern's first word) must be clean and absolute"},
		{func(s *v1alpha1.AccessPolicySpec) {
			s.Streams = &v1alpha1.StreamPolicy{Exec: &v1alpha1.ExecRules{Allow: []string{"ls", "rm "}}}
		}, `spec.streams.exec.allow[1]: Invalid value: "rm "`},
		{func(s *v1alpha1.AccessPolicySpec) {
			s.Streams = &v1alpha1.StreamPolicy{Exec: &v1alpha1.ExecRules{Deny: []string{"rm\t-rf *"}}}
		}, `spec.streams.exec.deny[0]: Invalid value: "rm\t-rf *"`},
		// The command's path is cleaned before a whole-line pattern sees
		// it: ./rm -rf * would never match.
		{func(s *v1alpha1.AccessPolicySpec) {
			s.Streams = &v1alpha1.StreamPolicy{Exec: &v1alpha1.ExecRules{Deny: []string{"./rm -rf *"}}}
		}, "spec.streams.exec.deny: Invalid value: a path in a pattern"},
		{func(s *v1alpha1.AccessPolicySpec) {
			s.Streams = &v1alpha1.StreamPolicy{Exec: &v1alpha1.ExecRules{Deny: []string{"/"}}}
		}, "spec.streams.exec.deny: Invalid value: a path in a pattern"},
	}
	for i, c := range cases {
		p := &v1alpha1.AccessPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: e.namespace, Name: fmt.Sprintf("bad-%d", i)}, Spec: v1alpha1.AccessPolicySpec{
			Requesters:   v1alpha1.Subjects{Groups: []string{"dev"}},
			Clusters:     v1alpha1.ClusterSelector{Names: []string{"target"}},
			AccessLevels: []v1alpha1.PolicyAccessLevel{{ClusterRole: "view"}},
			MaxTTL:       metav1.Duration{Duration: time.Hour},
		}}
		c.mutate(&p.Spec)
		if err := mgmt.Client.Create(e.ctx, p); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("case %d: got %v, want an error containing %q", i, err, c.want)
		}
	}

	// Durations the Go types cannot hold ("7d") are refused at the door: one
	// such policy stored would make every AccessPolicyList fail to decode,
	// and with it every replica's informer.
	for field, spec := range map[string]map[string]any{
		`spec.schedule.maxDelay: Invalid value: "7d"`:          {"schedule": map[string]any{"allowed": true, "maxDelay": "7d"}},
		`spec.notifications.expiringSoon: Invalid value: "1d"`: {"notifications": map[string]any{"expiringSoon": "1d", "sinks": []any{map[string]any{"kind": "Slack", "urlSecretRef": map[string]any{"name": "hooks"}}}}},
	} {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": v1alpha1.GroupVersion.String(), "kind": "AccessPolicy",
			"metadata": map[string]any{"namespace": e.namespace, "name": "bad-duration"},
			"spec": map[string]any{
				"requesters": map[string]any{"groups": []any{"dev"}}, "clusters": map[string]any{"names": []any{"target"}},
				"accessLevels": []any{map[string]any{"clusterRole": "view"}}, "maxTTL": "1h",
			},
		}}
		for k, v := range spec {
			u.Object["spec"].(map[string]any)[k] = v
		}
		want := field + ": must be a positive duration such as 30m or 1h"
		if err := mgmt.Client.Create(e.ctx, u); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s in days: got %v, want an error containing %q", field, err, want)
		}
	}
	list := &v1alpha1.AccessPolicyList{}
	if err := mgmt.Client.List(e.ctx, list, client.InNamespace(e.namespace)); err != nil {
		t.Errorf("policies no longer decode: %v", err)
	}

	// The exec patterns an operator writes are taken: names, clean absolute
	// paths (with globs), whole command lines.
	good := &v1alpha1.AccessPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: e.namespace, Name: "good-exec"}, Spec: v1alpha1.AccessPolicySpec{
		Requesters:   v1alpha1.Subjects{Groups: []string{"dev"}},
		Clusters:     v1alpha1.ClusterSelector{Names: []string{"target"}},
		AccessLevels: []v1alpha1.PolicyAccessLevel{{ClusterRole: "view"}},
		MaxTTL:       metav1.Duration{Duration: time.Hour},
		Streams: &v1alpha1.StreamPolicy{Exec: &v1alpha1.ExecRules{
			Allow: []string{"ls", "/usr/bin/*", "cat /var/log/*", "kubectl get *", "/usr/bin/kubectl get *"},
			Deny:  []string{"rm", "/usr/sbin/shutdown", "rm -rf *", "/bin/rm -rf /*"},
		}},
	}}
	if err := mgmt.Client.Create(e.ctx, good); err != nil {
		t.Errorf("valid exec patterns refused: %v", err)
	}

	// The same from YAML, as an operator applies it: a relative path is
	// refused with its field named, the patterns above are taken.
	for _, c := range []struct{ deny, want string }{
		{`["rm", "bin/rm"]`, "spec.streams.exec.deny: Invalid value: a path in a pattern"},
		{`["rm", "/usr/sbin/shutdown", "rm -rf *"]`, ""},
	} {
		doc := fmt.Sprintf(`apiVersion: sessiongate.dev/v1alpha1
kind: AccessPolicy
metadata: {namespace: %s, name: yaml-exec}
spec:
  requesters: {groups: [dev]}
  clusters: {names: [target]}
  accessLevels: [{clusterRole: view}]
  maxTTL: 1h
  streams:
    exec: {deny: %s}
`, e.namespace, c.deny)
		out, err := kubectl(e.ctx, adminKubeconfig(t), doc, "apply", "-f", "-")
		switch {
		case c.want == "" && err != nil:
			t.Errorf("kubectl apply with exec deny %s: %v", c.deny, err)
		case c.want != "" && (err == nil || !strings.Contains(out, c.want)):
			t.Errorf("kubectl apply with exec deny %s: %v\n%s, want refused with %q", c.deny, err, out, c.want)
		}
	}
}
