// Package registry is the in-memory set of sessions this replica serves. The
// data plane fills it from the API; the proxy reads it on every request. Each
// session carries a context that is cancelled the moment it leaves — by
// removal, replacement or its own expiry timer — which is how every live
// connection of a session is cut.
package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"sessiongate.dev/sessiongate/api/v1alpha1"
)

// Backend is how the gateway reaches and authenticates to a session's target.
// It is replaced whole when the credential rotates.
type Backend struct {
	// URL of the target API server, shared by the token sessions of one
	// target: read it, never change it.
	URL *url.URL
	// Token is the bearer token, or empty when Transport carries a client certificate.
	Token string
	// Transport verifies the target against its CA (never skipped) and
	// presents the client certificate, if any.
	Transport *http.Transport
	// Version identifies the credential (the Secret's resourceVersion).
	Version string
	// config is what the backend was built from (RestConfig).
	config BackendConfig

	shared bool
}

// Session is one active session.
type Session struct {
	Name      string
	Namespace string
	UID       types.UID
	Cluster   string
	Owner     v1alpha1.Owner
	// ExpiresAt is when the session ends, as given to Put; a renewal moves
	// it (Expires reads the current value).
	ExpiresAt time.Time
	// Identity is who the target sees, for the audit log.
	Identity string
	// IdleTimeout, if set, asks the replica to report the session's last
	// activity (see Touch and LastActivity). Given to Put; read the limits
	// in force with Limits.
	IdleTimeout time.Duration
	// Streams are the stream limits the session was granted. Given to Put;
	// read the limits in force with Limits.
	Streams *v1alpha1.StreamPolicy
	// Debug is what a debug session deployed and may touch; nil for other
	// sessions. Given to Put; read it with Limits.
	Debug *v1alpha1.DebugStatus
	// Participants the owner let in. Given to Put; read them with Limits.
	Participants []v1alpha1.Participant
	// Guests are who may be let in at all (the granting policy's
	// requesters); nil lets in anyone the owner names. Given to Put; read
	// them with Limits.
	Guests *v1alpha1.Subjects

	limits atomic.Pointer[Limits]
	// guests is the context of the streams of participants and viewers: a
	// child of ctx, cut (and made anew) whenever someone is let out or
	// loses rights, so that no open stream outlives its right.
	guests atomic.Pointer[guestContext]

	backend  atomic.Pointer[Backend]
	expires  atomic.Int64 // unix nanoseconds
	activity atomic.Int64 // unix nanoseconds of the last proxied request
	ctx      context.Context
	cancel   context.CancelCauseFunc
	timer    clock.Timer
}

// Limits are what a session was granted that Put may change while it is
// served.
type Limits struct {
	IdleTimeout  time.Duration
	Streams      *v1alpha1.StreamPolicy
	Debug        *v1alpha1.DebugStatus
	Participants []v1alpha1.Participant
	Guests       *v1alpha1.Subjects
}

// Limits are the session's limits now.
func (s *Session) Limits() Limits {
	if l := s.limits.Load(); l != nil {
		return *l
	}
	return s.Given()
}

// Given are the limits as given to Put, to compare with the limits in
// force.
func (s *Session) Given() Limits {
	return Limits{IdleTimeout: s.IdleTimeout, Streams: s.Streams, Debug: s.Debug, Participants: s.Participants, Guests: s.Guests}
}

// Expires is when the session ends now.
func (s *Session) Expires() time.Time { return time.Unix(0, s.expires.Load()) }

// Touch records a proxied request at t: one atomic store, nothing else on the
// request path.
func (s *Session) Touch(t time.Time) { s.activity.Store(t.UnixNano()) }

// LastActivity is when the session last proxied a request on this replica,
// or the zero time.
func (s *Session) LastActivity() time.Time {
	if n := s.activity.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Backend returns the current backend.
func (s *Session) Backend() *Backend { return s.backend.Load() }

// Done is closed when the session leaves the registry; every connection of
// the session ends then.
func (s *Session) Done() <-chan struct{} { return s.ctx.Done() }

// Context is cancelled when the session leaves the registry; context.Cause
// says why.
func (s *Session) Context() context.Context { return s.ctx }

type guestContext struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
}

// GuestContext is Context for the streams of someone the owner let in: it
// also ends when a participant is let out or loses rights (those who keep
// theirs open their streams again).
func (s *Session) GuestContext() context.Context {
	for {
		if g := s.guests.Load(); g != nil {
			return g.ctx
		}
		// Made on first use: most sessions never let anyone in, and an
		// idle session's memory counts.
		ctx, cancel := context.WithCancelCause(s.ctx)
		if s.guests.CompareAndSwap(nil, &guestContext{ctx: ctx, cancel: cancel}) {
			return ctx
		}
		cancel(nil)
	}
}

// cutGuests ends the guests' streams; the next guest stream gets a fresh
// context.
func (s *Session) cutGuests(why error) {
	if g := s.guests.Swap(nil); g != nil {
		g.cancel(why)
	}
}

// lostRights reports whether someone among before is not in after, or is
// there with a lesser role.
func lostRights(before, after []v1alpha1.Participant) bool {
	for _, b := range before {
		kept := false
		for _, a := range after {
			if a.User == b.User {
				kept = a.Role == b.Role || a.Role == v1alpha1.RoleParticipant
				break
			}
		}
		if !kept {
			return true
		}
	}
	return false
}

// Reasons a session leaves the registry.
var (
	ErrExpired  = errors.New("session expired")
	ErrRevoked  = errors.New("session is no longer active")
	ErrReplaced = errors.New("session was replaced")
)

// EndedError says why a session left the registry, in words a client can be
// shown: the session's name and the reason its Session object gives. It is
// the context cause of a session the data plane removed.
type EndedError struct {
	// Session is the session's name.
	Session string
	// Reason is a one-word reason, e.g. Terminated, Expired, Deleted.
	Reason string
	// Message, if set, says more (the Ready condition's message).
	Message string
}

func (e *EndedError) Error() string {
	msg := fmt.Sprintf("sessiongate: session %q ended: %s", e.Session, e.Reason)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// Is makes errors.Is(err, ErrExpired) true for an expired session and
// errors.Is(err, ErrRevoked) true for every other.
func (e *EndedError) Is(target error) bool {
	if e.Reason == "Expired" {
		return target == ErrExpired
	}
	return target == ErrRevoked
}

// Registry maps session names to active sessions.
type Registry struct {
	clock clock.WithDelayedExecution

	mu       sync.RWMutex
	sessions map[string]*Session

	// OnChange, if set, is called with the number of sessions after each change.
	OnChange func(active int)
	// OnRemove, if set, is called with the name of each session that leaves.
	OnRemove func(name string)
}

// New returns an empty registry that expires sessions by clk.
func New(clk clock.WithDelayedExecution) *Registry {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &Registry{clock: clk, sessions: map[string]*Session{}}
}

// Get returns the named session if it is active now.
func (r *Registry) Get(name string) (*Session, bool) {
	r.mu.RLock()
	s, ok := r.sessions[name]
	r.mu.RUnlock()
	if !ok || !r.clock.Now().Before(s.Expires()) || s.ctx.Err() != nil {
		return nil, false
	}
	return s, true
}

// Put adds a session or updates the one of the same UID: a new backend (a
// rotated credential) is swapped in and a new expiry (a renewal) takes effect,
// both without cutting open connections. A session of the same name but
// another UID replaces the old one, whose connections are cut.
func (r *Registry) Put(s *Session, b *Backend) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.sessions[s.Name]; ok {
		if old.UID == s.UID {
			if cur := old.backend.Load(); cur.Version != b.Version {
				old.backend.Store(b)
				cur.closeIdle()
				klog.V(2).InfoS("Rotated session credential", "session", s.Name)
			}
			if !old.Expires().Equal(s.ExpiresAt) {
				old.timer.Stop()
				r.expireAt(old, s.ExpiresAt)
				klog.V(2).InfoS("Session expiry moved", "session", s.Name, "expiresAt", s.ExpiresAt)
			}
			lost := lostRights(old.Limits().Participants, s.Participants)
			// The new limits first: a guest stream that starts after the
			// cut reads them.
			l := s.Given()
			old.limits.Store(&l)
			if lost {
				old.cutGuests(&EndedError{Session: s.Name, Reason: "Unshared", Message: "the owner let a participant out or lowered their role"})
				klog.V(2).InfoS("Cut the streams of the session's participants", "session", s.Name)
			}
			return
		}
		r.removeLocked(old, ErrReplaced)
	}
	s.backend.Store(b)
	l := s.Given()
	s.limits.Store(&l)
	s.ctx, s.cancel = context.WithCancelCause(context.Background())
	r.expireAt(s, s.ExpiresAt)
	r.sessions[s.Name] = s
	klog.V(2).InfoS("Registered session", "session", s.Name, "cluster", s.Cluster, "expiresAt", s.ExpiresAt)
	r.changed()
}

// expireAt sets when s ends and arms its timer. Called with r.mu held.
func (r *Registry) expireAt(s *Session, at time.Time) {
	s.expires.Store(at.UnixNano())
	name, uid := s.Name, s.UID
	ended := &EndedError{Session: name, Reason: "Expired", Message: "its TTL ran out at " + at.UTC().Format(time.RFC3339)}
	// A goroutine of its own: a clock may run the callback under its own lock,
	// and removal stops this timer.
	s.timer = r.clock.AfterFunc(at.Sub(r.clock.Now()), func() { go r.removeIfExpired(name, uid, at, ended) })
}

// removeIfExpired removes the session unless a renewal moved its expiry
// after the timer fired.
func (r *Registry) removeIfExpired(name string, uid types.UID, at time.Time, why error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.sessions[name]; ok && s.UID == uid && s.Expires().Equal(at) {
		r.removeLocked(s, why)
	}
}

// Select returns the registered sessions pick chooses. It runs pick on
// every session under the registry's read lock, so pick must be quick and
// must not call the registry; a look through 10,000 sessions that chooses
// none allocates nothing.
func (r *Registry) Select(pick func(*Session) bool) []*Session {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []*Session
	for _, s := range r.sessions {
		if pick(s) {
			out = append(out, s)
		}
	}
	return out
}

// Remove takes the named session out and cuts its connections.
func (r *Registry) Remove(name string, why error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.sessions[name]; ok {
		r.removeLocked(s, why)
	}
}

func (r *Registry) removeLocked(s *Session, why error) {
	delete(r.sessions, s.Name)
	s.timer.Stop()
	s.cancel(why)
	s.backend.Load().closeIdle()
	klog.V(2).InfoS("Unregistered session", "session", s.Name, "reason", why.Error())
	if r.OnRemove != nil {
		r.OnRemove(s.Name)
	}
	r.changed()
}

func (r *Registry) changed() {
	if r.OnChange != nil {
		r.OnChange(len(r.sessions))
	}
}

// Len is the number of sessions registered.
func (r *Registry) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.sessions)
}
