// Package gateway wires sessiongate's parts into controller-runtime managers:
// on every replica a manager for the data plane, the HTTPS server, metrics
// and health; beside it, the leader-elected control plane in a manager of its
// own, so that losing leadership (a short API outage is enough) never stops a
// replica from serving the sessions it has. cmd/sessiongate and the tests
// start a gateway the same way.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync/atomic"
	"time"

	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/api"
	"sessiongate.dev/sessiongate/internal/authn"
	"sessiongate.dev/sessiongate/internal/controlplane"
	"sessiongate.dev/sessiongate/internal/credentials"
	"sessiongate.dev/sessiongate/internal/dataplane"
	"sessiongate.dev/sessiongate/internal/kubectldebug"
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
	// MetricsSecure serves metrics (and pprof) over HTTPS to callers the
	// management cluster authenticates and authorises (TokenReview and
	// SubjectAccessReview). Without it the metrics address must be loopback.
	MetricsSecure          bool
	HealthProbeBindAddress string
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
	if err := securityv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// Gateway is one replica: its manager (data plane, server, metrics, health)
// and the control plane that campaigns for leadership beside it.
type Gateway struct {
	ctrl.Manager
	Registry *registry.Registry
	server   *server
	authn    *authn.Authenticator
	cp       *controlPlane
}

// Addr is the address the HTTPS server listens on (useful with port 0).
func (g *Gateway) Addr() string {
	if g.server == nil {
		return ""
	}
	return g.server.listener.Addr().String()
}

// Name is the installation's name, which names what it makes on targets.
func (g *Gateway) Name() string { return g.cp.opts.ControlPlane.Gateway }

// Leading reports whether this replica's control plane holds leadership now.
func (g *Gateway) Leading() bool { return g.cp.leading.Load() }

// The metrics filter asks the management cluster who a scraper is and whether
// it may read /metrics.
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// New builds a gateway against the management cluster at cfg.
func New(cfg *rest.Config, opts Options) (*Gateway, error) {
	ns := opts.ControlPlane.Namespace
	if ns == "" {
		return nil, fmt.Errorf("the gateway namespace must be set")
	}
	if err := opts.ControlPlane.Policy.Check(); err != nil {
		return nil, err
	}
	if err := checkMetricsAddress(opts); err != nil {
		return nil, err
	}
	if opts.LeaderElectionNamespace == "" {
		opts.LeaderElectionNamespace = ns
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
	metrics := metricsserver.Options{BindAddress: opts.MetricsBindAddress, ExtraHandlers: extra}
	if opts.MetricsSecure {
		metrics.SecureServing = true
		metrics.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	watches := newWatchHealth()
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 Scheme(),
		MapperProvider:         newMapper,
		Cache:                  dataPlaneCache(cacheOptions(ns, watches)),
		Metrics:                metrics,
		HealthProbeBindAddress: opts.HealthProbeBindAddress,
		Controller:             config.Controller{SkipNameValidation: &opts.SeveralPerProcess},
	})
	if err != nil {
		return nil, fmt.Errorf("creating the manager: %w", err)
	}
	if opts.ControlPlane.Gateway == "" {
		if opts.ControlPlane.Gateway, err = installationName(context.Background(), mgr.GetAPIReader(), cfg, ns); err != nil {
			return nil, err
		}
	}
	if msgs := validation.IsDNS1123Label(opts.ControlPlane.Gateway); len(msgs) > 0 {
		return nil, fmt.Errorf("--gateway-name %q: %s", opts.ControlPlane.Gateway, strings.Join(msgs, "; "))
	}
	gw := &Gateway{Manager: mgr, cp: &controlPlane{cfg: cfg, opts: opts, cache: mgr.GetCache()}}
	if err := mgr.Add(gw.cp); err != nil {
		return nil, err
	}
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
	readyChecks["watches"] = func(*http.Request) error { return watches.check() }
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
	klog.V(2).InfoS("Gateway configured", "namespace", ns, "gateway", opts.ControlPlane.Gateway)
	return gw, nil
}

// checkMetricsAddress refuses plain-HTTP metrics (and pprof) anywhere but on
// loopback: they describe sessions and can hold a process's secrets.
func checkMetricsAddress(opts Options) error {
	addr := opts.MetricsBindAddress
	if opts.MetricsSecure || addr == "" || addr == "0" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--metrics-bind-address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("--metrics-bind-address %q is not loopback: serve metrics with --metrics-secure, or bind them to 127.0.0.1", addr)
	}
	return nil
}

func cacheOptions(ns string, watches *watchHealth) cache.Options {
	return cache.Options{
		DefaultWatchErrorHandler: watches.handle,
		// The gateway reads only its own namespace, and of the Secrets
		// there only those it wrote: least privilege, small memory.
		DefaultNamespaces: map[string]cache.Config{ns: {}},
		// Managed fields are most of a small object's size and the
		// gateway never reads them: thousands of idle sessions cost less.
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&v1alpha1.Session{}: {Transform: internSessions(cache.TransformStripManagedFields())},
			&corev1.Secret{}: {
				Label:     labels.SelectorFromSet(labels.Set{credentials.LabelManagedBy: credentials.ManagedByValue}),
				Transform: compactSecrets(cache.TransformStripManagedFields()),
			},
		},
	}
}

// dataPlaneCache is the replica's own cache: the data plane never changes
// what it reads, so it reads the cached Secrets themselves, and an idle
// session's bearer token is held once (by the cache) instead of twice. The
// control plane, which changes what it reads, borrows the same cache through
// a termCache that copies Secrets before handing them over.
func dataPlaneCache(o cache.Options) cache.Options {
	for k, by := range o.ByObject {
		if _, ok := k.(*corev1.Secret); ok {
			by.UnsafeDisableDeepCopy = ptr.To(true)
			o.ByObject[k] = by
		}
	}
	return o
}

// controlPlane runs the leader-only control plane in a manager of its own,
// and campaigns again whenever it loses leadership: controller-runtime ends a
// manager that loses its lease, and a manager cannot be started twice, so each
// term gets a fresh one.
type controlPlane struct {
	cfg  *rest.Config
	opts Options
	// cache is the replica's, which every term borrows.
	cache   cache.Cache
	indexes sharedIndexes
	// term is the current (or last) term's borrowed cache.
	term    atomic.Pointer[termCache]
	leading atomic.Bool
}

// NeedLeaderElection: the replica's own manager always runs this; the
// manager inside campaigns.
func (c *controlPlane) NeedLeaderElection() bool { return false }

func (c *controlPlane) Start(ctx context.Context) error {
	backoff := wait.Backoff{Duration: time.Second, Factor: 2, Cap: 30 * time.Second, Steps: 1 << 30}
	for {
		mgr, term, err := c.newManager()
		if err != nil {
			return err
		}
		c.term.Store(term)
		termCtx, endTerm := context.WithCancel(ctx)
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			select {
			case <-mgr.Elected():
				c.leading.Store(true)
				klog.V(2).InfoS("Leading the control plane")
			case <-termCtx.Done():
			}
		}()
		err = mgr.Start(termCtx)
		endTerm()
		<-watched
		term.end()
		c.leading.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		klog.ErrorS(err, "Control plane stopped; this replica keeps serving its sessions and campaigns again")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff.Step()):
		}
	}
}

func (c *controlPlane) newManager() (ctrl.Manager, *termCache, error) {
	o := c.opts
	term := newTermCache(c.cache, &c.indexes)
	mgr, err := ctrl.NewManager(c.cfg, ctrl.Options{
		Scheme:                        Scheme(),
		MapperProvider:                newMapper,
		NewCache:                      func(*rest.Config, cache.Options) (cache.Cache, error) { return term, nil },
		LeaderElection:                o.LeaderElection,
		LeaderElectionNamespace:       o.LeaderElectionNamespace,
		LeaderElectionID:              o.LeaderElectionID,
		LeaderElectionReleaseOnCancel: true,
		Metrics:                       metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:        "0",
		// Each term builds the same controllers again in this process.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("creating the control plane manager: %w", err)
	}
	if err := controlplane.Setup(mgr, o.ControlPlane); err != nil {
		return nil, nil, err
	}
	return mgr, term, nil
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
	g.Registry.OnRemove = proxy.ForgetSession
	if err := dataplane.Setup(g.Manager, namespace, g.Registry); err != nil {
		return fmt.Errorf("setting up the data plane: %w", err)
	}
	if err := g.Manager.Add(&dataplane.ActivityReporter{Client: g.GetClient(), Registry: g.Registry, Namespace: namespace, Interval: opts.ActivityReportInterval}); err != nil {
		return err
	}
	mux := http.NewServeMux()
	ownerClaim := opts.OIDC.UsernameClaim
	if ownerClaim == "" {
		ownerClaim = "sub"
	}
	(&api.Handler{
		Client: g.GetClient(), APIReader: g.GetAPIReader(), Authn: a, Policy: pol, Namespace: namespace,
		OwnerClaim: ownerClaim, Audit: log, AdminGroups: opts.AdminGroups,
		Recordings: opts.Recordings, AuditorGroups: opts.AuditorGroups,
		Registry: g.Registry, Gateway: g.Name(),
	}).Register(mux)
	ph := proxy.NewHandler(g.Registry, a, log)
	ph.Recordings = opts.Recordings
	ph.Debug = proxy.DebugConfig{Gateway: g.Name(), Recorder: &kubectldebug.Recorder{Client: g.GetClient(), Reader: g.GetAPIReader()}}
	srv, err := newServer(opts, routes(ph, mux))
	if err != nil {
		return err
	}
	srv.closer = closer
	g.server = srv
	return g.Manager.Add(srv)
}
