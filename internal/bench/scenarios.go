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

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/remotecommand"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// paths returns the three paths in a rotating order, so that none always
// goes first.
func (e *Env) paths(round int) []*Path {
	all := []*Path{e.Direct, e.Gateway, e.KubectlProxy}
	k := round % len(all)
	return append(all[k:], all[:k]...)
}

// Figures of one path in one scenario.
type Figures map[string]float64

// Scenario holds the figures of every path.
type Scenario struct {
	Name    string             `json:"name"`
	Unit    string             `json:"unit"`
	Metric  string             `json:"metric"`
	ByPath  map[string]float64 `json:"byPath"`
	Comment string             `json:"comment,omitempty"`
}

func (e *Env) seedConfigMaps(ctx context.Context, n, size int) error {
	kube := e.target.Kube
	data := strings.Repeat("x", size)
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_, err := kube.CoreV1().ConfigMaps(benchNS).Create(ctx, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: "cm-" + strconv.Itoa(i)}, Data: map[string]string{"payload": data},
			}, metav1.CreateOptions{})
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
			}
		}()
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return err
	}
	return nil
}

func get(ctx context.Context, p *Path, apiPath string) (int64, error) {
	resp, err := p.Do(ctx, http.MethodGet, apiPath)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return n, fmt.Errorf("%s %s: %s", p.Name, apiPath, resp.Status)
	}
	return n, err
}

// GetLatency measures GET of one object with c concurrent clients.
func (e *Env) GetLatency(ctx context.Context, clients, rounds int, perRound time.Duration) ([]Scenario, error) {
	const obj = "/api/v1/namespaces/" + benchNS + "/configmaps/cm-0"
	lat := map[string][]time.Duration{}
	count := map[string]int{}
	busy := map[string]time.Duration{}
	for r := range rounds {
		for _, p := range e.paths(r) {
			var mu sync.Mutex
			var wg sync.WaitGroup
			var firstErr error
			start := time.Now()
			for range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var local []time.Duration
					for time.Since(start) < perRound {
						t := time.Now()
						if _, err := get(ctx, p, obj); err != nil {
							mu.Lock()
							firstErr = err
							mu.Unlock()
							return
						}
						local = append(local, time.Since(t))
					}
					mu.Lock()
					lat[p.Name] = append(lat[p.Name], local...)
					count[p.Name] += len(local)
					mu.Unlock()
				}()
			}
			wg.Wait()
			busy[p.Name] += time.Since(start)
			if firstErr != nil {
				return nil, firstErr
			}
		}
	}
	p50 := Scenario{Name: fmt.Sprintf("GET one object, %d client(s)", clients), Unit: "ms", Metric: "p50", ByPath: map[string]float64{}}
	p99 := Scenario{Name: p50.Name, Unit: "ms", Metric: "p99", ByPath: map[string]float64{}}
	rps := Scenario{Name: p50.Name, Unit: "req/s", Metric: "throughput", ByPath: map[string]float64{}}
	for name, ds := range lat {
		p50.ByPath[name] = ms(percentile(ds, 50))
		p99.ByPath[name] = ms(percentile(ds, 99))
		rps.ByPath[name] = float64(count[name]) / busy[name].Seconds()
	}
	out := []Scenario{p50, p99}
	if clients > 1 {
		out = append(out, rps)
	}
	return out, nil
}

// List measures LIST of the seeded ConfigMaps.
func (e *Env) List(ctx context.Context, rounds int) ([]Scenario, error) {
	const list = "/api/v1/namespaces/" + benchNS + "/configmaps"
	dur := map[string][]time.Duration{}
	var size int64
	for r := range rounds {
		for _, p := range e.paths(r) {
			t := time.Now()
			n, err := get(ctx, p, list)
			if err != nil {
				return nil, err
			}
			dur[p.Name] = append(dur[p.Name], time.Since(t))
			size = n
		}
	}
	t := Scenario{Name: "LIST 2,000 ConfigMaps", Unit: "ms", Metric: "p50 time", ByPath: map[string]float64{}}
	bw := Scenario{Name: "LIST 2,000 ConfigMaps", Unit: "MB/s", Metric: "throughput", ByPath: map[string]float64{},
		Comment: fmt.Sprintf("%.1f MB per list", float64(size)/1e6)}
	for name, ds := range dur {
		p50 := percentile(ds, 50)
		t.ByPath[name] = ms(p50)
		bw.ByPath[name] = float64(size) / 1e6 / p50.Seconds()
	}
	return []Scenario{t, bw}, nil
}

// WatchFanOut measures the time from a write to its event reaching each of n
// watchers per path; all paths watch the same object at once.
func (e *Env) WatchFanOut(ctx context.Context, watchers, writes int) ([]Scenario, error) {
	const name = "watched"
	cms := e.target.Kube.CoreV1().ConfigMaps(benchNS)
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"n": "0"}}, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	type seen struct {
		path string
		at   time.Time
		rv   string
	}
	events := make(chan seen, 3*watchers*writes)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var open sync.WaitGroup
	for _, p := range e.paths(0) {
		kube, err := kubernetes.NewForConfig(p.Config)
		if err != nil {
			return nil, err
		}
		for range watchers {
			w, err := kube.CoreV1().ConfigMaps(benchNS).Watch(wctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
			if err != nil {
				return nil, fmt.Errorf("%s watch: %w", p.Name, err)
			}
			open.Add(1)
			go func() {
				defer open.Done()
				for ev := range w.ResultChan() {
					if ev.Type == watch.Modified {
						events <- seen{p.Name, time.Now(), ev.Object.(*corev1.ConfigMap).ResourceVersion}
					}
				}
			}()
		}
	}
	// Let every watch reach the server before the first write.
	time.Sleep(time.Second)
	lat := map[string][]time.Duration{}
	for i := 1; i <= writes; i++ {
		start := time.Now()
		cm, err := cms.Update(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"n": strconv.Itoa(i)}}, metav1.UpdateOptions{})
		if err != nil {
			return nil, err
		}
		timeout := time.After(10 * time.Second)
		for got := 0; got < 3*watchers; {
			select {
			case s := <-events:
				if s.rv == cm.ResourceVersion {
					lat[s.path] = append(lat[s.path], s.at.Sub(start))
					got++
				}
			case <-timeout:
				return nil, fmt.Errorf("write %d reached only %d of %d watchers", i, got, 3*watchers)
			}
		}
	}
	cancel()
	p50 := Scenario{Name: fmt.Sprintf("WATCH fan-out to %d watchers", watchers), Unit: "ms", Metric: "p50", ByPath: map[string]float64{}}
	p99 := Scenario{Name: p50.Name, Unit: "ms", Metric: "p99", ByPath: map[string]float64{}}
	for name, ds := range lat {
		p50.ByPath[name] = ms(percentile(ds, 50))
		p99.ByPath[name] = ms(percentile(ds, 99))
	}
	return []Scenario{p50, p99}, nil
}

func execURL(p *Path, command ...string) string {
	q := "stdout=true&container=main"
	for _, c := range command {
		q += "&command=" + c
	}
	return p.URL("/api/v1/namespaces/demo/pods/web/exec?" + q)
}

// ExecThroughput streams size bytes of stdout over exec's WebSocket protocol.
func (e *Env) ExecThroughput(ctx context.Context, size int64, rounds int) ([]Scenario, error) {
	bw := Scenario{Name: fmt.Sprintf("exec stdout stream, %d MiB", size>>20), Unit: "MB/s", Metric: "throughput", ByPath: map[string]float64{}}
	all := map[string][]time.Duration{}
	for r := range rounds {
		for _, p := range e.paths(r) {
			u, err := urlOf(execURL(p, "head", "-c", strconv.FormatInt(size, 10), "/dev/zero"))
			if err != nil {
				return nil, err
			}
			ex, err := remotecommand.NewWebSocketExecutor(p.Config, "GET", u.String())
			if err != nil {
				return nil, err
			}
			var n countingWriter
			t := time.Now()
			if err := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &n}); err != nil {
				return nil, fmt.Errorf("%s exec: %w", p.Name, err)
			}
			if n.n != size {
				return nil, fmt.Errorf("%s exec: got %d bytes, want %d", p.Name, n.n, size)
			}
			all[p.Name] = append(all[p.Name], time.Since(t))
		}
	}
	for name, ds := range all {
		bw.ByPath[name] = float64(size) / 1e6 / percentile(ds, 50).Seconds()
	}
	return []Scenario{bw}, nil
}

// ExecEcho measures keystroke round trips through `cat` over exec.
func (e *Env) ExecEcho(ctx context.Context, keystrokes int) ([]Scenario, error) {
	p50 := Scenario{Name: "exec keystroke echo", Unit: "ms", Metric: "p50", ByPath: map[string]float64{}}
	p99 := Scenario{Name: p50.Name, Unit: "ms", Metric: "p99", ByPath: map[string]float64{}}
	for _, p := range e.paths(0) {
		u, err := urlOf(execURL(p, "cat") + "&stdin=true")
		if err != nil {
			return nil, err
		}
		ex, err := remotecommand.NewWebSocketExecutor(p.Config, "GET", u.String())
		if err != nil {
			return nil, err
		}
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- ex.StreamWithContext(sctx, remotecommand.StreamOptions{Stdin: inR, Stdout: outW}) }()
		loop := make(chan []time.Duration, 1)
		loopErr := make(chan error, 1)
		go func() {
			var ds []time.Duration
			// A keystroke and Enter: the pod side reads stdin by line.
			buf := make([]byte, 2)
			for i := range keystrokes + 5 {
				t := time.Now()
				if _, err := inW.Write([]byte("a\n")); err != nil {
					loopErr <- err
					return
				}
				if _, err := io.ReadFull(outR, buf); err != nil {
					loopErr <- err
					return
				}
				if i >= 5 { // the first few warm the stream up
					ds = append(ds, time.Since(t))
				}
			}
			loop <- ds
		}()
		var ds []time.Duration
		select {
		case ds = <-loop:
		case err := <-loopErr:
			cancel()
			return nil, fmt.Errorf("%s echo: %w", p.Name, err)
		case err := <-done:
			cancel()
			return nil, fmt.Errorf("%s echo: stream ended early: %v", p.Name, err)
		case <-time.After(60 * time.Second):
			cancel()
			return nil, fmt.Errorf("%s echo: no echo within 60s", p.Name)
		}
		inW.Close()
		cancel()
		outW.Close()
		p50.ByPath[p.Name] = ms(percentile(ds, 50))
		p99.ByPath[p.Name] = ms(percentile(ds, 99))
	}
	return []Scenario{p50, p99}, nil
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(b []byte) (int, error) { c.n += int64(len(b)); return len(b), nil }

// CreateToFirstRequest times Session create to the first proxied 200.
func (e *Env) CreateToFirstRequest(ctx context.Context, n int) (Scenario, error) {
	var ds []time.Duration
	for i := range n {
		name := "lifecycle-" + strconv.Itoa(i)
		t := time.Now()
		if _, err := e.CreateSession(ctx, name, true); err != nil {
			return Scenario{}, err
		}
		ds = append(ds, time.Since(t))
	}
	return Scenario{Name: fmt.Sprintf("Session create → first proxied request (%d sessions)", n), Unit: "ms", Metric: "p50 / p99",
		ByPath: map[string]float64{"gateway": ms(percentile(ds, 50)), "gateway p99": ms(percentile(ds, 99))}}, nil
}

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

// Memory measures replica 0's heap per idle registered session and per open
// watch.
func (e *Env) Memory(ctx context.Context, sessions, watches int) ([]Scenario, error) {
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
	deadline := time.Now().Add(5 * time.Minute)
	for {
		n, _ := e.activeSessions(ctx)
		if n >= start+float64(sessions) {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("only %v of %d sessions registered after 5 minutes", n-start, sessions)
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
	return []Scenario{
		{Name: fmt.Sprintf("Gateway heap per idle registered session (%d sessions)", sessions), Unit: "KiB", Metric: "heap in use", ByPath: map[string]float64{"gateway": (withSessions - before) / float64(sessions) / 1024}},
		{Name: fmt.Sprintf("Gateway heap per open watch (%d watches)", watches), Unit: "KiB", Metric: "heap in use", ByPath: map[string]float64{"gateway": (withWatches - withSessions) / float64(watches) / 1024}},
	}, nil
}

// Revocation terminates sessions with an exec stream and a watch open on
// every replica, and times refusal of new requests and closing of streams.
func (e *Env) Revocation(ctx context.Context, iterations int) ([]Scenario, error) {
	var refuse, closed []time.Duration
	for it := range iterations {
		name := "revoke-" + strconv.Itoa(it)
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
