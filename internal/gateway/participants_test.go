package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/audit"
	"sessiongate.dev/sessiongate/internal/testenv"
)

func TestParticipantsAndViewers(t *testing.T) {
	ctx := context.Background()
	session(t, "shared", "alice@example.com")
	alice := bearer(token(t, "alice@example.com"))
	// The gateway's username claim is email in this suite.
	viewerTok, participantTok, strangerTok := token(t, "bob@example.com"), token(t, "carol@example.com"), token(t, "dave@example.com")

	share := func(who map[string][]string, body string) response {
		return call(t, "POST", "/api/v1/sessions/shared/participants", []byte(body), who)
	}
	for body, want := range map[string]string{
		`{"user":"bob@example.com","role":"admin"}`:                 `role: "admin" is not participant or viewer`,
		`{"user":"","role":"viewer"}`:                               "user: name the participant",
		`{"user":"alice@example.com","role":"viewer"}`:              "you own the session already",
		`{"user":"bob@example.com","role":"viewer","groups":["x"]}`: `unknown field "groups"`,
	} {
		if r := share(alice, body); r.code != http.StatusBadRequest || !strings.Contains(r.st.Message, want) {
			t.Errorf("share %s: %d %s, want 400 with %q", body, r.code, r.body, want)
		}
	}
	// Only the owner shares: a stranger does not learn the session exists.
	if r := share(bearer(strangerTok), `{"user":"dave@example.com","role":"participant"}`); r.code != http.StatusNotFound {
		t.Errorf("a stranger sharing: %d %s, want 404", r.code, r.body)
	}
	for body := range map[string]bool{`{"user":"bob@example.com","role":"viewer"}`: true, `{"user":"carol@example.com","role":"participant"}`: true} {
		if r := share(alice, body); r.code != http.StatusOK {
			t.Fatalf("share %s: %d %s", body, r.code, r.body)
		}
	}
	// A viewer may not let others in, nor end the session.
	if r := share(bearer(viewerTok), `{"user":"dave@example.com","role":"participant"}`); r.code != http.StatusForbidden || !strings.Contains(r.body, "only the owner") {
		t.Errorf("a viewer sharing: %d %s, want 403", r.code, r.body)
	}
	if r := call(t, "POST", "/api/v1/sessions/shared/terminate", nil, bearer(viewerTok)); r.code != http.StatusForbidden {
		t.Errorf("a viewer terminating: %d %s, want 403", r.code, r.body)
	}
	if r := call(t, "GET", "/api/v1/sessions/shared", nil, bearer(viewerTok)); r.code != http.StatusOK {
		t.Errorf("a viewer reading the session: %d %s", r.code, r.body)
	}
	// The owner's recordings are not theirs to replay.
	if r := call(t, "GET", "/api/v1/sessions/shared/recordings", nil, bearer(viewerTok)); r.code != http.StatusNotFound {
		t.Errorf("a viewer listing the session's recordings: %d %s, want 404", r.code, r.body)
	}
	if r := call(t, "GET", "/api/v1/sessions/shared/recordings", nil, alice); r.code != http.StatusOK {
		t.Errorf("the owner listing the session's recordings: %d %s", r.code, r.body)
	}

	viewer := clientset(t, 1, "shared", viewerTok)
	participant := clientset(t, 1, "shared", participantTok)
	testenv.Eventually(t, 30*time.Second, func() error {
		_, err := viewer.CoreV1().Pods("demo").List(ctx, metav1.ListOptions{})
		return err
	})
	if out, err := runKubectl(t, kubeconfig(t, 0, "shared", viewerTok), nil, "", "logs", "-n", "demo", "web"); err != nil || !strings.Contains(out, "web started") {
		t.Errorf("a viewer reading logs: %v\n%s", err, out)
	}
	// What a viewer may not do never reaches the target.
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "from-viewer", Namespace: "demo"}}
	_, err := viewer.CoreV1().ConfigMaps("demo").Create(ctx, cm, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "viewer of session shared") {
		t.Errorf("a viewer creating a ConfigMap: %v, want 403 naming the viewer rule", err)
	}
	if err := target.Client.Get(ctx, client.ObjectKeyFromObject(cm), &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
		t.Errorf("the viewer's ConfigMap reached the target: %v", err)
	}
	if out, err := runKubectl(t, kubeconfig(t, 0, "shared", viewerTok), nil, "", "exec", "-n", "demo", "web", "--", "echo", "hi"); err == nil || !strings.Contains(out, "viewers may only get, list, watch") {
		t.Errorf("a viewer's kubectl exec: %v\n%s", err, out)
	}
	// A participant does what the owner may.
	cm.Name = "from-participant"
	if _, err := participant.CoreV1().ConfigMaps("demo").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatalf("a participant creating a ConfigMap: %v", err)
	}
	t.Cleanup(func() { _ = target.Client.Delete(context.Background(), cm) })
	testenv.Must(t, target.Client.Get(ctx, client.ObjectKeyFromObject(cm), &corev1.ConfigMap{}))
	// Someone not let in gets the answer of a session that does not exist.
	if _, err := clientset(t, 0, "shared", strangerTok).CoreV1().Pods("demo").List(ctx, metav1.ListOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a stranger listing pods: %v, want 404", err)
	}

	// Lowering a participant to a viewer cuts his open streams: a watch
	// ends with the reason.
	w, err := participant.CoreV1().Pods("demo").Watch(ctx, metav1.ListOptions{})
	testenv.Must(t, err)
	defer w.Stop()
	if r := share(alice, `{"user":"carol@example.com","role":"viewer"}`); r.code != http.StatusOK {
		t.Fatalf("lowering carol: %d %s", r.code, r.body)
	}
	deadline := time.After(30 * time.Second)
	for ended := false; !ended; {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatal("carol's watch ended without saying why")
			}
			if ev.Type == "ERROR" {
				if st, ok := ev.Object.(*metav1.Status); !ok || !strings.Contains(st.Message, "lowered their role") {
					t.Fatalf("carol's watch ended with %+v", ev.Object)
				}
				ended = true
			}
		case <-deadline:
			t.Fatal("carol's watch still runs 30s after she was lowered to a viewer")
		}
	}
	if _, err := participant.CoreV1().ConfigMaps("demo").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "from-lowered", Namespace: "demo"}}, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("a participant lowered to a viewer creating a ConfigMap: %v", err)
	}

	// Let out again: the next request is refused on every replica.
	if r := call(t, "DELETE", "/api/v1/sessions/shared/participants/carol@example.com", nil, alice); r.code != http.StatusOK {
		t.Fatalf("unshare: %d %s", r.code, r.body)
	}
	if r := call(t, "DELETE", "/api/v1/sessions/shared/participants/carol@example.com", nil, alice); r.code != http.StatusNotFound {
		t.Errorf("unshare twice: %d %s, want 404", r.code, r.body)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		for i := range replicas {
			if _, err := clientset(t, i, "shared", participantTok).CoreV1().Pods("demo").List(ctx, metav1.ListOptions{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("replica %d: a removed participant listing pods: %v", i, err)
			}
		}
		return nil
	})

	// The incident button for bob ends the session he takes part in.
	irene := bearer(token(t, "irene@example.com", "sessiongate-admins"))
	if r := call(t, "POST", "/api/v1/revocations", []byte(`{"user":"bob@example.com"}`), irene); r.code != http.StatusOK || !strings.Contains(r.body, `"shared"`) {
		t.Errorf("revoking bob: %d %s, want session shared ended", r.code, r.body)
	}

	// Each join is audited, and so is every request of those let in, with
	// their role.
	testenv.Eventually(t, 30*time.Second, func() error {
		var shared, viewed, refused bool
		for _, ev := range auditRecords(t) {
			if ev.Annotations[audit.AnnotationSession] != "shared" && (ev.ObjectRef == nil || ev.ObjectRef.Name != "shared") {
				continue
			}
			switch {
			case ev.Verb == "add-participant" && ev.User.Username == "alice@example.com" && ev.ResponseStatus != nil && ev.ResponseStatus.Code == http.StatusOK:
				shared = true
			case ev.User.Username == "bob@example.com" && ev.Annotations[audit.AnnotationRole] == "viewer" && ev.Verb == "list":
				viewed = true
			case ev.User.Username == "bob@example.com" && ev.Annotations["sessiongate.dev/refused-by"] == "viewer":
				refused = true
			}
		}
		if !shared || !viewed || !refused {
			return fmt.Errorf("audit records: share %v, viewer's list %v, viewer's refusal %v", shared, viewed, refused)
		}
		return nil
	})
}

// Sharing grants nothing the policy does not: only its requesters may be
// let into a session it granted.
func TestSharingGrantsNothingThePolicyDoesNot(t *testing.T) {
	ctx := context.Background()
	accessPolicy(t, "share-dev-view", func(s *v1alpha1.AccessPolicySpec) {
		s.Requesters = v1alpha1.Subjects{Groups: []string{"dev"}}
	})
	alice := bearer(token(t, "alice@example.com", "dev"))
	r := requestAs(t, alice, `{"cluster":"target","accessLevel":{"clusterRole":"view"},"ttl":"30m","reason":"sharing","policy":"share-dev-view"}`)
	if r.code != http.StatusCreated {
		t.Fatalf("request: %d %s", r.code, r.body)
	}
	var s v1alpha1.Session
	testenv.Must(t, json.Unmarshal([]byte(r.body), &s))
	t.Cleanup(func() { _ = mgmt.Client.Delete(context.Background(), &s) })
	waitPhaseAPI(t, alice, s.Name, v1alpha1.PhaseActive)
	for _, body := range []string{`{"user":"bob@example.com","role":"participant"}`, `{"user":"carol@example.com","role":"viewer"}`} {
		if r := call(t, "POST", "/api/v1/sessions/"+s.Name+"/participants", []byte(body), alice); r.code != http.StatusOK {
			t.Fatalf("share %s: %d %s", body, r.code, r.body)
		}
	}
	// carol is a developer, as the policy's requesters are; bob is not.
	carol := clientset(t, 0, s.Name, token(t, "carol@example.com", "dev"))
	testenv.Eventually(t, 30*time.Second, func() error {
		_, err := carol.CoreV1().Pods("demo").List(ctx, metav1.ListOptions{})
		return err
	})
	_, err := clientset(t, 0, s.Name, token(t, "bob@example.com", "sre")).CoreV1().Pods("demo").List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "the policy that granted it does not name you") {
		t.Errorf("bob, outside the policy's requesters, listing pods: %v", err)
	}
}
