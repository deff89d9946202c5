package controlplane

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/credentials"
	"sessiongate.dev/sessiongate/internal/policy"
)

// Options configure the control plane.
type Options struct {
	// Namespace holds Clusters and the Sessions this gateway serves.
	Namespace string
	// Gateway names this installation; objects it makes on targets carry it.
	Gateway string
	// IngressBaseURL is the external URL that session endpoints start with.
	IngressBaseURL string
	Policy         policy.Policy
	// SweepInterval is how often orphaned target objects are looked for.
	SweepInterval time.Duration
	// Clock defaults to the real clock.
	Clock clock.PassiveClock
}

// Setup adds the leader-only control plane to mgr: the Session reconciler and
// the orphan sweep. The manager elects the leader; both run only there.
func Setup(mgr ctrl.Manager, opts Options) (*Sweeper, error) {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	t := &targets{
		client: mgr.GetClient(), apiReader: mgr.GetAPIReader(),
		namespace: opts.Namespace, gateway: opts.Gateway,
		clients: map[types.UID]cachedClient{},
	}
	r := &SessionReconciler{
		Client:         mgr.GetClient(),
		Recorder:       mgr.GetEventRecorder("sessiongate"),
		Clock:          opts.Clock,
		Policy:         opts.Policy,
		IngressBaseURL: opts.IngressBaseURL,
		targets:        t,
	}
	inNamespace := predicate.NewPredicateFuncs(func(o client.Object) bool { return o.GetNamespace() == opts.Namespace })
	err := ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.Session{}, builder.WithPredicates(inNamespace)).
		Owns(&corev1.Secret{}).
		Named("session").
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Complete(r)
	if err != nil {
		return nil, fmt.Errorf("setting up the session controller: %w", err)
	}
	sw := &Sweeper{client: mgr.GetClient(), targets: t, namespace: opts.Namespace, interval: opts.SweepInterval}
	if opts.SweepInterval > 0 {
		if err := mgr.Add(sw); err != nil {
			return nil, err
		}
	}
	klog.V(2).InfoS("Control plane set up", "namespace", opts.Namespace, "gateway", opts.Gateway)
	return sw, nil
}

// Sweeper removes objects on targets whose Session no longer exists, such as
// those left by a crash between creating them and recording the session.
type Sweeper struct {
	client    client.Client
	targets   *targets
	namespace string
	interval  time.Duration
}

// Start runs the sweep every interval until ctx ends. It needs leadership.
func (s *Sweeper) Start(ctx context.Context) error {
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	for {
		if err := s.Sweep(ctx); err != nil {
			klog.ErrorS(err, "Sweeping orphaned target objects")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// NeedLeaderElection says the sweep runs on the leader only.
func (s *Sweeper) NeedLeaderElection() bool { return true }

// Sweep revokes, on every Cluster, what belongs to sessions that no longer exist.
func (s *Sweeper) Sweep(ctx context.Context) error {
	clusters := &v1alpha1.ClusterList{}
	if err := s.client.List(ctx, clusters, client.InNamespace(s.namespace)); err != nil {
		return fmt.Errorf("listing clusters: %w", err)
	}
	sessions := &v1alpha1.SessionList{}
	if err := s.client.List(ctx, sessions, client.InNamespace(s.namespace)); err != nil {
		return fmt.Errorf("listing sessions: %w", err)
	}
	live := map[types.UID]bool{}
	for _, se := range sessions.Items {
		live[se.UID] = true
	}
	var firstErr error
	for i := range clusters.Items {
		c := &clusters.Items[i]
		if err := s.sweepCluster(ctx, c, live); err != nil {
			klog.ErrorS(err, "Sweeping cluster", "cluster", klog.KObj(c))
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	return firstErr
}

func (s *Sweeper) sweepCluster(ctx context.Context, c *v1alpha1.Cluster, live map[types.UID]bool) error {
	t, err := s.targets.forCluster(ctx, c)
	if err != nil {
		return err
	}
	uids, err := credentials.SessionUIDsOnTarget(ctx, t)
	if err != nil {
		return err
	}
	for uid := range uids {
		if live[uid] {
			continue
		}
		klog.V(2).InfoS("Removing orphaned session objects", "cluster", c.Name, "sessionUID", uid)
		if err := credentials.Revoke(ctx, t, uid); err != nil {
			return err
		}
	}
	return nil
}
