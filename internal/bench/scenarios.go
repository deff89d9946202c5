package bench

import (
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
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
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
	// KernelShare is, by path, the share of that CPU the processes spent
	// in the kernel (system calls, TCP over loopback, page-cache copies,
	// context switches), where they used enough to tell.
	KernelShare map[string]float64 `json:"kernelShare,omitempty"`
	// Wakeups is, by path, how many times per unit the processes' threads
	// blocked and were woken again: each costs a context switch, whatever
	// the code does.
	Wakeups map[string]float64 `json:"wakeups,omitempty"`
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
	cpu := map[string]usage{}
	for r := range rounds {
		for _, p := range rotate(r, e.Direct, e.Gateway, e.GatewayHTTP1, e.KubectlProxy) {
			var mu sync.Mutex
			var wg sync.WaitGroup
			var firstErr error
			var round []time.Duration
			start := time.Now()
			err := e.measureCPU(p, cpu, func() error {
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
	// The gateway's callers over HTTP/2 (kubectl's default), then over
	// HTTP/1.1, each against the same direct and kubectl proxy rounds.
	var out []Scenario
	for _, gw := range []struct{ path, suffix string }{{"gateway", ""}, {http1, http1Callers}} {
		p50 := Scenario{Name: name + gw.suffix, Unit: "ms", Metric: "p50", ByPath: map[string]float64{},
			Spread: spreadOf(roundP50[gw.path], roundP50["direct"])}
		p99 := Scenario{Name: p50.Name, Unit: "ms", Metric: "p99", ByPath: map[string]float64{}}
		rps := Scenario{Name: p50.Name, Unit: "req/s", Metric: "throughput", ByPath: map[string]float64{}}
		for _, path := range []string{"direct", gw.path, kubectlProxy} {
			col := path
			if path == gw.path {
				col = "gateway"
			}
			p50.ByPath[col] = ms(percentile(lat[path], 50))
			p99.ByPath[col] = ms(percentile(lat[path], 99))
			rps.ByPath[col] = float64(count[path]) / busy[path].Seconds()
		}
		out = append(out, p50, p99)
		if clients > 1 {
			out = append(out, rps)
		}
		out = append(out, cpuScenario(p50.Name, "request", cpu, gw.path, float64(count[gw.path])).
			withProxy(cpu, float64(count[kubectlProxy])))
	}
	return out, nil
}

// List measures LIST of the seeded ConfigMaps.
func (e *Env) List(ctx context.Context, rounds int) ([]Scenario, error) {
	const list = "/api/v1/namespaces/" + benchNS + "/configmaps"
	dur := map[string][]time.Duration{}
	rate := map[string][]float64{}
	cpu := map[string]usage{}
	var size int64
	for r := range rounds {
		for _, p := range e.paths(r) {
			var d time.Duration
			err := e.measureCPU(p, cpu, func() (err error) {
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
		cpuScenario(name, "request", cpu, "gateway", float64(rounds)).withProxy(cpu, float64(rounds)),
		cpuScenario(name, "MB", cpu, "gateway", float64(rounds)*float64(size)/1e6).withProxy(cpu, float64(rounds)*float64(size)/1e6)}, nil
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
	// The gateway's CPU over the writes: its watchers' share of every event.
	cpu := map[string]usage{}
	err := e.measureCPU(e.Gateway, cpu, func() error {
		for i := 1; i <= writes; i++ {
			start := time.Now()
			cm, err := cms.Update(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"n": strconv.Itoa(i)}}, metav1.UpdateOptions{})
			if err != nil {
				return err
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
					return fmt.Errorf("write %d reached only %d of %d watchers", i, got, 3*watchers)
				}
			}
			for path, ds := range this {
				lat[path] = append(lat[path], ds...)
				perWrite[path] = append(perWrite[path], ms(percentile(ds, 50)))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	cancel()
	p50 := Scenario{Name: fmt.Sprintf("WATCH fan-out to %d watchers", watchers), Unit: "ms", Metric: "p50", ByPath: map[string]float64{},
		Spread: spreadOf(perWrite["gateway"], perWrite["direct"])}
	p99 := Scenario{Name: p50.Name, Unit: "ms", Metric: "p99", ByPath: map[string]float64{}}
	for name, ds := range lat {
		p50.ByPath[name] = ms(percentile(ds, 50))
		p99.ByPath[name] = ms(percentile(ds, 99))
	}
	return []Scenario{p50, p99, cpuScenario(p50.Name, "event", cpu, "gateway", float64(writes*watchers))}, nil
}
