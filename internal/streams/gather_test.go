package streams

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"sync/atomic"
	"testing"

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

// A TLS write of more than one record leaves in one write of the
// connection's when the relay gathers it, and a write of another goroutine
// in between is kept with it, in order; the reader gets every byte. A write
// that is not gathered goes out as Go's TLS makes it: a write per record.
func TestGatheredRecordsLeaveInOneWrite(t *testing.T) {
	certPEM, keyPEM, err := cert.GenerateSelfSignedCertKey("127.0.0.1", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := cert.NewPoolFromBytes(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	counted := make(chan *countedConn, 1)
	ln := GatherListener(countingListener{tcp, counted})

	read := make(chan []byte, 1)
	go func() {
		c, err := tls.Dial("tcp", tcp.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
		if err != nil {
			read <- nil
			return
		}
		b, _ := io.ReadAll(c)
		read <- b
	}()
	raw, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c := tls.Server(raw, &tls.Config{Certificates: []tls.Certificate{pair}})
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	wire := <-counted
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
		t.Errorf("a 40 KiB write not gathered left in %d writes, want one per record", n)
	}

	g := gathererOf(c)
	if g.c == nil {
		t.Fatal("the TLS connection of a gathering listener gathers nothing")
	}
	before = wire.writes.Load()
	err = g.write(func() error {
		if _, err := c.Write(message); err != nil {
			return err
		}
		done := make(chan error)
		go func() { _, err := c.Write([]byte("a control frame")); done <- err }()
		return <-done
	})
	if err != nil {
		t.Fatal(err)
	}
	want.Write(message)
	want.WriteString("a control frame")
	if n := wire.writes.Load() - before; n != 1 {
		t.Errorf("a gathered 40 KiB write and the write of another goroutine left in %d writes, want 1", n)
	}

	// After the gathered write, writes go straight out again.
	before = wire.writes.Load()
	if _, err := c.Write([]byte("after")); err != nil || wire.writes.Load()-before != 1 {
		t.Errorf("a write after gathering: %v, %d writes, want 1", err, wire.writes.Load()-before)
	}
	want.WriteString("after")
	_ = c.Close()
	if got := <-read; !bytes.Equal(got, want.Bytes()) {
		t.Errorf("the reader got %d bytes, want the %d written, in order", len(got), want.Len())
	}

	// A connection that came from elsewhere gathers nothing and still
	// writes.
	if g := gathererOf(&countedConn{}); g.c != nil {
		t.Error("a connection of another listener is gathered")
	}
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
