package streams

import (
	"crypto/tls"
	"net"
	"sync"
)

// Go's TLS writes each record of at most 16 KiB with a write of its own, so
// one 32 KiB message of kubectl's leaves the gateway in three system calls
// (the last for the few bytes past 32 KiB), and each wakes the reader. The
// relay gathers the records of one message and writes them at once, which
// halves what a relayed byte costs the gateway (BenchmarkGatheredWrites).

// GatherListener wraps ln's connections so that the relay can gather their
// writes; anything else writes through them as before.
func GatherListener(ln net.Listener) net.Listener { return gatherListener{ln} }

type gatherListener struct{ net.Listener }

func (l gatherListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &gatherConn{Conn: c}, nil
}

// gatherConn keeps its writes between hold and release, and writes them as
// one. A write of another goroutine in between (a WebSocket control frame)
// is kept with them, in order.
type gatherConn struct {
	net.Conn
	mu   sync.Mutex
	held bool
	buf  *[]byte
}

// gatherBuffers hold what a relay gathers: a message of kubectl's and its
// three records' overhead.
var gatherBuffers = sync.Pool{New: func() any { b := make([]byte, 0, relayBufferSize+256); return &b }}

// maxGatherBuffer: a buffer that grew past this (a caller that sent longer
// messages than kubectl) is not kept.
const maxGatherBuffer = 256 << 10

func (c *gatherConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.held {
		return c.Conn.Write(p)
	}
	if c.buf == nil {
		c.buf = gatherBuffers.Get().(*[]byte)
	}
	*c.buf = append(*c.buf, p...)
	return len(p), nil
}

func (c *gatherConn) hold() {
	c.mu.Lock()
	c.held = true
	c.mu.Unlock()
}

// release writes what was kept since hold.
func (c *gatherConn) release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = false
	b := c.buf
	if b == nil {
		return nil
	}
	c.buf = nil
	_, err := c.Conn.Write(*b)
	if cap(*b) <= maxGatherBuffer {
		*b = (*b)[:0]
		gatherBuffers.Put(b)
	}
	return err
}

// gatherer is what a relay holds of its caller's connection: nil (gathering
// nothing) unless the connection came from a GatherListener, through TLS or
// not.
type gatherer struct{ c *gatherConn }

func gathererOf(c net.Conn) gatherer {
	if t, ok := c.(*tls.Conn); ok {
		c = t.NetConn()
	}
	g, _ := c.(*gatherConn)
	return gatherer{g}
}

// write calls write with the connection's writes gathered into one.
func (g gatherer) write(write func() error) error {
	if g.c == nil {
		return write()
	}
	g.c.hold()
	err := write()
	if rerr := g.c.release(); err == nil {
		err = rerr
	}
	return err
}
