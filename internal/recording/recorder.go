package recording

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// BufferEvents and BufferBytes bound what waits in the queue for the sink
// (BufferBytes counts the buffers holding the events' encoded lines); the
// write under way holds up to writeBytes more. When they are full the
// stream waits for the sink: a sink slower than the stream paces it, and
// one that takes nothing for StallLimit loses events and fails the
// recording (which ends a stream whose recording is required).
const (
	BufferEvents = 4096
	BufferBytes  = 16 << 20
	StallLimit   = 5 * time.Second
)

// Stream is where recorded bytes came from.
type Stream int

const (
	Stdin Stream = iota
	Stdout
	Stderr
)

// Recorder writes one stream's cast to a sink: Stdin, Stdout, Stderr and
// Resize copy the data into a bounded queue and return, at once unless the
// queue is full (see StallLimit), and never after Cut.
type Recorder struct {
	start time.Time
	now   func() time.Time
	queue chan entry
	done  chan struct{}
	// space is signalled whenever the sink has taken an event; cut is
	// closed by Cut.
	space chan struct{}
	cut   chan struct{}
	// urgent makes run take the queue before its batch closes.
	urgent  chan struct{}
	free    freeLines
	cutOnce sync.Once
	// taken is when the sink last took an event (UnixNano).
	taken atomic.Int64

	mu    sync.Mutex
	carry [3][]byte // an incomplete UTF-8 character per stream
	// last is the time of the last line queued: times in a cast never go
	// back.
	last   time.Duration
	closed bool
	err    error
	// failed is closed on the first lost event or sink error.
	failed       chan struct{}
	dropped      atomic.Int64
	queued       atomic.Int64 // bytes of line buffers waiting for the sink
	closeOnce    sync.Once
	closeError   error
	closeTimeout time.Duration
}

// Start opens the cast in sink under meta.ID and writes its header.
func Start(ctx context.Context, sink Sink, meta Meta, width, height int) (*Recorder, error) {
	if err := ValidID(meta.ID); err != nil {
		return nil, err
	}
	w, err := sink.Create(ctx, meta.ID)
	if err != nil {
		return nil, fmt.Errorf("recording %s: %w", meta.ID, err)
	}
	if width <= 0 || height <= 0 {
		width, height = 80, 24
	}
	r := &Recorder{start: time.Now(), now: time.Now, closeTimeout: CloseTimeout, queue: make(chan entry, BufferEvents), done: make(chan struct{}), failed: make(chan struct{}),
		space: make(chan struct{}, 1), cut: make(chan struct{}), urgent: make(chan struct{}, 1)}
	r.taken.Store(r.start.UnixNano())
	h := Header{Version: 2, Width: width, Height: height, Timestamp: r.start.Unix(),
		Title: fmt.Sprintf("%s %s/%s on %s by %s", meta.Kind, meta.Namespace, meta.Pod, meta.Cluster, meta.User),
		Env:   map[string]string{"TERM": "xterm-256color"}, Sessiongate: meta}
	go r.run(w, h)
	return r, nil
}

// FlushDelay is how long, at most, a recorded event waits in the recorder's
// buffer before it is written to the sink: a cast is complete up to that
// long before the gateway stopped. Writing once per interval, not once per
// event, keeps an interactive stream's keystrokes from each costing a write.
const FlushDelay = 100 * time.Millisecond

// run writes the queued events to the sink in batches. A batch opens with
// its first event and is flushed to the sink FlushDelay later. While it is
// open, run does not wait on the queue: a stream's events go into it
// without waking run, so that keystrokes typed one at a time cost the
// stream nothing but their own encoding. run takes the queue early only
// when urgent: a write's worth (writeBytes) or half of BufferEvents queued,
// a stream waiting for room, or Close. A busy stream's cast goes on to the
// sink a write's worth at a time.
func (r *Recorder) run(w io.WriteCloser, h Header) {
	defer close(r.done)
	// The store is taking writes as long as some of each gets through.
	out := newGather(w, func() { r.taken.Store(r.now().UnixNano()) })
	header, err := json.Marshal(h)
	if err == nil {
		header = append(header, '\n')
		out.add(&header)
	}
	used := 0 // bytes of line buffers the open batch took
	// send writes what out gathered.
	send := func() {
		if ferr := out.flush(r.free.put); err == nil && ferr != nil {
			err = ferr
			r.fail(fmt.Errorf("writing the recording: %w", err))
		}
	}
	write := func(ev entry) {
		used += cap(*ev)
		r.queued.Add(-int64(cap(*ev)))
		r.taken.Store(r.now().UnixNano())
		r.signalSpace()
		if err != nil {
			r.free.put(ev)
			return
		}
		out.add(ev)
		if out.full() {
			send()
		}
	}
	// take writes what is queued; false once the queue is closed and empty.
	take := func() bool {
		for {
			select {
			case ev, ok := <-r.queue:
				if !ok {
					return false
				}
				write(ev)
			default:
				return true
			}
		}
	}
	// flush fires when a batch closes, and once more FlushDelay later, to
	// see the stream has gone quiet.
	flush := time.NewTimer(FlushDelay)
	defer flush.Stop()
	open := true // the header's batch
events:
	for {
		if !open {
			select {
			case ev, ok := <-r.queue:
				if !ok {
					break events
				}
				write(ev)
				open = true
				flush.Reset(FlushDelay)
			case <-flush.C:
				// Nothing came for FlushDelay after the last batch: a
				// quiet stream keeps no buffers of its last burst.
				r.free.trim(0)
			}
			continue
		}
		select {
		case <-r.urgent:
			if !take() {
				break events
			}
		case <-flush.C:
			if !take() {
				break events
			}
			send()
			open = false
			flush.Reset(FlushDelay)
			// A stream that slowed down keeps no more buffers than its
			// last batch used.
			r.free.trim(used)
			used = 0
		}
	}
	send()
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		r.fail(fmt.Errorf("storing the recording: %w", err))
	}
}

func (r *Recorder) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failLocked(err)
}

func (r *Recorder) failLocked(err error) {
	if r.err == nil {
		r.err = err
		close(r.failed)
	}
}

// Failed is closed once the recording has lost something: a stream whose
// policy requires recording must end then.
func (r *Recorder) Failed() <-chan struct{} { return r.failed }

// Err is why the recording failed, or nil.
func (r *Recorder) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Stdin records what the user sent.
func (r *Recorder) Stdin(p []byte) { r.record(Stdin, Input, p) }

// Stdout records what the container wrote.
func (r *Recorder) Stdout(p []byte) { r.record(Stdout, Output, p) }

// Stderr records the container's errors; asciicast has one output stream.
func (r *Recorder) Stderr(p []byte) { r.record(Stderr, Output, p) }

// Resize records a terminal size change.
func (r *Recorder) Resize(width, height int) {
	r.enqueue(r.line(Resize, []byte(strconv.Itoa(width)+"x"+strconv.Itoa(height))))
}

// entry is an event waiting for the sink: its cast line, encoded by the
// stream that recorded it, in a buffer from the recorder's freeLines.
// Encoding there, not in the sink's goroutine, copies each piece of the
// stream once; reusing the buffers allocates nothing per piece while the
// stream runs.
type entry = *[]byte

// line encodes one event, stamped now, as a cast line.
func (r *Recorder) line(t EventType, data []byte) stamped {
	var b entry
	if len(data) >= minFreeLine {
		b = r.free.get()
	} else {
		b = new([]byte)
	}
	at := r.now().Sub(r.start)
	*b = append(appendEvent((*b)[:0], at, t, data), '\n')
	return stamped{b, at}
}

// stamped is a line and the time it carries.
type stamped struct {
	line entry
	at   time.Duration
}

// restamp makes the line carry at instead of the time it was encoded with.
// Stdin and stdout are stamped on their own goroutines and queued a moment
// later; the one that lost the race to the queue takes the time of the one
// that won, so that a player never sees time go back.
func (l *stamped) restamp(at time.Duration) {
	b := *l.line
	end := bytes.IndexByte(b, ',')
	if end < 0 {
		return
	}
	var buf [32]byte
	*l.line = slices.Replace(b, 1, end, appendTime(buf[:0], at)...)
	l.at = at
}

// minFreeLine is the smallest read whose line takes a kept buffer: smaller
// ones, such as keystrokes, are cheap to allocate, and must not each carry
// (and count against BufferBytes) a buffer a large read left.
const minFreeLine = 1 << 10

// freeLines are a recorder's spent line buffers, kept while its stream is
// busy: a sink that stalls lets the queue fill and then empties it, and
// the next burst reuses them instead of allocating them again. They hold
// at most BufferBytes (as much as the queue); run trims them to what each
// batch used, and lets them all go once the stream is quiet.
type freeLines struct {
	mu    sync.Mutex
	lines []entry // the most recently used last
	bytes int
}

func (f *freeLines) get() entry {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.lines)
	if n == 0 {
		return new([]byte)
	}
	b := f.lines[n-1]
	f.lines[n-1] = nil
	f.lines = f.lines[:n-1]
	f.bytes -= cap(*b)
	return b
}

func (f *freeLines) put(b entry) {
	if cap(*b) < minFreeLine {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.bytes+cap(*b) <= BufferBytes {
		f.lines = append(f.lines, b)
		f.bytes += cap(*b)
	}
}

// trim lets the least recently used buffers go until at most max bytes are
// kept.
func (f *freeLines) trim(max int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := 0
	for ; k < len(f.lines) && f.bytes > max; k++ {
		f.bytes -= cap(*f.lines[k])
	}
	f.lines = append(f.lines[:0:0], f.lines[k:]...)
}

func (r *Recorder) record(s Stream, t EventType, p []byte) {
	if len(p) == 0 {
		return
	}
	r.mu.Lock()
	b := p
	if len(r.carry[s]) > 0 {
		b = append(r.carry[s], p...)
	}
	// Keep an incomplete character at the end for the next read.
	cut := len(b)
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				cut = i
			}
			break
		}
	}
	// The stream reuses p: the line is the one copy the queue needs.
	var ev stamped
	if cut > 0 {
		ev = r.line(t, text(b[:cut]))
	}
	r.carry[s] = append(r.carry[s][:0:0], b[cut:]...)
	r.mu.Unlock()
	if ev.line != nil {
		r.enqueue(ev)
	}
}

func (r *Recorder) enqueue(l stamped) {
	ev := l.line
	var stall *time.Timer
	defer func() {
		if stall != nil {
			stall.Stop()
		}
	}()
	waited := false
	for {
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			r.free.put(ev)
			return
		}
		if l.at < r.last {
			l.restamp(r.last)
		}
		if size := int64(cap(*ev)); r.queued.Load()+size <= BufferBytes {
			select {
			case r.queue <- ev:
				r.last = l.at
				queued := r.queued.Add(size)
				r.mu.Unlock()
				// Room is left: another waiter may take it.
				r.signalSpace()
				if queued >= writeBytes || len(r.queue) >= BufferEvents/2 {
					signal(r.urgent)
				}
				return
			default:
			}
		}
		// Full. Once the recording has lost something, or the sink took
		// nothing for StallLimit, the stream waits no more.
		if waited || r.dropped.Load() > 0 {
			if r.dropped.Add(1) == 1 {
				r.failLocked(errors.New("the recording fell behind the stream and lost events"))
			}
			r.mu.Unlock()
			r.free.put(ev)
			return
		}
		r.mu.Unlock()
		signal(r.urgent)
		if stall == nil {
			stall = time.NewTimer(StallLimit)
		}
		select {
		case <-r.space:
		case <-r.cut:
			waited = true
		case <-stall.C:
			// A sink that is slow but still taking events is waited for:
			// only one that took nothing for StallLimit fails the
			// recording.
			if idle := r.now().Sub(time.Unix(0, r.taken.Load())); idle < StallLimit {
				stall.Reset(StallLimit - idle)
			} else {
				waited = true
			}
		}
	}
}

// signalSpace wakes one waiting enqueue, if any.
func (r *Recorder) signalSpace() { signal(r.space) }

// signal wakes the one waiting on c, if any, or the next to wait.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Cut stops the recording from holding the stream back: from now on an
// event that does not fit is lost. The stream calls it when it is being
// closed, which must not wait for the sink.
func (r *Recorder) Cut() { r.cutOnce.Do(func() { close(r.cut) }) }

// Dropped is how many events the recording lost.
func (r *Recorder) Dropped() int64 { return r.dropped.Load() }

// Close flushes what is queued and commits the cast, waiting at most
// CloseTimeout; it returns why the recording is incomplete, if it is.
func (r *Recorder) Close() error {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		rest := r.carry
		r.carry = [3][]byte{}
		r.mu.Unlock()
		for s, b := range rest {
			if len(b) > 0 {
				t := Output
				if Stream(s) == Stdin {
					t = Input
				}
				r.enqueue(r.line(t, text(b)))
			}
		}
		r.mu.Lock()
		r.closed = true
		close(r.queue)
		r.mu.Unlock()
		signal(r.urgent)
		// A stream still waiting for room returns.
		r.Cut()
		// A store that hangs (a dead network mount) must not hold the
		// stream's end, and its audit record, for good.
		wait := time.NewTimer(r.closeTimeout)
		defer wait.Stop()
		select {
		case <-r.done:
		case <-wait.C:
			r.fail(fmt.Errorf("the recording store did not take the end of the cast within %s", r.closeTimeout))
		}
		r.closeError = r.Err()
	})
	return r.closeError
}

// CloseTimeout bounds how long Close waits for the store to take the rest
// of a cast and commit it: longer than an S3 upload may take
// (uploadTimeout), so only a store that hangs reaches it.
const CloseTimeout = 3 * time.Minute
