package proxy

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/klog/v2"
	"k8s.io/streaming/pkg/httpstream"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/apistatus"
	"sessiongate.dev/sessiongate/internal/audit"
	"sessiongate.dev/sessiongate/internal/recording"
	"sessiongate.dev/sessiongate/internal/registry"
	"sessiongate.dev/sessiongate/internal/streams"
)

// isRemoteCommand: an exec or attach, which the gateway ends itself.
func isRemoteCommand(info *request.RequestInfo) bool {
	return info != nil && info.IsResourceRequest && info.Resource == "pods" && info.APIGroup == "" &&
		(info.Subresource == "exec" || info.Subresource == "attach")
}

// serveRemoteCommand accepts the caller's exec or attach, opens it on the
// target as the session, and copies between them: recorded when the
// session's policy asks, held to its stream lifetimes, and ended with a
// status that says why when the gateway ends it.
func (h *Handler) serveRemoteCommand(c *call, r *http.Request, s *registry.Session, lim registry.Limits, info *request.RequestInfo, opts streams.Options, apiPath string) {
	w := c.w
	q := r.URL.Query()
	b := s.Backend()
	loc := targetURL(b, apiPath, streams.TargetQuery(q, opts, info.Subresource == "exec").Encode())
	mode := recordingMode(lim.Streams)
	rec, refusal := h.startRecording(r.Context(), c.ev, s, mode, info, opts, q)
	if refusal != nil {
		c.ev.Annotations[audit.AnnotationRefusedBy] = "recording required"
		apistatus.Write(w, refusal)
		return
	}
	st := &streams.Stream{
		Name: s.Name, Options: opts, Session: c.sctx, Clock: h.clock(),
		Limits:            streamLimits(lim.Streams),
		RecordingRequired: mode == v1alpha1.RecordingRequired,
		Opened:            func(string) { h.logStarted(c) },
		Touch:             s.Touch,
	}
	if rec != nil {
		// A nil *Recorder in the interface would not be nil.
		st.Recorder = rec
	}
	openStreams.Inc()
	res := h.stream(st, w, r, b, loc)
	openStreams.Dec()
	if rec != nil {
		if err := rec.Close(); err != nil {
			klog.ErrorS(err, "Recording incomplete", "session", s.Name, "recording", c.ev.Annotations[audit.AnnotationRecording])
			c.ev.Annotations[audit.AnnotationRecordingError] = err.Error()
		}
	}
	if res.Protocol != "" {
		w.hijacked = true
	}
	if res.Err != nil {
		c.ev.Annotations[audit.AnnotationStreamEnd] = res.Err.Error()
	}
	if res.ExitCode != nil {
		c.ev.Annotations[audit.AnnotationExitCode] = fmt.Sprint(*res.ExitCode)
	}
}

// stream runs st: relayed message by message when the caller and the
// target agree on a WebSocket channel protocol, and otherwise ended on both
// sides with client-go's executor (a SPDY caller, or a target that does not
// speak WebSocket). On failure the caller has been answered.
func (h *Handler) stream(st *streams.Stream, w *responseWriter, r *http.Request, b *registry.Backend, loc *url.URL) streams.Result {
	if protocols := streams.RelayProtocols(r); protocols != nil {
		ctx, cancel := context.WithTimeout(st.Session, dialTimeout)
		conn, err := streams.DialTarget(ctx, b.RestConfig(), loc, protocols)
		cancel()
		switch status, refused := streams.StatusOf(err); {
		case err == nil:
			return st.Relay(w, r, conn)
		case refused:
			// The target said why (no such pod, or container): the caller
			// hears it on the stream, as from an executor, and does not
			// try again over SPDY.
			st.Upstream = streams.Failed{Err: status}
			return st.Serve(w, r)
		case !httpstream.IsUpgradeFailure(err) && !httpstream.IsHTTPSProxyError(err):
			st.Upstream = streams.Failed{Err: err}
			return st.Serve(w, r)
		}
		klog.V(4).InfoS("The target does not relay WebSocket streams; ending the stream at the gateway", "session", st.Name, "err", err.Error())
	}
	up, err := executor(b, loc)
	if err != nil {
		klog.ErrorS(err, "Building the stream to the target", "session", st.Name)
		apistatus.Write(w, apierrors.NewInternalError(fmt.Errorf("the stream to the target could not be set up")))
		return streams.Result{}
	}
	st.Upstream = up
	return st.Serve(w, r)
}

// dialTimeout bounds opening a relayed stream on the target.
const dialTimeout = 30 * time.Second

// executor opens the stream on the target over WebSocket, or SPDY where the
// target does not speak it, as kubectl does.
func executor(b *registry.Backend, loc *url.URL) (remotecommand.Executor, error) {
	cfg := b.RestConfig()
	ws, err := remotecommand.NewWebSocketExecutor(cfg, http.MethodGet, loc.String())
	if err != nil {
		return nil, err
	}
	spdy, err := remotecommand.NewSPDYExecutor(cfg, http.MethodPost, loc)
	if err != nil {
		return nil, err
	}
	return remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		// A target that refused the exec and said why is not asked again.
		if _, refused := streams.StatusOf(err); refused {
			return false
		}
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
}

// startRecording opens the stream's cast unless the session's policy turns
// recording off. A session that requires recording is refused, before
// anything reaches the target, when the store cannot take it.
func (h *Handler) startRecording(ctx context.Context, ev *auditv1.Event, s *registry.Session, mode v1alpha1.RecordingMode, info *request.RequestInfo, opts streams.Options, q url.Values) (*recording.Recorder, *apierrors.StatusError) {
	if mode == v1alpha1.RecordingOff {
		return nil, nil
	}
	refuse := func(err error) *apierrors.StatusError {
		return apierrors.NewForbidden(schema.GroupResource{Resource: "pods/" + info.Subresource}, info.Name,
			fmt.Errorf("session %s must record its streams and the recording store cannot take it: %v", s.Name, err))
	}
	if h.Recordings == nil {
		if mode == v1alpha1.RecordingRequired {
			return nil, refuse(fmt.Errorf("this gateway has no recording store"))
		}
		return nil, nil
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if mode == v1alpha1.RecordingRequired {
		if err := h.Recordings.Check(cctx); err != nil {
			return nil, refuse(err)
		}
	}
	meta := recording.Meta{
		ID: recording.NewID(s.Name, h.Now()), Session: s.Name, User: ev.User.Username, Cluster: s.Cluster,
		Namespace: info.Namespace, Pod: info.Name, Container: q.Get("container"), Command: q["command"],
		Kind: info.Subresource, TTY: opts.TTY,
	}
	rec, err := recording.Start(cctx, h.Recordings, meta, 0, 0)
	if err != nil {
		if mode == v1alpha1.RecordingRequired {
			return nil, refuse(err)
		}
		klog.ErrorS(err, "Stream goes on unrecorded", "session", s.Name)
		ev.Annotations[audit.AnnotationRecordingError] = err.Error()
		return nil, nil
	}
	ev.Annotations[audit.AnnotationRecording] = meta.ID
	return rec, nil
}

// recordingMode is the session's recording policy: best-effort unless it
// says otherwise.
func recordingMode(p *v1alpha1.StreamPolicy) v1alpha1.RecordingMode {
	if p == nil || p.Recording == "" {
		return v1alpha1.RecordingBestEffort
	}
	return p.Recording
}

func streamLimits(p *v1alpha1.StreamPolicy) streams.Limits {
	var l streams.Limits
	if p == nil {
		return l
	}
	if p.MaxStreamDuration != nil {
		l.MaxDuration = p.MaxStreamDuration.Duration
	}
	if p.StreamIdleTimeout != nil {
		l.IdleTimeout = p.StreamIdleTimeout.Duration
	}
	return l
}

// logStarted writes a stream's first audit record, when it opens: a stream
// that is still open has left a trace. The record at its end follows.
func (h *Handler) logStarted(c *call) {
	if h.Audit == nil {
		return
	}
	ev := c.ev.DeepCopy()
	ev.Stage = auditv1.StageResponseStarted
	ev.RequestReceivedTimestamp = metav1.NewMicroTime(c.start)
	ev.StageTimestamp = metav1.NewMicroTime(h.Now())
	ev.ResponseStatus = &metav1.Status{Code: http.StatusSwitchingProtocols}
	h.Audit.Log(ev)
}
