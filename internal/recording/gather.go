package recording

import (
	"bufio"
	"errors"
	"io"
	"syscall"

	"golang.org/x/sys/unix"
)

// writeBytes is how much of a cast the recorder gathers before it writes:
// a stream of zeros makes six times its size in cast, and written a line at
// a time (64 KiB or so each) it cost the gateway a system call per line,
// and 20 % more CPU per MB of stream than in writes of 1 MiB.
const writeBytes = 1 << 20

// gather holds a batch's lines, in the buffers the streams encoded them
// into, until they go to the sink together: in one writev(2) where the
// sink is a file (both sinks are), so nothing is copied again on the way,
// and through a buffer otherwise.
type gather struct {
	raw syscall.RawConn // the sink's descriptor, or nil
	bw  *bufio.Writer   // the sink, if it is not a file
	// lines are waiting to be written; held are their buffers, returned to
	// the recorder's free lines once written.
	lines [][]byte
	held  []entry
	size  int
}

func newGather(w io.Writer) *gather {
	g := &gather{}
	if f, ok := w.(interface {
		SyscallConn() (syscall.RawConn, error)
	}); ok {
		g.raw, _ = f.SyscallConn()
	}
	if g.raw == nil {
		g.bw = bufio.NewWriterSize(w, 64<<10)
	}
	return g
}

// add queues a line; buf, if not nil, is the buffer it is in.
func (g *gather) add(line []byte, buf entry) {
	g.lines = append(g.lines, line)
	if buf != nil {
		g.held = append(g.held, buf)
	}
	g.size += len(line)
}

// full says the gathered lines should go now: writeBytes of them, or as
// many as one writev takes.
func (g *gather) full() bool { return g.size >= writeBytes || len(g.lines) >= maxIovecs }

// flush writes the gathered lines and hands their buffers to release.
func (g *gather) flush(release func(entry)) error {
	var err error
	if len(g.lines) > 0 {
		if g.raw != nil {
			err = writev(g.raw, g.lines)
		} else {
			for _, l := range g.lines {
				if _, err = g.bw.Write(l); err != nil {
					break
				}
			}
			if err == nil {
				err = g.bw.Flush()
			}
		}
	}
	clear(g.lines)
	g.lines = g.lines[:0]
	for i, b := range g.held {
		release(b)
		g.held[i] = nil
	}
	g.held = g.held[:0]
	g.size = 0
	return err
}

// maxIovecs is Linux's IOV_MAX: the most buffers one writev takes.
const maxIovecs = 1024

// writev writes all of bufs to the descriptor, in as few calls as it
// takes, and waits for room where the descriptor is one that can be full.
func writev(raw syscall.RawConn, bufs [][]byte) error {
	var werr error
	err := raw.Write(func(fd uintptr) bool {
		for len(bufs) > 0 {
			n, err := unix.Writev(int(fd), bufs[:min(len(bufs), maxIovecs)])
			switch {
			case errors.Is(err, unix.EINTR):
				continue
			case errors.Is(err, unix.EAGAIN):
				return false
			case err != nil:
				werr = err
				return true
			case n == 0:
				werr = io.ErrShortWrite
				return true
			}
			for n > 0 {
				if k := len(bufs[0]); n >= k {
					n -= k
					bufs = bufs[1:]
				} else {
					bufs[0] = bufs[0][n:]
					n = 0
				}
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	return werr
}
