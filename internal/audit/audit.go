// Package audit writes one record per proxied request, as a JSON line in
// Kubernetes' own audit.k8s.io/v1 Event shape, so the tools that read API
// server audit logs read the gateway's too. Records never hold tokens or bodies.
package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
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

// Logger writes audit records to a sink.
type Logger struct {
	mu  sync.Mutex
	w   io.Writer
	enc *json.Encoder
}

// New writes records to w.
func New(w io.Writer) *Logger {
	return &Logger{w: w, enc: json.NewEncoder(w)}
}

// Open returns a logger for path: "-" or "" is stdout, anything else a file
// that records are appended to.
func Open(path string) (*Logger, io.Closer, error) {
	if path == "" || path == "-" {
		return New(os.Stdout), io.NopCloser(nil), nil
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("opening audit log %s: %w", path, err)
	}
	return New(f), f, nil
}

// Log writes one record.
func (l *Logger) Log(ev *auditv1.Event) {
	ev.TypeMeta.APIVersion = auditv1.SchemeGroupVersion.String()
	ev.TypeMeta.Kind = "Event"
	Limit(ev)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.enc.Encode(ev); err != nil {
		klog.ErrorS(err, "Writing audit record", "auditID", ev.AuditID)
	}
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
