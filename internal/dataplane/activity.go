package dataplane

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/registry"
)

// DefaultActivityInterval is how often, at most, a replica reports a
// session's last proxied request.
const DefaultActivityInterval = 30 * time.Second

// idleReportsPerTimeout is how many reports fit in a session's idle timeout
// at least: a session with idleTimeout 3s is reported every second while in
// use, whatever the configured interval, so steady traffic never lets the
// leader's view of it go idle.
const idleReportsPerTimeout = 3

// ActivityReporter tells the leader when sessions with an idle limit were
// last used on this replica: at most once per interval per session, so idle
// expiry costs no API write per proxied request, whichever replica the
// traffic lands on. A session's interval is the configured one or a third of
// its idle timeout, whichever is shorter.
type ActivityReporter struct {
	Client    client.Client
	Registry  *registry.Registry
	Namespace string
	Interval  time.Duration

	// reported is, per session, the last activity reported and when.
	reported map[types.UID]report
	// looks counts the looks through the registry.
	looks uint64
}

type report struct {
	activity, at time.Time
	// seen is the last look that found the session registered.
	seen uint64
}

// NeedLeaderElection: every replica reports its own traffic.
func (a *ActivityReporter) NeedLeaderElection() bool { return false }

// pollInterval is how often the registry is looked through for sessions
// that are due: often enough for the shortest idle timeout the CRD allows
// (1s), and cheap, since only a due session costs an API write.
const pollInterval = 250 * time.Millisecond

// Start reports until ctx ends.
func (a *ActivityReporter) Start(ctx context.Context) error {
	if a.Interval <= 0 {
		a.Interval = DefaultActivityInterval
	}
	a.reported = map[types.UID]report{}
	tick := time.NewTicker(min(a.Interval, pollInterval))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			a.report(ctx, now)
		}
	}
}

// intervalOf is how often, at most, s is reported.
func (a *ActivityReporter) intervalOf(s *registry.Session) time.Duration {
	return min(a.Interval, s.Limits().IdleTimeout/idleReportsPerTimeout)
}

func (a *ActivityReporter) report(ctx context.Context, now time.Time) {
	// Four times a second over every session of the replica: only the
	// sessions due are copied out, and the sessions reported before are
	// marked as still there.
	a.looks++
	due := a.Registry.Select(func(s *registry.Session) bool {
		prev, ok := a.reported[s.UID]
		if ok {
			prev.seen = a.looks
			a.reported[s.UID] = prev
		}
		return s.Limits().IdleTimeout != 0 && s.LastActivity().After(prev.activity) && now.Sub(prev.at) >= a.intervalOf(s)
	})
	for _, s := range due {
		last := s.LastActivity()
		if err := a.patch(ctx, s, last); err != nil {
			klog.V(2).InfoS("Reporting session activity", "session", s.Name, "err", err.Error())
			continue
		}
		a.reported[s.UID] = report{activity: last, at: now, seen: a.looks}
	}
	// Forget the sessions that left.
	for uid, r := range a.reported {
		if r.seen != a.looks {
			delete(a.reported, uid)
		}
	}
}

// patch moves status.lastActivityAt forward, never back: another replica may
// have reported a later request.
func (a *ActivityReporter) patch(ctx context.Context, rs *registry.Session, last time.Time) error {
	s := &v1alpha1.Session{}
	if err := a.Client.Get(ctx, client.ObjectKey{Namespace: rs.Namespace, Name: rs.Name}, s); err != nil {
		return client.IgnoreNotFound(err)
	}
	if s.UID != rs.UID || (s.Status.LastActivityAt != nil && !last.After(s.Status.LastActivityAt.Time)) {
		return nil
	}
	patch := client.MergeFromWithOptions(s.DeepCopy(), client.MergeFromWithOptimisticLock{})
	s.Status.LastActivityAt = &metav1.Time{Time: last}
	return a.Client.Status().Patch(ctx, s, patch)
}
