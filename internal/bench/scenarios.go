package bench

import (
	"bytes"
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

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/remotecommand"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// paths returns the three paths in a rotating order, so that none always
// goes first.
func (e *Env) paths(round int) []*Path {
	return rotate(round, e.Direct, e.Gateway, e.KubectlProxy)
}

// streamPaths are paths and the gateway without recording.
func (e *Env) streamPaths(round int) []*Path {
	return rotate(round, e.Direct, e.Gateway, e.GatewayUnrecorded, e.KubectlProxy)
}

func rotate(round int, all ...*Path) []*Path {
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
	// Config is the CPU placement: "" for none, else Pinning.Describe.
	Config string `json:"config,omitempty"`
	// Spread is gateway/direct over the interleaved rounds.
	Spread *Spread `json:"ratioSpread,omitempty"`
	// PerCore and TeleportPerCore: units one CPU core carries, by the
	// gateway's measured CPU and by Teleport's model (metric "gateway CPU").
	PerCore         float64 `json:"perCore,omitempty"`
	TeleportPerCore float64 `json:"teleportPerCore,omitempty"`
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

// GetLatency measures GET of one object with c concurrent clients, and the
// gateway's CPU per request.
func (e *Env) GetLatency(ctx context.Context, clients, rounds int, perRound time.Duration) ([]Scenario, error) {
	const obj = "/api/v1/namespaces/" + benchNS + "/configmaps/cm-0"
	lat := map[string][]time.Duration{}
	roundP50 := map[string][]float64{}
	count := map[string]int{}
	busy := map[string]time.Duration{}
	cpu := map[string]time.Duration{}
	for r := range rounds {
		for _, p := range e.paths(r) {
			var mu sync.Mutex
			var wg sync.WaitGroup
			var firstErr error
			var round []time.Duration
			start := time.Now()
			err := e.onGateway(p, cpu, func() error {
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
						round = append(round, local...)
						mu.Unlock()
					}()
				}
				wg.Wait()
				busy[p.Name] += time.Since(start)
				return firstErr
			})
			if err != nil {
				return nil, err
			}
			lat[p.Name] = append(lat[p.Name], round...)
			count[p.Name] += len(round)
			roundP50[p.Name] = append(roundP50[p.Name], ms(percentile(round, 50)))
		}
	}
	name := fmt.Sprintf("GET one object, %d client(s)", clients)
	p50 := Scenario{Name: name, Unit: "ms", Metric: "p50", ByPath: map[string]float64{},
		Spread: spreadOf(roundP50["gateway"], roundP50["direct"])}
	p99 := Scenario{Name: name, Unit: "ms", Metric: "p99", ByPath: map[string]float64{}}
	rps := Scenario{Name: name, Unit: "req/s", Metric: "throughput", ByPath: map[string]float64{}}
	for name, ds := range lat {
		p50.ByPath[name] = ms(percentile(ds, 50))
		p99.ByPath[name] = ms(percentile(ds, 99))
		rps.ByPath[name] = float64(count[name]) / busy[name].Seconds()
	}
	out := []Scenario{p50, p99}
	if clients > 1 {
		out = append(out, rps)
	}
	return append(out, cpuScenario(name, "request", cpu["gateway"], float64(count["gateway"]))), nil
}

// List measures LIST of the seeded ConfigMaps.
func (e *Env) List(ctx context.Context, rounds int) ([]Scenario, error) {
	const list = "/api/v1/namespaces/" + benchNS + "/configmaps"
	dur := map[string][]time.Duration{}
	rate := map[string][]float64{}
	cpu := map[string]time.Duration{}
	var size int64
	for r := range rounds {
		for _, p := range e.paths(r) {
			var d time.Duration
			err := e.onGateway(p, cpu, func() (err error) {
				t := time.Now()
				size, err = get(ctx, p, list)
				d = time.Since(t)
				return err
			})
			if err != nil {
				return nil, err
			}
			dur[p.Name] = append(dur[p.Name], d)
			rate[p.Name] = append(rate[p.Name], float64(size)/1e6/d.Seconds())
		}
	}
	const name = "LIST 2,000 ConfigMaps"
	t := Scenario{Name: name, Unit: "ms", Metric: "p50 time", ByPath: map[string]float64{}}
	bw := Scenario{Name: name, Unit: "MB/s", Metric: "throughput", ByPath: map[string]float64{},
		Comment: fmt.Sprintf("%.1f MB per list", float64(size)/1e6), Spread: spreadOf(rate["gateway"], rate["direct"])}
	for name, ds := range dur {
		p50 := percentile(ds, 50)
		t.ByPath[name] = ms(p50)
		bw.ByPath[name] = float64(size) / 1e6 / p50.Seconds()
	}
	return []Scenario{t, bw,
		cpuScenario(name, "request", cpu["gateway"], float64(rounds)),
		cpuScenario(name, "MB", cpu["gateway"], float64(rounds)*float64(size)/1e6)}, nil
}

// WatchFanOut measures the time from a write to its event reaching each of n
// watchers per path; all paths watch the same object at once.
func (e *Env) WatchFanOut(ctx context.Context, watchers, writes int) ([]Scenario, error) {
	const name = "watched"
	cms := e.target.Kube.CoreV1().ConfigMaps(benchNS)
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"n": "0"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
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
	perWrite := map[string][]float64{}
	cpuBefore, loopStart := e.gatewayCPU(), time.Now()
	for i := 1; i <= writes; i++ {
		start := time.Now()
		cm, err := cms.Update(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"n": strconv.Itoa(i)}}, metav1.UpdateOptions{})
		if err != nil {
			return nil, err
		}
		this := map[string][]time.Duration{}
		timeout := time.After(10 * time.Second)
		for got := 0; got < 3*watchers; {
			select {
			case s := <-events:
				if s.rv == cm.ResourceVersion {
					this[s.path] = append(this[s.path], s.at.Sub(start))
					got++
				}
			case <-timeout:
				return nil, fmt.Errorf("write %d reached only %d of %d watchers", i, got, 3*watchers)
			}
		}
		for path, ds := range this {
			lat[path] = append(lat[path], ds...)
			perWrite[path] = append(perWrite[path], ms(percentile(ds, 50)))
		}
	}
	cpu := e.settle() - cpuBefore - e.idleFor(time.Since(loopStart))
	cancel()
	p50 := Scenario{Name: fmt.Sprintf("WATCH fan-out to %d watchers", watchers), Unit: "ms", Metric: "p50", ByPath: map[string]float64{},
		Spread: spreadOf(perWrite["gateway"], perWrite["direct"])}
	p99 := Scenario{Name: p50.Name, Unit: "ms", Metric: "p99", ByPath: map[string]float64{}}
	for name, ds := range lat {
		p50.ByPath[name] = ms(percentile(ds, 50))
		p99.ByPath[name] = ms(percentile(ds, 99))
	}
	return []Scenario{p50, p99, cpuScenario(p50.Name, "event", cpu, float64(writes*watchers))}, nil
}

func execURL(p *Path, command ...string) string {
	q := "stdout=true&container=main"
	for _, c := range command {
		q += "&command=" + c
	}
	return p.URL("/api/v1/namespaces/demo/pods/web/exec?" + q)
}

// ExecThroughput streams size bytes of stdout over exec's WebSocket
// protocol, through the gateway with and without recording.
func (e *Env) ExecThroughput(ctx context.Context, size int64, rounds int) ([]Scenario, error) {
	name := fmt.Sprintf("exec stdout stream, %d MiB", size>>20)
	rate := map[string][]float64{}
	cpu := map[string]time.Duration{}
	for r := range rounds {
		for _, p := range e.streamPaths(r) {
			u, err := urlOf(execURL(p, "head", "-c", strconv.FormatInt(size, 10), "/dev/zero"))
			if err != nil {
				return nil, err
			}
			ex, err := remotecommand.NewWebSocketExecutor(p.Config, "GET", u.String())
			if err != nil {
				return nil, err
			}
			var n countingWriter
			var d time.Duration
			if err := e.onGateway(p, cpu, func() error {
				t := time.Now()
				err := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &n})
				d = time.Since(t)
				return err
			}); err != nil {
				return nil, fmt.Errorf("%s exec: %w", p.Name, err)
			}
			if n.n != size {
				return nil, fmt.Errorf("%s exec: got %d bytes, want %d", p.Name, n.n, size)
			}
			rate[p.Name] = append(rate[p.Name], float64(size)/1e6/d.Seconds())
			// A cast of zeros is six times the stream; keep the disk.
			casts, _ := filepath.Glob(filepath.Join(e.dir, "recordings", "*.cast"))
			for _, c := range casts {
				_ = os.Remove(c)
			}
		}
	}
	return streamScenarios(name, rate, cpu, float64(rounds)*float64(size)/1e6), nil
}

// streamScenarios are the median throughput of each path, gateway/direct
// and unrecorded/recorded over the rounds, and the gateway's CPU per MB.
func streamScenarios(name string, rate map[string][]float64, cpu map[string]time.Duration, mb float64) []Scenario {
	bw := Scenario{Name: name, Unit: "MB/s", Metric: "throughput", ByPath: map[string]float64{},
		Spread: spreadOf(rate["gateway"], rate["direct"])}
	for path, rs := range rate {
		bw.ByPath[path] = median(rs)
	}
	out := []Scenario{bw, cpuScenario(name, "MB", cpu["gateway"], mb)}
	if u, ok := rate[unrecorded]; ok {
		out = append(out, Scenario{Name: name, Unit: "ratio", Metric: "recorded/unrecorded throughput",
			ByPath: map[string]float64{"gateway": bw.ByPath["gateway"] / median(u)}, Spread: spreadOf(rate["gateway"], u)},
			cpuScenario(name+", unrecorded", "MB", cpu[unrecorded], mb))
	}
	return out
}

// ExecEcho measures keystroke round trips through `cat` over exec: one
// byte written to stdin, timed until it is back on stdout.
func (e *Env) ExecEcho(ctx context.Context, keystrokes, rounds int) ([]Scenario, error) {
	lat := map[string][]time.Duration{}
	roundP50 := map[string][]float64{}
	for r := range rounds {
		for _, p := range e.streamPaths(r) {
			ds, err := echo(ctx, p, keystrokes/rounds)
			if err != nil {
				return nil, err
			}
			lat[p.Name] = append(lat[p.Name], ds...)
			roundP50[p.Name] = append(roundP50[p.Name], ms(percentile(ds, 50)))
		}
	}
	p50 := Scenario{Name: "exec keystroke echo", Unit: "ms", Metric: "p50", ByPath: map[string]float64{},
		Spread: spreadOf(roundP50["gateway"], roundP50["direct"])}
	p99 := Scenario{Name: p50.Name, Unit: "ms", Metric: "p99", ByPath: map[string]float64{}}
	for path, ds := range lat {
		p50.ByPath[path] = ms(percentile(ds, 50))
		p99.ByPath[path] = ms(percentile(ds, 99))
	}
	added := Scenario{Name: p50.Name, Unit: "ratio", Metric: "recorded/unrecorded p50",
		ByPath: map[string]float64{"gateway": p50.ByPath["gateway"] / p50.ByPath[unrecorded]},
		Spread: spreadOf(roundP50["gateway"], roundP50[unrecorded])}
	return []Scenario{p50, p99, added}, nil
}

// echo opens `cat` on p and times n keystrokes after a few to warm up.
func echo(ctx context.Context, p *Path, n int) ([]time.Duration, error) {
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
	defer cancel()
	done := make(chan error, 1)
	// Ending stdin ends cat, and so the stream, before the context would.
	defer func() {
		inW.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
		outW.Close()
	}()
	go func() { done <- ex.StreamWithContext(sctx, remotecommand.StreamOptions{Stdin: inR, Stdout: outW}) }()
	type result struct {
		ds  []time.Duration
		err error
	}
	loop := make(chan result, 1)
	go func() {
		var ds []time.Duration
		buf := make([]byte, 1)
		for i := range n + 5 {
			t := time.Now()
			if _, err := inW.Write([]byte("a")); err != nil {
				loop <- result{err: err}
				return
			}
			if _, err := io.ReadFull(outR, buf); err != nil {
				loop <- result{err: err}
				return
			}
			if i >= 5 { // the first few warm the stream up
				ds = append(ds, time.Since(t))
			}
		}
		loop <- result{ds: ds}
	}()
	select {
	case res := <-loop:
		if res.err != nil {
			return nil, fmt.Errorf("%s echo: %w", p.Name, res.err)
		}
		return res.ds, nil
	case err := <-done:
		return nil, fmt.Errorf("%s echo: stream ended early: %v", p.Name, err)
	case <-time.After(60 * time.Second):
		return nil, fmt.Errorf("%s echo: no echo within 60s", p.Name)
	}
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(b []byte) (int, error) { c.n += int64(len(b)); return len(b), nil }

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
