package gateway_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/internal/testenv"
)

// A replica started with HTTP1Only (--http2=false) speaks HTTP/1.1 to
// callers whatever they offer, and serves them as well through it: kubectl,
// and a client-go watch that carries the target's events and is cut within
// a second of the session's end, with the Status that says why. The
// suite's replicas, as shipped, speak HTTP/2.
func TestHTTP1OnlyReplicaServesKubectlAndCutsItsWatches(t *testing.T) {
	const name = "http1-only"
	s := session(t, name, "alice@example.com")
	tok := token(t, "alice@example.com")
	opts := replicaOptions("0", recordings)
	serve := *opts.Serve
	serve.HTTP1Only = true
	opts.Serve = &serve
	gw := startReplicaWith(t, name, opts)

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(gwCA.CertPEM)
	for _, c := range []struct{ addr, want string }{{replicas[0].Addr(), "h2"}, {gw.Addr(), "http/1.1"}} {
		conn, err := tls.Dial("tcp", c.addr, &tls.Config{RootCAs: roots, NextProtos: []string{"h2", "http/1.1"}})
		testenv.Must(t, err)
		if got := conn.ConnectionState().NegotiatedProtocol; got != c.want {
			t.Errorf("a caller offering h2 and http/1.1 to %s got %q, want %q", c.addr, got, c.want)
		}
		conn.Close()
	}

	server := "https://" + gw.Addr() + "/sessiongate/" + name + "/kas"
	out, err := runKubectl(t, kubeconfigFor(t, server, tok), nil, "", "get", "pod", "web", "-n", "demo", "-o", "name")
	if err != nil || strings.TrimSpace(out) != "pod/web" {
		t.Fatalf("kubectl get through the HTTP/1.1 replica: %v: %s", err, out)
	}

	cfg := restConfig(0, name, tok)
	cfg.Host = server
	var mu sync.Mutex
	var protos []string
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTrip(func(r *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(r)
			if err == nil {
				mu.Lock()
				protos = append(protos, resp.Proto)
				mu.Unlock()
			}
			return resp, err
		})
	})
	cs, err := kubernetes.NewForConfig(cfg)
	testenv.Must(t, err)
	w, err := cs.CoreV1().ConfigMaps("demo").Watch(context.Background(), metav1.ListOptions{FieldSelector: "metadata.name=http1-only"})
	testenv.Must(t, err)
	t.Cleanup(w.Stop)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "http1-only"}}
	testenv.Must(t, target.Client.Create(context.Background(), cm))
	t.Cleanup(func() { _ = target.Client.Delete(context.Background(), cm) })
	select {
	case ev, ok := <-w.ResultChan():
		if !ok || ev.Type != watch.Added {
			t.Fatalf("the watch gave %v (open: %v), want the ConfigMap the target added", ev.Type, ok)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the target's ConfigMap did not reach the watch")
	}
	mu.Lock()
	if len(protos) == 0 {
		t.Error("client-go's requests were not seen")
	}
	for _, p := range protos {
		if p != "HTTP/1.1" {
			t.Errorf("client-go's requests went over %s, want HTTP/1.1 only", p)
		}
	}
	mu.Unlock()

	// The session's end reaches the watch as kube-apiserver would end it,
	// an ERROR event with a Status, over HTTP/1.1's chunks as over HTTP/2.
	patch := client.MergeFrom(s.DeepCopy())
	s.Spec.Terminated = true
	endedAt := time.Now()
	testenv.Must(t, mgmt.Client.Patch(context.Background(), s, patch))
	var last watch.Event
	deadline := time.After(10 * time.Second)
	for open := true; open; {
		select {
		case ev, ok := <-w.ResultChan():
			if open = ok; ok {
				last = ev
			}
		case <-deadline:
			t.Fatal("the watch was still open 10s after the session ended")
		}
	}
	if d := time.Since(endedAt); d > time.Second {
		t.Errorf("the watch was cut %s after the session ended, want within 1s", d)
	}
	if st, ok := last.Object.(*metav1.Status); last.Type != watch.Error || !ok || !strings.Contains(st.Message, `session "http1-only" ended: Terminated`) {
		t.Errorf("the watch ended with %s %#v, want an ERROR event naming the session and reason", last.Type, last.Object)
	}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
