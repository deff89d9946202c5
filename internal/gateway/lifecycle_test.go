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
	"sessiongate.dev/sessiongate/internal/api"
	"sessiongate.dev/sessiongate/internal/testenv"
)

// The incident button: one call ends every session of a user on every
// cluster and cuts its live exec, watch and port-forward on every replica.
func TestRevocationEndsEverySessionOfAUserAndCutsItsStreams(t *testing.T) {
	victim := "mallory@example.com"
	tok := token(t, victim)
	a := session(t, "revoked-a", victim)
	b := session(t, "revoked-b", victim)
	bystander := session(t, "bystander", "alice@example.com")
	var streams []*stream
	streams = append(streams, openStreams(t, 0, a.Name, tok)...)
	streams = append(streams, openStreams(t, 1, b.Name, tok)...)

	body := []byte(`{"user":"` + victim + `"}`)
	if r := call(t, "POST", "/api/v1/revocations", body, bearer(token(t, "alice@example.com", "sre"))); r.code != http.StatusForbidden {
		t.Errorf("revocation by a non-admin: got %d %q, want 403", r.code, r.st.Message)
	}
	at := time.Now()
	r := call(t, "POST", "/api/v1/revocations", body, bearer(token(t, "irene@example.com", "sessiongate-admins")))
	if r.code != http.StatusOK {
		t.Fatalf("revocation: %d %s", r.code, r.body)
	}
	var res api.RevocationResult
	testenv.Must(t, json.Unmarshal([]byte(r.body), &res))
	if strings.Join(res.Ended, ",") != "revoked-a,revoked-b" {
		t.Errorf("revocation reports %v, want revoked-a and revoked-b", res.Ended)
	}
	for _, st := range streams {
		select {
		case ended := <-st.ended:
			if d := ended.Sub(at); d > 2*time.Second {
				t.Errorf("%s cut %s after the revocation", st.name, d)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s still open 10s after the revocation", st.name)
		}
	}
	for _, name := range []string{a.Name, b.Name} {
		s := &v1alpha1.Session{}
		testenv.Eventually(t, 30*time.Second, func() error {
			testenv.Must(t, mgmt.Client.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, s))
			if s.Status.Phase != v1alpha1.PhaseTerminated {
				return fmt.Errorf("%s is %s", name, s.Status.Phase)
			}
			return nil
		})
		if s.Annotations[v1alpha1.AnnotationTerminatedBy] != "irene@example.com (revocation)" {
			t.Errorf("%s does not say who revoked it: %v", name, s.Annotations)
		}
	}
	if _, ok := replicas[0].Registry.Get(bystander.Name); !ok {
		t.Errorf("revoking mallory ended alice's session too")
	}
	if !strings.Contains(auditLog.String(), `"verb":"revoke"`) {
		t.Errorf("the revocation is not in the audit log")
	}
}

func TestRenewalThroughTheRESTAPI(t *testing.T) {
	accessPolicy(t, "api-renewable", func(s *v1alpha1.AccessPolicySpec) {
		s.Requesters = v1alpha1.Subjects{Users: []string{"rita@example.com"}}
		s.Renewal = &v1alpha1.Renewal{Allowed: true, MaxRenewals: 1}
	})
	rita := bearer(token(t, "rita@example.com"))
	r := requestAs(t, rita, `{"cluster":"target","accessLevel":{"clusterRole":"view"},"ttl":"30m"}`)
	var s v1alpha1.Session
	testenv.Must(t, json.Unmarshal([]byte(r.body), &s))
	waitPhaseAPI(t, rita, s.Name, v1alpha1.PhaseActive)
	testenv.Must(t, mgmt.Client.Get(context.Background(), client.ObjectKeyFromObject(&s), &s))
	before := s.Status.ExpiresAt.Time

	renew := func(who http.Header, body string) response {
		return call(t, "POST", "/api/v1/sessions/"+s.Name+"/renew", []byte(body), who)
	}
	if r := renew(bearer(token(t, "alice@example.com")), `{"ttl":"10m"}`); r.code != http.StatusNotFound {
		t.Errorf("renewal by a stranger: %d, want 404", r.code)
	}
	if r := renew(rita, `{"ttl":"2h"}`); r.code != http.StatusForbidden || !strings.Contains(r.st.Message, "at most the session's maximum of 1h0m0s") {
		t.Errorf("renewal over maxTTL: %d %q, want 403", r.code, r.st.Message)
	}
	if r := renew(rita, `{"ttl":"20m"}`); r.code != http.StatusOK {
		t.Fatalf("renewal: %d %s", r.code, r.body)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		testenv.Must(t, mgmt.Client.Get(context.Background(), client.ObjectKeyFromObject(&s), &s))
		if !s.Status.ExpiresAt.Time.Equal(before.Add(20 * time.Minute)) {
			return fmt.Errorf("expiresAt %s, want %s", s.Status.ExpiresAt, before.Add(20*time.Minute))
		}
		for i, gw := range replicas {
			if cur, ok := gw.Registry.Get(s.Name); !ok || !cur.Expires().Equal(s.Status.ExpiresAt.Time) {
				return fmt.Errorf("replica %d does not serve the renewed expiry yet", i)
			}
		}
		return nil
	})
	if r := renew(rita, `{"ttl":"20m"}`); r.code != http.StatusForbidden || !strings.Contains(r.st.Message, "renewed 1 time(s), the policy's maximum") {
		t.Errorf("a second renewal: %d %q, want 403", r.code, r.st.Message)
	}
}

// Traffic on one replica keeps a session alive; the leader, wherever it
// runs, ends it once the traffic stops for the idle timeout.
func TestIdleExpiryFollowsTrafficOnAnyReplica(t *testing.T) {
	accessPolicy(t, "api-idle", func(s *v1alpha1.AccessPolicySpec) {
		s.Requesters = v1alpha1.Subjects{Users: []string{"ida@example.com"}}
		s.IdleTimeout = &metav1.Duration{Duration: 3 * time.Second}
	})
	ida := bearer(token(t, "ida@example.com"))
	r := requestAs(t, ida, `{"cluster":"target","accessLevel":{"clusterRole":"view"},"ttl":"30m"}`)
	var s v1alpha1.Session
	testenv.Must(t, json.Unmarshal([]byte(r.body), &s))
	waitPhaseAPI(t, ida, s.Name, v1alpha1.PhaseActive)

	busy := 1
	for i, gw := range replicas {
		if gw.Leading() {
			busy = 1 - i // traffic on the replica that does not lead
		}
	}
	c := clientset(t, busy, s.Name, token(t, "ida@example.com"))
	// Twice the idle timeout of steady traffic.
	deadline := time.Now().Add(6 * time.Second)
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		if _, err := c.CoreV1().Pods("demo").List(context.Background(), metav1.ListOptions{}); err != nil {
			t.Fatalf("a session in use was cut: %v", err)
		}
		<-tick.C
	}
	waitPhaseAPI(t, ida, s.Name, v1alpha1.PhaseIdleExpired)
}
