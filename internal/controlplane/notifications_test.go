package controlplane_test

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/notify"
	"sessiongate.dev/sessiongate/internal/testenv"
)

// inbox is an HTTPS receiver that keeps what it accepted.
type inbox struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []delivery
}

type delivery struct {
	header http.Header
	body   []byte
}

func newInbox(t *testing.T, h func(w http.ResponseWriter, r *http.Request, body []byte) bool) *inbox {
	in := &inbox{}
	in.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if h(w, r, body) {
			in.mu.Lock()
			in.got = append(in.got, delivery{r.Header.Clone(), body})
			in.mu.Unlock()
		}
	}))
	t.Cleanup(in.srv.Close)
	return in
}

func (in *inbox) deliveries() []delivery {
	in.mu.Lock()
	defer in.mu.Unlock()
	return slices.Clone(in.got)
}

func (in *inbox) ca() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: in.srv.Certificate().Raw})
}

func TestLifecycleNotificationsAreSignedDeliveredAndRetried(t *testing.T) {
	e := newEnv(t)
	key := []byte("0123456789abcdef0123456789abcdef")

	// The webhook receiver verifies as docs/operators.md tells receivers to.
	var events []notify.Event
	var evMu sync.Mutex
	rc := &notify.Receiver{Key: key, Handle: func(ev notify.Event) {
		evMu.Lock()
		events = append(events, ev)
		evMu.Unlock()
	}}
	hook := newInbox(t, func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		rec := httptest.NewRecorder()
		r.Body = io.NopCloser(bytes.NewReader(body))
		rc.ServeHTTP(rec, r)
		w.WriteHeader(rec.Code)
		return rec.Code == http.StatusNoContent
	})
	slack := newInbox(t, func(http.ResponseWriter, *http.Request, []byte) bool { return true })
	// A receiver that fails twice per event, then takes it: retried.
	var flakyMu sync.Mutex
	flakyTries := map[string]int{}
	flaky := newInbox(t, func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		flakyMu.Lock()
		defer flakyMu.Unlock()
		id := r.Header.Get("X-Sessiongate-Delivery")
		if flakyTries[id]++; flakyTries[id] <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return false
		}
		return true
	})
	down := newInbox(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) bool {
		w.WriteHeader(http.StatusInternalServerError)
		return false
	})
	testenv.Must(t, mgmt.Client.Create(e.ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.namespace, Name: "hooks"},
		Data: map[string][]byte{
			"url": []byte(hook.srv.URL + "/events"), "key": key,
			"slack": []byte(slack.srv.URL + "/services/T0/B0/x"),
			"flaky": []byte(flaky.srv.URL), "down": []byte(down.srv.URL),
		},
	}))
	signing := &v1alpha1.SecretKeyRef{Name: "hooks"}
	e.accessPolicy("notified", func(s *v1alpha1.AccessPolicySpec) {
		s.Approval = &v1alpha1.Approval{Approvers: v1alpha1.Subjects{Users: []string{"bob@example.com"}}}
		s.Notifications = &v1alpha1.Notifications{
			// Longer than the TTL: expiring-soon goes out at activation.
			ExpiringSoon: &metav1.Duration{Duration: 2 * time.Hour},
			Sinks: []v1alpha1.NotificationSink{
				{Kind: v1alpha1.NotificationWebhook, URLSecretRef: v1alpha1.SecretKeyRef{Name: "hooks"}, SigningSecretRef: signing, CABundle: hook.ca()},
				{Kind: v1alpha1.NotificationSlack, URLSecretRef: v1alpha1.SecretKeyRef{Name: "hooks", Key: "slack"}, CABundle: slack.ca()},
				{Kind: v1alpha1.NotificationWebhook, URLSecretRef: v1alpha1.SecretKeyRef{Name: "hooks", Key: "flaky"}, SigningSecretRef: signing, CABundle: flaky.ca()},
				{Kind: v1alpha1.NotificationWebhook, URLSecretRef: v1alpha1.SecretKeyRef{Name: "hooks", Key: "down"}, SigningSecretRef: signing, CABundle: down.ca()},
			},
		}
	})
	failedBefore := notificationsCounted("failed")

	e.request("noisy", "alice@example.com", "dev")
	e.waitPhase("noisy", v1alpha1.PhasePendingApproval, 30*time.Second)
	e.decide("noisy", "bob@example.com", v1alpha1.DecisionApproved, "go ahead")
	s := e.waitPhase("noisy", v1alpha1.PhaseActive, 30*time.Second)
	patch := client.MergeFrom(s.DeepCopy())
	s.Spec.Terminated = true
	testenv.Must(t, mgmt.Client.Patch(e.ctx, s, patch))
	e.waitPhase("noisy", v1alpha1.PhaseTerminated, 30*time.Second)

	want := []notify.EventType{notify.Requested, notify.Approved, notify.Activated, notify.ExpiringSoon, notify.Terminated}
	testenv.Eventually(t, 30*time.Second, func() error {
		evMu.Lock()
		defer evMu.Unlock()
		var types []notify.EventType
		for _, ev := range events {
			types = append(types, ev.Type)
		}
		if !slices.Equal(types, want) {
			return fmt.Errorf("webhook received %v, want %v", types, want)
		}
		if n := len(flaky.deliveries()); n != len(want) {
			return fmt.Errorf("the flaky receiver took %d events, want %d after retries", n, len(want))
		}
		if n := len(slack.deliveries()); n != len(want) {
			return fmt.Errorf("slack received %d messages, want %d", n, len(want))
		}
		return nil
	})
	evMu.Lock()
	approved, ended := events[1], events[4]
	evMu.Unlock()
	if approved.Session != "noisy" || approved.Cluster != "target" || approved.Requester != "alice@example.com" ||
		approved.Policy != "notified" || approved.Message != "approved by bob@example.com" || approved.ID == "" {
		t.Errorf("approved event: %+v", approved)
	}
	if !strings.Contains(ended.Message, "terminated by") || ended.Phase != string(v1alpha1.PhaseTerminated) {
		t.Errorf("terminated event: %+v", ended)
	}
	var msg map[string]string
	testenv.Must(t, json.Unmarshal(slack.deliveries()[0].body, &msg))
	if !strings.Contains(msg["text"], "session *noisy*") || !strings.Contains(msg["text"], "requested") {
		t.Errorf("slack message: %s", slack.deliveries()[0].body)
	}
	if h := slack.deliveries()[0].header; h.Get(notify.SignatureHeader) != "" {
		t.Errorf("the Slack sink got the webhook signature")
	}

	// The documented verification refuses a tampered body, another key, and
	// a replay long after the signature.
	d := hook.deliveries()[0]
	sig := d.header.Get(notify.SignatureHeader)
	now := time.Now()
	if err := notify.Verify(key, sig, d.body, now, 5*time.Minute); err != nil {
		t.Fatalf("a genuine delivery does not verify: %v", err)
	}
	tampered := bytes.Replace(d.body, []byte("alice@example.com"), []byte("mallory@example.com"), 1)
	for name, err := range map[string]error{
		"tampered body": notify.Verify(key, sig, tampered, now, 5*time.Minute),
		"another key":   notify.Verify([]byte("another-key-another-key-another-k"), sig, d.body, now, 5*time.Minute),
		"replayed":      notify.Verify(key, sig, d.body, now.Add(time.Hour), 5*time.Minute),
		"no signature":  notify.Verify(key, "", d.body, now, 5*time.Minute),
	} {
		if err == nil {
			t.Errorf("%s verifies", name)
		}
	}
	req, err := http.NewRequest("POST", hook.srv.URL, bytes.NewReader(tampered))
	testenv.Must(t, err)
	req.Header.Set(notify.SignatureHeader, sig)
	resp, err := hook.srv.Client().Do(req)
	testenv.Must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the receiver took a tampered event: %s", resp.Status)
	}

	// The sink that is down: given up on, in metrics and in Events.
	testenv.Eventually(t, 30*time.Second, func() error {
		if !strings.Contains(e.eventNotes("noisy"), "notification to AccessPolicy notified notifications.sinks[3] not delivered") {
			return fmt.Errorf("no Event says a notification failed:\n%s", e.eventNotes("noisy"))
		}
		if n := notificationsCounted("failed"); n < failedBefore+float64(len(want)) {
			return fmt.Errorf("%v failed deliveries counted, want %v more than %v", n, len(want), failedBefore)
		}
		return nil
	})
	if strings.Contains(e.eventNotes("noisy"), down.srv.URL) {
		t.Errorf("an Event repeats a sink URL")
	}
}

// notificationsCounted sums sessiongate_notifications_total for a result.
func notificationsCounted(result string) float64 {
	families, _ := metrics.Registry.Gather()
	var n float64
	for _, f := range families {
		if f.GetName() != "sessiongate_notifications_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}
