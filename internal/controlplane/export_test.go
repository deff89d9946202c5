package controlplane

import (
	"context"

	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// NewEventWriter is the control plane's Event writer remembering series
// Events and queueing queued, and its writing loop, for the caller to start.
func NewEventWriter(c client.Client, series, queued int) (events.EventRecorder, func(context.Context) error) {
	w := newEventWriter(c, "sessiongate-test", series, queued)
	return w, w.Start
}
