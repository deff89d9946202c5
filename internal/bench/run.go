package bench

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Options size a run.
type Options struct {
	BinDir   string
	Replicas int
	// Quick shrinks every scenario, for a smoke run.
	Quick bool
	Log   io.Writer
}

// Run performs every scenario and returns the result.
func Run(ctx context.Context, o Options) (*Result, error) {
	step := func(format string, args ...any) { fmt.Fprintf(o.Log, "bench: "+format+"\n", args...) }
	n := func(full, quick int) int {
		if o.Quick {
			return quick
		}
		return full
	}
	step("starting clusters, kwok, issuer, %d gateway replicas and kubectl proxy", o.Replicas)
	e, err := Start(ctx, o.BinDir, o.Replicas)
	defer e.Stop()
	if err != nil {
		return nil, err
	}
	res := &Result{Date: time.Now(), Machine: Machine(), Versions: e.Versions}
	add := func(s []Scenario, err error) error {
		if err != nil {
			return err
		}
		res.Scenarios = append(res.Scenarios, s...)
		return nil
	}
	step("seeding 2,000 ConfigMaps of 2 KB")
	if err := e.seedConfigMaps(ctx, n(2000, 200), 2048); err != nil {
		return nil, err
	}
	perRound := 2 * time.Second
	if o.Quick {
		perRound = 300 * time.Millisecond
	}
	step("GET, 1 client")
	if err := add(e.GetLatency(ctx, 1, n(3, 1), perRound)); err != nil {
		return nil, err
	}
	step("GET, 32 clients")
	if err := add(e.GetLatency(ctx, 32, n(3, 1), perRound)); err != nil {
		return nil, err
	}
	step("LIST")
	if err := add(e.List(ctx, n(7, 2))); err != nil {
		return nil, err
	}
	step("WATCH fan-out")
	if err := add(e.WatchFanOut(ctx, 100, n(10, 2))); err != nil {
		return nil, err
	}
	step("exec stream")
	if err := add(e.ExecThroughput(ctx, int64(n(256, 8))<<20, n(2, 1))); err != nil {
		return nil, err
	}
	step("exec keystroke echo")
	if err := add(e.ExecEcho(ctx, n(200, 20))); err != nil {
		return nil, err
	}
	step("session create → first request")
	s, err := e.CreateToFirstRequest(ctx, n(50, 5))
	if err := add([]Scenario{s}, err); err != nil {
		return nil, err
	}
	step("revocation")
	if err := add(e.Revocation(ctx, n(10, 2))); err != nil {
		return nil, err
	}
	step("memory with many sessions and watches")
	if err := add(e.Memory(ctx, n(1000, 50), n(1000, 50))); err != nil {
		return nil, err
	}
	res.Evaluate()
	return res, nil
}
