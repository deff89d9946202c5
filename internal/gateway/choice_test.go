package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/api"
	"sessiongate.dev/sessiongate/internal/testenv"
)

// requested makes a request through the REST API and returns the session,
// deleted when the test ends.
func requested(t *testing.T, who http.Header, body string) *v1alpha1.Session {
	t.Helper()
	r := requestAs(t, who, body)
	if r.code != http.StatusCreated {
		t.Fatalf("request %s: %d %s", body, r.code, r.body)
	}
	s := &v1alpha1.Session{}
	testenv.Must(t, json.Unmarshal([]byte(r.body), s))
	t.Cleanup(func() { _ = mgmt.Client.Delete(context.Background(), s) })
	return s
}

// Where several policies grant a request, the one it names wins; else the
// one needing the fewest approvals, then the one with the shortest maxTTL.
func TestRequestUsesTheNamedPolicyElseFewestApprovalsThenShortestMaxTTL(t *testing.T) {
	pia := bearer(token(t, "pia@example.com"))
	grantsPia := func(maxTTL time.Duration, approval *v1alpha1.Approval) func(*v1alpha1.AccessPolicySpec) {
		return func(s *v1alpha1.AccessPolicySpec) {
			s.Requesters = v1alpha1.Subjects{Users: []string{"pia@example.com"}}
			s.MaxTTL.Duration = maxTTL
			s.Approval = approval
		}
	}
	accessPolicy(t, "choice-reviewed", grantsPia(30*time.Minute, &v1alpha1.Approval{Approvers: v1alpha1.Subjects{Users: []string{"rex@example.com"}}}))
	accessPolicy(t, "choice-long", grantsPia(4*time.Hour, nil))
	accessPolicy(t, "choice-short", grantsPia(time.Hour, nil))

	for body, want := range map[string]string{
		// No approvals beats the shorter maxTTL of the reviewed policy;
		// among those needing none, the shorter maxTTL.
		`{"cluster":"target","accessLevel":{"clusterRole":"view"},"ttl":"20m"}`: "choice-short",
		// choice-short's maxTTL is under 90m.
		`{"cluster":"target","accessLevel":{"clusterRole":"view"},"ttl":"90m"}`: "choice-long",
		// Named, even though it needs an approval.
		`{"cluster":"target","accessLevel":{"clusterRole":"view"},"ttl":"20m","policy":"choice-reviewed"}`: "choice-reviewed",
	} {
		s := requested(t, pia, body)
		if s.Spec.Policy != want {
			t.Errorf("%s: judged by %q, want %q", body, s.Spec.Policy, want)
		}
		want := v1alpha1.PhaseActive
		if s.Spec.Policy == "choice-reviewed" {
			want = v1alpha1.PhasePendingApproval
		}
		waitPhaseAPI(t, pia, s.Name, want)
		got := &v1alpha1.Session{}
		testenv.Must(t, mgmt.Client.Get(context.Background(), client.ObjectKeyFromObject(s), got))
		if got.Status.Policy != s.Spec.Policy {
			t.Errorf("%s: the leader granted it by %q, the request named %q", body, got.Status.Policy, s.Spec.Policy)
		}
	}
	if r := requestAs(t, pia, `{"cluster":"target","accessLevel":{"clusterRole":"view"},"ttl":"45m","policy":"choice-reviewed"}`); r.code != http.StatusForbidden ||
		r.st.Message != "policy choice-reviewed: ttl 45m0s is over the policy's maximum of 30m0s" {
		t.Errorf("a named policy that does not grant: %d %q, want 403 naming its rule (and no other policy chosen instead)", r.code, r.st.Message)
	}
}

// registerCluster registers the shared target once more, under another
// name and with labels, for the test.
func registerCluster(t *testing.T, name string, labels map[string]string) {
	t.Helper()
	ctx := context.Background()
	testenv.Must(t, testenv.RegisterTarget(ctx, mgmt, target, namespace, name))
	c := &v1alpha1.Cluster{}
	testenv.Must(t, mgmt.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, c))
	patch := client.MergeFrom(c.DeepCopy())
	c.Labels = labels
	testenv.Must(t, mgmt.Client.Patch(ctx, c, patch))
	t.Cleanup(func() {
		_ = mgmt.Client.Delete(ctx, c)
		_ = mgmt.Client.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name + "-kubeconfig"}})
	})
	testenv.Eventually(t, 30*time.Second, func() error {
		for i, gw := range replicas {
			cur := &v1alpha1.Cluster{}
			if err := gw.GetClient().Get(ctx, client.ObjectKeyFromObject(c), cur); err != nil || cur.Labels["env"] != labels["env"] {
				return fmt.Errorf("replica %d does not see cluster %s with its labels yet (%v)", i, name, err)
			}
		}
		return nil
	})
}

// A policy covers clusters by glob and by label selector, and no others.
func TestPoliciesCoverClustersByGlobAndByLabels(t *testing.T) {
	registerCluster(t, "glob-eu-1", nil)
	registerCluster(t, "labelled", map[string]string{"env": "staging"})
	accessPolicy(t, "cover-glob", func(s *v1alpha1.AccessPolicySpec) {
		s.Requesters = v1alpha1.Subjects{Users: []string{"quinn@example.com"}}
		s.Clusters = v1alpha1.ClusterSelector{Names: []string{"glob-*"}}
	})
	accessPolicy(t, "cover-labels", func(s *v1alpha1.AccessPolicySpec) {
		s.Requesters = v1alpha1.Subjects{Users: []string{"quinn@example.com"}}
		s.Clusters = v1alpha1.ClusterSelector{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "staging"}}}
	})
	quinn := bearer(token(t, "quinn@example.com"))

	var views api.PolicyViewList
	testenv.Must(t, json.Unmarshal([]byte(call(t, "GET", "/api/v1/policies", nil, quinn).body), &views))
	var got []string
	for _, v := range views.Items {
		got = append(got, v.Cluster+"/"+v.Policy)
	}
	slices.Sort(got)
	if strings.Join(got, " ") != "glob-eu-1/cover-glob labelled/cover-labels" {
		t.Errorf("quinn may request %v, want glob-eu-1 by cover-glob and labelled by cover-labels only", got)
	}
	for cluster, policy := range map[string]string{"glob-eu-1": "cover-glob", "labelled": "cover-labels"} {
		s := requested(t, quinn, `{"cluster":"`+cluster+`","accessLevel":{"clusterRole":"view"},"ttl":"10m"}`)
		if s.Spec.Policy != policy {
			t.Errorf("a request for %s is judged by %q, want %q", cluster, s.Spec.Policy, policy)
		}
		waitPhaseAPI(t, quinn, s.Name, v1alpha1.PhaseActive)
	}
	if r := requestAs(t, quinn, `{"cluster":"target","accessLevel":{"clusterRole":"view"},"ttl":"10m"}`); r.code != http.StatusForbidden ||
		r.st.Message != `no policy lets you request access to cluster "target"` {
		t.Errorf("target matches neither the glob nor the selector: %d %q", r.code, r.st.Message)
	}
}

// Revoking a group ends its members' sessions that are active and those
// still waiting for approval, and no one else's.
func TestRevocationOfAGroupEndsActiveAndPendingSessions(t *testing.T) {
	accessPolicy(t, "revoke-group-auto", func(s *v1alpha1.AccessPolicySpec) {
		s.Requesters = v1alpha1.Subjects{Groups: []string{"contractors"}}
	})
	accessPolicy(t, "revoke-group-reviewed", func(s *v1alpha1.AccessPolicySpec) {
		s.Requesters = v1alpha1.Subjects{Groups: []string{"contractors"}}
		s.AccessLevels = []v1alpha1.PolicyAccessLevel{{ClusterRole: "edit", Namespaces: &v1alpha1.NamespaceFilter{Allow: []string{"demo"}}}}
		s.Approval = &v1alpha1.Approval{Approvers: v1alpha1.Subjects{Users: []string{"rex@example.com"}}}
	})
	olga, otto := bearer(token(t, "olga@example.com", "contractors")), bearer(token(t, "otto@example.com", "contractors", "dev"))
	active := requested(t, olga, `{"cluster":"target","accessLevel":{"clusterRole":"view"},"ttl":"10m"}`)
	pending := requested(t, otto, `{"cluster":"target","accessLevel":{"clusterRole":"edit","namespaces":["demo"]},"ttl":"10m"}`)
	waitPhaseAPI(t, olga, active.Name, v1alpha1.PhaseActive)
	waitPhaseAPI(t, otto, pending.Name, v1alpha1.PhasePendingApproval)
	bystander := session(t, "group-bystander", "alice@example.com")

	r := call(t, "POST", "/api/v1/revocations", []byte(`{"group":"contractors"}`), bearer(token(t, "irene@example.com", "sessiongate-admins")))
	if r.code != http.StatusOK {
		t.Fatalf("revocation: %d %s", r.code, r.body)
	}
	var res api.RevocationResult
	testenv.Must(t, json.Unmarshal([]byte(r.body), &res))
	slices.Sort(res.Ended)
	want := []string{active.Name, pending.Name}
	slices.Sort(want)
	if !slices.Equal(res.Ended, want) {
		t.Errorf("revocation of group contractors reports %v, want %v", res.Ended, want)
	}
	waitPhaseAPI(t, olga, active.Name, v1alpha1.PhaseTerminated)
	waitPhaseAPI(t, otto, pending.Name, v1alpha1.PhaseTerminated)
	if r := call(t, "POST", "/api/v1/sessions/"+pending.Name+"/approve", nil, bearer(token(t, "rex@example.com"))); r.code != http.StatusConflict {
		t.Errorf("approving a revoked request: %d %q, want 409", r.code, r.st.Message)
	}
	if _, ok := replicas[0].Registry.Get(bystander.Name); !ok {
		t.Errorf("revoking group contractors ended alice's session too")
	}
}
