package streams

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
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
// PodExecOptions and PodAttachOptions: at least one stream, and no separate
// stderr with a TTY.
func ParseOptions(q url.Values) (Options, error) {
	b := func(name string) (bool, error) {
		v := q.Get(name)
		if v == "" {
			return false, nil
		}
		on, err := strconv.ParseBool(v)
		if err != nil {
			return false, fmt.Errorf("query parameter %s: %q is not a boolean", name, v)
		}
		return on, nil
	}
	var o Options
	var err error
	for _, f := range []struct {
		name string
		to   *bool
	}{{"stdin", &o.Stdin}, {"stdout", &o.Stdout}, {"stderr", &o.Stderr}, {"tty", &o.TTY}} {
		if *f.to, err = b(f.name); err != nil {
			return o, err
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
func accept(w http.ResponseWriter, r *http.Request, o Options) (*client, error) {
	if wsstream.IsWebSocketRequest(r) {
		return acceptWebSocket(w, r, o)
	}
	return acceptSPDY(w, r, o)
}

func acceptWebSocket(w http.ResponseWriter, r *http.Request, o Options) (*client, error) {
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
		c.resize = resizes(s[remotecommand.StreamResize])
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

// resizes decodes the resize stream's JSON sizes until it ends.
func resizes(r io.Reader) <-chan clientremotecommand.TerminalSize {
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
			ch <- size
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

func acceptSPDY(w http.ResponseWriter, r *http.Request, o Options) (*client, error) {
	protocol, err := httpstream.Handshake(r, w, []string{remotecommand.StreamProtocolV4Name})
	if err != nil {
		return nil, err
	}
	created := make(chan spdyStream)
	done := make(chan struct{})
	conn := spdy.NewResponseUpgrader().UpgradeResponse(w, r, func(s httpstream.Stream, replySent <-chan struct{}) error {
		select {
		case created <- spdyStream{s, replySent}:
			return nil
		case <-done:
			return errors.New("no more streams are expected")
		}
	})
	defer close(done)
	if conn == nil {
		return nil, errors.New("upgrading to SPDY failed")
	}
	want := 1 // the error stream
	for _, on := range []bool{o.Stdin, o.Stdout, o.Stderr, o.TTY} {
		if on {
			want++
		}
	}
	c := &client{close: conn.Close, protocol: protocol}
	replies := make(chan struct{}, want+8)
	timeout := time.NewTimer(streamCreationTimeout)
	defer timeout.Stop()
	for got := 0; got < want; {
		select {
		case s := <-created:
			switch t := s.Headers().Get(corev1.StreamType); t {
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
				c.resize = resizes(s)
			default:
				_ = conn.Close()
				return nil, fmt.Errorf("the client opened a stream of unknown type %q", t)
			}
			go func(sent <-chan struct{}) {
				select {
				case <-sent:
					replies <- struct{}{}
				case <-conn.CloseChan():
				}
			}(s.replySent)
		case <-replies:
			got++
		case <-conn.CloseChan():
			return nil, errors.New("the client closed the connection before opening its streams")
		case <-timeout.C:
			_ = conn.Close()
			return nil, errors.New("timed out waiting for the client to open its streams")
		}
	}
	if c.writeStatus == nil {
		_ = conn.Close()
		return nil, errors.New("the client opened no error stream")
	}
	return c, nil
}
