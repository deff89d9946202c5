package notify

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// Receiver is a Webhook endpoint that verifies each event and hands it to
// Handle: the sandbox prints them, and it shows receivers what to check.
type Receiver struct {
	// Key is the sink's signing key.
	Key []byte
	// Tolerance is how old a signature may be (default 5m).
	Tolerance time.Duration
	// Handle gets each verified event.
	Handle func(Event)

	mu   sync.Mutex
	seen map[string]time.Time // event IDs, to drop redeliveries
}

func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "reading the body", http.StatusBadRequest)
		return
	}
	tol := rc.Tolerance
	if tol == 0 {
		tol = 5 * time.Minute
	}
	if err := Verify(rc.Key, r.Header.Get(SignatureHeader), body, time.Now(), tol); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, fmt.Sprintf("not an event: %v", err), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	if rc.seen == nil {
		rc.seen = map[string]time.Time{}
	}
	_, dup := rc.seen[ev.ID]
	rc.seen[ev.ID] = time.Now()
	for id, at := range rc.seen {
		if time.Since(at) > 2*tol {
			delete(rc.seen, id)
		}
	}
	rc.mu.Unlock()
	if !dup && rc.Handle != nil {
		rc.Handle(ev)
	}
	w.WriteHeader(http.StatusNoContent)
}
