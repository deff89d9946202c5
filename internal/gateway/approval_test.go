package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/api"
	"sessiongate.dev/sessiongate/internal/testenv"
)

func requestAs(t *testing.T, who http.Header, body string) response {
	t.Helper()
	return call(t, "POST", "/api/v1/sessions", []byte(body), who)
}

func phaseOf(t *testing.T, who http.Header, name string) v1alpha1.SessionPhase {
	t.Helper()
	r := call(t, "GET", "/api/v1/sessions/"+name, nil, who)
	var s v1alpha1.Session
	_ = json.Unmarshal([]byte(r.body), &s)
	return s.Status.Phase
}

func waitPhaseAPI(t *testing.T, who http.Header, name string, want v1alpha1.SessionPhase) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		if p := phaseOf(t, who, name); p != want {
			return fmt.Errorf("session %s is %q, want %q", name, p, want)
		}
		return nil
	})
}

func TestApprovalThroughTheRESTAPI(t *testing.T) {
	accessPolicy(t, "api-dev-edit", func(s *v1alpha1.AccessPolicySpec) {
		s.Requesters = v1alpha1.Subjects{Groups: []string{"dev"}}
		s.AccessLevels = []v1alpha1.PolicyAccessLevel{{ClusterRole: "edit", Namespaces: &v1alpha1.NamespaceFilter{Allow: []string{"demo"}}}}
		s.MaxTTL.Duration = 2 * time.Hour
		s.Approval = &v1alpha1.Approval{Approvers: v1alpha1.Subjects{Groups: []string{"sre"}}, MinApprovals: 2, RequireReason: true}
	})
	// alice is a developer and an SRE; bob and dave are SREs; eve is a developer.
	alice := bearer(token(t, "alice@example.com", "dev", "sre"))
	bob := bearer(token(t, "bob@example.com", "sre"))
	dave := bearer(token(t, "dave@example.com", "sre"))
	eve := bearer(token(t, "eve@example.com", "dev"))

	for body, want := range map[string]string{
		`{"cluster":"target","accessLevel":{"clusterRole":"edit","namespaces":["demo"]},"ttl":"1h"}`:                 "policy api-dev-edit: a reason is required",
		`{"cluster":"target","accessLevel":{"clusterRole":"edit","namespaces":["demo"]},"ttl":"3h","reason":"x"}`:    "policy api-dev-edit: ttl 3h0m0s is over the policy's maximum of 2h0m0s",
		`{"cluster":"target","accessLevel":{"clusterRole":"edit","namespaces":["default"]},"ttl":"1h","reason":"x"}`: `policy api-dev-edit: access level "edit" in namespaces default is not allowed here`,
		`{"cluster":"target","accessLevel":{"clusterRole":"view"},"ttl":"1h","reason":"x","policy":"someone-elses"}`: `policy "someone-elses" does not let you request access to cluster "target"`,
	} {
		if r := requestAs(t, alice, body); r.code != http.StatusForbidden || r.st.Message != want {
			t.Errorf("%s: got %d %q, want 403 %q", body, r.code, r.st.Message, want)
		}
	}

	r := requestAs(t, alice, `{"cluster":"target","accessLevel":{"clusterRole":"edit","namespaces":["demo"]},"ttl":"1h","reason":"INC-7"}`)
	if r.code != http.StatusCreated {
		t.Fatalf("request: %d %s", r.code, r.body)
	}
	var s v1alpha1.Session
	testenv.Must(t, json.Unmarshal([]byte(r.body), &s))
	if s.Spec.Policy != "api-dev-edit" || s.Spec.Requester == nil || s.Spec.Requester.User != "alice@example.com" {
		t.Fatalf("the session does not record its policy and requester: %+v", s.Spec)
	}
	waitPhaseAPI(t, alice, s.Name, v1alpha1.PhasePendingApproval)
	approve := func(who http.Header, comment string) response {
		return call(t, "POST", "/api/v1/sessions/"+s.Name+"/approve", []byte(`{"comment":"`+comment+`"}`), who)
	}

	if r := approve(alice, ""); r.code != http.StatusForbidden || r.st.Message != "you cannot decide your own request" {
		t.Errorf("self-approval by an approver: got %d %q, want 403", r.code, r.st.Message)
	}
	if r := approve(eve, ""); r.code != http.StatusNotFound {
		t.Errorf("approval by a non-approver: got %d %q, want the same 404 as for any session not hers", r.code, r.st.Message)
	}
	var pending v1alpha1.SessionList
	testenv.Must(t, json.Unmarshal([]byte(call(t, "GET", "/api/v1/approvals", nil, bob).body), &pending))
	if len(pending.Items) != 1 || pending.Items[0].Name != s.Name {
		t.Errorf("bob's approvals: %d items, want exactly %s", len(pending.Items), s.Name)
	}
	testenv.Must(t, json.Unmarshal([]byte(call(t, "GET", "/api/v1/approvals", nil, alice).body), &pending))
	if len(pending.Items) != 0 {
		t.Errorf("alice may decide her own request: %v", pending.Items)
	}

	if r := approve(bob, "looks right"); r.code != http.StatusOK {
		t.Fatalf("bob approving: %d %s", r.code, r.body)
	}
	if r := approve(bob, "again"); r.code != http.StatusConflict {
		t.Errorf("bob approving twice: got %d %q, want 409", r.code, r.st.Message)
	}
	if p := phaseOf(t, alice, s.Name); p != v1alpha1.PhasePendingApproval {
		t.Fatalf("one approval of two made the session %s", p)
	}
	if r := approve(dave, ""); r.code != http.StatusOK {
		t.Fatalf("dave approving: %d %s", r.code, r.body)
	}
	waitPhaseAPI(t, alice, s.Name, v1alpha1.PhaseActive)
	if r := approve(bearer(token(t, "carol@example.com", "sre")), ""); r.code != http.StatusConflict || !strings.Contains(r.st.Message, "is Active, not PendingApproval") {
		t.Errorf("approving an Active session: got %d %q, want 409", r.code, r.st.Message)
	}
	// The approver sees what it decided; the requester's session works.
	if r := call(t, "GET", "/api/v1/sessions/"+s.Name, nil, bob); r.code != http.StatusOK {
		t.Errorf("bob reading a session he approved: %d", r.code)
	}
	if _, err := runKubectl(t, kubeconfig(t, 0, s.Name, token(t, "alice@example.com", "dev", "sre")), nil, "", "get", "pods", "-n", "demo"); err != nil {
		t.Errorf("alice cannot use her approved session: %v", err)
	}

	// A rejection needs a comment, and ends the request.
	r = requestAs(t, eve, `{"cluster":"target","accessLevel":{"clusterRole":"edit","namespaces":["demo"]},"reason":"curious"}`)
	testenv.Must(t, json.Unmarshal([]byte(r.body), &s))
	if s.Spec.TTL.Duration != 2*time.Hour {
		t.Errorf("a request without ttl got %s, want the policy's default (its maxTTL, 2h)", s.Spec.TTL.Duration)
	}
	waitPhaseAPI(t, eve, s.Name, v1alpha1.PhasePendingApproval)
	if r := call(t, "POST", "/api/v1/sessions/"+s.Name+"/reject", nil, bob); r.code != http.StatusBadRequest || !strings.Contains(r.st.Message, "a rejection needs a comment") {
		t.Errorf("reject without comment: got %d %q, want 400", r.code, r.st.Message)
	}
	if r := call(t, "POST", "/api/v1/sessions/"+s.Name+"/reject", []byte(`{"comment":"not for curiosity"}`), bob); r.code != http.StatusOK {
		t.Fatalf("reject: %d %s", r.code, r.body)
	}
	waitPhaseAPI(t, eve, s.Name, v1alpha1.PhaseRejected)
}

func TestPoliciesSayWhatTheCallerMayRequest(t *testing.T) {
	accessPolicy(t, "api-offer", func(s *v1alpha1.AccessPolicySpec) {
		s.Requesters = v1alpha1.Subjects{Groups: []string{"offer"}}
		// Whether approval is needed does not depend on the access level: a
		// glob allow-list that no probe namespace matches changes nothing.
		s.AccessLevels = []v1alpha1.PolicyAccessLevel{{ClusterRole: "edit", Namespaces: &v1alpha1.NamespaceFilter{Allow: []string{"team-*"}, Deny: []string{"default"}}}}
		s.Approval = &v1alpha1.Approval{Approvers: v1alpha1.Subjects{Groups: []string{"sre"}}, AutoApprove: &v1alpha1.AutoApprove{Groups: []string{"trusted"}}}
		s.Schedule = &v1alpha1.Schedule{Allowed: true}
		s.Streams = &v1alpha1.StreamPolicy{ForbidInteractive: true, MaxStreamDuration: &metav1.Duration{Duration: 10 * time.Minute}}
	})
	var views api.PolicyViewList
	testenv.Must(t, json.Unmarshal([]byte(call(t, "GET", "/api/v1/policies", nil, bearer(token(t, "fay@example.com", "offer"))).body), &views))
	var found *api.PolicyView
	for i := range views.Items {
		if views.Items[i].Policy == "api-offer" {
			found = &views.Items[i]
		}
	}
	if found == nil || found.Cluster != "target" || !found.NeedsApproval || found.MinApprovals != 1 || found.MaxTTL != "1h0m0s" ||
		found.Approvers == nil || found.Approvers.Groups[0] != "sre" {
		t.Fatalf("fay's view of api-offer: %+v", found)
	}
	if found.Schedule == nil || !found.Schedule.Allowed || found.Schedule.MaxDelay == nil || found.Schedule.MaxDelay.Duration != 168*time.Hour {
		t.Errorf("fay's view of api-offer does not say a start may be scheduled up to 168h ahead: %+v", found.Schedule)
	}
	if st := found.Streams; st == nil || !st.ForbidInteractive || st.MaxStreamDuration == nil || st.MaxStreamDuration.Duration != 10*time.Minute {
		t.Errorf("fay's view of api-offer does not carry the stream limits: %+v", st)
	}
	testenv.Must(t, json.Unmarshal([]byte(call(t, "GET", "/api/v1/policies", nil, bearer(token(t, "gus@example.com", "offer", "trusted"))).body), &views))
	for _, v := range views.Items {
		if v.Policy == "api-offer" && v.NeedsApproval {
			t.Errorf("a trusted requester is told it needs approval")
		}
	}
	testenv.Must(t, json.Unmarshal([]byte(call(t, "GET", "/api/v1/policies", nil, bearer(token(t, "hal@example.com", "other"))).body), &views))
	for _, v := range views.Items {
		if v.Policy == "api-offer" {
			t.Errorf("a caller the policy does not cover sees it")
		}
	}
}
