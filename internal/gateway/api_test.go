package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/testenv"
)

func TestRESTAPIRequestsSessionsForTheCallerOnly(t *testing.T) {
	accessPolicy(t, "api-view", func(s *v1alpha1.AccessPolicySpec) {
		s.Requesters = v1alpha1.Subjects{Users: []string{"alice@example.com"}}
		s.MaxTTL = metav1.Duration{Duration: 8 * time.Hour}
	})
	alice := bearer(token(t, "alice@example.com"))
	alice.Set("Content-Type", "application/json")
	r := call(t, "POST", "/api/v1/sessions", []byte(`{"cluster":"target","accessLevel":{"clusterRole":"view"},"ttl":"30m","reason":"INC-9"}`), alice)
	if r.code != http.StatusCreated {
		t.Fatalf("request: %d %s", r.code, r.body)
	}
	var s v1alpha1.Session
	testenv.Must(t, json.Unmarshal([]byte(r.body), &s))
	if up := s.Spec.Owner.UserPrincipal; up == nil || up.Name != "alice@example.com" || up.Claim != "sub" || !strings.HasPrefix(s.Name, "alice-") {
		t.Fatalf("requested session is not alice's: %s %+v", s.Name, s.Spec.Owner)
	}

	// An owner field in the request is no way to act for someone else.
	r = call(t, "POST", "/api/v1/sessions", []byte(`{"cluster":"target","accessLevel":{"clusterRole":"view"},"ttl":"30m","owner":{"type":"User","userPrincipal":{"name":"bob@example.com","claim":"sub"}}}`), alice)
	if r.code != http.StatusBadRequest || !strings.Contains(r.st.Message, `unknown field "owner"`) {
		t.Errorf("request naming an owner: %d %s, want 400", r.code, r.body)
	}

	for body, want := range map[string]string{
		`{"cluster":"target","accessLevel":{"clusterRole":"view"},"ttl":"100h"}`:                                     `ttl: Invalid value: "100h0m0s": must be at most the gateway maximum of 8h0m0s`,
		`{"cluster":"target","accessLevel":{"clusterRole":"view"},"ttl":"soon"}`:                                     `ttl: Invalid value: "soon": must be a duration`,
		`{"cluster":"target","accessLevel":{"clusterRole":"cluster-admin"},"ttl":"1h"}`:                              `accessLevel.clusterRole: Unsupported value: "cluster-admin"`,
		`{"cluster":"target","accessLevel":{},"ttl":"1h"}`:                                                           `accessLevel: Required value`,
		`{"cluster":"target","accessLevel":{"group":"system:masters"},"ttl":"1h"}`:                                   `accessLevel.group: Forbidden: "system:masters" is a system: group`,
		`{"cluster":"target","accessLevel":{"group":"sre"},"ttl":"1h"}`:                                              `accessLevel.group: Forbidden: group "sre" is not one the gateway hands out`,
		`{"cluster":"target","accessLevel":{"clusterRole":"edit","namespaces":["kube-system"]},"ttl":"1h"}`:          `namespace "kube-system" may never be granted`,
		`{"cluster":"target","accessLevel":{"clusterRole":"edit","namespaces":["sessiongate-sessions"]},"ttl":"1h"}`: `namespace "sessiongate-sessions" may never be granted`,
		`not json`: `request body`,
	} {
		r := call(t, "POST", "/api/v1/sessions", []byte(body), alice)
		if r.code != http.StatusBadRequest || !strings.Contains(r.st.Message, want) {
			t.Errorf("%s: got %d %q, want 400 saying %q", body, r.code, r.st.Message, want)
		}
	}

	// Beyond the gateway's guards, only what a policy grants: edit
	// cluster-wide is break-glass, and api-view grants only view.
	if r := call(t, "POST", "/api/v1/sessions", []byte(`{"cluster":"target","accessLevel":{"clusterRole":"edit"},"ttl":"1h"}`), alice); r.code != http.StatusForbidden ||
		r.st.Message != `policy api-view: access level "edit" cluster-wide is not allowed here` {
		t.Errorf("edit cluster-wide: got %d %q, want 403 naming the policy's rule", r.code, r.st.Message)
	}

	// A Cluster that does not exist is answered like one no policy lets the
	// caller use: the API reveals no cluster names.
	for _, cluster := range []string{"nope", "target", ""} {
		caller := alice
		if cluster == "target" {
			caller = bearer(token(t, "mallory@example.com"))
		}
		r := call(t, "POST", "/api/v1/sessions", []byte(`{"cluster":"`+cluster+`","accessLevel":{"clusterRole":"view"},"ttl":"30m"}`), caller)
		if r.code != http.StatusForbidden || r.st.Message != `no policy lets you request access to cluster "`+cluster+`"` {
			t.Errorf("cluster %q: got %d %q, want 403 saying no policy lets the caller", cluster, r.code, r.st.Message)
		}
	}

	// Nor does anything else wrong with the request tell an unentitled
	// caller whether a cluster exists: mallory, whom no policy covers, gets
	// the same bytes for the registered target as for a cluster that does
	// not exist (the name aside, which is hers), where alice, whom a policy
	// covers on target, is told what is wrong.
	mallory := bearer(token(t, "mallory@example.com"))
	for _, rest := range []string{
		`"accessLevel":{"clusterRole":"view"},"ttl":"soon"`,
		`"accessLevel":{"clusterRole":"edit","namespaces":["kube-system"]},"ttl":"1h"`,
		`"accessLevel":{"group":"system:masters"},"ttl":"1h"`,
		`"accessLevel":{"clusterRole":"view"},"ttl":"1h","startAt":"yesterday"`,
	} {
		existing := call(t, "POST", "/api/v1/sessions", []byte(`{"cluster":"target",`+rest+`}`), mallory)
		missing := call(t, "POST", "/api/v1/sessions", []byte(`{"cluster":"nope",`+rest+`}`), mallory)
		if existing.code != http.StatusForbidden || strings.ReplaceAll(existing.body, `\"target\"`, `\"nope\"`) != missing.body {
			t.Errorf("%s: an unentitled caller tells target from a missing cluster:\n target: %d %s\n nope:   %d %s", rest, existing.code, existing.body, missing.code, missing.body)
		}
		if r := call(t, "POST", "/api/v1/sessions", []byte(`{"cluster":"nope",`+rest+`}`), alice); r.body != missing.body {
			t.Errorf("%s: alice's answer for a missing cluster is not everyone's: %d %s", rest, r.code, r.body)
		}
		if r := call(t, "POST", "/api/v1/sessions", []byte(`{"cluster":"target",`+rest+`}`), alice); r.code != http.StatusBadRequest {
			t.Errorf("%s: alice, whom a policy covers, is not told what is wrong: %d %s", rest, r.code, r.body)
		}
	}

	bob := bearer(token(t, "bob@example.com"))
	var list v1alpha1.SessionList
	r = call(t, "GET", "/api/v1/sessions", nil, bob)
	testenv.Must(t, json.Unmarshal([]byte(r.body), &list))
	for _, it := range list.Items {
		if it.Name == s.Name {
			t.Errorf("bob's list shows alice's session")
		}
	}
	if r := call(t, "GET", "/api/v1/sessions/"+s.Name, nil, bob); r.code != http.StatusNotFound {
		t.Errorf("bob reading alice's session: %d, want 404", r.code)
	}
	if r := call(t, "POST", "/api/v1/sessions/"+s.Name+"/terminate", nil, bob); r.code != http.StatusNotFound {
		t.Errorf("bob terminating alice's session: %d, want 404", r.code)
	}
	if r := call(t, "GET", "/api/v1/sessions", nil, nil); r.code != http.StatusUnauthorized {
		t.Errorf("listing without a token: %d, want 401", r.code)
	}

	r = call(t, "GET", "/api/v1/sessions", nil, alice)
	testenv.Must(t, json.Unmarshal([]byte(r.body), &list))
	if len(list.Items) == 0 {
		t.Errorf("alice's list does not show her session")
	}
	r = call(t, "POST", "/api/v1/sessions/"+s.Name+"/terminate", nil, alice)
	testenv.Must(t, json.Unmarshal([]byte(r.body), &s))
	if r.code != http.StatusOK || !s.Spec.Terminated {
		t.Errorf("alice terminating her session: %d %s", r.code, r.body)
	}
}

// accessPolicy creates a policy in the gateway namespace for one test: view
// cluster-wide on the target, mutated as the test needs.
func accessPolicy(t *testing.T, name string, mutate func(*v1alpha1.AccessPolicySpec)) {
	t.Helper()
	p := &v1alpha1.AccessPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, Spec: v1alpha1.AccessPolicySpec{
		Clusters:     v1alpha1.ClusterSelector{Names: []string{"target"}},
		AccessLevels: []v1alpha1.PolicyAccessLevel{{ClusterRole: "view", Scope: v1alpha1.ScopeCluster}},
		MaxTTL:       metav1.Duration{Duration: time.Hour},
	}}
	mutate(&p.Spec)
	testenv.Must(t, mgmt.Client.Create(context.Background(), p))
	t.Cleanup(func() { _ = mgmt.Client.Delete(context.Background(), p) })
	// Requests are judged from each replica's cache: wait until it has it.
	testenv.Eventually(t, 30*time.Second, func() error {
		for i, gw := range replicas {
			if err := gw.GetClient().Get(context.Background(), client.ObjectKeyFromObject(p), &v1alpha1.AccessPolicy{}); err != nil {
				return fmt.Errorf("replica %d: %w", i, err)
			}
		}
		return nil
	})
}
