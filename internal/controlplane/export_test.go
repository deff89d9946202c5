package controlplane

import (
	"context"

	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// NewEventWriter is the control plane's Event writer with one writer that
// remembers series Events and queues queued, and its writing loop, for the
// caller to start.
func NewEventWriter(c client.Client, series, queued int) (events.EventRecorder, func(context.Context) error) {
	w := newEventWriter(c, "sessiongate-test", 1, series, queued)
	return w, w.Start
}
