package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Teleport's published model of its Kubernetes agent, the field's reference:
// about 1.7 ms of CPU per proxied request and 13.5 ns per streamed byte.
const (
	teleportMicrosPerRequest = 1700
	teleportMicrosPerMB      = 13.5e-3 * 1e6
)

// metricCPU marks the scenarios that hold the gateway's own CPU per unit.
const metricCPU = "gateway CPU"

// processCPU is the CPU time pid's threads have used, from each thread's
// /proc/PID/task/TID/schedstat (nanoseconds; utime and stime in
// /proc/PID/stat count 10 ms ticks, too coarse for one round). Go keeps its
// threads for the life of the process, so none is lost to an exit.
func processCPU(pid int) (time.Duration, error) {
	tasks, err := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/schedstat")
	if err != nil || len(tasks) == 0 {
		return 0, fmt.Errorf("no threads of %d in /proc", pid)
	}
	var sum time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // the thread has just ended
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", t, err)
		}
		sum += time.Duration(ns)
	}
	return sum, nil
}

// processWakeups is how many times pid's threads have blocked and been
// woken: the sum of each thread's voluntary_ctxt_switches (a thread that
// another took the CPU from, nonvoluntary, is not counted: that is the
// machine's load, not the gateway's doing).
func processWakeups(pid int) (int64, error) {
	tasks, err := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/status")
	if err != nil || len(tasks) == 0 {
		return 0, fmt.Errorf("no threads of %d in /proc", pid)
	}
	var sum int64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // the thread has just ended
		}
		n, err := voluntarySwitches(b)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", t, err)
		}
		sum += n
	}
	return sum, nil
}

// voluntarySwitches reads voluntary_ctxt_switches from a status file.
func voluntarySwitches(status []byte) (int64, error) {
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, errors.New("no voluntary_ctxt_switches")
}

// processTicks is the user and kernel CPU time of pid's threads, from
// /proc/PID/stat: counted in 10 ms units and split by the kernel's timer
// ticks, so only a second or more of it says how it was split.
func processTicks(pid int) (user, kernel time.Duration, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	user, kernel, err = statTimes(b)
	if err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return user, kernel, nil
}

// statTimes reads utime and stime from a /proc/PID/stat line.
func statTimes(b []byte) (user, kernel time.Duration, err error) {
	// The command name, in brackets, may hold spaces and brackets: fields
	// count from after its last bracket, the state being field 3.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, errors.New("no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("%d fields after the command name, want at least 13", len(f))
	}
	u, uerr := strconv.ParseUint(f[11], 10, 63)
	k, kerr := strconv.ParseUint(f[12], 10, 63)
	if uerr != nil || kerr != nil {
		return 0, 0, fmt.Errorf("utime %q, stime %q: not tick counts", f[11], f[12])
	}
	const tick = 10 * time.Millisecond // USER_HZ on x86 and arm64
	return time.Duration(u) * tick, time.Duration(k) * tick, nil
}

// sample is what processes have used so far: CPU time by schedstat, user
// and kernel time by /proc/PID/stat's ticks, and their threads' wake-ups.
type sample struct {
	cpu, user, kernel time.Duration
	wakeups           int64
}

// sampleOf reads a sample of the processes; one that cannot be read (it
// has just exited) counts nothing.
func sampleOf(pids []int) sample {
	s := sample{cpu: cpuOf(pids)}
	for _, pid := range pids {
		if u, k, err := processTicks(pid); err == nil {
			s.user, s.kernel = s.user+u, s.kernel+k
		}
		if n, err := processWakeups(pid); err == nil {
			s.wakeups += n
		}
	}
	return s
}

// usage is what measureCPU adds up for one path over a scenario's rounds.
type usage struct {
	// cpu is the processes' CPU time, less their idle use.
	cpu time.Duration
	// kernel and ticks are the kernel's part and all of it, by
	// /proc/PID/stat's ticks.
	kernel, ticks time.Duration
	// wakeups is how many times their threads were woken, less the idle
	// ones.
	wakeups float64
}

// gatewayPIDs are every gateway process: the replicas that serve nothing of
// a scenario count too, so figures err high.
func (e *Env) gatewayPIDs() []int {
	var pids []int
	for _, r := range e.replicas {
		pids = append(pids, r.cmd.Process.Pid)
	}
	return pids
}

// cpuOf is the CPU time of the processes so far.
func cpuOf(pids []int) time.Duration {
	var sum time.Duration
	for _, pid := range pids {
		if d, err := processCPU(pid); err == nil {
			sum += d
		}
	}
	return sum
}

// measureCPU runs f and, when p goes through the gateway or kubectl proxy,
// adds the CPU time of the processes in the middle during f, and after it
// until they are quiet, to use[p.Name] (with the kernel's part and the
// threads' wake-ups): a recording is still being written
// when the client has seen the stream end, and its cost belongs to the
// stream, not to the next round. The gateway's idle use is subtracted
// (kubectl proxy has none: no informers, no leader election). kubectl
// proxy, a bare reverse proxy with plain HTTP on the client's side and no
// authentication, audit or recording, is the floor the gateway's figures
// are read against.
func (e *Env) measureCPU(p *Path, use map[string]usage, f func() error) error {
	var pids []int
	idle, idleWakeups := 0.0, 0.0
	switch p {
	case e.Direct:
		return f()
	case e.KubectlProxy:
		pids = []int{e.proxyCmd.Process.Pid}
	default:
		pids, idle, idleWakeups = e.gatewayPIDs(), e.IdleCPU, e.IdleWakeups
	}
	profiled := e.profileCPU(p, use)
	before, start := sampleOf(pids), time.Now()
	err := f()
	settle(pids)
	after, took := sampleOf(pids), time.Since(start).Seconds()
	u := use[p.Name]
	u.cpu += after.cpu - before.cpu - time.Duration(idle*took*float64(time.Second))
	u.kernel += after.kernel - before.kernel
	u.ticks += after.user + after.kernel - before.user - before.kernel
	u.wakeups += float64(after.wakeups-before.wakeups) - idleWakeups*took
	use[p.Name] = u
	if perr := profiled(); err == nil {
		err = perr
	}
	return err
}

// profileCPU starts a CPU profile of replica 0 for the first measurement of
// a gateway path in a scenario, when the run keeps profiles; the returned
// func waits for it and writes cpu-<n>-<path>.pb.gz.
func (e *Env) profileCPU(p *Path, use map[string]usage) func() error {
	if _, measured := use[p.Name]; e.Profiles == "" || (p != e.Gateway && p != e.GatewayUnrecorded) || measured {
		return func() error { return nil }
	}
	e.profiles++
	name := strings.NewReplacer(",", "", " ", "-").Replace(p.Name)
	path := filepath.Join(e.Profiles, fmt.Sprintf("cpu-%d-%s.pb.gz", e.profiles, name))
	done := make(chan error, 1)
	go func() { done <- e.savePprof(0, "profile?seconds="+strconv.Itoa(int(CPUProfileFor.Seconds())), path) }()
	return func() error { return <-done }
}

// CPUProfileFor is how long a CPU profile (Options.Profiles) runs from the
// start of the measurement it covers.
const CPUProfileFor = 2 * time.Second

// measureIdle sets IdleCPU and IdleWakeups from ten quiet seconds: the
// idle gateway's work is periodic (leader election every 2 s on each
// replica, sweeps), and a short window catches it or not.
func (e *Env) measureIdle() {
	pids := e.gatewayPIDs()
	settle(pids)
	before, start := sampleOf(pids), time.Now()
	time.Sleep(10 * time.Second)
	after, took := sampleOf(pids), time.Since(start)
	e.IdleCPU = float64(after.cpu-before.cpu) / float64(took)
	e.IdleWakeups = float64(after.wakeups-before.wakeups) / took.Seconds()
}

// settle waits until the processes use less than 5% of a core over 50 ms
// (at most two minutes).
func settle(pids []int) {
	const window = 50 * time.Millisecond
	last := cpuOf(pids)
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); {
		time.Sleep(window) // the window the use is measured over
		now := cpuOf(pids)
		if now-last < window/20 {
			return
		}
		last = now
	}
}

// cpuScenario is the gateway's CPU per unit of work ("request", "event",
// "MB") next to Teleport's, with what one core carries at that cost, from
// what measureCPU kept in use under path (the gateway, recorded or not).
func cpuScenario(name, unit string, use map[string]usage, path string, units float64) Scenario {
	per := float64(use[path].cpu.Nanoseconds()) / 1e3 / units
	s := Scenario{Name: name, Unit: "µs per " + unit, Metric: metricCPU, ByPath: map[string]float64{"gateway": per},
		KernelShare: map[string]float64{}, Wakeups: map[string]float64{}}
	s.split("gateway", use[path], units)
	if per > 0 {
		s.PerCore = 1e6 / per
	}
	switch unit {
	case "request":
		s.TeleportPerCore = 1e6 / teleportMicrosPerRequest
	case "MB":
		s.TeleportPerCore = 1e6 / teleportMicrosPerMB
	}
	return s
}

// minKernelShareOf is the least CPU time whose split between user and
// kernel is reported: a hundred ticks.
const minKernelShareOf = time.Second

// split keeps, as column, the wake-ups per unit of a path and the share of
// its CPU its processes spent in the kernel, when there was enough of
// either to tell.
func (s *Scenario) split(column string, u usage, units float64) {
	// Fewer than none: the idle estimate was off, and says nothing.
	if u.wakeups >= 0 {
		s.Wakeups[column] = u.wakeups / units
	}
	if u.ticks >= minKernelShareOf {
		s.KernelShare[column] = float64(u.kernel) / float64(u.ticks)
	}
}

// withProxy adds kubectl proxy's CPU for the same work.
func (s Scenario) withProxy(use map[string]usage, units float64) Scenario {
	if u := use[kubectlProxy]; u.cpu > 0 && units > 0 {
		s.ByPath[kubectlProxy] = float64(u.cpu.Nanoseconds()) / 1e3 / units
		s.split(kubectlProxy, u, units)
	}
	return s
}

// Pinning is a second configuration: the gateway processes alone on one
// CPU, the API servers, kwok, kubectl proxy and the clients on the others.
type Pinning struct{ Gateway, Rest string }

// Describe says where each part runs.
func (p Pinning) Describe() string {
	return fmt.Sprintf("pinned with taskset: gateway on CPU %s; API servers, kwok, kubectl proxy and clients on CPU %s", p.Gateway, p.Rest)
}

// DefaultPinning is the configuration this machine allows, if any.
func DefaultPinning() (Pinning, bool) {
	if _, err := exec.LookPath("taskset"); err != nil || runtime.NumCPU() < 2 {
		return Pinning{}, false
	}
	n := runtime.NumCPU()
	rest := "0"
	if n > 2 {
		rest += "-" + strconv.Itoa(n-2)
	}
	return Pinning{Gateway: strconv.Itoa(n - 1), Rest: rest}, true
}

// Pin moves every thread of the gateway processes to p.Gateway, and of this
// process and every other process it started to p.Rest; an empty p puts
// everything back on every CPU.
func (e *Env) Pin(p Pinning) error {
	all := "0-" + strconv.Itoa(runtime.NumCPU()-1)
	gw, rest := p.Gateway, p.Rest
	if gw == "" {
		gw, rest = all, all
	}
	isGateway := map[int]bool{}
	for _, r := range e.replicas {
		isGateway[r.cmd.Process.Pid] = true
	}
	for _, pid := range descendants(os.Getpid()) {
		cpus := rest
		if isGateway[pid] {
			cpus = gw
		}
		if out, err := exec.Command("taskset", "-a", "-p", "-c", cpus, strconv.Itoa(pid)).CombinedOutput(); err != nil {
			return fmt.Errorf("taskset %s %d: %v: %s", cpus, pid, err, out)
		}
	}
	return nil
}

// descendants is root and every process below it.
func descendants(root int) []int {
	children := map[int][]int{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		pid, err1 := strconv.Atoi(filepath.Base(filepath.Dir(path)))
		ppid, err2 := strconv.Atoi(f[1])
		if err1 == nil && err2 == nil {
			children[ppid] = append(children[ppid], pid)
		}
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}
