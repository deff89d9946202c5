package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/api/v1alpha1"
)

// CreateToFirstRequest times Session create to the Active phase, seen by a
// watch on the management cluster, and to the first proxied 200 on replica
// 0, polled every millisecond.
func (e *Env) CreateToFirstRequest(ctx context.Context, prefix string, n int) ([]Scenario, error) {
	wc, err := client.NewWithWatch(e.mgmt.Config, client.Options{Scheme: e.mgmt.Client.Scheme()})
	if err != nil {
		return nil, err
	}
	var toActive, toServed []time.Duration
	for i := range n {
		name := prefix + strconv.Itoa(i)
		w, err := wc.Watch(ctx, &v1alpha1.SessionList{}, client.InNamespace(namespace), client.MatchingFields{"metadata.name": name})
		if err != nil {
			return nil, err
		}
		active := make(chan time.Time, 1)
		go func() {
			for ev := range w.ResultChan() {
				if s, ok := ev.Object.(*v1alpha1.Session); ok && s.Status.Phase == v1alpha1.PhaseActive {
					active <- time.Now()
					return
				}
			}
		}()
		before := e.leaderQueue()
		t0 := time.Now()
		if _, err := e.CreateSession(ctx, name, false); err != nil {
			w.Stop()
			return nil, err
		}
		served, err := e.firstOK(ctx, name, time.Minute)
		if err != nil {
			w.Stop()
			return nil, err
		}
		select {
		case at := <-active:
			toActive = append(toActive, at.Sub(t0))
			if d := at.Sub(t0); d > time.Second && e.Log != nil {
				// The slow ones say what the control plane was doing.
				fmt.Fprintf(e.Log, "bench: session %s took %v to become Active; leader's session queue at create: %s; now: %s\n",
					name, d.Round(time.Millisecond), before, e.leaderQueue())
			}
		case <-time.After(10 * time.Second):
			w.Stop()
			return nil, fmt.Errorf("session %s served but no Active event within 10s", name)
		}
		w.Stop()
		toServed = append(toServed, served.Sub(t0))
	}
	mk := func(what string, ds []time.Duration) Scenario {
		return Scenario{Name: fmt.Sprintf("Session create → %s (%d sessions)", what, n), Unit: "ms", Metric: "p50 / p99",
			ByPath: map[string]float64{"gateway": ms(percentile(ds, 50)), "gateway p99": ms(percentile(ds, 99))}}
	}
	return []Scenario{mk("Active (watch event)", toActive), mk("first proxied request", toServed)}, nil
}

// firstOK polls a live replica every millisecond until it serves session name,
// and returns when it first did.
func (e *Env) firstOK(ctx context.Context, name string, within time.Duration) (time.Time, error) {
	// The first replica still running: a test may have killed replica 0.
	r := 0
	for r < e.Replicas()-1 && !e.Alive(r) {
		r++
	}
	p := e.GatewayPath(r, name)
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		resp, err := p.Do(ctx, http.MethodGet, "/api/v1/namespaces/"+benchNS+"/configmaps?limit=1")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Now(), nil
			}
		}
		time.Sleep(time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("session %s not served within %v", name, within)
}

// leaderQueue describes the leader's session controller: its workqueue's
// depth, adds and retries, and reconciles by result.
func (e *Env) leaderQueue() string {
	leader, _, err := e.roles()
	if err != nil {
		return err.Error()
	}
	lines, err := e.metricLines(leader)
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, line := range lines {
		for _, name := range []string{"workqueue_depth", "workqueue_adds_total", "workqueue_retries_total", "controller_runtime_reconcile_total"} {
			if strings.HasPrefix(line, name+"{") && strings.Contains(line, `"session"`) {
				out = append(out, line)
			}
		}
	}
	return fmt.Sprintf("replica %d: %s", leader, strings.Join(out, ", "))
}
