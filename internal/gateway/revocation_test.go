package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/testenv"
)

// stream is one live connection of a session and when it ended.
type stream struct {
	name  string
	ended chan time.Time
}

// openStreams opens, on one replica, an exec running sleep 300, a watch and a
// port-forward carrying a request, and returns them once all are live.
func openStreams(t *testing.T, replica int, session, tok string) []*stream {
	t.Helper()
	kc := kubeconfig(t, replica, session, tok)
	var streams []*stream
	ended := func(name string) *stream {
		s := &stream{name: fmt.Sprintf("replica %d %s", replica, name), ended: make(chan time.Time, 1)}
		streams = append(streams, s)
		return s
	}

	exec := ended("exec")
	cmd := kubectl(context.Background(), kc, nil, "exec", "-n", "demo", "web", "--", "sh", "-c", "echo started; exec sleep 300")
	stdout, err := cmd.StdoutPipe()
	testenv.Must(t, err)
	testenv.Must(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	started := make(chan struct{})
	go func() {
		if s := bufio.NewScanner(stdout); s.Scan() && s.Text() == "started" {
			close(started)
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() { _ = cmd.Wait(); exec.ended <- time.Now() }()
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatalf("exec on replica %d did not start", replica)
	}

	watch := ended("watch")
	w, err := clientset(t, replica, session, tok).CoreV1().ConfigMaps("demo").Watch(context.Background(), metav1.ListOptions{})
	testenv.Must(t, err)
	t.Cleanup(w.Stop)
	go func() {
		for range w.ResultChan() {
		}
		watch.ended <- time.Now()
	}()

	pf := ended("port-forward")
	port, h := portForward(t, kc, nil)
	t.Cleanup(func() { _ = h.Process.Kill() })
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port))
	testenv.Must(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	go func() { <-h.exited; pf.ended <- time.Now() }()
	return streams
}

func TestSessionEndCutsLiveStreamsOnEveryReplicaWithinASecond(t *testing.T) {
	cases := []struct {
		name string
		ttl  time.Duration
		// end ends the session and returns when it ended.
		end func(t *testing.T, s *v1alpha1.Session) time.Time
	}{
		{"terminated", time.Hour, func(t *testing.T, s *v1alpha1.Session) time.Time {
			patch := client.MergeFrom(s.DeepCopy())
			s.Spec.Terminated = true
			at := time.Now()
			testenv.Must(t, mgmt.Client.Patch(context.Background(), s, patch))
			return at
		}},
		{"deleted", time.Hour, func(t *testing.T, s *v1alpha1.Session) time.Time {
			at := time.Now()
			testenv.Must(t, mgmt.Client.Delete(context.Background(), s))
			return at
		}},
		{"expired", 20 * time.Second, func(t *testing.T, s *v1alpha1.Session) time.Time {
			return s.Status.ExpiresAt.Time
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			name := "cut-" + c.name
			s := session(t, name, "alice@example.com", func(s *v1alpha1.Session) { s.Spec.TTL.Duration = c.ttl })
			tok := token(t, "alice@example.com")
			var streams []*stream
			for r := range replicas {
				streams = append(streams, openStreams(t, r, name, tok)...)
			}
			if remaining := time.Until(s.Status.ExpiresAt.Time); c.name == "expired" && remaining < 0 {
				t.Fatalf("streams took longer to open than the TTL")
			}
			for _, st := range streams {
				select {
				case at := <-st.ended:
					t.Fatalf("%s ended at %s, before the session did", st.name, at)
				default:
				}
			}

			endedAt := c.end(t, s)
			var worst time.Duration
			for _, st := range streams {
				select {
				case at := <-st.ended:
					d := at.Sub(endedAt)
					t.Logf("%s cut %s after the session ended", st.name, d.Round(time.Millisecond))
					worst = max(worst, d)
				case <-time.After(time.Until(endedAt) + 10*time.Second):
					t.Fatalf("%s still open 10s after the session ended", st.name)
				}
			}
			if worst > time.Second {
				t.Errorf("slowest stream was cut %s after the session ended, want within 1s", worst)
			}
			for r := range replicas {
				_, err := clientset(t, r, name, tok).CoreV1().Pods("demo").List(context.Background(), metav1.ListOptions{})
				if err == nil || !strings.Contains(err.Error(), "no active session") {
					t.Errorf("replica %d after the end: got %v, want a not-found refusal", r, err)
				}
			}
		})
	}
}
