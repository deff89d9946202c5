package audit

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	authnv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/types"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

func TestCallerSizedFieldsAreCappedAndMarked(t *testing.T) {
	huge := strings.Repeat("é", 1<<20) // 2 MiB, two bytes a character
	ev := &auditv1.Event{
		RequestURI: "/sessiongate/s/kas/api/v1/namespaces/demo/pods/" + huge,
		UserAgent:  huge,
		Verb:       huge,
		ObjectRef:  &auditv1.ObjectReference{Resource: "pods", Name: huge},
		Annotations: map[string]string{
			AnnotationSession: "s",
			AnnotationCommand: huge,
		},
	}
	var out bytes.Buffer
	New(&out).Log(ev)
	if out.Len() > 32<<10 {
		t.Fatalf("a record of %d bytes", out.Len())
	}
	var got auditv1.Event
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		v   string
		max int
	}{
		"requestURI": {got.RequestURI, MaxRequestURI}, "userAgent": {got.UserAgent, MaxUserAgent}, "verb": {got.Verb, MaxField},
		"objectRef.name": {got.ObjectRef.Name, MaxField}, "command": {got.Annotations[AnnotationCommand], MaxAnnotationValue},
	} {
		if len(c.v) > c.max || len(c.v) < c.max-utf8.UTFMax || !utf8.ValidString(c.v) {
			t.Errorf("%s: %d bytes (valid UTF-8: %v), want at most %d", name, len(c.v), utf8.ValidString(c.v), c.max)
		}
	}
	want := "requestURI,userAgent,verb,objectRef.name,annotations." + AnnotationCommand
	if got.Annotations[AnnotationTruncated] != want || got.Annotations[AnnotationSession] != "s" || got.ObjectRef.Resource != "pods" {
		t.Errorf("annotations %v, resource %q; want %s marked truncated and the rest kept", got.Annotations, got.ObjectRef.Resource, want)
	}
}

func TestSmallRecordsAreNotMarked(t *testing.T) {
	ev := &auditv1.Event{RequestURI: "/sessiongate/s/kas/api", UserAgent: "kubectl", Annotations: map[string]string{AnnotationSession: "s"}}
	Limit(ev)
	if _, ok := ev.Annotations[AnnotationTruncated]; ok || ev.RequestURI != "/sessiongate/s/kas/api" {
		t.Errorf("an ordinary record was changed: %+v", ev)
	}
}

// lockedBuffer is a sink that a test reads while the flusher writes.
type lockedBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
	wrote  chan struct{}
}

func (s *lockedBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	select {
	case s.wrote <- struct{}{}:
	default:
	}
	return s.b.Write(p)
}

func (s *lockedBuffer) lines() (int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Count(s.b.Bytes(), []byte("\n")), s.writes
}

func logN(l *Logger, n int) {
	for i := range n {
		l.Log(&auditv1.Event{AuditID: types.UID(strconv.Itoa(i)), Verb: "get"})
	}
}

func TestCloseWritesEveryBufferedRecord(t *testing.T) {
	out := lockedBuffer{wrote: make(chan struct{}, 1)}
	l := NewBuffered(&out, time.Hour)
	logN(l, 1000) // about 190 KB: some flushed by the size cap, the rest by Close
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n, writes := out.lines(); n != 1000 || writes > 1000*200/BufferSize+1 {
		t.Errorf("%d records in %d writes after Close, want 1000 in a few", n, writes)
	}
	logN(l, 1)
	if n, _ := out.lines(); n != 1001 {
		t.Errorf("a record logged after Close is not written at once: %d records", n)
	}
}

func TestBufferedRecordsAreWrittenWithinTheFlushInterval(t *testing.T) {
	out := lockedBuffer{wrote: make(chan struct{}, 1)}
	l := NewBuffered(&out, FlushInterval)
	logN(l, 3)
	select {
	case <-out.wrote:
	case <-time.After(10 * FlushInterval):
	}
	if n, writes := out.lines(); n != 3 || writes != 1 {
		t.Errorf("%d of 3 records in %d writes within %v of logging, want all 3 in one", n, writes, 10*FlushInterval)
	}
}

// BenchmarkLogToFile: a typical GET's record, written at once (one write
// per record, as before) and buffered (as Open does).
func BenchmarkLogToFile(b *testing.B) {
	for _, c := range []struct {
		name     string
		interval time.Duration
	}{{"each record written", 0}, {"buffered", FlushInterval}} {
		b.Run(c.name, func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "audit.log"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			l := NewBuffered(f, c.interval)
			ev := auditv1.Event{AuditID: "2b8fc4a2-6b6d-4a1e-9d0c-3f1c2d4e5f60", Stage: auditv1.StageResponseComplete, Verb: "get",
				RequestURI: "/sessiongate/bench/kas/api/v1/namespaces/bench/configmaps/cm-0", UserAgent: "Go-http-client/2.0",
				User:        authnv1.UserInfo{Username: "alice@example.com"},
				ObjectRef:   &auditv1.ObjectReference{Resource: "configmaps", Namespace: "bench", Name: "cm-0", APIVersion: "v1"},
				Annotations: map[string]string{AnnotationSession: "bench", AnnotationCluster: "target", AnnotationLatency: "412µs"}}
			b.ReportAllocs()
			for b.Loop() {
				e := ev
				e.Annotations = maps.Clone(ev.Annotations)
				l.Log(&e)
			}
			_ = l.Close()
		})
	}
}
