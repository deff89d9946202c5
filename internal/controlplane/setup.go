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
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/credentials"
	"sessiongate.dev/sessiongate/internal/notify"
	"sessiongate.dev/sessiongate/internal/policy"
)

// Options configure the control plane.
type Options struct {
	// Namespace holds Clusters and the Sessions this gateway serves.
	Namespace string
	// Gateway names this installation; objects it makes on targets carry it
	// in their names and labels.
	Gateway string
	// IngressBaseURL is the external URL that session endpoints start with.
	IngressBaseURL string
	Policy         policy.Policy
	// SweepInterval is how often orphaned target objects are looked for.
	SweepInterval time.Duration
	// SweepGrace spares target objects younger than this from the sweep, so
	// that a session minted while the sweep runs is never taken for an orphan.
	SweepGrace time.Duration
	// ClusterProbeInterval is how often a Cluster's target is probed.
	ClusterProbeInterval time.Duration
	// Clock defaults to the real clock.
	Clock clock.PassiveClock
	// Notify tunes notification delivery (queue, retries, backoff).
	Notify notify.Options
	// Istio, when set, gives each Active session an Istio AuthorizationPolicy.
	Istio *IstioOptions
}

// indexSessionCluster indexes Sessions by spec.cluster.
const indexSessionCluster = "spec.cluster"

// DefaultSweepGrace is the default of Options.SweepGrace.
const DefaultSweepGrace = 2 * time.Minute

func (o *Options) defaults() {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.SweepGrace == 0 {
		o.SweepGrace = DefaultSweepGrace
	}
	if o.ClusterProbeInterval == 0 {
		o.ClusterProbeInterval = time.Minute
	}
}

// Setup adds the leader-only control plane to mgr: the Session and Cluster
// reconcilers and the orphan sweep. The manager elects the leader; all of
// them run only there.
func Setup(mgr ctrl.Manager, opts Options) error {
	opts.defaults()
	t := newTargets(mgr.GetClient(), mgr.GetAPIReader(), opts)
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.Session{}, indexSessionCluster, func(o client.Object) []string {
		return []string{o.(*v1alpha1.Session).Spec.Cluster}
	}); err != nil {
		return fmt.Errorf("indexing sessions by cluster: %w", err)
	}
	// One recorder for the control plane: its notes fit what the API server
	// takes, and its memory is bounded however many sessions it tells of.
	writer := newEventWriter(mgr.GetClient(), "sessiongate", eventWriters, maxSeries, maxQueued)
	if err := mgr.Add(writer); err != nil {
		return err
	}
	rec := boundedNotes{writer}
	r := &SessionReconciler{
		Client:         mgr.GetClient(),
		APIReader:      mgr.GetAPIReader(),
		Recorder:       rec,
		Clock:          opts.Clock,
		Policy:         opts.Policy,
		IngressBaseURL: opts.IngressBaseURL,
		Istio:          opts.Istio,
		targets:        t,
		written:        &ownWrites{now: time.Now},
	}
	r.notifier = newNotifier(opts.Notify, r.Recorder)
	if err := mgr.Add(r.notifier); err != nil {
		return err
	}
	inNamespace := predicate.NewPredicateFuncs(func(o client.Object) bool { return o.GetNamespace() == opts.Namespace })
	err := ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.Session{}, builder.WithPredicates(inNamespace)).
		Owns(&corev1.Secret{}).
		// A Cluster being deleted ends its sessions.
		Watches(&v1alpha1.Cluster{}, handler.EnqueueRequestsFromMapFunc(sessionsOf(mgr.GetClient())), builder.WithPredicates(inNamespace)).
		Named("session").
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Complete(r)
	if err != nil {
		return fmt.Errorf("setting up the session controller: %w", err)
	}
	cr := &ClusterReconciler{
		Client:   mgr.GetClient(),
		Recorder: rec,
		Interval: opts.ClusterProbeInterval,
		targets:  t,
	}
	err = ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.Cluster{}, builder.WithPredicates(inNamespace)).
		// A session that ends may be the last one a deleted Cluster waits for.
		Watches(&v1alpha1.Session{}, handler.EnqueueRequestsFromMapFunc(clusterOf), builder.WithPredicates(inNamespace)).
		Named("cluster").
		Complete(cr)
	if err != nil {
		return fmt.Errorf("setting up the cluster controller: %w", err)
	}
	if opts.SweepInterval > 0 {
		if err := mgr.Add(NewSweeper(mgr.GetClient(), mgr.GetAPIReader(), opts)); err != nil {
			return err
		}
	}
	klog.V(2).InfoS("Control plane set up", "namespace", opts.Namespace, "gateway", opts.Gateway)
	return nil
}

func newTargets(c client.Client, apiReader client.Reader, opts Options) *targets {
	return &targets{
		client: c, apiReader: apiReader,
		namespace: opts.Namespace, gateway: opts.Gateway,
		clients: map[types.UID]cachedClient{},
	}
}

func sessionsOf(c client.Client) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		sessions := &v1alpha1.SessionList{}
		if err := c.List(ctx, sessions, client.InNamespace(o.GetNamespace()), client.MatchingFields{indexSessionCluster: o.GetName()}); err != nil {
			klog.ErrorS(err, "Listing sessions of cluster", "cluster", klog.KObj(o))
			return nil
		}
		deleting := !o.GetDeletionTimestamp().IsZero()
		var reqs []reconcile.Request
		for i := range sessions.Items {
			if s := &sessions.Items[i]; deleting || waitsOnCluster(s) {
				reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: s.Namespace, Name: s.Name}})
			}
		}
		return reqs
	}
}

// waitsOnCluster says whether a change of the session's Cluster (it became
// Ready, or not) concerns the session: one still to be minted, or ended and
// still to be revoked, does. An Active session holds its credentials and
// comes back on its own schedule; only a Cluster being deleted ends it.
// Enqueuing thousands of Active sessions on every Cluster change put them
// all ahead of a new session.
func waitsOnCluster(s *v1alpha1.Session) bool {
	return s.Status.Phase != v1alpha1.PhaseActive || !s.DeletionTimestamp.IsZero() || s.Spec.Terminated
}

func clusterOf(_ context.Context, o client.Object) []reconcile.Request {
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: o.(*v1alpha1.Session).Spec.Cluster}}}
}

// Sweeper removes objects on targets whose Session no longer exists, such as
// those left by a crash between creating them and recording the session.
type Sweeper struct {
	client    client.Client
	apiReader client.Reader
	targets   *targets
	namespace string
	interval  time.Duration
	grace     time.Duration
	clock     clock.PassiveClock
}

// NewSweeper returns a sweep over the Clusters of opts.Namespace.
func NewSweeper(c client.Client, apiReader client.Reader, opts Options) *Sweeper {
	opts.defaults()
	return &Sweeper{
		client: c, apiReader: apiReader, targets: newTargets(c, apiReader, opts),
		namespace: opts.Namespace, interval: opts.SweepInterval, grace: opts.SweepGrace, clock: opts.Clock,
	}
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
	var firstErr error
	for i := range clusters.Items {
		c := &clusters.Items[i]
		if err := s.sweepCluster(ctx, c); err != nil {
			klog.ErrorS(err, "Sweeping cluster", "cluster", klog.KObj(c))
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	return firstErr
}

func (s *Sweeper) sweepCluster(ctx context.Context, c *v1alpha1.Cluster) error {
	t, err := s.targets.forCluster(ctx, c)
	if err != nil {
		return err
	}
	found, err := credentials.SessionsOnTarget(ctx, t)
	if err != nil {
		return err
	}
	for uid, rem := range found {
		if s.clock.Since(rem.Newest) < s.grace {
			// Possibly minted for a session too new for any list we could
			// have read: it gets another look next time.
			continue
		}
		live, err := s.sessionExists(ctx, rem.SessionName, uid)
		if err != nil {
			return err
		}
		if live {
			continue
		}
		klog.V(2).InfoS("Removing orphaned session objects", "cluster", c.Name, "session", rem.SessionName, "sessionUID", uid)
		if err := credentials.Revoke(ctx, t, uid); err != nil {
			return err
		}
	}
	return nil
}

// sessionExists reports whether the session with that name and UID still
// exists. The cache answers yes: a session deleted a moment ago is swept
// next time. Only a no, which revokes, is asked of the API server itself, as
// the cache may not have seen the session yet: a sweep over 10,000 live
// sessions is not 10,000 GETs.
func (s *Sweeper) sessionExists(ctx context.Context, name string, uid types.UID) (bool, error) {
	if name == "" {
		return false, nil
	}
	key := types.NamespacedName{Namespace: s.namespace, Name: name}
	if cached := (&v1alpha1.Session{}); s.client.Get(ctx, key, cached) == nil && cached.UID == uid {
		return true, nil
	}
	se := &v1alpha1.Session{}
	err := s.apiReader.Get(ctx, key, se)
	switch {
	case err == nil:
		return se.UID == uid, nil
	case client.IgnoreNotFound(err) == nil:
		return false, nil
	default:
		return false, fmt.Errorf("reading session %s: %w", name, err)
	}
}
