package recording_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"sessiongate.dev/sessiongate/internal/recording"
	"sessiongate.dev/sessiongate/internal/testenv"
)

// s3 starts versitygw with a bucket and returns a sink on it.
func s3(t *testing.T) (*recording.S3, *testenv.S3) {
	t.Helper()
	srv, err := testenv.StartS3(t.TempDir())
	testenv.Must(t, err)
	t.Cleanup(srv.Stop)
	testenv.Must(t, srv.Bucket("casts"))
	sink, err := recording.NewS3(recording.S3Config{
		Endpoint: srv.Endpoint, Bucket: "casts", Prefix: "gw/", AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, CA: srv.CA,
	})
	testenv.Must(t, err)
	return sink, srv
}

func TestACastHoldsExactlyWhatWasRecordedInEitherSink(t *testing.T) {
	s3Sink, srv := s3(t)
	dir := t.TempDir()
	for name, c := range map[string]struct {
		sink   recording.Sink
		stored func(id string) string
	}{
		"directory": {recording.Dir(dir), func(id string) string { return filepath.Join(dir, id+".cast") }},
		"S3":        {s3Sink, func(id string) string { return filepath.Join(srv.Root, "casts", "gw", id+".cast") }},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			meta := recording.Meta{ID: recording.NewID("alice-x", time.Now()), Session: "alice-x", User: "alice@example.com",
				Cluster: "prod", Namespace: "demo", Pod: "web", Container: "app", Command: []string{"sh"}, Kind: "exec", TTY: true}
			r, err := recording.Start(ctx, c.sink, meta, 80, 24)
			testenv.Must(t, err)
			r.Stdin([]byte("ls\r"))
			r.Stdout([]byte("file1\r\n"))
			r.Stderr([]byte("warning\n"))
			r.Resize(120, 40)
			r.Stdout([]byte("h\xc3")) // é split across two reads
			r.Stdout([]byte("\xa9llo"))
			testenv.Must(t, r.Close())

			// What reached the store, read back through the sink.
			if _, err := os.Stat(c.stored(meta.ID)); err != nil {
				t.Fatalf("the cast is not in the store: %v", err)
			}
			rc, err := c.sink.Open(ctx, meta.ID)
			testenv.Must(t, err)
			defer rc.Close()
			cast, err := recording.Read(rc)
			testenv.Must(t, err)
			if h := cast.Header; h.Version != 2 || h.Width != 80 || h.Height != 24 || h.Sessiongate.User != "alice@example.com" || h.Sessiongate.Pod != "web" || strings.Join(h.Sessiongate.Command, " ") != "sh" {
				t.Errorf("header %+v", h)
			}
			var got []string
			var last time.Duration
			for _, e := range cast.Events {
				got = append(got, string(e.Type)+":"+e.Data)
				if e.Time < last {
					t.Errorf("event times go back: %v after %v", e.Time, last)
				}
				last = e.Time
			}
			want := []string{"i:ls\r", "o:file1\r\n", "o:warning\n", "r:120x40", "o:h", "o:éllo"}
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("events %q, want %q", got, want)
			}

			// Listing a session finds its casts and no one else's, even
			// where one session's name starts with another's.
			other, err := recording.Start(ctx, c.sink, recording.Meta{ID: recording.NewID("alice", time.Now()), Kind: "exec"}, 80, 24)
			testenv.Must(t, err)
			testenv.Must(t, other.Close())
			list, err := c.sink.List(ctx, "alice-x")
			testenv.Must(t, err)
			if len(list) != 1 || list[0].ID != meta.ID || list[0].Size == 0 || time.Since(list[0].Time) > time.Minute {
				t.Errorf("List(alice-x) = %+v, want just %s", list, meta.ID)
			}
			list, err = c.sink.List(ctx, "alice")
			testenv.Must(t, err)
			if len(list) != 1 || list[0].ID == meta.ID {
				t.Errorf("List(alice) = %+v, want only alice's own cast", list)
			}
		})
	}
}

// Stdin and stdout are stamped on their own goroutines and queued a moment
// later: a line that reaches the queue after a later-stamped one takes its
// time, so that time in a cast never goes back (a player would jump).
func TestTimeInACastNeverGoesBack(t *testing.T) {
	dir := t.TempDir()
	read := func(id string) []recording.Event {
		f, err := os.Open(filepath.Join(dir, id+".cast"))
		testenv.Must(t, err)
		defer f.Close()
		cast, err := recording.Read(f)
		testenv.Must(t, err)
		return cast.Events
	}
	ordered := func(events []recording.Event) {
		t.Helper()
		for i, e := range events[1:] {
			if prev := events[i]; e.Time < prev.Time {
				t.Fatalf("event %d (%s %q) at %v comes after one at %v", i+1, e.Type, e.Data, e.Time, prev.Time)
			}
		}
	}

	// Both streams at once.
	id := recording.NewID("both", time.Now())
	r, err := recording.Start(context.Background(), recording.Dir(dir), recording.Meta{ID: id, Kind: "exec"}, 80, 24)
	testenv.Must(t, err)
	var wg sync.WaitGroup
	for _, rec := range []func([]byte){r.Stdin, r.Stdout} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20000 {
				rec([]byte("x"))
			}
		}()
	}
	wg.Wait()
	testenv.Must(t, r.Close())
	events := read(id)
	if len(events) != 40000 {
		t.Fatalf("%d events, want 40000", len(events))
	}
	ordered(events)

	// A line stamped before the last one queued, with a time shorter to
	// write, and one stamped after.
	id = recording.NewID("late", time.Now())
	r, err = recording.Start(context.Background(), recording.Dir(dir), recording.Meta{ID: id, Kind: "exec"}, 80, 24)
	testenv.Must(t, err)
	r.QueueStampedAt(recording.Output, "won", 12*time.Second)
	r.QueueStampedAt(recording.Input, "lost", time.Second)
	r.QueueStampedAt(recording.Output, "next", 13*time.Second)
	testenv.Must(t, r.Close())
	events = read(id)
	var got []string
	for _, e := range events {
		got = append(got, fmt.Sprintf("%s:%s@%v", e.Type, e.Data, e.Time))
	}
	if want := "o:won@12s i:lost@12s o:next@13s"; strings.Join(got, " ") != want {
		t.Errorf("cast %q, want %q", got, want)
	}
}

// stuck is a sink whose writes never return, like a store that hangs.
// writeOnly is the part of a Sink that the recorder does not use: the test
// sinks below embed it and take writes in ways of their own.
type writeOnly struct{}

func (writeOnly) Open(context.Context, string) (io.ReadCloser, error) {
	return nil, recording.ErrNotFound
}
func (writeOnly) Check(context.Context) error                            { return nil }
func (writeOnly) List(context.Context, string) ([]recording.Info, error) { return nil, nil }

type stuck struct {
	writeOnly
	release chan struct{}
}

func (s stuck) Create(context.Context, string) (io.WriteCloser, error) { return s, nil }
func (s stuck) Write(p []byte) (int, error) {
	<-s.release
	return 0, errors.New("the store went away")
}
func (s stuck) Close() error { return nil }

// A stuck store holds the stream back once, for at most StallLimit: then
// every call returns, the overflow is counted, and the recording says it
// failed. Cut ends the wait at once.
func TestAStuckStoreHoldsTheStreamBackOnceThenLosesEvents(t *testing.T) {
	for _, cut := range []bool{false, true} {
		sink := stuck{release: make(chan struct{})}
		r, err := recording.Start(context.Background(), sink, recording.Meta{ID: "s-1-ab", Kind: "exec"}, 80, 24)
		testenv.Must(t, err)
		if cut {
			r.Cut()
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range 3 * recording.BufferEvents {
				r.Stdout([]byte("x"))
			}
		}()
		select {
		case <-done:
		case <-time.After(recording.StallLimit + 30*time.Second):
			t.Fatal("recording held the stream back for good")
		}
		select {
		case <-r.Failed():
		default:
			t.Fatal("the recording lost events and does not say so")
		}
		if r.Dropped() == 0 || !strings.Contains(r.Err().Error(), "lost events") {
			t.Errorf("dropped %d, err %v", r.Dropped(), r.Err())
		}
		close(sink.release)
		if err := r.Close(); err == nil {
			t.Error("Close of an incomplete recording returned nil")
		}
	}
}

// discard is a sink that takes every write and keeps nothing.
type discard struct{ writeOnly }

func (discard) Create(context.Context, string) (io.WriteCloser, error) { return discard{}, nil }
func (discard) Write(p []byte) (int, error)                            { return len(p), nil }
func (discard) Close() error                                           { return nil }

// A busy stream's recording reuses the buffers of its encoded events:
// once it runs, a 32 KiB read of NULs (a 192 KiB line) costs no
// allocation. A stream that slows to a trickle keeps no more than its
// batches use, and one gone quiet keeps none.
func TestARecordingReusesItsBuffersAndLetsThemGoWhenQuiet(t *testing.T) {
	r, err := recording.Start(context.Background(), discard{}, recording.Meta{ID: "s-1-ab", Kind: "exec"}, 80, 24)
	testenv.Must(t, err)
	read := make([]byte, 32<<10)
	for range 200 {
		r.Stdout(read)
	}
	if allocs := testing.AllocsPerRun(1000, func() { r.Stdout(read) }); allocs > 0.5 {
		t.Errorf("%.2f allocations per recorded read", allocs)
	}
	// A progress bar: a line every 20 ms, never quiet for FlushDelay.
	stop := make(chan struct{})
	trickled := make(chan struct{})
	go func() {
		defer close(trickled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				r.Stdout([]byte("\r42%"))
			}
		}
	}()
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := r.FreeBytes(); n > 64<<10 {
			return fmt.Errorf("a trickling recording keeps %d bytes of buffers", n)
		}
		return nil
	})
	close(stop)
	<-trickled
	for range 50 {
		r.Stdout(read)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := r.FreeBytes(); n != 0 {
			return fmt.Errorf("a quiet recording keeps %d bytes of buffers", n)
		}
		return nil
	})
	testenv.Must(t, r.Close())
}

// A store that hangs does not hold the stream's end for good: Close gives
// up after its timeout and says why the cast is incomplete.
func TestCloseGivesUpOnAStoreThatHangs(t *testing.T) {
	sink := stuck{release: make(chan struct{})}
	defer close(sink.release)
	r, err := recording.Start(context.Background(), sink, recording.Meta{ID: "s-1-ab", Kind: "exec"}, 80, 24)
	testenv.Must(t, err)
	r.SetCloseTimeout(200 * time.Millisecond)
	r.Stdout([]byte("ls\r\n"))
	closed := make(chan error, 1)
	go func() { closed <- r.Close() }()
	select {
	case err := <-closed:
		if err == nil || !strings.Contains(err.Error(), "did not take the end of the cast within 200ms") {
			t.Fatalf("Close of a hung store: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close waited on a hung store for good")
	}
}

// gate is a directory sink whose casts take no writes until it opens.
type gate struct {
	recording.Dir
	open chan struct{}
}

func (g gate) Create(ctx context.Context, id string) (io.WriteCloser, error) {
	w, err := g.Dir.Create(ctx, id)
	return gatedWriter{w, g.open}, err
}

type gatedWriter struct {
	io.WriteCloser
	open chan struct{}
}

func (w gatedWriter) Write(p []byte) (int, error) {
	<-w.open
	return w.WriteCloser.Write(p)
}

// A store slower than the stream paces it instead of losing events: with
// the queue full the stream waits for the store, and once the store takes
// writes again every event reaches the cast, in order. Both ways to the
// store: writev on its file (a pipe here, which fills, so that the writes
// are partial and wait for room) and a buffer for a store that is not a
// file.
func TestASlowStorePacesTheStreamAndLosesNothing(t *testing.T) {
	for name, s := range map[string]func(t *testing.T) slowStore{
		"writev": func(t *testing.T) slowStore { return newPipe(t) },
		"buffer": func(t *testing.T) slowStore {
			return gate{Dir: recording.Dir(t.TempDir()), open: make(chan struct{})}
		},
	} {
		t.Run(name, func(t *testing.T) {
			sink := s(t)
			r, err := recording.Start(context.Background(), sink, recording.Meta{ID: "s-1-ab", Kind: "exec"}, 80, 24)
			testenv.Must(t, err)
			// Events of 1 KiB: more than the queue and the lines the
			// recorder gathers for one write hold.
			const n = recording.BufferEvents + recording.WriteBytes/1024 + 200
			event := func(i int) string { return fmt.Sprintf("%-1023d\n", i) }
			var calls atomic.Int64
			done := make(chan struct{})
			go func() {
				defer close(done)
				for i := range n {
					calls.Add(1)
					r.Stdout([]byte(event(i)))
				}
			}()
			// The stream runs ahead until the queue is full, and then waits.
			testenv.Eventually(t, 30*time.Second, func() error {
				if c := calls.Load(); c <= recording.BufferEvents {
					return fmt.Errorf("%d events recorded so far", c)
				}
				return nil
			})
			select {
			case <-done:
				t.Fatal("the stream ran past a full queue while the store took nothing")
			default:
			}
			sink.let()
			<-done
			testenv.Must(t, r.Close())
			if r.Dropped() != 0 {
				t.Fatalf("dropped %d events", r.Dropped())
			}
			c, err := recording.Read(sink.stored(t))
			testenv.Must(t, err)
			if len(c.Events) != n {
				t.Fatalf("the cast holds %d events, want %d", len(c.Events), n)
			}
			for i, e := range c.Events {
				if e.Data != event(i) {
					t.Fatalf("event %d is %.20q...", i, e.Data)
				}
			}
		})
	}
}

// slowStore takes no writes until let.
type slowStore interface {
	recording.Sink
	let()
	// stored is the cast s-1-ab as the store has it.
	stored(t *testing.T) io.Reader
}

func (g gate) let() { close(g.open) }

func (g gate) stored(t *testing.T) io.Reader {
	f, err := g.Open(context.Background(), "s-1-ab")
	testenv.Must(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

// pipe is a store whose cast is written to a pipe: a file, as both real
// stores' are, whose reader reads nothing until let (or, once gone, fails
// every write).
type pipe struct {
	writeOnly
	r, w *os.File
	open chan struct{}
	read chan []byte
}

func newPipe(t *testing.T) *pipe {
	r, w, err := os.Pipe()
	testenv.Must(t, err)
	p := &pipe{r: r, w: w, open: make(chan struct{}), read: make(chan []byte, 1)}
	go func() {
		<-p.open
		b, _ := io.ReadAll(r)
		p.read <- b
	}()
	t.Cleanup(func() { r.Close(); w.Close() })
	return p
}

// Create hands over the pipe's *os.File itself, as the real stores do.
func (p *pipe) Create(context.Context, string) (io.WriteCloser, error) { return p.w, nil }
func (p *pipe) let()                                                   { close(p.open) }
func (p *pipe) stored(*testing.T) io.Reader                            { return bytes.NewReader(<-p.read) }

// A store that fails its writes fails the recording, through writev as
// through a buffer: the reader of the cast's pipe is gone.
func TestAStoreThatFailsItsWritesFailsTheRecording(t *testing.T) {
	p := newPipe(t)
	testenv.Must(t, p.r.Close())
	r, err := recording.Start(context.Background(), p, recording.Meta{ID: "s-1-ab", Kind: "exec"}, 80, 24)
	testenv.Must(t, err)
	r.Stdout(make([]byte, 32<<10))
	select {
	case <-r.Failed():
	case <-time.After(30 * time.Second):
		t.Fatal("a recording whose store fails its writes did not fail")
	}
	if err := r.Close(); err == nil || !strings.Contains(err.Error(), "broken pipe") {
		t.Errorf("Close = %v, want the store's error", err)
	}
}

func TestS3SinkSaysWhenItCannotTakeWrites(t *testing.T) {
	sink, srv := s3(t)
	ctx := context.Background()
	testenv.Must(t, sink.Check(ctx))
	if _, err := sink.Open(ctx, "nothing-here"); !errors.Is(err, recording.ErrNotFound) {
		t.Errorf("a missing cast: %v", err)
	}
	other, err := recording.NewS3(recording.S3Config{Endpoint: srv.Endpoint, Bucket: "absent", AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, CA: srv.CA})
	testenv.Must(t, err)
	if err := other.Check(ctx); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("a missing bucket: %v", err)
	}
	wrongKey, err := recording.NewS3(recording.S3Config{Endpoint: srv.Endpoint, Bucket: "casts", AccessKey: srv.AccessKey, SecretKey: "wrong", CA: srv.CA})
	testenv.Must(t, err)
	if err := wrongKey.Check(ctx); err == nil {
		t.Error("a wrong secret key: Check passed")
	}
	srv.Stop()
	if err := sink.Check(ctx); err == nil {
		t.Error("with the store down, Check passed")
	}
}

func TestConfigurationAndIDsAreChecked(t *testing.T) {
	for name, c := range map[string]recording.S3Config{
		"plain http": {Endpoint: "http://s3.example.com", Bucket: "b", AccessKey: "a", SecretKey: "s"},
		"a path":     {Endpoint: "https://s3.example.com/bucket", Bucket: "b", AccessKey: "a", SecretKey: "s"},
		"no bucket":  {Endpoint: "https://s3.example.com", AccessKey: "a", SecretKey: "s"},
		"no secret":  {Endpoint: "https://s3.example.com", Bucket: "b", AccessKey: "a"},
		"CA not PEM": {Endpoint: "https://s3.example.com", Bucket: "b", AccessKey: "a", SecretKey: "s", CA: []byte("x")},
	} {
		if _, err := recording.NewS3(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	dir := recording.Dir(t.TempDir())
	for _, id := range []string{"", "../etc/passwd", "a/b", "a..b", "UPPER", ".hidden", strings.Repeat("a", 300)} {
		if _, err := dir.Open(context.Background(), id); err == nil || errors.Is(err, recording.ErrNotFound) {
			t.Errorf("id %q: %v, want a refusal", id, err)
		}
		if _, err := dir.Create(context.Background(), id); err == nil {
			t.Errorf("id %q: Create accepted", id)
		}
	}
}

// The hand-written event encoding is JSON that encoding/json reads back
// to the same event, whatever the bytes: escapes, runs of control
// characters (written by copying) of every length, where they start, end
// or fill a stream's read.
func TestEventsRoundTripThroughJSON(t *testing.T) {
	data := []string{"", "plain", "quote \" backslash \\ tab \t nl \n cr \r", "\x00\x01\x1b[31mred\x1b[0m\x7f", "ünïcode ✓ 🙂", "\u2028\u2029",
		"\x00\x00\x01\x01\x01\x1f\x00", "\n\n\n\r\r", string(make([]byte, 32<<10)), "text " + strings.Repeat("\x1b", 1000) + " text"}
	for _, n := range []int{1, 2, 3, 7, 8, 9, 33, 1000} {
		run := strings.Repeat("\x00", n)
		data = append(data, run, run+"end", "start"+run, "a"+run+"\x01"+run+"b")
	}
	for _, d := range data {
		roundTrip(t, d)
	}
}

func FuzzEventsRoundTripThroughJSON(f *testing.F) {
	f.Add("\x00\x00a\n\x1b\x1b\"")
	f.Fuzz(func(t *testing.T, data string) {
		if utf8.ValidString(data) { // the recorder makes stream bytes so
			roundTrip(t, data)
		}
	})
}

func roundTrip(t *testing.T, data string) {
	t.Helper()
	e := recording.Event{Time: 1500 * time.Millisecond, Type: recording.Output, Data: data}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var back recording.Event
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("%.40q: %.200s does not parse: %v", data, b, err)
	}
	if back != e {
		t.Errorf("%.40q (%d bytes) came back as %.40q (%d bytes)", data, len(data), back.Data, len(back.Data))
	}
	// The same bytes after a line already in the buffer, with any room
	// left: too little for the data, just enough, or more than enough.
	line := recording.AppendEvent(nil, e)
	for _, room := range []int{0, 1, len(line) / 2, len(line) - 1, len(line), 2 * len(line)} {
		prev := []byte("previous line\n")
		buf := append(make([]byte, 0, len(prev)+room), prev...)
		if got := recording.AppendEvent(buf, e); string(got) != string(prev)+string(line) {
			t.Fatalf("%.40q with %d bytes of room: %.80q, want %.80q", data, room, got, string(prev)+string(line))
		}
	}
}

// counted is a sink that keeps what was written and counts the writes.
type counted struct {
	writeOnly
	mu     sync.Mutex
	data   []byte
	writes int
}

func (s *counted) Create(context.Context, string) (io.WriteCloser, error) { return s, nil }
func (s *counted) Close() error                                           { return nil }
func (s *counted) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data = append(s.data, p...)
	s.writes++
	return len(p), nil
}

func (s *counted) seen() (string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.data), s.writes
}

// A stream that stays open still reaches the store within FlushDelay of
// each event, and keystrokes typed one at a time are written in batches,
// not one write each.
func TestEventsReachTheStoreInBatchesWithinFlushDelay(t *testing.T) {
	sink := &counted{}
	r, err := recording.Start(context.Background(), sink, recording.Meta{ID: "s-1-ab", Kind: "exec"}, 80, 24)
	testenv.Must(t, err)
	defer r.Close()
	const keys = 50
	for range keys {
		r.Stdin([]byte("k"))
		r.Stdout([]byte("k"))
	}
	// Well within a second of the last event, though nothing closed the
	// recording (a generous bound on FlushDelay, for a busy machine).
	testenv.Eventually(t, 10*recording.FlushDelay, func() error {
		if data, _ := sink.seen(); strings.Count(data, `"k"`) != 2*keys {
			return fmt.Errorf("%d of %d events reached the store of an open recording", strings.Count(data, `"k"`), 2*keys)
		}
		return nil
	})
	if _, writes := sink.seen(); writes >= keys {
		t.Errorf("%d events took %d writes, want them batched", 2*keys, writes)
	}
}

// A busy stream's cast reaches the file in writes of about WriteBytes, not
// one per line: 8 MiB of NULs make 48 MiB of cast, which a line (192 KiB)
// at a time took 258 write calls. The calls are the process's own count
// (/proc/self/io), and the cast is read back whole.
func TestABusyStreamsCastIsWrittenInFewLargeWrites(t *testing.T) {
	dir := t.TempDir()
	r, err := recording.Start(context.Background(), recording.Dir(dir), recording.Meta{ID: "s-1-ab", Kind: "exec"}, 80, 24)
	testenv.Must(t, err)
	read := make([]byte, 32<<10)
	const reads = 256
	before, start := writeCalls(t), time.Now()
	for range reads {
		r.Stdout(read)
	}
	testenv.Must(t, r.Close())
	calls, took := writeCalls(t)-before, time.Since(start)
	fi, err := os.Stat(filepath.Join(dir, "s-1-ab.cast"))
	testenv.Must(t, err)
	// A write's worth at a time, and a batch cut short each FlushDelay on
	// a machine slow enough to take that long.
	if most := fi.Size()/recording.WriteBytes + 2 + int64(took/recording.FlushDelay); calls > most {
		t.Errorf("%d MiB of cast took %d write calls in %s, want at most %d", fi.Size()>>20, calls, took, most)
	}
	f, err := os.Open(filepath.Join(dir, "s-1-ab.cast"))
	testenv.Must(t, err)
	defer f.Close()
	c, err := recording.Read(f)
	testenv.Must(t, err)
	n := 0
	for _, e := range c.Events {
		n += len(e.Data)
	}
	if len(c.Events) != reads || n != reads*len(read) {
		t.Errorf("the cast holds %d events of %d bytes, want %d of %d", len(c.Events), n, reads, reads*len(read))
	}
}

// writeCalls is how many write system calls this process has made.
func writeCalls(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	testenv.Must(t, err)
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "syscw: "); ok {
			var n int64
			_, err := fmt.Sscan(v, &n)
			testenv.Must(t, err)
			return n
		}
	}
	t.Fatalf("no syscw in /proc/self/io: %q", b)
	return 0
}
