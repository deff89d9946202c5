package controlplane

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/tools/record/util"
	"k8s.io/client-go/tools/reference"
	"k8s.io/klog/v2"
	"k8s.io/utils/lru"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// seriesFor is how long after its last sighting an Event still takes its
	// repeats as a series (client-go's finishTime).
	seriesFor = 6 * time.Minute
	// maxSeries is how many recent Events are remembered for folding.
	maxSeries = 1024
	// maxQueued is how many Events wait to be written; past that they are
	// dropped, as client-go's broadcaster drops them.
	maxQueued = 1000
	// writeTries and retryAfter: an Event whose write fails for want of the
	// API server is tried again, as client-go does.
	writeTries = 12
	retryAfter = 10 * time.Second
)

// eventWriter writes the control plane's events.k8s.io/v1 Events. It folds
// an Event that repeats (same object, type, reason, action and note) into
// the series of the first, as client-go's events broadcaster does, but its
// memory is bounded: client-go keeps every Event it sends for 6 to 12
// minutes, and a leader that activated 10,000 sessions in minutes held a KiB
// or more per session that way; its heap, grown to twice that, then stayed
// fragmented long after. eventWriter remembers the last maxSeries Events
// and queues at most maxQueued. One goroutine writes, in order.
type eventWriter struct {
	client   client.Client
	scheme   *runtime.Scheme
	reporter string
	instance string
	now      func() time.Time
	queue    chan *eventsv1.Event
	// recent is only touched by the writing goroutine.
	recent *lru.Cache
}

// seriesKey is what makes two Events the same one seen again.
type seriesKey struct {
	eventType, reason, action, note string
	regarding, related              types.UID
	regardingName, relatedName      string
}

// sighting is what is remembered of an Event written: enough to count it
// again.
type sighting struct {
	name, namespace string
	count           int32
	last            time.Time
}

func newEventWriter(c client.Client, reporter string, series, queued int) *eventWriter {
	host, _ := os.Hostname()
	return &eventWriter{
		client:   c,
		scheme:   c.Scheme(),
		reporter: reporter,
		instance: reporter + "-" + host,
		now:      time.Now,
		queue:    make(chan *eventsv1.Event, queued),
		recent:   lru.New(series),
	}
}

var _ events.EventRecorder = (*eventWriter)(nil)

// Eventf queues an Event about regarding; it never blocks.
func (w *eventWriter) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	note = fmt.Sprintf(note, args...)
	ref, err := reference.GetReference(w.scheme, regarding)
	if err != nil {
		klog.ErrorS(err, "No Event: the object cannot be referred to", "reason", reason, "note", note)
		return
	}
	now := w.now()
	ev := &eventsv1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: util.GenerateEventName(ref.Name, now.UnixNano()), Namespace: ref.Namespace},
		EventTime:           metav1.MicroTime{Time: now},
		ReportingController: w.reporter,
		ReportingInstance:   w.instance,
		Action:              action,
		Reason:              reason,
		Regarding:           *ref,
		Note:                note,
		Type:                eventtype,
	}
	if ev.Namespace == "" {
		ev.Namespace = metav1.NamespaceDefault
	}
	if related != nil {
		if ev.Related, err = reference.GetReference(w.scheme, related); err != nil {
			klog.V(4).InfoS("Event without its related object: it cannot be referred to", "err", err)
		}
	}
	select {
	case w.queue <- ev:
	default:
		klog.ErrorS(nil, "Event dropped: too many wait to be written", "object", klog.KRef(ref.Namespace, ref.Name), "reason", reason, "note", note)
	}
}

// Start writes the queued Events until ctx ends (a Runnable of the term's
// manager: it runs only while leading).
func (w *eventWriter) Start(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-w.queue:
			w.write(ctx, ev)
		}
	}
}

func (w *eventWriter) write(ctx context.Context, ev *eventsv1.Event) {
	key := seriesKey{eventType: ev.Type, reason: ev.Reason, action: ev.Action, note: ev.Note,
		regarding: ev.Regarding.UID, regardingName: ev.Regarding.Name}
	if ev.Related != nil {
		key.related, key.relatedName = ev.Related.UID, ev.Related.Name
	}
	klog.V(4).InfoS("Event", "object", klog.KRef(ev.Regarding.Namespace, ev.Regarding.Name), "type", ev.Type, "reason", ev.Reason, "note", ev.Note)
	at := ev.EventTime.Time
	for try := 1; ; try++ {
		err := w.writeOnce(ctx, key, ev, at)
		if err == nil {
			return
		}
		if apierrors.IsAlreadyExists(err) || apierrors.IsInvalid(err) || apierrors.IsForbidden(err) || apierrors.IsBadRequest(err) || try == writeTries {
			klog.ErrorS(err, "Event not written", "object", klog.KRef(ev.Regarding.Namespace, ev.Regarding.Name), "reason", ev.Reason, "tries", try)
			return
		}
		klog.V(2).InfoS("Event not written yet, trying again", "object", klog.KRef(ev.Regarding.Namespace, ev.Regarding.Name), "reason", ev.Reason, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait.Jitter(retryAfter, 0.25)):
		}
	}
}

// writeOnce counts ev in the series of the same Event seen recently, or
// creates it.
func (w *eventWriter) writeOnce(ctx context.Context, key seriesKey, ev *eventsv1.Event, at time.Time) error {
	if v, ok := w.recent.Get(key); ok {
		seen := v.(*sighting)
		if at.Sub(seen.last) < seriesFor {
			count := max(seen.count, 1) + 1
			patch, _ := json.Marshal(map[string]any{"series": eventsv1.EventSeries{Count: count, LastObservedTime: metav1.MicroTime{Time: at}}})
			first := &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: seen.namespace, Name: seen.name}}
			err := w.client.Patch(ctx, first, client.RawPatch(types.MergePatchType, patch))
			if err == nil {
				seen.count, seen.last = count, at
				return nil
			}
			if !apierrors.IsNotFound(err) {
				return err
			}
			// The first is gone (Events expire): this one starts anew.
		}
		w.recent.Remove(key)
	}
	if err := w.client.Create(ctx, ev); err != nil {
		return err
	}
	w.recent.Add(key, &sighting{name: ev.Name, namespace: ev.Namespace, count: 1, last: at})
	return nil
}
