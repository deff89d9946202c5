package streams

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/remotecommand"
	clientremotecommand "k8s.io/client-go/tools/remotecommand"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

// Options are the streams an exec or attach asks for, from its query.
type Options struct {
	Stdin, Stdout, Stderr, TTY bool
}

// ParseOptions reads the stdin, stdout, stderr and tty parameters of
// PodExecOptions and PodAttachOptions strictly: each at most once, and only
// true, false, 1 or 0. The API server takes any other value, the empty one
// included, as true: a value the gateway read differently would let a
// caller past the policy's interactive-stream rule. At least one stream is
// required, and a TTY has no separate stderr.
func ParseOptions(q url.Values) (Options, error) {
	var o Options
	for _, f := range []struct {
		name string
		to   *bool
	}{{"stdin", &o.Stdin}, {"stdout", &o.Stdout}, {"stderr", &o.Stderr}, {"tty", &o.TTY}} {
		vs, ok := q[f.name]
		if !ok {
			continue
		}
		if len(vs) != 1 {
			return o, fmt.Errorf("query parameter %s is given %d times", f.name, len(vs))
		}
		switch strings.ToLower(vs[0]) {
		case "true", "1":
			*f.to = true
		case "false", "0":
		default:
			return o, fmt.Errorf("query parameter %s: %q is not true, false, 1 or 0", f.name, vs[0])
		}
	}
	if !o.Stdin && !o.Stdout && !o.Stderr {
		return o, errors.New("you must specify at least one of stdin, stdout, stderr")
	}
	if o.TTY {
		o.Stderr = false
	}
	return o, nil
}

// TargetQuery is the query the target gets for an exec or attach: the
// streams as the gateway read them, the container, and for exec the
// command. Nothing else the caller sent goes through.
func TargetQuery(q url.Values, o Options, exec bool) url.Values {
	out := url.Values{}
	for name, on := range map[string]bool{"stdin": o.Stdin, "stdout": o.Stdout, "stderr": o.Stderr, "tty": o.TTY} {
		out.Set(name, strconv.FormatBool(on))
	}
	if c := q.Get("container"); c != "" {
		out.Set("container", c)
	}
	if exec {
		out["command"] = q["command"]
	}
	return out
}

// client is the caller's side of an upgraded exec or attach.
type client struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	resize         <-chan clientremotecommand.TerminalSize
	writeStatus    func(*apierrors.StatusError) error
	close          func() error
	protocol       string
}

// streamCreationTimeout bounds how long a SPDY client may take to open the
// streams it asked for.
const streamCreationTimeout = 30 * time.Second

// writeStatusDeadline bounds the final status write to a stalled client.
const writeStatusDeadline = 10 * time.Second

// accept upgrades the caller's connection, WebSocket (v5 and v4 channel
// protocols) or SPDY (v4), and returns its streams. On failure the caller
// has been answered.
// done ends the resize decoder, and a SPDY caller's wait for its streams,
// when the stream is over (or the session ended before it began).
func accept(w http.ResponseWriter, r *http.Request, o Options, done <-chan struct{}) (*client, error) {
	if wsstream.IsWebSocketRequest(r) {
		return acceptWebSocket(w, r, o, done)
	}
	return acceptSPDY(w, r, o, done)
}

func acceptWebSocket(w http.ResponseWriter, r *http.Request, o Options, done <-chan struct{}) (*client, error) {
	channels := make([]wsstream.ChannelType, 5)
	channels[remotecommand.StreamStdIn] = pick(o.Stdin, wsstream.ReadChannel)
	channels[remotecommand.StreamStdOut] = pick(o.Stdout, wsstream.WriteChannel)
	channels[remotecommand.StreamStdErr] = pick(o.Stderr, wsstream.WriteChannel)
	channels[remotecommand.StreamErr] = wsstream.WriteChannel
	channels[remotecommand.StreamResize] = pick(o.TTY, wsstream.ReadChannel)
	conn := wsstream.NewConn(map[string]wsstream.ChannelProtocolConfig{
		remotecommand.StreamProtocolV5Name: {Binary: true, Channels: channels},
		remotecommand.StreamProtocolV4Name: {Binary: true, Channels: channels},
	})
	protocol, s, err := conn.Open(w, r)
	if err != nil {
		return nil, fmt.Errorf("opening the WebSocket: %w", err)
	}
	// The lowest writable channel's empty message tells the client the
	// streams are up, as kube-apiserver does.
	first := remotecommand.StreamErr
	switch {
	case o.Stdout:
		first = remotecommand.StreamStdOut
	case o.Stderr:
		first = remotecommand.StreamStdErr
	}
	if _, err := s[first].Write(nil); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("opening the WebSocket: %w", err)
	}
	c := &client{close: conn.Close, protocol: protocol}
	if o.Stdin {
		c.stdin = s[remotecommand.StreamStdIn]
	}
	if o.Stdout {
		c.stdout = s[remotecommand.StreamStdOut]
	}
	if o.Stderr {
		c.stderr = s[remotecommand.StreamStdErr]
	}
	if o.TTY {
		c.resize = resizes(s[remotecommand.StreamResize], done)
	}
	c.writeStatus = func(st *apierrors.StatusError) error {
		b, err := json.Marshal(st.Status())
		if err != nil {
			return err
		}
		conn.SetWriteDeadline(writeStatusDeadline)
		_, err = s[remotecommand.StreamErr].Write(b)
		return err
	}
	return c, nil
}

func pick(on bool, t wsstream.ChannelType) wsstream.ChannelType {
	if on {
		return t
	}
	return wsstream.IgnoreChannel
}

// maxResizeMessage bounds one terminal size on the resize stream: the
// caller cannot make the gateway buffer an endless JSON value.
const maxResizeMessage = 1 << 10

// resizes decodes the resize stream's JSON sizes until it or done ends.
func resizes(r io.Reader, done <-chan struct{}) <-chan clientremotecommand.TerminalSize {
	ch := make(chan clientremotecommand.TerminalSize, 4)
	go func() {
		defer close(ch)
		capped := &capReader{r: r}
		d := json.NewDecoder(capped)
		for {
			capped.n = 0
			var size clientremotecommand.TerminalSize
			if err := d.Decode(&size); err != nil {
				return
			}
			select {
			case ch <- size:
			case <-done:
				return
			}
		}
	}()
	return ch
}

// capReader fails once more than maxResizeMessage bytes are read since n
// was last reset.
type capReader struct {
	r io.Reader
	n int
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.n >= maxResizeMessage {
		return 0, errors.New("a terminal size message is too long")
	}
	if len(p) > maxResizeMessage-c.n {
		p = p[:maxResizeMessage-c.n]
	}
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

type spdyStream struct {
	httpstream.Stream
	replySent <-chan struct{}
}

func acceptSPDY(w http.ResponseWriter, r *http.Request, o Options, done <-chan struct{}) (*client, error) {
	protocol, err := httpstream.Handshake(r, w, []string{remotecommand.StreamProtocolV4Name})
	if err != nil {
		return nil, err
	}
	created := make(chan spdyStream)
	accepting := make(chan struct{})
	conn := spdy.NewResponseUpgrader().UpgradeResponse(w, r, func(s httpstream.Stream, replySent <-chan struct{}) error {
		select {
		case created <- spdyStream{s, replySent}:
			return nil
		case <-accepting:
			return errors.New("no more streams are expected")
		}
	})
	defer close(accepting)
	if conn == nil {
		return nil, errors.New("upgrading to SPDY failed")
	}
	fail := func(err error) (*client, error) {
		_ = conn.Close()
		return nil, err
	}
	// The streams the options asked for, each once: a stream the caller
	// did not ask for (stdin on an exec without stdin) is refused, so
	// nothing reaches the target that the policy did not see.
	want := map[string]bool{corev1.StreamTypeError: true, corev1.StreamTypeStdin: o.Stdin, corev1.StreamTypeStdout: o.Stdout,
		corev1.StreamTypeStderr: o.Stderr, corev1.StreamTypeResize: o.TTY}
	pending := 0
	for _, on := range want {
		if on {
			pending++
		}
	}
	c := &client{close: conn.Close, protocol: protocol}
	replies := make(chan struct{}, len(want))
	timeout := time.NewTimer(streamCreationTimeout)
	defer timeout.Stop()
	for replied := 0; replied < pending; {
		select {
		case s := <-created:
			t := s.Headers().Get(corev1.StreamType)
			if !want[t] {
				return fail(fmt.Errorf("the client opened a %q stream it did not ask for, or twice", t))
			}
			want[t] = false
			switch t {
			case corev1.StreamTypeError:
				es := s.Stream
				c.writeStatus = func(st *apierrors.StatusError) error {
					b, err := json.Marshal(st.Status())
					if err != nil {
						return err
					}
					_, err = es.Write(b)
					return err
				}
			case corev1.StreamTypeStdin:
				c.stdin = s
			case corev1.StreamTypeStdout:
				c.stdout = s
			case corev1.StreamTypeStderr:
				c.stderr = s
			case corev1.StreamTypeResize:
				c.resize = resizes(s, done)
			}
			go func(sent <-chan struct{}) {
				select {
				case <-sent:
					replies <- struct{}{}
				case <-conn.CloseChan():
				}
			}(s.replySent)
		case <-replies:
			replied++
		case <-conn.CloseChan():
			return nil, errors.New("the client closed the connection before opening its streams")
		case <-done:
			return fail(errors.New("the stream ended before the client opened its streams"))
		case <-timeout.C:
			return fail(errors.New("timed out waiting for the client to open its streams"))
		}
	}
	return c, nil
}
