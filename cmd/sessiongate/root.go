package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"

	"sessiongate.dev/sessiongate/internal/authn"
	"sessiongate.dev/sessiongate/internal/controlplane"
	"sessiongate.dev/sessiongate/internal/gateway"
	"sessiongate.dev/sessiongate/internal/policy"
	"sessiongate.dev/sessiongate/internal/recording"
)

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "sessiongate",
		Short:         "Just-in-time, time-limited, audited access to Kubernetes API servers",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	root.AddCommand(newServeCommand(), newDevCommand())
	return root
}

func newServeCommand() *cobra.Command {
	var (
		opts         gateway.Options
		cp           = &opts.ControlPlane
		serve        gateway.ServeOptions
		clusterRoles []string
		groups       []string
		deniedNS     []string
		kubeconfig   string
		istio        bool
		istioSel     string
		recDir       string
		s3           recording.S3Config
		s3CAFile     string
		http2        bool
	)
	def := policy.Default()
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway: the leader-elected control plane and the data plane",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cp.Policy.ClusterRoles = clusterRoles
			cp.Policy.Groups = groups
			cp.Policy.DeniedNamespaces = deniedNS
			cp.Policy.OwnerClaims = serve.OIDC.OwnerClaims
			sink, err := recordingSink(recDir, s3, s3CAFile)
			if err != nil {
				return err
			}
			serve.Recordings = sink
			serve.HTTP1Only = !http2
			if istio {
				sel, err := labels.ConvertSelectorToLabelsMap(istioSel)
				if err != nil || len(sel) == 0 {
					return fmt.Errorf("--istio-selector must be labels like app.kubernetes.io/name=sessiongate, got %q", istioSel)
				}
				cp.Istio = &controlplane.IstioOptions{Selector: sel, GroupsClaim: serve.OIDC.GroupsClaim}
			}
			if cp.IngressBaseURL == "" || !strings.HasPrefix(cp.IngressBaseURL, "https://") {
				return fmt.Errorf("--ingress-base-url must be an https:// URL, got %q", cp.IngressBaseURL)
			}
			if err := cp.Policy.Check(); err != nil {
				return err
			}
			opts.Serve = &serve
			ctrl.SetLogger(klog.NewKlogr())
			cfg, err := restConfig(kubeconfig)
			if err != nil {
				return fmt.Errorf("loading the management cluster's kubeconfig: %w", err)
			}
			cfg.QPS, cfg.Burst = 100, 200
			gw, err := gateway.New(cfg, opts)
			if err != nil {
				return err
			}
			klog.V(2).InfoS("Starting sessiongate", "namespace", cp.Namespace, "gateway", cp.Gateway)
			return gw.Start(ctrl.SetupSignalHandler())
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "Kubeconfig of the management cluster (default: $KUBECONFIG, then in-cluster).")
	f.StringVar(&cp.Namespace, "namespace", "sessiongate", "Namespace of the Clusters and Sessions this gateway serves.")
	f.StringVar(&cp.Gateway, "gateway-name", "", "Name of this installation (at most 63 characters); it names and labels what the gateway creates on targets, so two installations never touch each other's objects (default: the namespace and a random suffix, chosen once and kept in ConfigMap sessiongate-installation).")
	f.StringVar(&cp.IngressBaseURL, "ingress-base-url", "", "External https:// URL of the gateway; session endpoints are <url>/sessiongate/<session>/kas.")
	f.DurationVar(&cp.Policy.MinTTL, "min-ttl", def.MinTTL, "Shortest spec.ttl a session may ask for.")
	f.DurationVar(&cp.Policy.MaxTTL, "max-ttl", def.MaxTTL, "Longest spec.ttl a session may ask for.")
	f.StringSliceVar(&clusterRoles, "allowed-cluster-roles", def.ClusterRoles, "ClusterRoles a session may ask for in spec.accessLevel.clusterRole. Only view is ever granted cluster-wide; others need spec.accessLevel.namespaces.")
	f.StringSliceVar(&groups, "allowed-groups", nil, "Groups a SignedCertificate session may carry in spec.accessLevel.group (default: none). system:* groups are always refused.")
	f.StringSliceVar(&deniedNS, "denied-namespaces", def.DeniedNamespaces, "Namespaces no grant may ever name; each Cluster's session namespace is always denied too.")
	f.DurationVar(&cp.SweepInterval, "sweep-interval", 5*time.Minute, "How often to look for and remove target objects whose session is gone.")
	f.DurationVar(&cp.SweepGrace, "sweep-grace", controlplane.DefaultSweepGrace, "Target objects younger than this are never swept, so a session being minted is never taken for an orphan.")
	f.BoolVar(&istio, "istio-authorization-policies", false, "Give each Active session an Istio AuthorizationPolicy (security.istio.io/v1, in --namespace) that lets its path through the mesh only for JWTs whose owner claim names the session's owner; the gateway verifies tokens itself either way.")
	f.StringVar(&istioSel, "istio-selector", "app.kubernetes.io/name=sessiongate", "Labels of the workloads the per-session AuthorizationPolicies apply to (the gateway's pods, or the ingress gateway in --namespace).")
	f.StringVar(&recDir, "recording-dir", "/var/lib/sessiongate/recordings", "Directory that keeps exec and attach recordings (asciicast v2), when no S3 store is set.")
	f.StringVar(&s3.Endpoint, "recording-s3-endpoint", "", "https:// endpoint of an S3-compatible store for recordings, instead of --recording-dir; credentials come from $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY.")
	f.StringVar(&s3.Bucket, "recording-s3-bucket", "", "Bucket of the recordings store.")
	f.StringVar(&s3.Prefix, "recording-s3-prefix", "", "Prefix of recording object names, e.g. sessiongate/.")
	f.StringVar(&s3.Region, "recording-s3-region", "", "Region of the recordings store, if it needs one.")
	f.StringVar(&s3CAFile, "recording-s3-ca-file", "", "CA that verifies the recordings store (default: system roots).")
	f.StringSliceVar(&serve.AuditorGroups, "auditor-groups", nil, "Groups whose members may list and replay every session's recordings (owners and approvers may see their sessions').")
	f.StringVar(&serve.Listen, "listen", ":8443", "Address of the HTTPS server that serves session endpoints.")
	f.StringVar(&serve.TLSCertFile, "tls-cert-file", "", "Serving certificate (PEM); reloaded when it changes.")
	f.StringVar(&serve.TLSKeyFile, "tls-key-file", "", "Key of the serving certificate (PEM).")
	f.BoolVar(&http2, "http2", true, "Offer callers HTTP/2. With --http2=false every caller speaks HTTP/1.1: a small request costs the gateway less CPU, but each request in flight and each watch takes a connection of its own (exec, attach and port-forward use HTTP/1.1 either way).")
	f.StringVar(&serve.OIDC.IssuerURL, "oidc-issuer-url", "", "https:// URL of the OIDC issuer whose tokens callers present.")
	f.StringSliceVar(&serve.OIDC.Audiences, "oidc-audience", nil, "Audiences accepted in callers' tokens (at least one).")
	f.StringVar(&serve.OIDC.CAFile, "oidc-ca-file", "", "CA that verifies the issuer's TLS certificate (default: system roots).")
	f.StringVar(&serve.OIDC.UsernameClaim, "oidc-username-claim", "sub", "Claim that names the caller in audit records.")
	f.StringVar(&serve.OIDC.GroupsClaim, "oidc-groups-claim", "groups", "Claim that lists the caller's groups.")
	f.StringSliceVar(&serve.OIDC.OwnerClaims, "oidc-owner-claims", authn.DefaultOwnerClaims, "Claims a session's owner may be matched on (spec.owner.userPrincipal.claim); must include --oidc-username-claim. email counts only with email_verified: true; registered claims (iss, aud, ...) are refused.")
	f.DurationVar(&serve.OIDC.ExpiryGrace, "oidc-expiry-grace", 0, "Accept tokens this long past their exp (at most 5m). nbf and iat get a fixed 10s leeway.")
	f.StringSliceVar(&serve.OIDC.Algorithms, "oidc-signing-algs", nil, "Signing algorithms accepted (default: RS*, ES*, PS*, EdDSA; never HS* or none).")
	f.StringSliceVar(&serve.AdminGroups, "admin-groups", nil, "Groups whose members may revoke every session of a user or group at once (POST /api/v1/revocations, sgctl revoke).")
	f.StringVar(&serve.AuditLog, "audit-log", "-", "Where audit records (audit.k8s.io/v1 Event JSON lines) go: - for stdout, or a file.")
	f.BoolVar(&opts.LeaderElection, "leader-elect", true, "Elect one leader among replicas to run the control plane.")
	f.StringVar(&opts.LeaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader election Lease (default: --namespace).")
	f.StringVar(&opts.LeaderElectionID, "leader-election-id", "sessiongate-control-plane", "Name of the leader election Lease.")
	f.StringVar(&opts.MetricsBindAddress, "metrics-bind-address", ":8080", "Address of the Prometheus metrics endpoint (0 disables it).")
	f.BoolVar(&opts.MetricsSecure, "metrics-secure", true, "Serve metrics over HTTPS to callers the management cluster authenticates and authorises (get on the /metrics non-resource URL). Without it --metrics-bind-address must be loopback.")
	f.BoolVar(&opts.Pprof, "enable-pprof", false, "Serve Go's pprof profiles under /debug/pprof/ on the metrics port (behind the same authentication).")
	f.StringVar(&opts.HealthProbeBindAddress, "health-probe-bind-address", ":8081", "Address of /healthz and /readyz.")
	return cmd
}

// restConfig loads the management cluster's config from a kubeconfig file,
// or the usual places when none is named.
func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		return clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	return ctrl.GetConfig()
}

// recordingSink is the S3 store when one is named, else the directory.
func recordingSink(dir string, s3 recording.S3Config, caFile string) (recording.Sink, error) {
	if s3.Endpoint == "" {
		if dir == "" {
			return nil, fmt.Errorf("--recording-dir must name a directory when no --recording-s3-endpoint is set")
		}
		return recording.Dir(dir), nil
	}
	s3.AccessKey, s3.SecretKey = os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--recording-s3-ca-file: %w", err)
		}
		s3.CA = b
	}
	sink, err := recording.NewS3(s3)
	if err != nil {
		return nil, fmt.Errorf("--recording-s3-*: %w", err)
	}
	return sink, nil
}
