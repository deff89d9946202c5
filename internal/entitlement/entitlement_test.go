package entitlement

import (
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sessiongate.dev/sessiongate/api/v1alpha1"
)

func dur(d time.Duration) metav1.Duration { return metav1.Duration{Duration: d} }

func policy(name string, mutate func(*v1alpha1.AccessPolicySpec)) v1alpha1.AccessPolicy {
	p := v1alpha1.AccessPolicy{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.AccessPolicySpec{
		Requesters:   v1alpha1.Subjects{Groups: []string{"dev"}},
		Clusters:     v1alpha1.ClusterSelector{Names: []string{"dev-*"}},
		AccessLevels: []v1alpha1.PolicyAccessLevel{{ClusterRole: "view", Scope: v1alpha1.ScopeCluster}},
		MaxTTL:       dur(time.Hour),
	}}
	if mutate != nil {
		mutate(&p.Spec)
	}
	return p
}

func cluster(name string, labels map[string]string) *v1alpha1.Cluster {
	return &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

func TestDecide(t *testing.T) {
	devView := policy("dev-view", nil)
	devEdit := policy("dev-edit", func(s *v1alpha1.AccessPolicySpec) {
		s.AccessLevels = []v1alpha1.PolicyAccessLevel{{ClusterRole: "edit", Namespaces: &v1alpha1.NamespaceFilter{Allow: []string{"demo", "team-*"}, Deny: []string{"team-secret"}}}}
		s.MaxTTL = dur(2 * time.Hour)
		s.Approval = &v1alpha1.Approval{Approvers: v1alpha1.Subjects{Groups: []string{"sre"}}, RequireReason: true}
	})
	prodSelector := policy("prod-by-label", func(s *v1alpha1.AccessPolicySpec) {
		s.Clusters = v1alpha1.ClusterSelector{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}}
		s.Requesters = v1alpha1.Subjects{Users: []string{"carol"}}
	})
	emptySelector := policy("empty-selector", func(s *v1alpha1.AccessPolicySpec) {
		s.Clusters = v1alpha1.ClusterSelector{Selector: &metav1.LabelSelector{}}
		s.Requesters = v1alpha1.Subjects{Users: []string{"mallory"}}
	})
	sreAdmin := policy("sre-admin", func(s *v1alpha1.AccessPolicySpec) {
		s.Requesters = v1alpha1.Subjects{Groups: []string{"sre"}}
		s.Clusters = v1alpha1.ClusterSelector{Names: []string{"*"}}
		s.AccessLevels = []v1alpha1.PolicyAccessLevel{{ClusterRole: "edit", Scope: v1alpha1.ScopeCluster}}
	})
	all := []v1alpha1.AccessPolicy{devView, devEdit, prodSelector, emptySelector, sreAdmin}
	view := v1alpha1.AccessLevel{ClusterRole: "view"}
	editIn := func(ns ...string) v1alpha1.AccessLevel {
		return v1alpha1.AccessLevel{ClusterRole: "edit", Namespaces: ns}
	}

	cases := []struct {
		name       string
		req        Request
		wantPolicy string
		wantErr    string
		approval   bool
		ttl        time.Duration
	}{
		{"glob cluster, group requester", Request{User: "alice", Groups: []string{"dev"}, Cluster: cluster("dev-target", nil), AccessLevel: view}, "dev-view", "", false, time.Hour},
		{"no policy for cluster", Request{User: "alice", Groups: []string{"dev"}, Cluster: cluster("prod-eu", nil), AccessLevel: view}, "", `no policy lets you request access to cluster "prod-eu"`, false, 0},
		{"not a requester", Request{User: "eve", Groups: []string{"other"}, Cluster: cluster("dev-target", nil), AccessLevel: view}, "", `no policy lets you request access to cluster "dev-target"`, false, 0},
		{"label selector", Request{User: "carol", Cluster: cluster("eu-1", map[string]string{"env": "prod"}), AccessLevel: view}, "prod-by-label", "", false, time.Hour},
		{"label selector mismatch", Request{User: "carol", Cluster: cluster("eu-1", map[string]string{"env": "dev"}), AccessLevel: view}, "", "no policy", false, 0},
		{"empty selector selects nothing", Request{User: "mallory", Cluster: cluster("anything", nil), AccessLevel: view}, "", "no policy", false, 0},
		{"edit in allowed namespace needs approval", Request{User: "alice", Groups: []string{"dev"}, Cluster: cluster("dev-target", nil), AccessLevel: editIn("demo"), Reason: "INC-1", TTL: time.Hour}, "dev-edit", "", true, time.Hour},
		{"edit namespace glob", Request{User: "alice", Groups: []string{"dev"}, Cluster: cluster("dev-target", nil), AccessLevel: editIn("team-a"), Reason: "x"}, "dev-edit", "", true, 2 * time.Hour},
		{"edit namespace denied", Request{User: "alice", Groups: []string{"dev"}, Cluster: cluster("dev-target", nil), AccessLevel: editIn("team-secret"), Reason: "x"}, "", `policy dev-edit: access level "edit" in namespaces team-secret is not allowed here`, false, 0},
		{"edit namespace not allowed", Request{User: "alice", Groups: []string{"dev"}, Cluster: cluster("dev-target", nil), AccessLevel: editIn("kube-system"), Reason: "x"}, "", "is not allowed here", false, 0},
		{"edit cluster-wide not granted", Request{User: "alice", Groups: []string{"dev"}, Cluster: cluster("dev-target", nil), AccessLevel: v1alpha1.AccessLevel{ClusterRole: "edit"}, Reason: "x"}, "", `access level "edit" cluster-wide is not allowed here`, false, 0},
		{"ttl over max", Request{User: "alice", Groups: []string{"dev"}, Cluster: cluster("dev-target", nil), AccessLevel: editIn("demo"), Reason: "x", TTL: 3 * time.Hour}, "", "ttl 3h0m0s is over the policy's maximum of 2h0m0s", false, 0},
		{"reason required", Request{User: "alice", Groups: []string{"dev"}, Cluster: cluster("dev-target", nil), AccessLevel: editIn("demo")}, "", "policy dev-edit: a reason is required", false, 0},
		{"named policy that does not cover", Request{User: "alice", Groups: []string{"dev"}, Cluster: cluster("dev-target", nil), AccessLevel: view, Policy: "sre-admin"}, "", `policy "sre-admin" does not let you request access`, false, 0},
		{"break-glass where a policy grants it", Request{User: "bob", Groups: []string{"sre"}, Cluster: cluster("prod-eu", nil), AccessLevel: v1alpha1.AccessLevel{ClusterRole: "edit"}}, "sre-admin", "", false, time.Hour},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g, err := Decide(all, c.req)
			if c.wantErr != "" {
				var d *Denied
				if err == nil || !errors.As(err, &d) || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("got %v, %v; want a denial containing %q", g, err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("denied: %v", err)
			}
			if g.Policy.Name != c.wantPolicy || g.NeedsApproval != c.approval || g.TTL != c.ttl {
				t.Errorf("granted by %s (approval %t, ttl %s), want %s (approval %t, ttl %s)", g.Policy.Name, g.NeedsApproval, g.TTL, c.wantPolicy, c.approval, c.ttl)
			}
		})
	}
}

func TestDecidePrefersFewestApprovalsThenShortestTTL(t *testing.T) {
	needsTwo := policy("a-two-approvals", func(s *v1alpha1.AccessPolicySpec) {
		s.Approval = &v1alpha1.Approval{Approvers: v1alpha1.Subjects{Groups: []string{"sre"}}, MinApprovals: 2}
	})
	needsOne := policy("b-one-approval", func(s *v1alpha1.AccessPolicySpec) {
		s.Approval = &v1alpha1.Approval{Approvers: v1alpha1.Subjects{Groups: []string{"sre"}}}
	})
	autoLong := policy("c-auto-long", func(s *v1alpha1.AccessPolicySpec) { s.MaxTTL = dur(4 * time.Hour) })
	autoShort := policy("d-auto-short", func(s *v1alpha1.AccessPolicySpec) {
		s.MaxTTL = dur(2 * time.Hour)
		s.Approval = &v1alpha1.Approval{Approvers: v1alpha1.Subjects{Groups: []string{"sre"}}, AutoApprove: &v1alpha1.AutoApprove{Groups: []string{"dev"}}}
	})
	req := Request{User: "alice", Groups: []string{"dev"}, Cluster: cluster("dev-1", nil), AccessLevel: v1alpha1.AccessLevel{ClusterRole: "view"}, TTL: time.Hour}
	g, err := Decide([]v1alpha1.AccessPolicy{needsTwo, needsOne, autoLong, autoShort}, req)
	if err != nil || g.Policy.Name != "d-auto-short" || g.NeedsApproval {
		t.Errorf("chose %v (%v), want d-auto-short without approval", g, err)
	}
	g, err = Decide([]v1alpha1.AccessPolicy{needsTwo, needsOne}, req)
	if err != nil || g.Policy.Name != "b-one-approval" || g.Limits.Approval.MinApprovals != 1 || g.Limits.Approval.Timeout.Duration != DefaultApprovalTimeout {
		t.Errorf("chose %+v (%v), want b-one-approval with 1 approval and the default timeout", g, err)
	}
	req.Policy = "a-two-approvals"
	g, err = Decide([]v1alpha1.AccessPolicy{needsTwo, needsOne}, req)
	if err != nil || g.Policy.Name != "a-two-approvals" {
		t.Errorf("named policy not used: %v (%v)", g, err)
	}
}

func TestApprovals(t *testing.T) {
	a := &v1alpha1.Approval{Approvers: v1alpha1.Subjects{Users: []string{"dave"}, Groups: []string{"sre"}}, MinApprovals: 2}
	requester := &v1alpha1.Requester{User: "alice", Groups: []string{"sre"}}
	for _, c := range []struct {
		user   string
		groups []string
		want   bool
	}{
		{"bob", []string{"sre"}, true},
		{"dave", nil, true},
		{"alice", []string{"sre"}, false}, // the requester, though in the approver group
		{"eve", []string{"dev"}, false},
		{"", []string{"sre"}, false},
	} {
		if got := CanDecide(a, requester, c.user, c.groups); got != c.want {
			t.Errorf("CanDecide(%q, %v) = %t, want %t", c.user, c.groups, got, c.want)
		}
	}
	at := metav1.Now()
	decisions := []v1alpha1.Decision{
		{Approver: "alice", Decision: v1alpha1.DecisionApproved, Time: at},
		{Approver: "bob", Decision: v1alpha1.DecisionApproved, Time: at},
		{Approver: "bob", Decision: v1alpha1.DecisionApproved, Time: at},
	}
	if o := Tally(a, requester, decisions); o.Approved() || o.Approvals != 1 {
		t.Errorf("self-approval or a repeated approver counted: %+v", o)
	}
	decisions = append(decisions, v1alpha1.Decision{Approver: "dave", Decision: v1alpha1.DecisionApproved, Time: at})
	if o := Tally(a, requester, decisions); !o.Approved() {
		t.Errorf("quorum of 2 not reached with bob and dave: %+v", o)
	}
	decisions = append(decisions, v1alpha1.Decision{Approver: "carol", Decision: v1alpha1.DecisionRejected, Time: at})
	if o := Tally(a, requester, decisions); o.Approved() || o.Rejected == nil || o.Rejected.Approver != "carol" {
		t.Errorf("a rejection did not stop the request: %+v", o)
	}
}

// A session granted before its limits were capped by the gateway's
// --max-ttl (limits of 24h under 8h) renews by at most 8h, and lasts at
// most 8h × (1 + maxRenewals) in all.
func TestRenewalsAreHeldToTheGatewaysMaxTTLToo(t *testing.T) {
	l := &v1alpha1.SessionLimits{MaxTTL: dur(24 * time.Hour), Renewal: &v1alpha1.Renewal{Allowed: true, MaxRenewals: 2}}
	start := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		expires time.Duration // after start
		ttl     time.Duration
		want    string
	}{
		{expires: 8 * time.Hour, ttl: 8 * time.Hour},
		{expires: 8 * time.Hour, ttl: 20 * time.Hour, want: "at most the session's maximum of 8h0m0s"},
		{expires: 20 * time.Hour, ttl: 8 * time.Hour, want: "past the session's total of 24h0m0s"},
		{expires: 16 * time.Hour, ttl: 8 * time.Hour},
	} {
		err := CheckRenewal(l, 0, start, start.Add(c.expires), c.ttl, 8*time.Hour)
		if (c.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.want) {
			t.Errorf("renewing by %s at %s: %v, want %q", c.ttl, c.expires, err, c.want)
		}
	}
	// Without a gateway maximum the limits decide alone.
	if err := CheckRenewal(l, 0, start, start.Add(time.Hour), 20*time.Hour, 0); err != nil {
		t.Errorf("no gateway maximum: %v", err)
	}
}
