// Package proxy serves /sessiongate/<session>/kas/* for the session's owner:
// it decides everything — path, caller, session, ownership — before the first
// byte goes to the target, then forwards plain requests, watches and
// WebSocket/SPDY upgrades with apimachinery's upgrade-aware proxy, and cuts
// every connection of a session the moment it leaves the registry.
package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/httpstream"
	utilproxy "k8s.io/apimachinery/pkg/util/proxy"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/uuid"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/apistatus"
	"sessiongate.dev/sessiongate/internal/audit"
	"sessiongate.dev/sessiongate/internal/authn"
	"sessiongate.dev/sessiongate/internal/authz"
	"sessiongate.dev/sessiongate/internal/recording"
	"sessiongate.dev/sessiongate/internal/registry"
	"sessiongate.dev/sessiongate/internal/streams"
)

// Handler is the session proxy.
type Handler struct {
	Registry *registry.Registry
	Authn    *authn.Authenticator
	Audit    *audit.Logger
	// Now is the clock for audit timestamps; default time.Now.
	Now func() time.Time
	// Clock times stream lifetimes; default the real clock.
	Clock clock.Clock
	// Recordings stores exec and attach casts; nil records nothing.
	Recordings recording.Sink
	// Debug labels and records what debug sessions create (kubectl debug).
	Debug DebugConfig

	requestInfo request.RequestInfoFactory
}

// NewHandler returns a proxy for the sessions in reg.
func NewHandler(reg *registry.Registry, a *authn.Authenticator, log *audit.Logger) *Handler {
	return &Handler{
		Registry: reg, Authn: a, Audit: log, Now: time.Now,
		requestInfo: request.RequestInfoFactory{
			APIPrefixes:          sets.NewString("api", "apis"),
			GrouplessAPIPrefixes: sets.NewString("api"),
		},
	}
}

// call is one request's state, gathered for its audit record.
type call struct {
	ev *auditv1.Event
	// session is set once the session is resolved for the caller: only then
	// may its name become a metric label.
	session *registry.Session
	// sctx ends the call's streams: the session's context, or its guests'
	// for a participant or viewer.
	sctx  context.Context
	start time.Time
	w     *responseWriter
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := &call{
		start: h.Now(),
		w:     &responseWriter{ResponseWriter: w},
		ev: &auditv1.Event{
			Level:      auditv1.LevelMetadata,
			AuditID:    uuid.NewUUID(),
			Stage:      auditv1.StageResponseComplete,
			RequestURI: r.URL.RequestURI(),
			Verb:       strings.ToLower(r.Method),
			SourceIPs:  []string{remoteIP(r)},
			UserAgent:  r.UserAgent(),
		},
	}
	defer h.finish(c)
	h.serve(c, r)
}

func (h *Handler) serve(c *call, r *http.Request) {
	w := c.w
	name, apiPath, err := ParsePath(r.URL.EscapedPath())
	if err != nil {
		apistatus.Write(w, apierrors.NewBadRequest(err.Error()))
		return
	}
	// The name is still the caller's word: the audit record may hold it,
	// a metric label may not.
	c.ev.Annotations = map[string]string{audit.AnnotationSession: name}

	id, err := h.Authn.Authenticate(r)
	if err != nil {
		apistatus.Unauthorized(w, err)
		return
	}
	c.ev.User = authnv1.UserInfo{Username: id.Username, Groups: id.Groups}

	s, ok := h.Registry.Get(name)
	// The limits are read once: a request is held to one set of them.
	var lim registry.Limits
	var sctx context.Context
	role := authz.None
	if ok {
		sctx, lim = s.Context(), s.Limits()
		role = authz.RoleOf(id, s.Owner, lim.Participants)
		if role != authz.Owner && role != authz.None {
			// The guests' context first, then the limits again: a guest
			// let out meanwhile is either refused here or cut with that
			// context.
			sctx, lim = s.GuestContext(), s.Limits()
			role = authz.RoleOf(id, s.Owner, lim.Participants)
		}
	}
	if role == authz.None {
		// The same answer whether the session is missing, ended or
		// someone else's: the gateway is no oracle for session names.
		apistatus.Write(w, &apierrors.StatusError{ErrStatus: metav1.Status{
			Status: metav1.StatusFailure, Code: http.StatusNotFound, Reason: metav1.StatusReasonNotFound,
			Message: "no active session " + strconv.Quote(name) + " for you",
		}})
		klog.V(4).InfoS("Refused session request", "session", name, "user", id.Username, "registered", ok)
		return
	}
	c.session, c.sctx = s, sctx
	c.ev.Annotations[audit.AnnotationCluster] = s.Cluster
	c.ev.Annotations[audit.AnnotationTargetIdentity] = s.Identity
	if role != authz.Owner {
		c.ev.Annotations[audit.AnnotationRole] = role.String()
		if !authz.Admitted(id, role, lim.Guests) {
			c.ev.Annotations[audit.AnnotationRefusedBy] = "guests"
			apistatus.Write(w, apierrors.NewForbidden(schema.GroupResource{Group: v1alpha1.GroupVersion.Group, Resource: "sessions"}, s.Name,
				authz.NotAdmitted(s.Name)))
			return
		}
	}
	info := h.describe(c.ev, r, apiPath)
	if err := refuseImpersonation(r.Header); err != nil {
		apistatus.Write(w, err)
		return
	}
	if rule, err := checkAccess(s.Name, role, lim.Debug, info, r.URL); err != nil {
		c.ev.Annotations[audit.AnnotationRefusedBy] = rule
		apistatus.Write(w, err)
		return
	}
	var opts *streams.Options
	if isRemoteCommand(info) {
		// Read once, strictly, and the target gets only what was read:
		// the policy judges what the target will do.
		o, err := streams.ParseOptions(r.URL.Query())
		if err != nil {
			apistatus.Write(w, apierrors.NewBadRequest(err.Error()))
			return
		}
		opts = &o
	}
	if rule, err := checkStream(s.Name, lim.Streams, info, opts, r.URL.Query()); err != nil {
		c.ev.Annotations[audit.AnnotationRefusedBy] = rule
		apistatus.Write(w, err)
		return
	}
	if !h.kubectlDebug(c, r, s, lim, info) {
		return
	}
	// For idle expiry: one atomic store. A refused request is no use of
	// the session; a long stream touches it again whenever it carries
	// something.
	s.Touch(c.start)
	if opts != nil {
		if !httpstream.IsUpgradeRequest(r) {
			apistatus.Write(w, apierrors.NewBadRequest(info.Subresource+" needs a WebSocket or SPDY upgrade"))
			return
		}
		h.serveRemoteCommand(c, r, s, lim, info, *opts, apiPath)
		return
	}
	if rw := discoveryRewriter(r, apiPath, w.ResponseWriter); rw != nil {
		// The target's own address in /api and /apis is none of the
		// caller's business; the gateway answers with its own.
		w.ResponseWriter = rw
		defer rw.finish()
	}
	watch := isWatch(info)
	h.forward(c, r, s, lim, watch, !watch && isFollow(info, r.URL), apiPath)
}

// describe fills the audit record with what the request does, parsed by
// k8s.io/apiserver's own resolver.
func (h *Handler) describe(ev *auditv1.Event, r *http.Request, apiPath string) *request.RequestInfo {
	// The resolver reads only the method and URL: a shallow copy with the
	// API path will do, with no clone of the headers on the hot path.
	u := *r.URL
	u.Path, u.RawPath = apiPath, ""
	rr := &http.Request{Method: r.Method, URL: &u}
	info, err := h.requestInfo.NewRequestInfo(rr)
	if err != nil {
		return nil
	}
	ev.Verb = info.Verb
	if info.IsResourceRequest {
		ev.ObjectRef = &auditv1.ObjectReference{
			Resource: info.Resource, Subresource: info.Subresource, Namespace: info.Namespace,
			Name: info.Name, APIGroup: info.APIGroup, APIVersion: info.APIVersion,
		}
		switch info.Subresource {
		case "exec", "attach", "portforward":
			// A stream is a create, whichever method opened it (WebSocket
			// opens with GET), as the API server authorizes it.
			ev.Verb = "create"
		}
		if info.Subresource == "exec" || info.Subresource == "attach" {
			if cmd := r.URL.Query()["command"]; len(cmd) > 0 {
				ev.Annotations[audit.AnnotationCommand] = strings.Join(cmd, " ")
			}
		}
	}
	return info
}

// forward sends the request to the target as the session's identity. The
// request lives only as long as the session: when it leaves the registry the
// upstream request is cancelled and a hijacked stream is closed.
func (h *Handler) forward(c *call, r *http.Request, s *registry.Session, lim registry.Limits, watch, follow bool, apiPath string) {
	w := c.w
	b := s.Backend()
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	// A watch or followed log the gateway cuts gives the caller
	// streams.CloseGrace to take its last word; one that stops reading
	// cannot hold it open.
	long := watch || follow
	cut := func(err error) {
		if long {
			_ = http.NewResponseController(w.ResponseWriter).SetWriteDeadline(time.Now().Add(streams.CloseGrace))
		}
		cancel(err)
	}
	stopCut := context.AfterFunc(c.sctx, func() {
		why := context.Cause(c.sctx)
		w.ended.CompareAndSwap(nil, &why) // for the audit record
		cut(why)
		connectionsCut.Inc()
	})
	defer stopCut()
	w.session, w.sctx = s, c.sctx

	loc := targetURL(b, apiPath, r.URL.RawQuery)
	upgrade := httpstream.IsUpgradeRequest(r)
	if upgrade || long {
		openStreams.Inc()
		defer openStreams.Dec()
		// A port-forward, a watch or a followed log is held to the
		// session's stream lifetimes; activity is what it carries.
		w.limits = streamLimits(lim.Streams)
		w.act = streams.NewActivity(h.clock(), s.Touch)
		w.clock = h.clock()
		if !upgrade && w.limits != (streams.Limits{}) {
			defer streams.WatchLimits(ctx, w.clock, s.Name, w.limits, w.act, func(err error) {
				w.ended.CompareAndSwap(nil, &err)
				cut(err)
			})()
		}
		if upgrade {
			w.onHijack = func() { h.logStarted(c) }
		}
	}
	if long && !upgrade {
		// The proxy panics with ErrAbortHandler when the gateway cuts the
		// upstream body: the caller is told why first (lastWord).
		w.watch = watch
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler && ctx.Err() != nil && r.Context().Err() == nil && lastWord(w, context.Cause(ctx).Error()) {
					return
				}
				panic(p)
			}
		}()
	}
	rt := timed{b.Transport, s.Cluster}
	if !upgrade {
		plainProxy(loc, rt, b.Token).ServeHTTP(w, r.WithContext(ctx))
		return
	}
	out := r.WithContext(ctx)
	out.Header = r.Header.Clone()
	asSession(out.Header, r.Header, b.Token)
	p := utilproxy.NewUpgradeAwareHandler(loc, rt, false, false, responder{})
	p.UseLocationHost = true
	p.RejectForwardingRedirects = true
	p.ServeHTTP(w, out)
}

// plainProxy forwards a request that is no upgrade (a watch included) to
// loc as the session: the standard library's reverse proxy, as
// apimachinery's upgrade-aware handler uses for such requests, without the
// per-request costs that handler adds — a second copy of the headers, and a
// 32 KiB buffer allocated and zeroed for every response (now lent by a
// pool), which was the GET path's largest allocation.
func plainProxy(loc *url.URL, rt http.RoundTripper, token string) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// pr.Out.Header is already the proxy's own copy.
			asSession(pr.Out.Header, pr.In.Header, token)
			pr.Out.URL, pr.Out.Host = loc, loc.Host
			// The target sees the caller's address, not a chain the
			// caller wrote (scrub dropped those), as on the upgrade path.
			pr.Out.Header.Set("X-Forwarded-For", remoteIP(pr.In))
		},
		Transport:      rt,
		BufferPool:     buffers,
		ModifyResponse: refuseRedirect,
		ErrorHandler:   responder{}.Error,
		ErrorLog:       proxyErrors,
	}
}

// buffers lends the proxy its copy buffers.
var buffers = &bufferPool{pool: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}

type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) Get() []byte { return *p.pool.Get().(*[]byte) }

func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }

// proxyErrors is where the reverse proxy reports what it cannot tell the
// caller (a response cut midway); not the caller's business, so klog's.
var proxyErrors = klog.NewStandardLogger("WARNING")

// refuseRedirect answers a redirect from the target with a 502, as
// apimachinery's RejectForwardingRedirects does: the caller's credentials
// are never sent anywhere the target points.
func refuseRedirect(resp *http.Response) error {
	if resp.StatusCode < 300 || resp.StatusCode > 399 || resp.Header.Get("Location") == "" {
		return nil
	}
	_ = resp.Body.Close()
	const msg = "the backend attempted to redirect this request, which is not permitted"
	*resp = http.Response{
		StatusCode: http.StatusBadGateway, Status: "502 Bad Gateway",
		Header: http.Header{"Content-Type": {"text/plain; charset=utf-8"}},
		Body:   io.NopCloser(strings.NewReader(msg)), ContentLength: int64(len(msg)),
		Request: resp.Request,
	}
	return nil
}

// targetURL is where a request for apiPath goes on the session's target.
func targetURL(b *registry.Backend, apiPath, rawQuery string) *url.URL {
	loc := *b.URL
	loc.Path = strings.TrimSuffix(loc.Path, "/") + apiPath
	loc.RawPath = ""
	loc.RawQuery = rawQuery
	return &loc
}

func (h *Handler) clock() clock.Clock {
	if h.Clock == nil {
		return clock.RealClock{}
	}
	return h.Clock
}

func (h *Handler) finish(c *call) {
	code := c.w.code
	if c.w.hijacked {
		code = http.StatusSwitchingProtocols
	}
	if code == 0 {
		code = http.StatusOK
	}
	end := h.Now()
	c.ev.ResponseStatus = &metav1.Status{Code: int32(code)}
	c.ev.RequestReceivedTimestamp = metav1.NewMicroTime(c.start)
	c.ev.StageTimestamp = metav1.NewMicroTime(end)
	if c.ev.Annotations != nil {
		c.ev.Annotations[audit.AnnotationLatency] = end.Sub(c.start).String()
	}
	if err := c.w.endedBy(); err != nil {
		c.ev.Annotations[audit.AnnotationStreamEnd] = err.Error()
	}
	if c.session != nil {
		countSessionRequest(c.session, code)
	} else {
		refusedRequests.WithLabelValues(strconv.Itoa(code)).Inc()
	}
	if h.Audit != nil {
		h.Audit.Log(c.ev)
	}
}

// responseWriter records the status code and tracks a hijacked connection
// so that it can be closed when the session ends.
type responseWriter struct {
	http.ResponseWriter
	code     int
	hijacked bool
	session  *registry.Session
	// sctx ends a hijacked stream (call.sctx).
	sctx context.Context

	// For a stream the proxy forwards (port-forward, watch): its
	// lifetimes, its activity, and why the gateway ended it.
	limits   streams.Limits
	act      *streams.Activity
	clock    clock.Clock
	ended    atomic.Pointer[error]
	onHijack func()
	// watch: the response is a watch, whose event boundaries frames
	// follows once its media type is known.
	watch  bool
	frames *frames
}

func (w *responseWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
		if w.watch && code == http.StatusOK {
			w.frames = watchFrames(w.Header())
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	if w.act != nil {
		w.act.Touch()
	}
	n, err := w.ResponseWriter.Write(b)
	if w.frames != nil {
		w.frames.observe(b[:n])
	}
	return n, err
}

// Unwrap lets http.ResponseController reach Flush on the real writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("connection cannot be hijacked")
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.hijacked = true
	if w.onHijack != nil {
		w.onHijack()
	}
	s := w.session
	if s == nil {
		return conn, rw, nil
	}
	// The stream's copy loops end when either side closes; closing the
	// caller's side ends both, and the proxy then closes the target's.
	tc := &trackedConn{Conn: conn, act: w.act}
	// (forward's own cut, on the same context, records why for the audit.)
	stopCut := context.AfterFunc(w.sctx, func() { _ = conn.Close() })
	stopLimits := func() {}
	if w.limits != (streams.Limits{}) {
		stopLimits = streams.WatchLimits(w.sctx, w.clock, s.Name, w.limits, w.act, func(err error) {
			w.ended.CompareAndSwap(nil, &err)
			_ = conn.Close()
		})
	}
	tc.stop = func() { stopCut(); stopLimits() }
	return tc, rw, nil
}

// endedBy is why the gateway ended a forwarded stream, or nil.
func (w *responseWriter) endedBy() error {
	if p := w.ended.Load(); p != nil {
		return *p
	}
	return nil
}

type trackedConn struct {
	net.Conn
	act  *streams.Activity
	stop func()
}

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.act != nil {
		c.act.Touch()
	}
	return n, err
}

func (c *trackedConn) Write(p []byte) (int, error) {
	if c.act != nil {
		c.act.Touch()
	}
	return c.Conn.Write(p)
}

func (c *trackedConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// timed records how long the target takes to answer.
type timed struct {
	rt      http.RoundTripper
	cluster string
}

func (t timed) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.rt.RoundTrip(r)
	upstreamLatency.WithLabelValues(t.cluster).Observe(time.Since(start).Seconds())
	return resp, err
}

// WrappedRoundTripper lets apimachinery find the TLS config for upgrades.
func (t timed) WrappedRoundTripper() http.RoundTripper { return t.rt }

// responder turns errors reaching the target into a 502 Status.
type responder struct{}

func (responder) Error(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(r.Context().Err(), context.Canceled) {
		cause := context.Cause(r.Context())
		klog.V(4).InfoS("Request to target ended", "path", r.URL.Path, "reason", cause)
		var ended *registry.EndedError
		var closed *streams.ClosedError
		if errors.As(cause, &ended) || errors.As(cause, &closed) {
			apistatus.Write(w, &apierrors.StatusError{ErrStatus: metav1.Status{
				Status: metav1.StatusFailure, Code: http.StatusGone, Reason: metav1.StatusReasonGone, Message: cause.Error(),
			}})
			return
		}
	} else {
		klog.V(2).InfoS("Request to target failed", "path", r.URL.Path, "err", err.Error())
	}
	apistatus.Write(w, &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusBadGateway, Reason: metav1.StatusReasonServiceUnavailable,
		Message: "the target API server could not be reached",
	}})
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
