// Package audit writes one record per proxied request, as a JSON line in
// Kubernetes' own audit.k8s.io/v1 Event shape, so the tools that read API
// server audit logs read the gateway's too. Records never hold tokens or bodies.
package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"k8s.io/klog/v2"
)

// Annotations the gateway adds to each record.
const (
	AnnotationSession        = "sessiongate.dev/session"
	AnnotationCluster        = "sessiongate.dev/cluster"
	AnnotationTargetIdentity = "sessiongate.dev/target-identity"
	AnnotationCommand        = "sessiongate.dev/exec-command"
	AnnotationDecision       = "sessiongate.dev/decision"
	// AnnotationRefusedBy names the session's stream rule that refused an
	// exec or attach, e.g. "deny rm".
	AnnotationRefusedBy = "sessiongate.dev/refused-by"
	AnnotationLatency   = "sessiongate.dev/latency"
	// AnnotationRecording is the id of the stream's cast.
	AnnotationRecording = "sessiongate.dev/recording"
	// AnnotationRecordingError says why a stream's recording failed or is
	// incomplete.
	AnnotationRecordingError = "sessiongate.dev/recording-error"
	// AnnotationStreamEnd says why a stream ended other than by its command
	// finishing: the gateway closed it (session ended, a lifetime ran out)
	// or it failed.
	AnnotationStreamEnd = "sessiongate.dev/stream-end"
	// AnnotationExitCode is an exec's exit code.
	AnnotationExitCode = "sessiongate.dev/exit-code"
	// AnnotationRole is the caller's role when it is not the session's
	// owner: participant or viewer.
	AnnotationRole = "sessiongate.dev/role"
	// AnnotationTruncated lists the fields cut to their limit, e.g.
	// "requestURI,userAgent".
	AnnotationTruncated = "sessiongate.dev/truncated"
)

// Limits on the fields a caller sizes. A record stays small whatever the
// request: an unauthenticated caller cannot make the log write megabytes.
const (
	MaxRequestURI      = 4 << 10
	MaxUserAgent       = 1 << 10
	MaxAnnotationValue = 4 << 10
	// MaxField bounds the verb and each object reference field; every valid
	// Kubernetes name is shorter.
	MaxField = 512
)

// Buffering of the log Open returns: records are written at most
// FlushInterval after they are logged, or at once when BufferSize bytes wait,
// so a busy gateway makes one write per batch instead of one per request.
const (
	FlushInterval = 100 * time.Millisecond
	BufferSize    = 64 << 10
)

// Logger writes audit records to a sink.
type Logger struct {
	mu       sync.Mutex
	w        io.Writer
	buf      bytes.Buffer
	enc      *json.Encoder // encodes into buf
	interval time.Duration // 0: every record is written at once
	timer    *time.Timer   // armed while buf holds records
}

// New writes each record to w as it is logged.
func New(w io.Writer) *Logger {
	return NewBuffered(w, 0)
}

// NewBuffered writes records to w in batches, at most interval after each is
// logged; Flush or Close writes what waits.
func NewBuffered(w io.Writer, interval time.Duration) *Logger {
	l := &Logger{w: w, interval: interval}
	l.enc = json.NewEncoder(&l.buf)
	return l
}

// Open returns a buffered logger for path: "-" or "" is stdout, anything
// else a file that records are appended to. Its closer flushes the logger
// and makes every later record a direct write; the file stays open, so a
// stream that ends after the server stopped is still audited.
func Open(path string) (*Logger, io.Closer, error) {
	if path == "" || path == "-" {
		l := NewBuffered(os.Stdout, FlushInterval)
		return l, l, nil
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("opening audit log %s: %w", path, err)
	}
	l := NewBuffered(f, FlushInterval)
	return l, l, nil
}

// Log writes one record, or queues it for the next flush.
func (l *Logger) Log(ev *auditv1.Event) {
	ev.TypeMeta.APIVersion = auditv1.SchemeGroupVersion.String()
	ev.TypeMeta.Kind = "Event"
	Limit(ev)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.enc.Encode(ev); err != nil {
		klog.ErrorS(err, "Encoding audit record", "auditID", ev.AuditID)
		return
	}
	switch {
	case l.interval == 0 || l.buf.Len() >= BufferSize:
		l.flushLocked()
	case l.timer == nil:
		l.timer = time.AfterFunc(l.interval, l.Flush)
	}
}

// Flush writes every queued record.
func (l *Logger) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked()
}

// Close flushes and writes every later record at once.
func (l *Logger) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.interval = 0
	return l.flushLocked()
}

func (l *Logger) flushLocked() error {
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	if l.buf.Len() == 0 {
		return nil
	}
	_, err := l.w.Write(l.buf.Bytes())
	if err != nil {
		klog.ErrorS(err, "Writing audit records", "bytes", l.buf.Len())
	}
	l.buf.Reset()
	return err
}

// Limit cuts every caller-sized field of ev to its limit and names the cut
// fields in the AnnotationTruncated annotation.
func Limit(ev *auditv1.Event) {
	var cut []string
	limit := func(name string, s *string, max int) {
		if len(*s) > max {
			*s = truncate(*s, max)
			cut = append(cut, name)
		}
	}
	limit("requestURI", &ev.RequestURI, MaxRequestURI)
	limit("userAgent", &ev.UserAgent, MaxUserAgent)
	limit("verb", &ev.Verb, MaxField)
	if o := ev.ObjectRef; o != nil {
		limit("objectRef.resource", &o.Resource, MaxField)
		limit("objectRef.subresource", &o.Subresource, MaxField)
		limit("objectRef.namespace", &o.Namespace, MaxField)
		limit("objectRef.name", &o.Name, MaxField)
		limit("objectRef.apiGroup", &o.APIGroup, MaxField)
		limit("objectRef.apiVersion", &o.APIVersion, MaxField)
	}
	var cutAnnotations []string
	for k, v := range ev.Annotations {
		if len(v) > MaxAnnotationValue {
			ev.Annotations[k] = truncate(v, MaxAnnotationValue)
			cutAnnotations = append(cutAnnotations, "annotations."+k)
		}
	}
	slices.Sort(cutAnnotations)
	cut = append(cut, cutAnnotations...)
	if len(cut) > 0 {
		if ev.Annotations == nil {
			ev.Annotations = map[string]string{}
		}
		ev.Annotations[AnnotationTruncated] = strings.Join(cut, ",")
	}
}

// truncate cuts s to at most max bytes, on a UTF-8 character boundary.
func truncate(s string, max int) string {
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}
