package bench

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"
)

// Options size a run.
type Options struct {
	BinDir   string
	Replicas int
	// Quick shrinks every scenario, for a smoke run.
	Quick bool
	// Only, when set, names the scenario groups to run (see Groups).
	Only []string
	Log  io.Writer
	// Profiles, when set, is where the scale scenario writes heap profiles
	// of the leader and a serving replica with every session registered.
	Profiles string
	// Settle, when set, is how long after registering them the scale
	// scenario reads the heaps per idle session a second time (see
	// SettleAfterRegistering).
	Settle time.Duration
}

// Groups are the scenario groups of a run, in order.
var Groups = []string{"get", "list", "watch", "exec", "echo", "portforward", "pinned", "lifecycle", "revocation", "scale"}

// Run performs every scenario and returns the result.
func Run(ctx context.Context, o Options) (*Result, error) {
	step := func(format string, args ...any) { fmt.Fprintf(o.Log, "bench: "+format+"\n", args...) }
	n := func(full, quick int) int {
		if o.Quick {
			return quick
		}
		return full
	}
	want := func(g string) bool { return len(o.Only) == 0 || slices.Contains(o.Only, g) }
	step("starting clusters, kwok, issuer, %d gateway replicas and kubectl proxy", o.Replicas)
	e, err := Start(ctx, o.BinDir, o.Replicas)
	defer e.Stop()
	if err != nil {
		return nil, err
	}
	e.Log = o.Log
	e.Profiles, e.Settle = o.Profiles, o.Settle
	if o.Quick {
		e.Settle = 0
	}
	res := &Result{Date: time.Now(), Machine: Machine(), Versions: e.Versions, IdleGatewayCPU: e.IdleCPU, IdleGatewayWakeups: e.IdleWakeups}
	config := ""
	add := func(s []Scenario, err error) error {
		if err != nil {
			return err
		}
		for i := range s {
			s[i].Config = config
		}
		res.Scenarios = append(res.Scenarios, s...)
		return nil
	}
	step("seeding 2,000 ConfigMaps of 2 KB")
	if err := e.seedConfigMaps(ctx, n(2000, 200), 2048); err != nil {
		return nil, err
	}
	perRound := time.Second
	if o.Quick {
		perRound = 300 * time.Millisecond
	}
	// The figures that compare paths, measured once as the machine comes
	// and once pinned.
	compare := func() error {
		for _, s := range []struct {
			group, what string
			run         func() ([]Scenario, error)
		}{
			{"get", "GET, 1 client", func() ([]Scenario, error) { return e.GetLatency(ctx, 1, n(6, 2), perRound) }},
			{"get", "GET, 32 clients", func() ([]Scenario, error) { return e.GetLatency(ctx, 32, n(6, 2), perRound) }},
			{"list", "LIST", func() ([]Scenario, error) { return e.List(ctx, n(9, 3)) }},
			{"watch", "WATCH fan-out", func() ([]Scenario, error) { return e.WatchFanOut(ctx, 100, n(10, 3)) }},
			{"exec", "exec stream of zeros", func() ([]Scenario, error) { return e.ExecThroughput(ctx, Zeros, int64(n(256, 8))<<20, n(4, 2)) }},
			{"exec", "exec stream of text", func() ([]Scenario, error) { return e.ExecThroughput(ctx, Text, int64(n(256, 8))<<20, n(4, 2)) }},
			{"echo", "exec keystroke echo", func() ([]Scenario, error) { return e.ExecEcho(ctx, n(400, 40), n(4, 2)) }},
			{"portforward", "port-forward stream", func() ([]Scenario, error) { return e.PortForward(ctx, int64(n(256, 8))<<20, n(4, 2)) }},
		} {
			if want(s.group) {
				step("%s %s", s.what, config)
				if err := add(s.run()); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := compare(); err != nil {
		return nil, err
	}
	if pin, ok := DefaultPinning(); ok && want("pinned") {
		if err := e.Pin(pin); err != nil {
			return nil, err
		}
		config = pin.Describe()
		if err := compare(); err != nil {
			return nil, err
		}
		config = ""
		if err := e.Pin(Pinning{}); err != nil {
			return nil, err
		}
	}
	if want("lifecycle") {
		step("session create → first request")
		if err := add(e.CreateToFirstRequest(ctx, "lifecycle-", n(50, 5))); err != nil {
			return nil, err
		}
	}
	if want("revocation") {
		step("revocation")
		if err := add(e.Revocation(ctx, "revoke-", n(10, 2))); err != nil {
			return nil, err
		}
	}
	if want("scale") {
		sessions, watches := n(10000, 300), n(5000, 300)
		step("%d sessions and %d watches on one replica", sessions, watches)
		// What the machine cannot hold at this size is a finding, not a
		// reason to lose the rest of the run.
		if err := add(e.Scale(ctx, sessions, watches, n(20, 2))); err != nil {
			step("scale: %v", err)
			res.Notes = append(res.Notes, fmt.Sprintf("Scale (%d sessions, %d watches) did not complete: %v", sessions, watches, err))
		}
	}
	res.Evaluate()
	return res, nil
}
