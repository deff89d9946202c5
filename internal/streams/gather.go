package streams

import (
	"bufio"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// Go's TLS writes each record of at most 16 KiB with a write of its own, so
// one 32 KiB message of kubectl's would leave the gateway in three system
// calls (the last for the few bytes past 32 KiB), each waking the reader.
// The relay gathers the records of each WebSocket write to the caller (a
// frame; a message longer than the WebSocket's buffer is several) and
// writes them at once: a third of the writes, and a third less CPU per
// relayed byte, both ends together, in BenchmarkGatheredWrites. The
// gathering happens inside the WebSocket's own write, under its lock and
// deadline, so a control frame of another goroutine (a pong) waits for it
// as for any write and cannot move its deadline.

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

// gatherConn, the connection under TLS, keeps its writes between hold and
// release and writes them as one.
type gatherConn struct {
	net.Conn
	mu   sync.Mutex
	held bool
	buf  *[]byte
	// busy is set from hold to the end of release: a gathered write may be
	// waiting on the peer. closing is set when the framed connection is
	// being closed: a write that starts gathering after that ends it.
	busy, closing atomic.Bool
	// err is set once a gathered write failed: TLS counted its records as
	// sent, so nothing more may follow them on the wire.
	err error
}

// gatherBuffers hold what a relay gathers: a message of kubectl's and its
// records' overhead.
var gatherBuffers = sync.Pool{New: func() any { b := make([]byte, 0, relayBufferSize+256); return &b }}

// maxGatherBuffer: a buffer that grew past this is not kept.
const maxGatherBuffer = 256 << 10

func (c *gatherConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.err != nil:
		return 0, c.err
	case !c.held:
		return c.Conn.Write(p)
	}
	if c.buf == nil {
		c.buf = gatherBuffers.Get().(*[]byte)
	}
	*c.buf = append(*c.buf, p...)
	return len(p), nil
}

func (c *gatherConn) hold() {
	c.busy.Store(true)
	if c.closing.Load() {
		_ = c.Conn.Close()
	}
	c.mu.Lock()
	c.held = true
	c.mu.Unlock()
}

// release writes what was kept since hold.
func (c *gatherConn) release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.busy.Store(false)
	c.held = false
	b := c.buf
	if b == nil {
		return c.err
	}
	c.buf = nil
	if c.err == nil {
		if _, err := c.Conn.Write(*b); err != nil {
			c.err = err
		}
	}
	if cap(*b) <= maxGatherBuffer {
		*b = (*b)[:0]
		gatherBuffers.Put(b)
	}
	return c.err
}

// framedConn is the caller's connection as the relay's WebSocket writes to
// it: each write leaves in one write of the connection under TLS.
type framedConn struct {
	net.Conn // the *tls.Conn
	under    *gatherConn
}

func (c *framedConn) Write(p []byte) (int, error) {
	c.under.hold()
	n, err := c.Conn.Write(p)
	if rerr := c.under.release(); err == nil && rerr != nil {
		return 0, rerr
	}
	return n, err
}

// Close ends a gathered write that waits on the peer at once, as TLS does
// for a write of its own in flight; TLS's close would otherwise wait up to
// 5 s to tell the peer, behind that write.
func (c *framedConn) Close() error {
	// Marked before busy is read, and busy is set before closing is read
	// (hold): a gathered write that starts as the close does ends too.
	c.under.closing.Store(true)
	if c.under.busy.Load() {
		_ = c.under.Close()
	}
	return c.Conn.Close()
}

// cut closes the connection under TLS: whatever waits on the peer fails
// at once.
func (c *framedConn) cut() error { return c.under.Close() }

// framed is c with its writes gathered when c is TLS over a
// GatherListener's connection; otherwise c. (A wrapper in between would
// close the TLS connection past framedConn.Close.)
func framed(c net.Conn) net.Conn {
	if t, ok := c.(*tls.Conn); ok {
		if under, ok := t.NetConn().(*gatherConn); ok {
			return &framedConn{Conn: t, under: under}
		}
	}
	return c
}

// gatheringWriter hands the WebSocket upgrade a framed connection, and
// keeps it.
type gatheringWriter struct {
	http.ResponseWriter
	conn *framedConn
}

func (w *gatheringWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	c = framed(c)
	w.conn, _ = c.(*framedConn)
	return c, rw, nil
}

func (w *gatheringWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
