package streams

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"k8s.io/apimachinery/pkg/util/remotecommand"
	"k8s.io/client-go/util/cert"
)

// countedConn counts the writes that reach the connection, and tells big,
// if set, when a write of a MiB or more starts.
type countedConn struct {
	net.Conn
	writes atomic.Int32
	big    chan struct{}
}

func (c *countedConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	if c.big != nil && len(p) >= 1<<20 {
		select {
		case c.big <- struct{}{}:
		default:
		}
	}
	return c.Conn.Write(p)
}

// A TLS write of more than one record (one WebSocket frame) leaves in one
// write of the connection's when it is framed, and the reader gets every
// byte, in order. A write that is not framed goes out as Go's TLS makes it:
// a write per record. A gathered write that failed fails every later one:
// TLS counted its records as sent, and nothing may follow them.
func TestGatheredRecordsLeaveInOneWrite(t *testing.T) {
	var read bytes.Buffer
	c, wire, done := tlsPair(t, &read, 0)
	message := bytes.Repeat([]byte("0123456789abcdef"), 40<<10/16) // three records
	var want bytes.Buffer

	before := wire.writes.Load()
	if _, err := c.Write(message); err != nil {
		t.Fatal(err)
	}
	want.Write(message)
	// At least three records of 16 KiB; smaller ones at a connection's
	// start (Go's dynamic record sizing).
	if n := wire.writes.Load() - before; n < 3 {
		t.Errorf("a 40 KiB write not framed left in %d writes, want one per record", n)
	}

	f := framed(c)
	if _, ok := f.(*framedConn); !ok {
		t.Fatal("the TLS connection of a gathering listener is not framed")
	}
	for range 3 {
		before = wire.writes.Load()
		if _, err := f.Write(message); err != nil {
			t.Fatal(err)
		}
		want.Write(message)
		if n := wire.writes.Load() - before; n != 1 {
			t.Errorf("a framed 40 KiB write left in %d writes, want 1", n)
		}
	}
	// After a framed write, writes go straight out again.
	before = wire.writes.Load()
	if _, err := c.Write([]byte("after")); err != nil || wire.writes.Load()-before != 1 {
		t.Errorf("a write after a framed one: %v, %d writes, want 1", err, wire.writes.Load()-before)
	}
	want.WriteString("after")
	_ = c.Close()
	<-done
	if !bytes.Equal(read.Bytes(), want.Bytes()) {
		t.Errorf("the reader got %d bytes, want the %d written, in order", read.Len(), want.Len())
	}

	// A connection that came from elsewhere is not framed and still
	// writes.
	if g := framed(&countedConn{}); g == nil {
		t.Error("framed lost a connection of another listener")
	} else if _, ok := g.(*framedConn); ok {
		t.Error("a connection of another listener is framed")
	}
}

func TestAFailedGatheredWriteFailsEveryLaterOne(t *testing.T) {
	c, wire, _ := tlsPair(t, io.Discard, 0)
	f := framed(c)
	must(t, c.NetConn().SetWriteDeadline(time.Now().Add(-time.Second)))
	if _, err := f.Write([]byte("lost")); err == nil {
		t.Fatal("a framed write past its deadline succeeded")
	}
	must(t, c.NetConn().SetWriteDeadline(time.Time{}))
	before := wire.writes.Load()
	if _, err := f.Write([]byte("next")); err == nil {
		t.Error("a framed write after a failed one succeeded")
	}
	if _, err := c.Write([]byte("next")); err == nil {
		t.Error("a TLS write after a failed framed one succeeded")
	}
	if n := wire.writes.Load() - before; n != 0 {
		t.Errorf("%d writes reached the connection after a failed one, want none", n)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Closing a framed connection while a gathered write waits on a peer that
// does not read ends the write at once: TLS's own close would wait up to
// 5 s to tell the peer, behind it.
func TestClosingAFramedConnectionEndsAWriteThatWaits(t *testing.T) {
	stalled := make(chan struct{})
	defer close(stalled)
	// Socket buffers of a few KiB: a gathered MiB cannot fit in them.
	c, wire, _ := tlsPair(t, blockingWriter(stalled), 4<<10)
	must(t, wire.Conn.(*net.TCPConn).SetWriteBuffer(4<<10))
	wire.big = make(chan struct{}, 1)
	f := framed(c).(*framedConn)
	failed := make(chan error, 1)
	go func() {
		_, err := f.Write(make([]byte, 1<<20))
		failed <- err
	}()
	// The gathered records of the MiB reach the socket, in release.
	select {
	case <-wire.big:
	case err := <-failed:
		t.Fatalf("the framed write of a MiB to a peer that does not read ended: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the framed write never reached the socket")
	}
	start := time.Now()
	_ = f.Close()
	select {
	case err := <-failed:
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("the waiting write ended %v after the close, want at once", took)
		}
		if err == nil {
			t.Error("the waiting write succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting write did not end within 10 s of the close")
	}
}

// blockingWriter takes nothing until stop is closed: a peer that does not
// read.
type blockingWriter chan struct{}

func (w blockingWriter) Write(p []byte) (int, error) {
	<-w
	return 0, io.ErrClosedPipe
}

// The relay's WebSocket upgrade, through net/http's hijack, gets the
// caller's TLS connection framed; one under a wrapper is not framed (its
// Close would pass framedConn's by), and still works.
func TestTheUpgradeGetsAFramedConnection(t *testing.T) {
	pair, roots, tcp := serving(t)
	defer tcp.Close()
	got := make(chan net.Conn, 2)
	srv := &http.Server{
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{pair}},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/wrapped" {
				w = wrappingWriter{w}
			}
			gw := &gatheringWriter{ResponseWriter: w}
			ws, err := upgrader(remotecommand.StreamProtocolV5Name).Upgrade(gw, r, nil)
			if err != nil {
				got <- nil
				return
			}
			defer ws.Close()
			_ = ws.WriteMessage(websocket.BinaryMessage, []byte{1, 'o', 'k'})
			if gw.conn != nil && net.Conn(gw.conn) != ws.NetConn() {
				got <- nil // the relay would cut another connection than it writes to
				return
			}
			got <- ws.NetConn()
		}),
	}
	go func() { _ = srv.Serve(tls.NewListener(GatherListener(tcp), srv.TLSConfig)) }()
	defer srv.Close()
	for _, path := range []string{"/plain", "/wrapped"} {
		d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}, Subprotocols: []string{remotecommand.StreamProtocolV5Name}}
		ws, _, err := d.Dial("wss://"+tcp.Addr().String()+path, nil)
		must(t, err)
		_, msg, err := ws.ReadMessage()
		_ = ws.Close()
		c := <-got
		_, isFramed := c.(*framedConn)
		if isFramed != (path == "/plain") || err != nil || string(msg) != "\x01ok" {
			t.Errorf("%s: the upgrade got a %T, and the caller read %q, %v; want it framed only when plain, and the message", path, c, msg, err)
		}
	}
}

// wrappingWriter hijacks a connection and wraps it.
type wrappingWriter struct{ http.ResponseWriter }

func (w wrappingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	return netConnOf{c}, rw, err
}

type netConnOf struct{ net.Conn }

// serving is a loopback listener and a certificate for it, with the pool
// that trusts it.
func serving(tb testing.TB) (tls.Certificate, *x509.CertPool, net.Listener) {
	tb.Helper()
	certPEM, keyPEM, err := cert.GenerateSelfSignedCertKey("127.0.0.1", nil, nil)
	must(tb, err)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	must(tb, err)
	roots, err := cert.NewPoolFromBytes(certPEM)
	must(tb, err)
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	must(tb, err)
	return pair, roots, tcp
}

// tlsPair is the server side of a TLS connection over loopback, accepted
// by a GatherListener, with the writes that reach its TCP connection
// counted; the client (with a receive buffer of rcvbuf bytes, if set)
// copies what it reads to sink until the server closes, then done is
// closed.
func tlsPair(tb testing.TB, sink io.Writer, rcvbuf int) (c *tls.Conn, wire *countedConn, done <-chan struct{}) {
	tb.Helper()
	pair, roots, tcp := serving(tb)
	tb.Cleanup(func() { _ = tcp.Close() })
	counted := make(chan *countedConn, 1)
	ln := GatherListener(countingListener{tcp, counted})
	read := make(chan struct{})
	go func() {
		defer close(read)
		raw, err := net.Dial("tcp", tcp.Addr().String())
		if err != nil {
			return
		}
		if rcvbuf > 0 {
			_ = raw.(*net.TCPConn).SetReadBuffer(rcvbuf)
		}
		c := tls.Client(raw, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
		defer c.Close()
		_, _ = io.Copy(sink, c)
	}()
	raw, err := ln.Accept()
	must(tb, err)
	c = tls.Server(raw, &tls.Config{Certificates: []tls.Certificate{pair}})
	tb.Cleanup(func() { _ = c.Close(); <-read })
	must(tb, c.Handshake())
	return c, <-counted, read
}

// BenchmarkGatheredWrites writes messages of kubectl's size (a frame of
// 32 KiB and a channel byte) over TLS on loopback, each as Go's TLS makes
// it (plain) or gathered (framed), and reports the CPU of the whole process
// (both ends and the kernel's work for them) per MB.
func BenchmarkGatheredWrites(b *testing.B) {
	for _, framedWrites := range []bool{false, true} {
		name := "plain"
		if framedWrites {
			name = "framed"
		}
		b.Run(name, func(b *testing.B) {
			c, _, done := tlsPair(b, io.Discard, 0)
			var w net.Conn = c
			if framedWrites {
				w = framed(c)
			}
			message := make([]byte, 32<<10+1+4)
			// Past the small records of a connection's start.
			for range 8 {
				_, _ = w.Write(message)
			}
			b.SetBytes(int64(len(message)))
			start := processCPU()
			b.ResetTimer()
			for b.Loop() {
				if _, err := w.Write(message); err != nil {
					b.Fatal(err)
				}
			}
			_ = c.Close()
			<-done
			cpu := processCPU() - start
			b.ReportMetric(float64(cpu.Microseconds())/(float64(b.N)*float64(len(message))/1e6), "cpu-µs/MB")
		})
	}
}

// processCPU is the user and system CPU time of this process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type countingListener struct {
	net.Listener
	conns chan *countedConn
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &countedConn{Conn: c}
	l.conns <- cc
	return cc, nil
}
