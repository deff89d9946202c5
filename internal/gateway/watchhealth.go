package gateway

import (
	"context"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	toolscache "k8s.io/client-go/tools/cache"
)

// watchRefusalWindow is how long a refused watch keeps a replica unready: a
// reflector retries within about 30 s, so a refusal that lasts is seen again
// well within it, and one that was fixed stops counting soon after.
const watchRefusalWindow = 2 * time.Minute

// watchHealth makes a replica whose informers' watches are refused unready.
// The first list fills the cache and every later watch fails, so synced
// informers alone would call a replica ready that never sees a change again
// (a Role without "watch").
type watchHealth struct {
	mu      sync.Mutex
	refused map[string]refusal
	now     func() time.Time
}

type refusal struct {
	at  time.Time
	err string
}

func newWatchHealth() *watchHealth {
	return &watchHealth{refused: map[string]refusal{}, now: time.Now}
}

// handle is the informers' watch error handler: it notes refusals and
// leaves the logging and backoff to client-go.
func (h *watchHealth) handle(ctx context.Context, r *toolscache.Reflector, err error) {
	if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) {
		h.mu.Lock()
		h.refused[r.TypeDescription()] = refusal{at: h.now(), err: err.Error()}
		h.mu.Unlock()
	}
	toolscache.DefaultWatchErrorHandler(ctx, r, err)
}

// check fails while a watch was refused within the window.
func (h *watchHealth) check() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for typ, r := range h.refused {
		if h.now().Sub(r.at) > watchRefusalWindow {
			delete(h.refused, typ)
			continue
		}
		return fmt.Errorf("watching %s is refused (%s): the gateway's Role lacks a verb", typ, r.err)
	}
	return nil
}
