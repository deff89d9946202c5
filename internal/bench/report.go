package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
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
	Notes     []string          `json:"notes,omitempty"`
	// IdleGatewayCPU is what the idle gateway processes use, in cores;
	// it is subtracted from every gateway CPU figure.
	IdleGatewayCPU float64 `json:"idleGatewayCPU"`
	// IdleGatewayWakeups is how many times per second the idle gateway
	// processes' threads are woken; subtracted from every gateway figure
	// of wake-ups.
	IdleGatewayWakeups float64 `json:"idleGatewayWakeups,omitempty"`
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

func (r *Result) find(config, name, metric string) *Scenario {
	for i := range r.Scenarios {
		if s := &r.Scenarios[i]; s.Config == config && s.Name == name && s.Metric == metric {
			return s
		}
	}
	return nil
}

// ratio is gateway over direct for one scenario: the median over the
// rounds where there were rounds, so that no target is held or missed by
// one lucky round.
func (s *Scenario) ratio() (float64, bool) {
	if s.Spread != nil {
		return s.Spread.Median, true
	}
	if s.ByPath["direct"] == 0 {
		return 0, false
	}
	return s.ByPath["gateway"] / s.ByPath["direct"], true
}

// Evaluate fills in the targets the issue sets.
func (r *Result) Evaluate() {
	add := func(config, what string, v, goal float64, atMost bool, unit string) {
		if config != "" {
			what += " (pinned)"
		}
		t := Target{What: what, Value: v, Goal: fmt.Sprintf("≥ %g%s", goal, unit), Held: v >= goal}
		if atMost {
			t.Goal, t.Held = fmt.Sprintf("≤ %g%s", goal, unit), v <= goal
		}
		r.Targets = append(r.Targets, t)
	}
	ratio := func(s *Scenario, what string, goal float64, atMost bool) {
		if v, ok := s.ratio(); ok {
			add(s.Config, what, v, goal, atMost, "")
		}
	}
	for i := range r.Scenarios {
		s := &r.Scenarios[i]
		g := s.ByPath["gateway"]
		switch {
		case strings.HasPrefix(s.Name, "GET one object, 1 client(s)") && s.Metric == "p50":
			ratio(s, "GET p50 ratio gateway/direct, 1 client"+suffixFrom(s.Name, http1Callers), 1.15, true)
		case strings.HasPrefix(s.Name, "GET one object, 32 client(s)") && s.Metric == "p50":
			ratio(s, "GET p50 ratio gateway/direct, 32 clients"+suffixFrom(s.Name, http1Callers), 1.15, true)
		case strings.HasPrefix(s.Name, "GET one object, 1 client(s)") && s.Metric == metricCPU:
			add(s.Config, "gateway CPU per small GET, 1 client"+suffixFrom(s.Name, http1Callers), g, 170, true, " µs")
		case strings.HasPrefix(s.Name, "GET one object, 32 client(s)") && s.Metric == metricCPU:
			// What a core carries under load (≥ 5,900 requests/s): one
			// client finds the gateway's threads asleep at every request.
			add(s.Config, "gateway CPU per small GET, 32 clients"+suffixFrom(s.Name, http1Callers), g, 170, true, " µs")
		case strings.HasPrefix(s.Name, "LIST") && s.Metric == "throughput":
			ratio(s, "LIST throughput ratio gateway/direct", 0.90, false)
		case strings.HasPrefix(s.Name, "WATCH fan-out") && s.Metric == "p50":
			ratio(s, "watch fan-out p50 latency ratio gateway/direct", 1.2, true)
		case strings.HasPrefix(s.Name, "exec stdout stream") && s.Metric == "throughput":
			ratio(s, "exec stream throughput ratio gateway/direct (recorded, "+payloadOf(s.Name)+")", 0.90, false)
		case strings.HasPrefix(s.Name, "exec stdout stream") && s.Metric == metricCPU:
			what := "recorded, " + payloadOf(s.Name)
			if strings.HasSuffix(s.Name, "unrecorded") {
				what = "unrecorded, " + payloadOf(s.Name)
			}
			add(s.Config, "exec stream per gateway core ("+what+")", s.PerCore, 740, false, " MB/s")
		case strings.HasPrefix(s.Name, "exec stdout stream") && s.Metric == "recorded/unrecorded throughput":
			ratio(s, "exec stream throughput, recorded/unrecorded ("+payloadOf(s.Name)+")", 0.90, false)
		case s.Name == "exec keystroke echo" && s.Metric == "recorded/unrecorded p50":
			ratio(s, "keystroke echo p50, recorded/unrecorded", 1.05, true)
		case strings.HasPrefix(s.Name, "Session create → first proxied request"):
			add(s.Config, "create → first request p50"+suffixFrom(s.Name, ", at "), g, 1000, true, " ms")
		case strings.HasPrefix(s.Name, "Revocation"):
			add(s.Config, "revocation p99: "+strings.TrimPrefix(s.Name, "Revocation on "), s.ByPath["gateway p99"], 1000, true, " ms")
		case strings.HasPrefix(s.Name, "Gateway heap per idle registered session, "):
			// "serving replica" or "leader", and when it was read.
			what, _, _ := strings.Cut(strings.TrimPrefix(s.Name, "Gateway heap per idle registered session, "), " (")
			add(s.Config, "gateway memory per idle registered session, "+what, g, 10, true, " KiB")
		}
	}
}

// payloadOf is what an exec stream scenario carries, from its name.
func payloadOf(name string) string {
	if strings.Contains(name, "of "+Text) {
		return Text
	}
	return Zeros
}

// suffixFrom is the part of a scenario's name from marker on (", at …"
// of one measured at scale, http1Callers of a GET from HTTP/1.1 callers),
// or "".
func suffixFrom(name, marker string) string {
	if i := strings.Index(name, marker); i >= 0 {
		return name[i:]
	}
	return ""
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

// Markdown renders the result as tables: each configuration's figures, the
// gateway's CPU, and the targets.
func (r *Result) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# sessiongate benchmark, %s\n\n", r.Date.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "Machine: %s. ", r.Machine)
	var vs []string
	for k, v := range r.Versions {
		vs = append(vs, k+" "+v)
	}
	fmt.Fprintf(&b, "Versions: %s. Produced by `make bench`.\n\n", strings.Join(vs, ", "))
	b.WriteString("Ratios are gateway/direct: the median over the interleaved rounds, with the lowest and highest round in brackets where there were rounds. " +
		"Gateway CPU is the on-CPU time of every gateway process (from /proc/PID/task/*/schedstat) over the gateway path's share of each round and until the processes are quiet again, less what they use idle (")
	fmt.Fprintf(&b, "%.1f ms per second and %.0f wake-ups per second, all replicas). kubectl proxy's CPU, measured the same way for the same work, is the floor to read it against: "+
		"a bare reverse proxy with plain HTTP on the client's side, and no authentication, audit or recording. "+
		"The kernel's share of each, where the processes used a second of CPU or more (system time over all time in /proc/PID/stat, the idle use included), is spent in system calls, "+
		"TCP over loopback, page-cache copies and context switches: fewer system calls and fewer threads woken lower it, faster Go code does not. "+
		"Wake-ups are how many times per unit the processes' threads blocked and were woken again (voluntary_ctxt_switches in /proc/PID/task/*/status; the gateway's less its idle rate): "+
		"each costs a context switch.\n", r.IdleGatewayCPU*1e3, r.IdleGatewayWakeups)
	var configs []string
	for _, s := range r.Scenarios {
		if !slices.Contains(configs, s.Config) {
			configs = append(configs, s.Config)
		}
	}
	for _, c := range configs {
		title := "Unpinned: API servers, gateway and clients share every CPU"
		if c != "" {
			title = strings.ToUpper(c[:1]) + c[1:]
		}
		fmt.Fprintf(&b, "\n## %s\n\n", title)
		b.WriteString("| scenario | metric | direct | gateway | gateway, unrecorded | kubectl proxy | ratio |\n|---|---|---:|---:|---:|---:|---:|\n")
		for _, s := range r.Scenarios {
			if s.Config == c && s.Metric != metricCPU {
				b.WriteString(s.row())
			}
		}
		fmt.Fprintf(&b, "\n### Gateway CPU\n\n| scenario | gateway CPU | per gateway core | Teleport's model, per core | × Teleport | kubectl proxy CPU, same work |\n|---|---:|---:|---:|---:|---:|\n")
		for _, s := range r.Scenarios {
			if s.Config == c && s.Metric == metricCPU {
				b.WriteString(s.cpuRow())
			}
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "\nNote: %s\n", n)
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

func (s *Scenario) row() string {
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
	if v, ok := s.ratio(); ok {
		ratio = fmt.Sprintf("%.2f", v)
		if sp := s.Spread; sp != nil {
			ratio += fmt.Sprintf(" (%.2f–%.2f)", sp.Min, sp.Max)
		}
	}
	name := s.Name
	if s.Comment != "" {
		name += " (" + s.Comment + ")"
	}
	return fmt.Sprintf("| %s | %s (%s) | %s | %s | %s | %s | %s |\n", name, s.Metric, s.Unit, cell("direct"), gw, cell(unrecorded), cell(kubectlProxy), ratio)
}

func (s *Scenario) cpuRow() string {
	unit := strings.TrimPrefix(s.Unit, "µs per ")
	perCore := unit + "s/s"
	if unit == "MB" {
		perCore = "MB/s"
	}
	teleport, times := "–", "–"
	if s.TeleportPerCore > 0 {
		teleport = fmt.Sprintf("%.0f %s", s.TeleportPerCore, perCore)
		times = fmt.Sprintf("%.1f", s.PerCore/s.TeleportPerCore)
	}
	proxy := "–"
	if v, ok := s.ByPath[kubectlProxy]; ok {
		proxy = fmt.Sprintf("%.1f µs per %s%s", v, unit, s.detail(kubectlProxy))
	}
	return fmt.Sprintf("| %s | %.1f µs per %s%s | %.0f %s | %s | %s | %s |\n", s.Name, s.ByPath["gateway"], unit, s.detail("gateway"), s.PerCore, perCore, teleport, times, proxy)
}

// detail says how much of a path's CPU was the kernel's, and how many
// times its threads woke, where known.
func (s *Scenario) detail(path string) string {
	var out string
	if k, ok := s.KernelShare[path]; ok {
		out = fmt.Sprintf(", %.0f %% kernel", 100*k)
	}
	if w, ok := s.Wakeups[path]; ok {
		out += fmt.Sprintf(", %.1f wake-ups", w)
	}
	return out
}
