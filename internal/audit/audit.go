// Package audit writes one record per proxied request, as a JSON line in
// Kubernetes' own audit.k8s.io/v1 Event shape, so the tools that read API
// server audit logs read the gateway's too. Records never hold tokens or bodies.
package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"

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
	AnnotationLatency        = "sessiongate.dev/latency"
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
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.enc.Encode(ev); err != nil {
		klog.ErrorS(err, "Writing audit record", "auditID", ev.AuditID)
	}
}
