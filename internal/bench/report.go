package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Result is one run.
type Result struct {
	Date      time.Time         `json:"date"`
	Machine   string            `json:"machine"`
	Versions  map[string]string `json:"versions"`
	Scenarios []Scenario        `json:"scenarios"`
	Targets   []Target          `json:"targets"`
}

// Target is a figure the gateway should reach.
type Target struct {
	What  string  `json:"what"`
	Value float64 `json:"value"`
	Goal  string  `json:"goal"`
	Held  bool    `json:"held"`
}

// Machine describes where the run happened.
func Machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d cores, %s/%s, %s", model, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
}

func (r *Result) find(name, metric string) *Scenario {
	for i := range r.Scenarios {
		if r.Scenarios[i].Name == name && r.Scenarios[i].Metric == metric {
			return &r.Scenarios[i]
		}
	}
	return nil
}

// ratio is gateway over direct for one scenario.
func (r *Result) ratio(name, metric string) (float64, bool) {
	s := r.find(name, metric)
	if s == nil || s.ByPath["direct"] == 0 {
		return 0, false
	}
	return s.ByPath["gateway"] / s.ByPath["direct"], true
}

// Evaluate fills in the targets the issue sets.
func (r *Result) Evaluate() {
	atMost := func(what string, v, goal float64, ok bool, unit string) {
		if ok {
			r.Targets = append(r.Targets, Target{What: what, Value: v, Goal: fmt.Sprintf("≤ %g%s", goal, unit), Held: v <= goal})
		}
	}
	atLeast := func(what string, v, goal float64, ok bool) {
		if ok {
			r.Targets = append(r.Targets, Target{What: what, Value: v, Goal: fmt.Sprintf("≥ %g", goal), Held: v >= goal})
		}
	}
	v, ok := r.ratio("GET one object, 1 client(s)", "p50")
	atMost("GET p50 ratio gateway/direct, 1 client", v, 1.15, ok, "")
	v, ok = r.ratio("GET one object, 32 client(s)", "p50")
	atMost("GET p50 ratio gateway/direct, 32 clients", v, 1.15, ok, "")
	v, ok = r.ratio("LIST 2,000 ConfigMaps", "throughput")
	atLeast("LIST throughput ratio gateway/direct", v, 0.90, ok)
	for _, s := range r.Scenarios {
		if strings.HasPrefix(s.Name, "exec stdout stream") {
			v, ok = r.ratio(s.Name, "throughput")
			atLeast("exec stream throughput ratio gateway/direct", v, 0.90, ok)
		}
		if strings.HasPrefix(s.Name, "WATCH fan-out") && s.Metric == "p50" {
			v, ok = r.ratio(s.Name, "p50")
			atMost("watch fan-out p50 latency ratio gateway/direct", v, 1.2, ok, "")
		}
		if strings.HasPrefix(s.Name, "Session create") {
			atMost("create → first request p50", s.ByPath["gateway"], 1000, true, " ms")
		}
		if strings.HasPrefix(s.Name, "Revocation") {
			atMost("revocation p99: "+strings.TrimPrefix(s.Name, "Revocation on "), s.ByPath["gateway p99"], 1000, true, " ms")
		}
		if strings.HasPrefix(s.Name, "Gateway heap per idle registered session") {
			atMost("gateway memory per idle registered session", s.ByPath["gateway"], 10, true, " KiB")
		}
	}
}

// Write stores the result as JSON and a Markdown table in dir.
func (r *Result) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "latest.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "latest.md"), []byte(r.Markdown()), 0o644)
}

// Markdown renders the result as tables.
func (r *Result) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# sessiongate benchmark, %s\n\n", r.Date.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "Machine: %s. ", r.Machine)
	var vs []string
	for k, v := range r.Versions {
		vs = append(vs, k+" "+v)
	}
	fmt.Fprintf(&b, "Versions: %s. Produced by `make bench`.\n\n", strings.Join(vs, ", "))
	b.WriteString("| scenario | metric | direct | gateway | kubectl proxy | gateway/direct |\n|---|---|---:|---:|---:|---:|\n")
	for _, s := range r.Scenarios {
		cell := func(k string) string {
			v, ok := s.ByPath[k]
			if !ok {
				return "–"
			}
			return fmt.Sprintf("%.2f", v)
		}
		gw := cell("gateway")
		if p99, ok := s.ByPath["gateway p99"]; ok {
			gw += fmt.Sprintf(" / %.2f", p99)
			if mx, ok := s.ByPath["gateway max"]; ok {
				gw += fmt.Sprintf(" / %.2f", mx)
			}
		}
		ratio := "–"
		if d := s.ByPath["direct"]; d != 0 {
			ratio = fmt.Sprintf("%.2f", s.ByPath["gateway"]/d)
		}
		name := s.Name
		if s.Comment != "" {
			name += " (" + s.Comment + ")"
		}
		fmt.Fprintf(&b, "| %s | %s (%s) | %s | %s | %s | %s |\n", name, s.Metric, s.Unit, cell("direct"), gw, cell("kubectl proxy"), ratio)
	}
	b.WriteString("\n## Targets\n\n| target | measured | goal | held |\n|---|---:|---|---|\n")
	for _, t := range r.Targets {
		held := "not held"
		if t.Held {
			held = "held"
		}
		fmt.Fprintf(&b, "| %s | %.2f | %s | %s |\n", t.What, t.Value, t.Goal, held)
	}
	return b.String()
}
