package recording

import (
	"bufio"
	"io"
	"syscall"
)

// writeBytes is how much of a cast the recorder gathers before it writes:
// a stream of zeros makes six times its size in cast, and written a line
// (one per message the stream passed) at a time it cost a system call per
// line and a third more CPU per MB of stream than in writes of 1 MiB (7.0
// against 5.3 ms per MB of NULs through a dev gateway). A store has to
// take a write's worth within StallLimit to count as taking writes.
const writeBytes = 1 << 20

// gather holds a batch's lines, in the buffers the streams encoded them
// into, until they go to the sink together: in one writev(2) where the
// sink is a file (both sinks are), so nothing is copied again on the way,
// and through a buffer otherwise.
type gather struct {
	raw syscall.RawConn // the sink's descriptor, or nil
	bw  *bufio.Writer   // the sink, if it is not a file
	// wrote is called whenever some of the lines were written.
	wrote func()
	// held are the lines waiting to be written, in the buffers returned to
	// the recorder's free lines once they are; size is their length.
	held []entry
	size int
	// lines is flush's list of what held holds, kept for the next.
	lines [][]byte
}

func newGather(w io.Writer, wrote func()) *gather {
	g := &gather{raw: rawFile(w), wrote: wrote}
	if g.raw == nil {
		g.bw = bufio.NewWriterSize(w, 64<<10)
	}
	return g
}

// add queues a line.
func (g *gather) add(line entry) {
	g.held = append(g.held, line)
	g.size += len(*line)
}

// full says the gathered lines should go now: writeBytes of them, or as
// many as one writev takes.
func (g *gather) full() bool { return g.size >= writeBytes || len(g.held) >= maxIovecs }

// flush writes the gathered lines and hands their buffers to release.
func (g *gather) flush(release func(entry)) error {
	var err error
	for _, b := range g.held {
		g.lines = append(g.lines, *b)
	}
	if len(g.lines) > 0 {
		if g.raw != nil {
			err = writev(g.raw, g.lines, g.wrote)
		} else {
			for _, l := range g.lines {
				if _, err = g.bw.Write(l); err != nil {
					break
				}
			}
			if err == nil {
				err = g.bw.Flush()
			}
			if err == nil {
				g.wrote()
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
