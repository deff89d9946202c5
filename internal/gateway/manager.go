// Package gateway wires sessiongate's parts into one controller-runtime
// manager: the leader-elected control plane, and (on every replica) the data
// plane. cmd/sessiongate and the tests start a gateway the same way.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/api"
	"sessiongate.dev/sessiongate/internal/authn"
	"sessiongate.dev/sessiongate/internal/controlplane"
	"sessiongate.dev/sessiongate/internal/credentials"
	"sessiongate.dev/sessiongate/internal/dataplane"
	"sessiongate.dev/sessiongate/internal/policy"
	"sessiongate.dev/sessiongate/internal/proxy"
	"sessiongate.dev/sessiongate/internal/registry"
)

// Options configure a gateway process.
type Options struct {
	ControlPlane controlplane.Options

	LeaderElection          bool
	LeaderElectionNamespace string
	LeaderElectionID        string
	MetricsBindAddress      string
	HealthProbeBindAddress  string
	// Serve, when set, runs the data plane and its HTTPS server on this
	// replica; nil runs the control plane alone.
	Serve *ServeOptions
	// Pprof serves net/http/pprof under /debug/pprof/ on the metrics port.
	Pprof bool
	// SeveralPerProcess lets more than one gateway run in one process (tests);
	// they then share controller metrics.
	SeveralPerProcess bool
}

// Scheme knows the built-in kinds and sessiongate's own.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// Gateway is a configured manager with its parts added.
type Gateway struct {
	ctrl.Manager
	Sweeper  *controlplane.Sweeper
	Registry *registry.Registry
	server   *server
	authn    *authn.Authenticator
}

// Addr is the address the HTTPS server listens on (useful with port 0).
func (g *Gateway) Addr() string {
	if g.server == nil {
		return ""
	}
	return g.server.listener.Addr().String()
}

// New builds a gateway against the management cluster at cfg.
func New(cfg *rest.Config, opts Options) (*Gateway, error) {
	ns := opts.ControlPlane.Namespace
	if ns == "" {
		return nil, fmt.Errorf("the gateway namespace must be set")
	}
	leNamespace := opts.LeaderElectionNamespace
	if leNamespace == "" {
		leNamespace = ns
	}
	// /healthz and /readyz are served on the health probe port and on the
	// metrics port alike; the checks are filled in once the manager exists.
	readyChecks := map[string]healthz.Checker{}
	extra := map[string]http.Handler{
		"/healthz": http.StripPrefix("/healthz", &healthz.Handler{Checks: map[string]healthz.Checker{"ping": healthz.Ping}}),
		"/readyz":  http.StripPrefix("/readyz", &healthz.Handler{Checks: readyChecks}),
	}
	if opts.Pprof {
		extra["/debug/pprof/"] = http.HandlerFunc(pprof.Index)
		extra["/debug/pprof/profile"] = http.HandlerFunc(pprof.Profile)
		extra["/debug/pprof/trace"] = http.HandlerFunc(pprof.Trace)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: Scheme(),
		Cache: cache.Options{
			// The gateway reads only its own namespace, and of the Secrets
			// there only those it wrote: least privilege, small memory.
			DefaultNamespaces: map[string]cache.Config{ns: {}},
			// Managed fields are most of a small object's size and the
			// gateway never reads them: thousands of idle sessions cost less.
			DefaultTransform: cache.TransformStripManagedFields(),
			ByObject: map[client.Object]cache.ByObject{
				&corev1.Secret{}: {Label: labels.SelectorFromSet(labels.Set{credentials.LabelManagedBy: credentials.ManagedByValue})},
			},
		},
		LeaderElection:                opts.LeaderElection,
		LeaderElectionNamespace:       leNamespace,
		LeaderElectionID:              opts.LeaderElectionID,
		LeaderElectionReleaseOnCancel: true,
		Metrics:                       metricsserver.Options{BindAddress: opts.MetricsBindAddress, ExtraHandlers: extra},
		HealthProbeBindAddress:        opts.HealthProbeBindAddress,
		Controller:                    config.Controller{SkipNameValidation: &opts.SeveralPerProcess},
	})
	if err != nil {
		return nil, fmt.Errorf("creating the manager: %w", err)
	}
	sw, err := controlplane.Setup(mgr, opts.ControlPlane)
	if err != nil {
		return nil, err
	}
	gw := &Gateway{Manager: mgr, Sweeper: sw}
	if opts.Serve != nil {
		if err := gw.setupDataPlane(ns, opts.ControlPlane.Policy, opts.Serve); err != nil {
			return nil, err
		}
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	if gw.authn != nil {
		readyChecks["oidc-issuer"] = func(r *http.Request) error { return gw.authn.Ready(r.Context()) }
	}
	readyChecks["informers"] = func(r *http.Request) error {
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		if !mgr.GetCache().WaitForCacheSync(ctx) {
			return errors.New("informers not synced")
		}
		return nil
	}
	for name, check := range readyChecks {
		if err := mgr.AddReadyzCheck(name, check); err != nil {
			return nil, err
		}
	}
	return gw, nil
}

// setupDataPlane adds what every replica runs: the registry, the data plane
// controller that fills it, and the HTTPS server with the proxy.
func (g *Gateway) setupDataPlane(namespace string, pol policy.Policy, opts *ServeOptions) error {
	a, err := authn.New(opts.OIDC)
	if err != nil {
		return err
	}
	log, closer, err := openAudit(opts)
	if err != nil {
		return err
	}
	g.authn = a
	g.Registry = registry.New(clock.RealClock{})
	g.Registry.OnChange = proxy.SetActiveSessions
	if err := dataplane.Setup(g.Manager, namespace, g.Registry); err != nil {
		return fmt.Errorf("setting up the data plane: %w", err)
	}
	mux := http.NewServeMux()
	ownerClaim := opts.OIDC.UsernameClaim
	if ownerClaim == "" {
		ownerClaim = "sub"
	}
	(&api.Handler{Client: g.GetClient(), Authn: a, Policy: pol, Namespace: namespace, OwnerClaim: ownerClaim}).Register(mux)
	srv, err := newServer(opts, routes(proxy.NewHandler(g.Registry, a, log), mux))
	if err != nil {
		return err
	}
	srv.closer = closer
	g.server = srv
	return g.Manager.Add(srv)
}
