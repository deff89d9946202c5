package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"sessiongate.dev/sessiongate/internal/audit"
	"sessiongate.dev/sessiongate/internal/testenv"
)

// requestSeries reads, in process, the session label of every
// sessiongate_requests_total series and the refused requests by code.
func requestSeries(t *testing.T) (sessions map[string]bool, refused map[string]float64) {
	t.Helper()
	families, err := metrics.Registry.Gather()
	testenv.Must(t, err)
	sessions, refused = map[string]bool{}, map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch f.GetName() {
			case "sessiongate_requests_total":
				sessions[labels["session"]] = true
			case "sessiongate_refused_requests_total":
				refused[labels["code"]] = m.GetCounter().GetValue()
			}
		}
	}
	return sessions, refused
}

func TestRefusedRequestsAddNoSeries(t *testing.T) {
	session(t, "counted", "alice@example.com")
	_, before := requestSeries(t)
	bob := bearer(token(t, "bob@example.com"))
	const n = 20
	for i := range n {
		name := "probe-" + strconv.Itoa(i)
		if r := call(t, "GET", "/sessiongate/"+name+"/kas/api", nil, nil); r.code != http.StatusUnauthorized {
			t.Fatalf("unauthenticated: %d %s", r.code, r.body)
		}
		if r := call(t, "GET", "/sessiongate/"+name+"/kas/api", nil, bob); r.code != http.StatusNotFound {
			t.Fatalf("no such session: %d %s", r.code, r.body)
		}
	}
	if r := call(t, "GET", "/sessiongate/counted/kas/api", nil, bob); r.code != http.StatusNotFound {
		t.Fatalf("someone else's session: %d %s", r.code, r.body)
	}
	sessions, after := requestSeries(t)
	for s := range sessions {
		if strings.HasPrefix(s, "probe-") {
			t.Errorf("a refused request made a series for session %q", s)
		}
	}
	if sessions["counted"] {
		t.Error("another user's refused request made a series for the session")
	}
	if got := after["401"] - before["401"]; got < n {
		t.Errorf("refused 401s counted %v, want at least %d", got, n)
	}
	if got := after["404"] - before["404"]; got < n+1 {
		t.Errorf("refused 404s counted %v, want at least %d", got, n+1)
	}
}

func TestASessionsSeriesGoWhenItEnds(t *testing.T) {
	s := session(t, "series-end", "alice@example.com")
	c := clientset(t, 0, "series-end", token(t, "alice@example.com"))
	if _, err := c.CoreV1().Pods("demo").List(context.Background(), metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	// A watch is still open when the session ends: it finishes after the
	// registry dropped the series, and must not bring them back.
	w, err := c.CoreV1().ConfigMaps("demo").Watch(context.Background(), metav1.ListOptions{})
	testenv.Must(t, err)
	defer w.Stop()
	if sessions, _ := requestSeries(t); !sessions["series-end"] {
		t.Fatal("no series for a session in use")
	}

	patch := client.MergeFrom(s.DeepCopy())
	s.Spec.Terminated = true
	testenv.Must(t, mgmt.Client.Patch(context.Background(), s, patch))
	// The audit record of the watch is written after it is counted.
	testenv.Eventually(t, 30*time.Second, func() error {
		for _, ev := range auditRecords(t) {
			if ev.Annotations[audit.AnnotationSession] == "series-end" && ev.Verb == "watch" {
				return nil
			}
		}
		return fmt.Errorf("the cut watch has not finished yet")
	})
	if sessions, _ := requestSeries(t); sessions["series-end"] {
		t.Error("the series of an ended session are still exported")
	}
}
