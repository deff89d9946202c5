package streams

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/remotecommand"
	"k8s.io/client-go/rest"
	clientremotecommand "k8s.io/client-go/tools/remotecommand"
	wstransport "k8s.io/client-go/transport/websocket"
	"k8s.io/klog/v2"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/utils/clock"
)

// A WebSocket exec or attach whose caller and target agree on a channel
// protocol is relayed message by message instead of being ended on both
// sides: each message's first byte names its channel, so the gateway reads
// that byte, records the data, and copies the rest to the other side
// through one buffer. The stream keeps everything the executor path gives
// it (its lifetimes, recording, the caller told why the gateway cut it, the
// exit code for the audit record) at a fraction of the cost. SPDY callers,
// and targets that do not speak WebSocket, take the executor path.

// relayed are the channel protocols the gateway relays, best first. Both
// carry binary messages whose first byte is the channel; v5 adds the close
// channel, with which the caller ends its stdin.
var relayed = []string{remotecommand.StreamProtocolV5Name, remotecommand.StreamProtocolV4Name}

// Channels of the v4 and v5 protocols.
const (
	chanStdin  = remotecommand.StreamStdIn
	chanStdout = remotecommand.StreamStdOut
	chanStderr = remotecommand.StreamStdErr
	chanError  = remotecommand.StreamErr
	chanResize = remotecommand.StreamResize
	chanClose  = remotecommand.StreamClose
)

// relayBufferSize holds one message of kubectl's (32 KiB of data and its
// channel byte) with room for the frame header, as client-go sizes its own.
const relayBufferSize = 32<<10 + 1024

// maxStatusMessage bounds the target's status on the error channel, which
// the gateway reads whole for the exit code.
const maxStatusMessage = 64 << 10

// RelayProtocols are the channel protocols a caller's WebSocket upgrade
// offers that the gateway relays, best first; nil when it offers none, or
// is no well-formed WebSocket upgrade, and takes the executor path.
func RelayProtocols(r *http.Request) []string {
	// The command starts on the target before the caller's upgrade is
	// answered: the upgrade must not fail after it (gorilla's checks).
	if r.Method != http.MethodGet || !websocket.IsWebSocketUpgrade(r) ||
		r.Header.Get("Sec-Websocket-Version") != "13" || !validKey(r.Header.Get("Sec-Websocket-Key")) {
		return nil
	}
	offered := websocket.Subprotocols(r)
	var out []string
	for _, p := range relayed {
		for _, o := range offered {
			if o == p {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// validKey: a WebSocket key is 16 bytes in base64 (RFC 6455, 4.1).
func validKey(k string) bool {
	b, err := base64.StdEncoding.DecodeString(k)
	return err == nil && len(b) == 16
}

// DialTarget opens the exec or attach at loc on the target over WebSocket
// with one of protocols, with cfg's credentials and TLS: the request carries
// nothing of the caller's. The error is an httpstream.UpgradeFailureError
// when the target answered but would not upgrade; its cause is a
// *apierrors.StatusError when the target said why.
func DialTarget(ctx context.Context, cfg *rest.Config, loc *url.URL, protocols []string) (*websocket.Conn, error) {
	rt, holder, err := wstransport.RoundTripperFor(cfg)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc.String(), nil)
	if err != nil {
		return nil, err
	}
	return wstransport.Negotiate(rt, holder, req, protocols...)
}

// StatusOf is the target's own word in err from DialTarget (or a client-go
// executor), when it refused the upgrade and said why.
func StatusOf(err error) (*apierrors.StatusError, bool) {
	var st *apierrors.StatusError
	return st, refusedBy(err, &st)
}

func refusedBy(err error, st **apierrors.StatusError) bool {
	var up *httpstream.UpgradeFailureError
	return errors.As(err, &up) && errors.As(up.Cause, st)
}

// Failed is an executor that fails with err: a stream whose target refused
// it is accepted and told why, as any other.
type Failed struct{ Err error }

func (f Failed) Stream(clientremotecommand.StreamOptions) error { return f.Err }

func (f Failed) StreamWithContext(context.Context, clientremotecommand.StreamOptions) error {
	return f.Err
}

// upgrader accepts the caller's side of a relay. Any origin: the gateway
// takes credentials only from headers and the bearer subprotocol, never
// from cookies, so a page of another origin has nothing to borrow.
func upgrader(protocol string) *websocket.Upgrader {
	return &websocket.Upgrader{
		Subprotocols:    []string{protocol},
		ReadBufferSize:  relayBufferSize,
		WriteBufferSize: relayBufferSize,
		CheckOrigin:     func(*http.Request) bool { return true },
	}
}

// channelBytes holds each channel's byte, for writing it without an
// allocation.
var channelBytes = func() (b [256]byte) {
	for i := range b {
		b[i] = byte(i)
	}
	return b
}()

// relayBuffers are the copy buffers of the relay's two directions.
var relayBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// Relay upgrades the caller's connection with the protocol target agreed
// to and relays the stream until it ends; it owns target.
func (s *Stream) Relay(w http.ResponseWriter, r *http.Request, target *websocket.Conn) Result {
	if s.Clock == nil {
		s.Clock = clock.RealClock{}
	}
	protocol := target.Subprotocol()
	// Each write to the caller leaves in one write (gather.go).
	gw := &gatheringWriter{ResponseWriter: w}
	caller, err := upgrader(protocol).Upgrade(gw, r, nil)
	if err != nil {
		_ = target.Close()
		klog.V(4).InfoS("Stream not opened", "session", s.Name, "err", err.Error())
		return Result{Err: fmt.Errorf("opening the WebSocket: %w", err)}
	}
	if s.Opened != nil {
		s.Opened(protocol)
	}
	// kubectl sends at most 32 KiB and a channel byte per message; a
	// longer one would be passed on whole to a target that reads messages
	// whole.
	caller.SetReadLimit(relayBufferSize)
	rl := &relay{Stream: s, caller: caller, framed: gw.conn, target: target, v5: protocol == remotecommand.StreamProtocolV5Name}
	return rl.run(r.Context())
}

type relay struct {
	*Stream
	caller, target *websocket.Conn
	// framed is the caller's connection, when its writes are gathered.
	framed *framedConn
	v5     bool
	act    *Activity
	// stopped is set when the stream ends: the target's messages still in
	// flight are not passed on.
	stopped atomic.Bool
	// toCaller is held for each message written to the caller: the
	// target's messages and the gateway's own last words do not interleave.
	toCaller sync.Mutex
}

// ended is how the target's side of a relay ended.
type ended struct {
	// status is the target's final status, which reached the caller.
	status *metav1.Status
	err    error
}

func (rl *relay) run(reqCtx context.Context) Result {
	res := Result{Protocol: rl.caller.Subprotocol()}
	ctx, cancel := context.WithCancelCause(reqCtx)
	defer cancel(nil)
	defer rl.watch(ctx, cancel)()
	rl.act = NewActivity(rl.Clock, rl.Touch)
	defer WatchLimits(ctx, rl.Clock, rl.Name, rl.Limits, rl.act, cancel)()

	up := make(chan ended, 1)
	down := make(chan error, 1)
	go func() { up <- rl.fromTarget() }()
	go func() { down <- rl.fromCaller() }()

	var end ended
	var callerErr error
	targetDone, callerDone := false, false
	select {
	case end = <-up:
		targetDone = true
	case callerErr = <-down:
		callerDone = true
	case <-ctx.Done():
	}
	cut := !targetDone && ctx.Err() != nil && reqCtx.Err() == nil
	if !targetDone {
		if callerDone {
			// Nobody is left to tell: a relay of the target's output that
			// waits on the caller ends now.
			rl.cutCaller()
		}
		// The caller gets CloseGrace to take the rest and the reason: one
		// that stops reading cannot hold the stream (or its recording)
		// open.
		t := time.AfterFunc(CloseGrace, rl.cutCaller)
		defer t.Stop()
	}
	// Whatever ended first, the target's side goes now, and what it still
	// sends goes no further.
	rl.stopped.Store(true)
	closeConn(rl.target)
	if !targetDone {
		end = <-up
	}

	var status *apierrors.StatusError
	switch {
	case end.status != nil:
		// The target's own status has reached the caller: it is read only
		// for the audit record.
		res.ExitCode, res.Err = exitOf(end.status)
	case cut:
		res.Err = context.Cause(ctx)
		var closed *ClosedError
		if errors.As(res.Err, &closed) {
			rl.notice(closed.Error())
		}
		status = gone(res.Err)
	case callerDone:
		res.Err = callerErr
	case ctx.Err() != nil:
		// The caller's request ended (the server is shutting down).
		res.Err = context.Cause(ctx)
	default:
		res.Err = end.err
		if res.Err == nil {
			res.Err = errors.New("the target closed the stream without a status")
		}
		klog.V(2).InfoS("Stream to the target failed", "session", rl.Name, "err", res.Err.Error())
		status = targetFailed()
	}
	if status != nil {
		if err := rl.send(chanError, mustJSON(status.Status())); err != nil {
			klog.V(4).InfoS("Could not tell the caller how the stream ended", "session", rl.Name, "err", err.Error())
		}
	}
	closeConn(rl.caller)
	if !callerDone {
		<-down
	}
	return res
}

// cutCaller closes the caller's connection: a write that waits on a caller
// who does not read fails at once.
func (rl *relay) cutCaller() {
	if rl.framed != nil {
		_ = rl.framed.cut()
		return
	}
	_ = rl.caller.NetConn().Close()
}

// closeConn ends a WebSocket as politely as a second allows.
func closeConn(c *websocket.Conn) {
	_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	_ = c.Close()
}

// fromTarget copies the target's messages to the caller until the target's
// side ends: output as it comes, and the final status, which it keeps.
func (rl *relay) fromTarget() ended {
	bp := relayBuffers.Get().(*[]byte)
	defer relayBuffers.Put(bp)
	var end ended
	for {
		ch, msg, err := nextMessage(rl.target)
		if err == nil && rl.stopped.Load() {
			return end
		}
		if err != nil {
			if end.status == nil && !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				end.err = err
			}
			return end
		}
		switch {
		case ch == chanStdout && rl.Options.Stdout, ch == chanStderr && rl.Options.Stderr:
			rec := rl.tap(Recorder.Stdout)
			if ch == chanStderr {
				rec = rl.tap(Recorder.Stderr)
			}
			if err := rl.copyToCaller(ch, msg, *bp, rec); err != nil {
				end.err = err
				return end
			}
		case ch == chanError:
			b, err := io.ReadAll(io.LimitReader(msg, maxStatusMessage+1))
			if err != nil {
				end.err = err
				return end
			}
			if len(b) == 0 {
				// An empty message on the error channel (the stream has
				// no output channel) tells the caller the streams are up.
				if err := rl.send(chanError, nil); err != nil {
					end.err = err
					return end
				}
				continue
			}
			if len(b) > maxStatusMessage {
				end.err = errors.New("the target's status is too long")
				return end
			}
			var st metav1.Status
			if err := json.Unmarshal(b, &st); err != nil {
				end.err = fmt.Errorf("the target's status: %w", err)
				return end
			}
			if err := rl.send(chanError, b); err != nil {
				end.err = err
				return end
			}
			end.status = &st
		}
		// Anything else (a channel the caller did not ask for, a text
		// message) is no part of the protocol and goes no further.
	}
}

// fromCaller copies the caller's stdin, terminal sizes and the closing of
// its stdin to the target, as the stream's options allow, until the caller's
// side ends.
func (rl *relay) fromCaller() error {
	bp := relayBuffers.Get().(*[]byte)
	defer relayBuffers.Put(bp)
	for {
		ch, msg, err := nextMessage(rl.caller)
		if err != nil {
			if websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				return errors.New("the caller closed the stream")
			}
			return err
		}
		switch {
		case ch == chanStdin && rl.Options.Stdin:
			if err := rl.copyToTarget(ch, msg, *bp); err != nil {
				return err
			}
		case ch == chanResize && rl.Options.TTY:
			var size clientremotecommand.TerminalSize
			if err := json.NewDecoder(io.LimitReader(msg, maxResizeMessage)).Decode(&size); err != nil {
				// As on the executor path: a size that does not parse is
				// dropped, and the stream goes on.
				continue
			}
			rl.act.Touch()
			if rl.Recorder != nil {
				rl.Recorder.Resize(int(size.Width), int(size.Height))
			}
			// The target gets the size as the gateway read it.
			if err := rl.target.WriteMessage(websocket.BinaryMessage, append([]byte{chanResize}, mustJSON(size)...)); err != nil {
				return err
			}
		case ch == chanClose && rl.v5 && rl.Options.Stdin:
			// Only stdin is the caller's to close.
			var which [1]byte
			if n, _ := io.ReadFull(msg, which[:]); n == 1 && which[0] == chanStdin {
				if err := rl.target.WriteMessage(websocket.BinaryMessage, []byte{chanClose, chanStdin}); err != nil {
					return err
				}
			}
		}
	}
}

// nextMessage is the next binary message of c and its channel; empty and
// text messages are skipped.
func nextMessage(c *websocket.Conn) (byte, io.Reader, error) {
	for {
		typ, msg, err := c.NextReader()
		if err != nil {
			return 0, nil, err
		}
		if typ != websocket.BinaryMessage {
			continue
		}
		var ch [1]byte
		if _, err := io.ReadFull(msg, ch[:]); err == io.EOF {
			continue
		} else if err != nil {
			return 0, nil, err
		}
		return ch[0], msg, nil
	}
}

// copyToCaller relays one message of the target's on channel ch.
func (rl *relay) copyToCaller(ch byte, msg io.Reader, buf []byte, rec func([]byte)) error {
	rl.toCaller.Lock()
	defer rl.toCaller.Unlock()
	return rl.copyMessage(rl.caller, ch, msg, buf, rec)
}

// copyToTarget relays one message of the caller's stdin.
func (rl *relay) copyToTarget(ch byte, msg io.Reader, buf []byte) error {
	return rl.copyMessage(rl.target, ch, msg, buf, rl.tap(Recorder.Stdin))
}

// copyMessage writes msg to dst as one message on channel ch, through buf,
// recording each piece with rec.
func (rl *relay) copyMessage(dst *websocket.Conn, ch byte, msg io.Reader, buf []byte, rec func([]byte)) error {
	w, err := dst.NextWriter(websocket.BinaryMessage)
	if err != nil {
		return err
	}
	if _, err := w.Write(channelBytes[int(ch) : int(ch)+1]); err != nil {
		return err
	}
	for {
		n, err := msg.Read(buf)
		if n > 0 {
			// Activity is what passes: an empty message keeps nothing
			// open.
			rl.act.Touch()
			if rec != nil {
				rec(buf[:n])
			}
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	return w.Close()
}

// send writes one whole message to the caller on channel ch.
func (rl *relay) send(ch byte, data []byte) error {
	rl.toCaller.Lock()
	defer rl.toCaller.Unlock()
	_ = rl.caller.SetWriteDeadline(time.Now().Add(writeStatusDeadline))
	defer func() { _ = rl.caller.SetWriteDeadline(time.Time{}) }()
	return rl.caller.WriteMessage(websocket.BinaryMessage, append([]byte{ch}, data...))
}

// notice writes a one-line reason where the caller's terminal shows it.
func (rl *relay) notice(msg string) {
	ch, rec := byte(chanStderr), rl.tap(Recorder.Stderr)
	switch {
	case rl.Options.Stderr:
	case rl.Options.Stdout:
		ch, rec = chanStdout, rl.tap(Recorder.Stdout)
	default:
		return
	}
	line := []byte(noticeLine(msg, rl.Options.TTY))
	if rec != nil {
		rec(line)
	}
	if err := rl.send(ch, line); err != nil {
		klog.V(4).InfoS("Could not tell the caller why the stream was closed", "session", rl.Name, "err", err.Error())
	}
}

// exitOf reads the target's final status: the command's exit code when it
// exited, and otherwise why the stream failed.
func exitOf(st *metav1.Status) (*int, error) {
	if st.Status == metav1.StatusSuccess {
		zero := 0
		return &zero, nil
	}
	if st.Reason == remotecommand.NonZeroExitCodeReason && st.Details != nil {
		for _, c := range st.Details.Causes {
			if c.Type != remotecommand.ExitCodeCauseType {
				continue
			}
			if code, err := strconv.Atoi(c.Message); err == nil {
				return &code, nil
			}
		}
	}
	return nil, &apierrors.StatusError{ErrStatus: *st}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
