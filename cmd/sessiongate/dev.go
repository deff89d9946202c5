package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"

	"sessiongate.dev/sessiongate/internal/dev"
)

func newDevCommand() *cobra.Command {
	opts := dev.Options{}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a complete local sandbox: two clusters, kwok, an OIDC issuer and the gateway",
		Long: "Starts, on loopback, a management and a target cluster from bin/, kwok with a running pod\n" +
			"demo/web on the target, a development OIDC issuer and the gateway, then prints a walkthrough.\n" +
			"Runs until Ctrl-C, which stops everything it started.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctrl.SetLogger(klog.NewKlogr())
			useBinariesBesideMe()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			opts.Out = cmd.OutOrStdout()
			return dev.Run(ctx, opts)
		},
	}
	cmd.PersistentFlags().StringVar(&opts.Dir, "dir", ".sessiongate/dev", "Directory of the sandbox's state (kubeconfigs, CA, issuer key); emptied at start.")
	cmd.Flags().StringVar(&opts.Listen, "listen", "127.0.0.1:8443", "Address of the first gateway replica; replica i listens on port+i.")
	cmd.Flags().IntVar(&opts.Replicas, "replicas", 1, "Gateway replicas to run.")
	cmd.AddCommand(newDevTokenCommand(&opts.Dir))
	return cmd
}

func newDevTokenCommand(dir *string) *cobra.Command {
	var (
		groups []string
		ttl    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "token USER",
		Short: "Print a token for USER signed by the running sandbox's OIDC issuer",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tok, err := dev.Token(*dir, args[0], groups, ttl)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), tok)
			return err
		},
	}
	cmd.Flags().StringSliceVar(&groups, "groups", nil, "Groups to put in the token's groups claim.")
	cmd.Flags().DurationVar(&ttl, "ttl", time.Hour, "How long the token is valid.")
	return cmd
}

// useBinariesBesideMe points the sandbox at the kube-apiserver, etcd and kwok
// next to this binary (bin/ after make build) unless $KUBEBUILDER_ASSETS says
// otherwise.
func useBinariesBesideMe() {
	if os.Getenv("KUBEBUILDER_ASSETS") != "" {
		return
	}
	self, err := os.Executable()
	if err != nil {
		return
	}
	dir := filepath.Dir(self)
	if _, err := os.Stat(filepath.Join(dir, "kube-apiserver")); err == nil {
		_ = os.Setenv("KUBEBUILDER_ASSETS", dir)
	}
}
