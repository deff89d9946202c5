// Command sgbench runs `make bench`: the gateway measured against the direct
// path and kubectl proxy, written to bench/results.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"

	"sessiongate.dev/sessiongate/internal/bench"
)

func main() {
	var (
		binDir   = flag.String("bin", "bin", "Directory with sessiongate, kubectl, kube-apiserver, etcd and kwok.")
		out      = flag.String("out", "bench/results", "Directory for latest.json and latest.md.")
		replicas = flag.Int("replicas", 3, "Gateway replicas (revocation is measured on all of them).")
		quick    = flag.Bool("quick", false, "Small sizes, for a smoke run.")
		only     = flag.String("only", "", "Comma-separated scenario groups to run, of "+strings.Join(bench.Groups, ",")+" (default all).")
		profiles = flag.String("profiles", "", "Directory for heap profiles of the leader and a serving replica at scale, and CPU profiles of the gateway in each scenario's first gateway round (go tool pprof reads them).")
		settle   = flag.Duration("settle", bench.SettleAfterRegistering, "How long after registering them the heaps per idle session are read again (0: not again; -quick: never).")
	)
	flag.Parse()
	ctrl.SetLogger(klog.NewKlogr())
	abs, err := filepath.Abs(*binDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("KUBEBUILDER_ASSETS", abs)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := bench.Run(ctx, bench.Options{BinDir: abs, Replicas: *replicas, Quick: *quick, Only: groups(*only), Log: os.Stderr, Profiles: *profiles, Settle: *settle})
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if err := res.Write(*out); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	fmt.Print(res.Markdown())
}

func groups(only string) []string {
	if only == "" {
		return nil
	}
	return strings.Split(only, ",")
}
