package streams

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/util/cert"
)

// countedConn counts the writes that reach the connection.
type countedConn struct {
	net.Conn
	writes atomic.Int32
}

func (c *countedConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// A TLS write of more than one record (one WebSocket frame) leaves in one
// write of the connection's when it is framed, and the reader gets every
// byte, in order. A write that is not framed goes out as Go's TLS makes it:
// a write per record. A gathered write that failed fails every later one:
// TLS counted its records as sent, and nothing may follow them.
func TestGatheredRecordsLeaveInOneWrite(t *testing.T) {
	var read bytes.Buffer
	c, wire, done := tlsPair(t, &read)
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
	if rawConn(f) != c.NetConn() || rawConn(c) != c.NetConn() {
		t.Error("rawConn does not reach the connection under TLS")
	}
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
	c, wire, _ := tlsPair(t, io.Discard)
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

// tlsPair is the server side of a TLS connection over loopback, accepted
// by a GatherListener, with the writes that reach its TCP connection
// counted; the client copies what it reads to sink until the server closes,
// then done is closed.
func tlsPair(tb testing.TB, sink io.Writer) (c *tls.Conn, wire *countedConn, done <-chan struct{}) {
	tb.Helper()
	certPEM, keyPEM, err := cert.GenerateSelfSignedCertKey("127.0.0.1", nil, nil)
	must(tb, err)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	must(tb, err)
	roots, err := cert.NewPoolFromBytes(certPEM)
	must(tb, err)
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	must(tb, err)
	tb.Cleanup(func() { _ = tcp.Close() })
	counted := make(chan *countedConn, 1)
	ln := GatherListener(countingListener{tcp, counted})
	read := make(chan struct{})
	go func() {
		defer close(read)
		c, err := tls.Dial("tcp", tcp.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(sink, c)
	}()
	raw, err := ln.Accept()
	must(tb, err)
	c = tls.Server(raw, &tls.Config{Certificates: []tls.Certificate{pair}})
	tb.Cleanup(func() { _ = c.Close() })
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
			c, _, done := tlsPair(b, io.Discard)
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
