package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
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

// metricLines are the lines of replica i's /metrics.
func (e *Env) metricLines(i int) ([]string, error) {
	resp, err := http.Get("http://" + e.replicas[i].metricsAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return strings.Split(string(body), "\n"), err
}

// metric reads one unlabelled sample (or the first sample of a labelled one)
// from replica i's /metrics.
func (e *Env) metric(i int, name string) (float64, error) { return e.sample(i, name, "") }

// sample reads the first sample of metric name on replica i whose labels
// contain label.
func (e *Env) sample(i int, name, label string) (float64, error) {
	lines, err := e.metricLines(i)
	if err != nil {
		return 0, err
	}
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) == 2 && (f[0] == name && label == "" || strings.HasPrefix(f[0], name+"{") && strings.Contains(f[0], label)) {
			return strconv.ParseFloat(f[1], 64)
		}
	}
	return 0, fmt.Errorf("no %s{%s} on replica %d", name, label, i)
}

// heap is a replica's heap right after a forced GC: the bytes of the spans
// in use, and the live objects in them (the difference is fragmentation:
// spans that a burst of short-lived objects left partly occupied).
type heap struct{ inUse, live float64 }

// heapOf forces a GC on replica i (pprof's gc=1) and reads its heap.
func (e *Env) heapOf(i int) (heap, error) {
	resp, err := http.Get("http://" + e.replicas[i].metricsAddr + "/debug/pprof/heap?gc=1")
	if err != nil {
		return heap{}, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	var h heap
	if h.inUse, err = e.metric(i, "go_memstats_heap_inuse_bytes"); err != nil {
		return heap{}, err
	}
	h.live, err = e.metric(i, "go_memstats_heap_alloc_bytes")
	return h, err
}

// saveHeap writes replica i's heap profile to path.
func (e *Env) saveHeap(i int, path string) error { return e.savePprof(i, "heap", path) }

// savePprof writes replica i's /debug/pprof/<what> to path.
func (e *Env) savePprof(i int, what, path string) error {
	resp, err := http.Get("http://" + e.replicas[i].metricsAddr + "/debug/pprof/" + what)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// heaps is every replica's heap.
func (e *Env) heaps() ([]heap, error) {
	out := make([]heap, len(e.replicas))
	for i := range e.replicas {
		h, err := e.heapOf(i)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}

// roles are the replica that leads the control plane and one that only
// serves.
func (e *Env) roles() (leader, follower int, err error) {
	leader, follower = -1, -1
	for i := range e.replicas {
		v, err := e.metric(i, "leader_election_master_status")
		if err != nil {
			return 0, 0, err
		}
		if v == 1 && leader < 0 {
			leader = i
		} else if v != 1 && follower < 0 {
			follower = i
		}
	}
	if leader < 0 || follower < 0 {
		return 0, 0, fmt.Errorf("no leader and follower among %d replicas", len(e.replicas))
	}
	return leader, follower, nil
}

// Scale registers sessions and opens watches through replica 0, measures the
// heap per idle registered session on a replica that only serves and on the
// leader, and per open watch on replica 0, and at that size session create →
// first request and revocation.
func (e *Env) Scale(ctx context.Context, sessions, watches, iterations int) ([]Scenario, error) {
	leader, follower, err := e.roles()
	if err != nil {
		return nil, err
	}
	before, err := e.heaps()
	if err != nil {
		return nil, err
	}
	start := make([]float64, len(e.replicas))
	for i := range e.replicas {
		start[i], _ = e.metric(i, "sessiongate_active_sessions")
	}
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
	// Every replica registers every session.
	deadline := time.Now().Add(20 * time.Minute)
	for i := range e.replicas {
		for {
			n, _ := e.metric(i, "sessiongate_active_sessions")
			if n >= start[i]+float64(sessions) {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("replica %d registered only %v of %d sessions in 20 minutes", i, n-start[i], sessions)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	// Idle means idle: the leader's second pass over the sessions it has
	// just activated is done before the heaps are read.
	if err := e.leaderIdle(ctx, 5*time.Minute); err != nil {
		return nil, err
	}
	registered := time.Now()
	withSessions, err := e.heaps()
	if err != nil {
		return nil, err
	}
	if err := e.saveHeaps(leader, follower, fmt.Sprintf("%d-sessions", sessions)); err != nil {
		return nil, err
	}
	if l, f, err := e.roles(); err != nil || l != leader || f != follower {
		return nil, fmt.Errorf("leadership moved while sessions were registered (replica %d leads, was %d): %v", l, leader, err)
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
	withWatches, err := e.heapOf(0)
	if err != nil {
		return nil, err
	}
	// perSession is the heap in use and the live heap per idle session on
	// the serving replica and the leader, read when.
	kib := func(after, before float64) map[string]float64 {
		return map[string]float64{"gateway": (after - before) / float64(sessions) / 1024}
	}
	perSession := func(when string) []Scenario {
		var out []Scenario
		for _, r := range []struct {
			what string
			i    int
		}{{"serving replica", follower}, {"leader, which also runs the control plane", leader}} {
			name := fmt.Sprintf("heap per idle registered session, %s%s (%d sessions)", r.what, when, sessions)
			out = append(out,
				Scenario{Name: "Gateway " + name, Unit: "KiB", Metric: "heap in use", ByPath: kib(withSessions[r.i].inUse, before[r.i].inUse)},
				Scenario{Name: "Gateway live " + name, Unit: "KiB", Metric: "live heap", ByPath: kib(withSessions[r.i].live, before[r.i].live)})
		}
		return out
	}
	out := append(perSession(""),
		Scenario{Name: fmt.Sprintf("Gateway heap per open watch (%d watches)", watches), Unit: "KiB", Metric: "heap in use", ByPath: map[string]float64{"gateway": (withWatches.inUse - withSessions[0].inUse) / float64(watches) / 1024}})
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
	if e.Settle > 0 {
		// The watches go; the sessions stay, idle.
		cancel()
		if d := time.Until(registered.Add(e.Settle)); d > 0 {
			if e.Log != nil {
				fmt.Fprintf(e.Log, "bench: reading the heaps again in %v, once the sessions have been idle a while\n", d.Round(time.Second))
			}
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if err := e.leaderIdle(ctx, 5*time.Minute); err != nil {
			return nil, err
		}
		if withSessions, err = e.heaps(); err != nil {
			return nil, err
		}
		if err := e.saveHeaps(leader, follower, fmt.Sprintf("%d-sessions-settled", sessions)); err != nil {
			return nil, err
		}
		out = append(out, perSession(fmt.Sprintf(", %v after registering", e.Settle))...)
	}
	return out, nil
}

// SettleAfterRegistering is how long after registering its sessions the
// scale scenario reads the heaps again (Options.Settle): what a replica holds
// once its sessions have been idle a while, not only what the burst of
// registering left. (client-go's event recorder used to keep every Event the
// leader sent for 6 to 12 minutes; the leader's own writer does not.)
const SettleAfterRegistering = 13 * time.Minute

// saveHeaps writes the heap profiles of the leader and a serving replica,
// when the run keeps profiles.
func (e *Env) saveHeaps(leader, follower int, what string) error {
	if e.Profiles == "" {
		return nil
	}
	for name, i := range map[string]int{"leader": leader, "serving": follower} {
		if err := e.saveHeap(i, filepath.Join(e.Profiles, "heap-"+name+"-"+what+".pb.gz")); err != nil {
			return err
		}
	}
	return nil
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

// leaderIdle waits until the leader's session workqueue is empty.
func (e *Env) leaderIdle(ctx context.Context, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		leader, _, err := e.roles()
		if err != nil {
			return err
		}
		depth, err := e.sample(leader, "workqueue_depth", `name="session"`)
		if err == nil && depth == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the leader's session workqueue still holds %v after %v (%v)", depth, within, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
