package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/remotecommand"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// heapInUse forces a GC on replica 0 (pprof's gc=1) and reads its heap.
func (e *Env) heapInUse(ctx context.Context) (float64, error) {
	base := "http://" + e.replicas[0].metricsAddr
	for _, path := range []string{"/debug/pprof/heap?gc=1", "/metrics"} {
		resp, err := http.Get(base + path)
		if err != nil {
			return 0, err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if path != "/metrics" {
			continue
		}
		for _, line := range bytes.Split(body, []byte("\n")) {
			if f := strings.Fields(string(line)); len(f) == 2 && f[0] == "go_memstats_heap_inuse_bytes" {
				return strconv.ParseFloat(f[1], 64)
			}
		}
	}
	return 0, fmt.Errorf("no go_memstats_heap_inuse_bytes on replica 0")
}

func (e *Env) activeSessions(ctx context.Context) (float64, error) {
	resp, err := http.Get("http://" + e.replicas[0].metricsAddr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "sessiongate_active_sessions" {
			return strconv.ParseFloat(f[1], 64)
		}
	}
	return 0, nil
}

// Scale registers sessions and opens watches through replica 0, measures its
// heap per idle registered session and per open watch, and at that size
// session create → first request and revocation.
func (e *Env) Scale(ctx context.Context, sessions, watches, iterations int) ([]Scenario, error) {
	before, err := e.heapInUse(ctx)
	if err != nil {
		return nil, err
	}
	start, _ := e.activeSessions(ctx)
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for i := range sessions {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := e.CreateSession(ctx, "idle-"+strconv.Itoa(i), false); err != nil {
				firstErr.CompareAndSwap(nil, err)
			}
		}()
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return nil, err
	}
	deadline := time.Now().Add(20 * time.Minute)
	for {
		n, _ := e.activeSessions(ctx)
		if n >= start+float64(sessions) {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("only %v of %d sessions registered after 20 minutes", n-start, sessions)
		}
		time.Sleep(500 * time.Millisecond)
	}
	withSessions, err := e.heapInUse(ctx)
	if err != nil {
		return nil, err
	}

	kube, err := kubernetes.NewForConfig(e.Gateway.Config)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range watches {
		if _, err := kube.CoreV1().ConfigMaps(benchNS).Watch(wctx, metav1.ListOptions{FieldSelector: "metadata.name=watched"}); err != nil {
			return nil, err
		}
	}
	withWatches, err := e.heapInUse(ctx)
	if err != nil {
		return nil, err
	}
	out := []Scenario{
		{Name: fmt.Sprintf("Gateway heap per idle registered session (%d sessions)", sessions), Unit: "KiB", Metric: "heap in use", ByPath: map[string]float64{"gateway": (withSessions - before) / float64(sessions) / 1024}},
		{Name: fmt.Sprintf("Gateway heap per open watch (%d watches)", watches), Unit: "KiB", Metric: "heap in use", ByPath: map[string]float64{"gateway": (withWatches - withSessions) / float64(watches) / 1024}},
	}
	at := fmt.Sprintf(", at %d sessions and %d watches", sessions, watches)
	first, err := e.CreateToFirstRequest(ctx, "scale-first-", iterations)
	if err != nil {
		return nil, err
	}
	revoke, err := e.Revocation(ctx, "scale-revoke-", iterations)
	if err != nil {
		return nil, err
	}
	for _, s := range append(first, revoke...) {
		s.Name += at
		out = append(out, s)
	}
	return out, nil
}

// Revocation terminates sessions with an exec stream and a watch open on
// every replica, and times refusal of new requests and closing of streams.
func (e *Env) Revocation(ctx context.Context, prefix string, iterations int) ([]Scenario, error) {
	var refuse, closed []time.Duration
	for it := range iterations {
		name := prefix + strconv.Itoa(it)
		s, err := e.CreateSession(ctx, name, true)
		if err != nil {
			return nil, err
		}
		var ends []chan time.Time
		for r := range e.replicas {
			p := e.GatewayPath(r, name)
			// Wait until this replica serves the session too.
			for {
				if _, err := get(ctx, p, "/api/v1/namespaces/"+benchNS+"/configmaps?limit=1"); err == nil {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			u, _ := urlOf(execURL(p, "sleep", "300"))
			ex, err := remotecommand.NewWebSocketExecutor(p.Config, "GET", u.String())
			if err != nil {
				return nil, err
			}
			execEnd := make(chan time.Time, 1)
			go func() {
				_ = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: io.Discard})
				execEnd <- time.Now()
			}()
			kube, err := kubernetes.NewForConfig(p.Config)
			if err != nil {
				return nil, err
			}
			w, err := kube.CoreV1().ConfigMaps(benchNS).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=watched"})
			if err != nil {
				return nil, err
			}
			watchEnd := make(chan time.Time, 1)
			go func() {
				for range w.ResultChan() {
				}
				watchEnd <- time.Now()
			}()
			ends = append(ends, execEnd, watchEnd)
		}
		// Let the exec streams reach the kubelet before the cut.
		time.Sleep(500 * time.Millisecond)

		patch := client.MergeFrom(s.DeepCopy())
		s.Spec.Terminated = true
		t0 := time.Now()
		if err := e.mgmt.Client.Patch(ctx, s, patch); err != nil {
			return nil, err
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		for r := range e.replicas {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p := e.GatewayPath(r, name)
				for time.Since(t0) < 10*time.Second {
					resp, err := p.Do(ctx, http.MethodGet, "/api/v1/namespaces/"+benchNS+"/configmaps?limit=1")
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode == http.StatusNotFound {
							mu.Lock()
							refuse = append(refuse, time.Since(t0))
							mu.Unlock()
							return
						}
					}
					time.Sleep(5 * time.Millisecond)
				}
			}()
		}
		for _, end := range ends {
			select {
			case at := <-end:
				closed = append(closed, at.Sub(t0))
			case <-time.After(10 * time.Second):
				return nil, fmt.Errorf("a stream of %s was still open 10s after termination", name)
			}
		}
		wg.Wait()
	}
	mk := func(what string, ds []time.Duration) Scenario {
		return Scenario{Name: fmt.Sprintf("Revocation on %d replicas: %s", len(e.replicas), what), Unit: "ms", Metric: "p50 / p99 / max",
			ByPath: map[string]float64{"gateway": ms(percentile(ds, 50)), "gateway p99": ms(percentile(ds, 99)), "gateway max": ms(percentile(ds, 100))}}
	}
	return []Scenario{mk("every replica refuses new requests", refuse), mk("every exec stream and watch closed", closed)}, nil
}
