package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/audit"
	"sessiongate.dev/sessiongate/internal/credentials"
	"sessiongate.dev/sessiongate/internal/testenv"
)

func auditRecords(t *testing.T) []auditv1.Event {
	t.Helper()
	var evs []auditv1.Event
	s := bufio.NewScanner(strings.NewReader(auditLog.String()))
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		var ev auditv1.Event
		if err := json.Unmarshal(s.Bytes(), &ev); err != nil {
			t.Fatalf("audit line is not an audit.k8s.io/v1 Event: %v\n%s", err, s.Text())
		}
		evs = append(evs, ev)
	}
	return evs
}

func TestEveryRequestIsAuditedWithoutSecrets(t *testing.T) {
	s := session(t, "audited", "alice@example.com")
	tok := token(t, "alice@example.com")
	kc := kubeconfig(t, 0, "audited", tok)
	if out, err := runKubectl(t, kc, nil, "", "exec", "-n", "demo", "web", "--", "echo", "audited"); err != nil {
		t.Fatalf("kubectl exec: %v\n%s", err, out)
	}
	if out, err := runKubectl(t, kc, nil, "", "get", "pod", "-n", "demo", "web"); err != nil {
		t.Fatalf("kubectl get: %v\n%s", err, out)
	}

	var exec, get *auditv1.Event
	testenv.Eventually(t, 30*time.Second, func() error {
		for _, ev := range auditRecords(t) {
			if ev.Annotations[audit.AnnotationSession] != "audited" || ev.ObjectRef == nil {
				continue
			}
			switch {
			case ev.ObjectRef.Subresource == "exec":
				exec = &ev
			case ev.Verb == "get" && ev.ObjectRef.Resource == "pods" && ev.ObjectRef.Name == "web":
				get = &ev
			}
		}
		if exec == nil || get == nil {
			return fmt.Errorf("no audit record yet for the exec (%v) or the get (%v)", exec != nil, get != nil)
		}
		return nil
	})
	if exec.User.Username != "alice@example.com" || (exec.Verb != "create" && exec.Verb != "get") || exec.ObjectRef.Namespace != "demo" ||
		exec.Annotations[audit.AnnotationCommand] != "echo audited" || exec.Annotations[audit.AnnotationCluster] != "target" ||
		exec.ResponseStatus == nil || exec.ResponseStatus.Code != 101 {
		t.Errorf("exec audit record is incomplete: %+v", exec)
	}
	if get.ResponseStatus == nil || get.ResponseStatus.Code != 200 || get.Stage != auditv1.StageResponseComplete ||
		get.StageTimestamp.Before(&get.RequestReceivedTimestamp) {
		t.Errorf("get audit record is incomplete: %+v", get)
	}

	sec := &corev1.Secret{}
	testenv.Must(t, mgmt.Client.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: s.Status.CredentialsSecretRef}, sec))
	for name, secret := range map[string]string{"caller's token": tok, "session credential": string(sec.Data[credentials.KeyToken])} {
		if secret == "" || strings.Contains(auditLog.String(), secret) {
			t.Errorf("the audit log holds the %s", name)
		}
	}
}

// A refusal is a decision too: each leaves an audit record with the code and
// the message the caller got.
func TestRefusalsAreAuditRecordsToo(t *testing.T) {
	accessPolicy(t, "api-audited-refusals", func(s *v1alpha1.AccessPolicySpec) {
		s.Requesters = v1alpha1.Subjects{Users: []string{"rae@example.com"}}
		s.Approval = &v1alpha1.Approval{Approvers: v1alpha1.Subjects{Users: []string{"sam@example.com"}}}
	})
	rae, sam, zed := bearer(token(t, "rae@example.com")), bearer(token(t, "sam@example.com")), bearer(token(t, "zed@example.com"))
	r := requestAs(t, rae, `{"cluster":"target","accessLevel":{"clusterRole":"view"},"ttl":"30m"}`)
	var s v1alpha1.Session
	testenv.Must(t, json.Unmarshal([]byte(r.body), &s))
	waitPhaseAPI(t, rae, s.Name, v1alpha1.PhasePendingApproval)
	post := func(who http.Header, path, body string) func() response {
		return func() response { return call(t, "POST", path, []byte(body), who) }
	}
	on := "/api/v1/sessions/" + s.Name

	check := func(user, verb, session string, code int, do func() response) {
		t.Helper()
		r := do()
		if r.code != code {
			t.Fatalf("%s %s: got %d %s, want %d", user, verb, r.code, r.body, code)
		}
		testenv.Eventually(t, 30*time.Second, func() error {
			for _, ev := range auditRecords(t) {
				if ev.User.Username == user && ev.Verb == verb && ev.ObjectRef != nil && ev.ObjectRef.Name == session &&
					ev.ResponseStatus != nil && ev.ResponseStatus.Code == int32(code) && ev.ResponseStatus.Message == r.st.Message {
					return nil
				}
			}
			return fmt.Errorf("no audit record of %s's %s refused with %d %q", user, verb, code, r.st.Message)
		})
	}
	check("zed@example.com", "request", "", http.StatusForbidden, post(zed, "/api/v1/sessions", `{"cluster":"target","accessLevel":{"clusterRole":"view"},"ttl":"30m"}`))
	check("zed@example.com", "approved", s.Name, http.StatusNotFound, post(zed, on+"/approve", `{}`))
	check("rae@example.com", "approved", s.Name, http.StatusForbidden, post(rae, on+"/approve", `{}`))
	check("rae@example.com", "renew", s.Name, http.StatusConflict, post(rae, on+"/renew", `{"ttl":"10m"}`))
	check("sam@example.com", "rejected", s.Name, http.StatusBadRequest, post(sam, on+"/reject", `{}`))
	check("zed@example.com", "revoke", "", http.StatusForbidden, post(zed, "/api/v1/revocations", `{"user":"rae@example.com"}`))
	check("zed@example.com", "terminate", s.Name, http.StatusNotFound, post(zed, on+"/terminate", ``))
	if r := call(t, "POST", on+"/approve", []byte(`{"comment":"fine"}`), sam); r.code != http.StatusOK {
		t.Fatalf("sam approving: %d %s", r.code, r.body)
	}
	waitPhaseAPI(t, rae, s.Name, v1alpha1.PhaseActive)
	check("sam@example.com", "approved", s.Name, http.StatusConflict, post(sam, on+"/approve", `{}`))
}
