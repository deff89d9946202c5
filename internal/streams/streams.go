// Package streams holds both ends of exec and attach streams at the
// gateway. A WebSocket stream whose caller and target agree on a channel
// protocol is relayed message by message (Relay); any other is ended at the
// gateway: it accepts the caller's WebSocket or SPDY connection itself,
// opens the same exec or attach on the target with client-go's executor,
// and copies between the two (Serve). Holding both ends is what lets the
// gateway record what passes, close a stream that outlives its limits, and
// tell the caller — on the stream's own error channel, which kubectl turns
// into its exit status — why it did.
package streams

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/remotecommand"
	clientremotecommand "k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/util/exec"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Recorder receives what passes through a stream; recording.Recorder is one.
type Recorder interface {
	Stdin(p []byte)
	Stdout(p []byte)
	Stderr(p []byte)
	Resize(width, height int)
	// Failed is closed when the recording has lost something.
	Failed() <-chan struct{}
	Err() error
	// Cut stops the recording from holding the stream back (a full buffer
	// waits for the store): the stream is being closed.
	Cut()
}

// Limits are a stream's lifetimes; zero is no limit.
type Limits struct {
	// MaxDuration closes the stream this long after it opened.
	MaxDuration time.Duration
	// IdleTimeout closes the stream when nothing passed either way for
	// this long.
	IdleTimeout time.Duration
}

// Stream is one exec or attach to serve.
type Stream struct {
	// Name is the session's name, for what the caller is told.
	Name string
	// Options are the streams the caller asked for.
	Options Options
	// Upstream opens the same exec or attach on the target.
	Upstream clientremotecommand.Executor
	Limits   Limits
	// Recorder, if set, sees every byte and resize.
	Recorder Recorder
	// RecordingRequired closes the stream when the recording fails.
	RecordingRequired bool
	// Session is done when the session ends; its cause is what the caller
	// is told.
	Session context.Context
	// Clock times the limits; default the real clock.
	Clock clock.Clock
	// Opened, if set, is called once the caller's streams are up.
	Opened func(protocol string)
	// Touch, if set, is told whenever something passes: a session in use
	// through one long stream is not idle.
	Touch func(time.Time)
}

// ClosedError is why the gateway closed a stream that its session still
// allowed: a lifetime ran out or a required recording failed.
type ClosedError struct {
	Session string
	Reason  string
}

func (e *ClosedError) Error() string {
	return fmt.Sprintf("sessiongate: session %q: %s, closed", e.Session, e.Reason)
}

// CloseGrace is how long a caller whose stream the gateway cut has to take
// the reason before its connection is closed under it: a caller that stops
// reading cannot hold a stream (or its recording) open.
const CloseGrace = time.Second

// Result is how a stream ended, for the audit record.
type Result struct {
	// Protocol is the caller's stream protocol, empty if it never opened.
	Protocol string
	// Err is why the stream failed or was closed; nil when the command
	// finished, whatever its exit code.
	Err error
	// ExitCode is the command's exit code, when it exited.
	ExitCode *int
}

// Serve upgrades the caller's connection and runs the stream to its end.
func (s *Stream) Serve(w http.ResponseWriter, r *http.Request) Result {
	if s.Clock == nil {
		s.Clock = clock.RealClock{}
	}
	// done ends the caller's side's helpers (the resize decoder, a SPDY
	// caller's wait for its streams) when the stream is over or the
	// session ended.
	done := make(chan struct{})
	var doneOnce sync.Once
	end := func() { doneOnce.Do(func() { close(done) }) }
	defer end()
	defer context.AfterFunc(s.Session, end)()
	c, err := accept(w, r, s.Options, done)
	if err != nil {
		klog.V(4).InfoS("Stream not opened", "session", s.Name, "err", err.Error())
		return Result{Err: err}
	}
	defer func() { _ = c.close() }()
	if s.Opened != nil {
		s.Opened(c.protocol)
	}

	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	defer s.watch(ctx, cancel)()
	// Once the stream is cut, the caller has CloseGrace to take the reason;
	// one that stops reading cannot hold the stream (and its recording)
	// open.
	finished := make(chan struct{})
	defer close(finished)
	context.AfterFunc(ctx, func() {
		t := time.NewTimer(CloseGrace)
		defer t.Stop()
		select {
		case <-finished:
		case <-t.C:
			_ = c.close()
		}
	})
	act := NewActivity(s.Clock, s.Touch)
	defer WatchLimits(ctx, s.Clock, s.Name, s.Limits, act, cancel)()

	opts := clientremotecommand.StreamOptions{Tty: s.Options.TTY}
	if c.stdin != nil {
		opts.Stdin = &reader{r: c.stdin, act: act, rec: s.tap(Recorder.Stdin)}
	}
	if c.stdout != nil {
		opts.Stdout = &writer{w: c.stdout, act: act, rec: s.tap(Recorder.Stdout)}
	}
	if c.stderr != nil {
		opts.Stderr = &writer{w: c.stderr, act: act, rec: s.tap(Recorder.Stderr)}
	}
	if c.resize != nil {
		opts.TerminalSizeQueue = &sizes{ch: c.resize, act: act, rec: s.Recorder}
	}
	err = s.Upstream.StreamWithContext(ctx, opts)

	res := Result{Protocol: c.protocol}
	var status *apierrors.StatusError
	var exitErr exec.CodeExitError
	var statusErr *apierrors.StatusError
	switch cause := context.Cause(ctx); {
	case ctx.Err() != nil && r.Context().Err() == nil:
		// The gateway closed the stream: say so where the caller looks.
		res.Err = cause
		var closed *ClosedError
		if errors.As(cause, &closed) {
			s.notice(opts, closed.Error())
		}
		status = gone(cause)
	case err == nil:
		status = &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusSuccess}}
		zero := 0
		res.ExitCode = &zero
	case errors.As(err, &exitErr) && exitErr.Exited():
		code := exitErr.ExitStatus()
		res.ExitCode = &code
		status = &apierrors.StatusError{ErrStatus: metav1.Status{
			Status: metav1.StatusFailure, Reason: remotecommand.NonZeroExitCodeReason,
			Message: fmt.Sprintf("command terminated with non-zero exit code: %v", exitErr),
			Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: remotecommand.ExitCodeCauseType, Message: fmt.Sprint(code)}}},
		}}
	case errors.As(err, &statusErr):
		res.Err, status = err, statusErr
	case refusedBy(err, &statusErr):
		// The target refused the upgrade and said why.
		res.Err, status = statusErr, statusErr
	default:
		// The detail (addresses, TLS) is for the audit log, not the caller.
		res.Err = err
		klog.V(2).InfoS("Stream to the target failed", "session", s.Name, "err", err.Error())
		status = targetFailed()
	}
	if err := c.writeStatus(status); err != nil {
		klog.V(4).InfoS("Could not tell the caller how the stream ended", "session", s.Name, "err", err.Error())
	}
	return res
}

// notice writes a one-line reason where the caller's terminal shows it.
func (s *Stream) notice(opts clientremotecommand.StreamOptions, msg string) {
	out := opts.Stderr
	if out == nil {
		out = opts.Stdout
	}
	if out == nil {
		return
	}
	_, _ = out.Write([]byte(noticeLine(msg, s.Options.TTY)))
}

// noticeLine is msg as a line of the caller's terminal.
func noticeLine(msg string, tty bool) string {
	if tty {
		return msg + "\r\n"
	}
	return msg + "\n"
}

// watch cancels ctx with the reason when the session ends, or when a
// recording the session requires fails; the returned function stops it.
func (s *Stream) watch(ctx context.Context, cancel context.CancelCauseFunc) (stop func()) {
	// At once when the session has already ended (while the stream was
	// being opened): AfterFunc would tell it a moment later.
	if s.Session.Err() != nil {
		cancel(context.Cause(s.Session))
	}
	stopSession := context.AfterFunc(s.Session, func() { cancel(context.Cause(s.Session)) })
	stopCut := func() bool { return false }
	if s.Recorder != nil {
		// A stream being closed does not wait for its recording.
		stopCut = context.AfterFunc(ctx, s.Recorder.Cut)
	}
	if s.Recorder != nil && s.RecordingRequired {
		go func() {
			select {
			case <-s.Recorder.Failed():
				cancel(&ClosedError{Session: s.Name, Reason: fmt.Sprintf("its policy requires recording and the recording failed (%v)", s.Recorder.Err())})
			case <-ctx.Done():
			}
		}()
	}
	return func() { stopSession(); stopCut() }
}

// gone is the status of a stream the gateway closed because of cause.
func gone(cause error) *apierrors.StatusError {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusGone, Reason: metav1.StatusReasonGone, Message: cause.Error(),
	}}
}

// targetFailed is the status of a stream whose target side failed; the
// detail (addresses, TLS) is for the audit log, not the caller.
func targetFailed() *apierrors.StatusError {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusBadGateway, Reason: metav1.StatusReasonServiceUnavailable,
		Message: "sessiongate: the stream to the target API server failed",
	}}
}

// WatchLimits calls end with a *ClosedError when a lifetime of a stream of
// session name runs out: lim.MaxDuration after now, or lim.IdleTimeout after
// act last moved. It stops when ctx is done or the returned function is
// called.
func WatchLimits(ctx context.Context, clk clock.Clock, name string, lim Limits, act *Activity, end func(error)) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	if d := lim.MaxDuration; d > 0 {
		t := clk.NewTimer(d)
		go func() {
			defer t.Stop()
			select {
			case <-t.C():
				end(&ClosedError{Session: name, Reason: "stream open for its maximum of " + d.String()})
			case <-ctx.Done():
			}
		}()
	}
	if d := lim.IdleTimeout; d > 0 {
		t := clk.NewTimer(d)
		go func() {
			defer t.Stop()
			for {
				select {
				case <-t.C():
				case <-ctx.Done():
					return
				}
				idle := clk.Since(act.Last())
				if idle >= d {
					end(&ClosedError{Session: name, Reason: "stream idle for " + d.String()})
					return
				}
				t.Reset(d - idle)
			}
		}()
	}
	return cancel
}

// tap is what recording one stream of the caller's takes, or nil.
func (s *Stream) tap(record func(Recorder, []byte)) func([]byte) {
	if s.Recorder == nil {
		return nil
	}
	r := s.Recorder
	return func(p []byte) { record(r, p) }
}

// Activity is when anything last passed through a stream, either way: one
// atomic store per read or write (two with also).
type Activity struct {
	clock clock.Clock
	at    atomic.Int64
	also  func(time.Time)
}

// NewActivity starts at clk's now; also, if set, is told of every touch
// (the session's own activity, for its idle expiry).
func NewActivity(clk clock.Clock, also func(time.Time)) *Activity {
	a := &Activity{clock: clk, also: also}
	a.Touch()
	return a
}

// Touch records that something passed now.
func (a *Activity) Touch() {
	now := a.clock.Now()
	a.at.Store(now.UnixNano())
	if a.also != nil {
		a.also(now)
	}
}

// Last is when something last passed.
func (a *Activity) Last() time.Time { return time.Unix(0, a.at.Load()) }

type reader struct {
	r   io.Reader
	act *Activity
	rec func([]byte)
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.act.Touch()
		if r.rec != nil {
			r.rec(p[:n])
		}
	}
	return n, err
}

type writer struct {
	w   io.Writer
	act *Activity
	rec func([]byte)
}

func (w *writer) Write(p []byte) (int, error) {
	w.act.Touch()
	if w.rec != nil {
		w.rec(p)
	}
	return w.w.Write(p)
}

// sizes passes the caller's terminal sizes to the target, recording each.
type sizes struct {
	ch  <-chan clientremotecommand.TerminalSize
	act *Activity
	rec Recorder
}

func (q *sizes) Next() *clientremotecommand.TerminalSize {
	size, ok := <-q.ch
	if !ok {
		return nil
	}
	q.act.Touch()
	if q.rec != nil {
		q.rec.Resize(int(size.Width), int(size.Height))
	}
	return &size
}
