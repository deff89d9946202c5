package bench

import (
	"slices"
	"testing"
)

// Each GET target says whose callers it measured, and a lifecycle target
// the scale it was measured at, so that no two targets read the same.
func TestTargetsNameTheCallersAndTheScaleTheyWereMeasuredAt(t *testing.T) {
	const get = "GET one object, 1 client(s)"
	r := &Result{Scenarios: []Scenario{
		{Name: get, Metric: "p50", ByPath: map[string]float64{"direct": 1, "gateway": 1.2}},
		{Name: get + http1Callers, Metric: "p50", ByPath: map[string]float64{"direct": 1, "gateway": 1.1}},
		{Name: get + http1Callers, Metric: metricCPU, ByPath: map[string]float64{"gateway": 160}, Config: "pinned"},
		{Name: "GET one object, 32 client(s)", Metric: metricCPU, ByPath: map[string]float64{"gateway": 180}},
		{Name: "Session create → first proxied request (20 sessions), at 10000 sessions", ByPath: map[string]float64{"gateway": 70}},
	}}
	r.Evaluate()
	var got []string
	for _, tg := range r.Targets {
		got = append(got, tg.What)
	}
	want := []string{
		"GET p50 ratio gateway/direct, 1 client",
		"GET p50 ratio gateway/direct, 1 client, HTTP/1.1 callers",
		"gateway CPU per small GET, 1 client, HTTP/1.1 callers (pinned)",
		"gateway CPU per small GET, 32 clients",
		"create → first request p50, at 10000 sessions",
	}
	if !slices.Equal(got, want) {
		t.Errorf("targets %q, want %q", got, want)
	}
	if h := r.Targets[1]; h.Value != 1.1 || !h.Held {
		t.Errorf("HTTP/1.1 callers' ratio: %+v, want 1.1 and held", h)
	}
	if c := r.Targets[3]; c.Value != 180 || c.Held {
		t.Errorf("CPU per GET with 32 clients: %+v, want 180 and not held", c)
	}
}
