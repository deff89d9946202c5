package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"

	"sessiongate.dev/sessiongate/internal/gateway"
	"sessiongate.dev/sessiongate/internal/policy"
)

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "sessiongate",
		Short:         "Just-in-time, time-limited, audited access to Kubernetes API servers",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	root.AddCommand(newServeCommand())
	return root
}

func newServeCommand() *cobra.Command {
	var (
		opts         gateway.Options
		cp           = &opts.ControlPlane
		clusterRoles []string
	)
	def := policy.Default()
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway: the leader-elected control plane and the data plane",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cp.Policy.ClusterRoles = clusterRoles
			if cp.IngressBaseURL == "" || !strings.HasPrefix(cp.IngressBaseURL, "https://") {
				return fmt.Errorf("--ingress-base-url must be an https:// URL, got %q", cp.IngressBaseURL)
			}
			if cp.Policy.MaxTTL < cp.Policy.MinTTL {
				return fmt.Errorf("--max-ttl (%s) is shorter than --min-ttl (%s)", cp.Policy.MaxTTL, cp.Policy.MinTTL)
			}
			ctrl.SetLogger(klog.NewKlogr())
			cfg, err := ctrl.GetConfig()
			if err != nil {
				return fmt.Errorf("loading the management cluster's kubeconfig: %w", err)
			}
			gw, err := gateway.New(cfg, opts)
			if err != nil {
				return err
			}
			klog.V(2).InfoS("Starting sessiongate", "namespace", cp.Namespace, "gateway", cp.Gateway)
			return gw.Start(ctrl.SetupSignalHandler())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cp.Namespace, "namespace", "sessiongate", "Namespace of the Clusters and Sessions this gateway serves.")
	f.StringVar(&cp.Gateway, "gateway-name", "sessiongate", "Name of this installation; labels what it creates on targets so that two gateways never collect each other's objects.")
	f.StringVar(&cp.IngressBaseURL, "ingress-base-url", "", "External https:// URL of the gateway; session endpoints are <url>/sessiongate/<session>/kas.")
	f.DurationVar(&cp.Policy.MinTTL, "min-ttl", def.MinTTL, "Shortest spec.ttl a session may ask for.")
	f.DurationVar(&cp.Policy.MaxTTL, "max-ttl", def.MaxTTL, "Longest spec.ttl a session may ask for.")
	f.StringSliceVar(&clusterRoles, "allowed-cluster-roles", def.ClusterRoles, "ClusterRoles a session may ask for in spec.accessLevel.clusterRole.")
	f.DurationVar(&cp.SweepInterval, "sweep-interval", 5*time.Minute, "How often to look for and remove target objects whose session is gone.")
	f.BoolVar(&opts.LeaderElection, "leader-elect", true, "Elect one leader among replicas to run the control plane.")
	f.StringVar(&opts.LeaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader election Lease (default: --namespace).")
	f.StringVar(&opts.LeaderElectionID, "leader-election-id", "sessiongate-control-plane", "Name of the leader election Lease.")
	f.StringVar(&opts.MetricsBindAddress, "metrics-bind-address", ":8080", "Address of the Prometheus metrics endpoint (0 disables it).")
	f.StringVar(&opts.HealthProbeBindAddress, "health-probe-bind-address", ":8081", "Address of /healthz and /readyz.")
	return cmd
}
