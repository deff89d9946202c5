package controlplane

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"

	"sessiongate.dev/sessiongate/api/v1alpha1"
)

// maxNote is the longest note the API server takes in an events.k8s.io/v1
// Event, in bytes; it refuses a longer one, and the Event is lost.
const maxNote = 1024

// boundedNotes cuts every note to maxNote bytes, at a character boundary,
// marked with an ellipsis: an error from a target (an admission webhook's
// denial, a long Status) still reaches the Session's Events, in part.
type boundedNotes struct{ events.EventRecorder }

func (b boundedNotes) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	b.EventRecorder.Eventf(regarding, related, eventtype, reason, action, "%s", truncateNote(fmt.Sprintf(note, args...)))
}

func truncateNote(s string) string {
	if len(s) <= maxNote {
		return s
	}
	const more = "…"
	i := maxNote - len(more)
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + more
}

// passEvents is the recorder of one reconcile pass over a session. It holds
// the pass's Normal Events about the session and sends them as one when the
// pass ends, its notes joined by " | ", named after the last step that is not
// a mint or a revocation (those follow the step that matters: an activation,
// a renewal, an end): a request that is granted, auto-approved, minted and
// activated in one pass is one Active Event that tells all four steps.
// One Event instead of four is a quarter of the writes for a leader that
// activates thousands of sessions at once, and an operator reads one line
// per step that matters in kubectl describe. Notes that would not fit one
// Event go out as Events of their own. A Warning, or an Event about another
// object, goes out at once, after what the pass held.
type passEvents struct {
	events.EventRecorder
	session runtime.Object
	held    []heldEvent
}

type heldEvent struct{ reason, action, note string }

// follows: steps that follow the one that names their Event.
func (h heldEvent) follows() bool {
	return h.reason == v1alpha1.ReasonMinted || h.reason == v1alpha1.ReasonRevoked
}

func (p *passEvents) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	if eventtype != corev1.EventTypeNormal || regarding != p.session || related != nil {
		p.flush()
		p.EventRecorder.Eventf(regarding, related, eventtype, reason, action, note, args...)
		return
	}
	p.held = append(p.held, heldEvent{reason, action, fmt.Sprintf(note, args...)})
}

// flush sends what the pass holds.
func (p *passEvents) flush() {
	defer func() { p.held = p.held[:0] }()
	if len(p.held) == 0 {
		return
	}
	name, notes := p.held[0], make([]string, 0, len(p.held))
	for _, h := range p.held {
		if !h.follows() || name.follows() {
			name = h
		}
		notes = append(notes, h.note)
	}
	if note := strings.Join(notes, " | "); len(note) <= maxNote {
		p.EventRecorder.Eventf(p.session, nil, corev1.EventTypeNormal, name.reason, name.action, "%s", note)
		return
	}
	for _, h := range p.held {
		p.EventRecorder.Eventf(p.session, nil, corev1.EventTypeNormal, h.reason, h.action, "%s", h.note)
	}
}

// drop forgets what a pass decided on a read that was stale: its status was
// not written, and the next pass decides again on fresh state and tells it.
// What it did on the target (a mint, a revocation) is still told: the next
// pass finds it done and does not tell it again.
func (p *passEvents) drop() {
	p.held = slices.DeleteFunc(p.held, func(h heldEvent) bool { return !h.follows() })
}
