package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
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
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

const (
	// seriesFor is how long after its last sighting an Event still takes its
	// repeats as a series (client-go's finishTime).
	seriesFor = 6 * time.Minute
	// eventWriters write in parallel, each the Events of its share of the
	// objects, in order.
	eventWriters = 4
	// maxSeries is how many recent Events each writer remembers for folding.
	maxSeries = 256
	// maxQueued is how many Events wait for each writer; past that they are
	// dropped, as client-go's broadcaster drops them.
	maxQueued = 250
	// writeTries and retryAfter: an Event that could not reach the API
	// server is tried again; one the API server refused is not (client-go's
	// rule).
	writeTries = 6
	retryAfter = 2 * time.Second
	// drainFor is how long a writer goes on writing what it holds after its
	// term ends, and drainQuiet how long it waits for more from passes
	// still running.
	drainFor   = 5 * time.Second
	drainQuiet = 300 * time.Millisecond
	// tryFor bounds one write: a hung API server does not hold a writer.
	tryFor = 10 * time.Second
)

var eventsDropped = prometheus.NewCounter(prometheus.CounterOpts{
	Name: "sessiongate_events_dropped_total",
	Help: "Events about Sessions and Clusters the leader dropped because too many waited to be written.",
})

func init() { metrics.Registry.MustRegister(eventsDropped) }

// eventWriter writes the control plane's events.k8s.io/v1 Events. An Event
// seen again (same object, type, reason, action and note) within 6 minutes
// is counted in the series of the first, as client-go's events broadcaster
// does, but memory is bounded: client-go keeps every Event it sends for 6 to
// 12 minutes, and a leader that activated 10,000 sessions in minutes held a
// KiB or more per session that way; its heap, grown to twice that, stayed
// fragmented long after. Each of eventWriters goroutines writes the Events
// of its share of the objects in order, remembers its last maxSeries Events
// and queues at most maxQueued.
type eventWriter struct {
	client   client.Client
	reporter string
	instance string
	shards   []eventShard
	// lastDropLog rate-limits the log of dropped Events (unix seconds).
	lastDropLog atomic.Int64
	// stopped: the term ended and its writers are done; what comes later is
	// dropped.
	stopped atomic.Bool
}

type eventShard struct {
	queue chan *eventsv1.Event
	// recent is only touched by the shard's goroutine.
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

func newEventWriter(c client.Client, reporter string, writers, series, queued int) *eventWriter {
	host, _ := os.Hostname()
	w := &eventWriter{
		client:   c,
		reporter: reporter,
		instance: reporter + "-" + host,
	}
	for range writers {
		w.shards = append(w.shards, eventShard{queue: make(chan *eventsv1.Event, queued), recent: lru.New(series)})
	}
	return w
}

var _ events.EventRecorder = (*eventWriter)(nil)

// Eventf queues an Event about regarding; it never blocks.
func (w *eventWriter) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	note = fmt.Sprintf(note, args...)
	if eventtype != corev1.EventTypeNormal && eventtype != corev1.EventTypeWarning {
		klog.ErrorS(nil, "No Event: its type is neither Normal nor Warning", "type", eventtype, "reason", reason, "note", note)
		return
	}
	ref, err := reference.GetReference(w.client.Scheme(), regarding)
	if err != nil {
		klog.ErrorS(err, "No Event: the object cannot be referred to", "reason", reason, "note", note)
		return
	}
	now := time.Now()
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
		if ev.Related, err = reference.GetReference(w.client.Scheme(), related); err != nil {
			klog.V(4).InfoS("Event without its related object: it cannot be referred to", "err", err)
		}
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(ref.Namespace + "/" + ref.Name))
	if !w.stopped.Load() {
		select {
		case w.shards[int(h.Sum32()%uint32(len(w.shards)))].queue <- ev:
			return
		default:
		}
	}
	eventsDropped.Inc()
	if now := time.Now().Unix(); w.lastDropLog.Swap(now) != now {
		klog.ErrorS(nil, "Event dropped: too many wait to be written, or the control plane's term has ended (sessiongate_events_dropped_total counts them)",
			"object", klog.KRef(ref.Namespace, ref.Name), "reason", reason)
	}
}

// Start writes the queued Events until ctx ends, then for drainFor more
// what is still queued. It is a Runnable of the term's manager: it runs
// only while leading.
func (w *eventWriter) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	for i := range w.shards {
		wg.Go(func() { w.shards[i].run(ctx, w) })
	}
	wg.Wait()
	w.stopped.Store(true)
	return nil
}

func (s *eventShard) run(ctx context.Context, w *eventWriter) {
	for ctx.Err() == nil {
		select {
		case ev := <-s.queue:
			s.write(ctx, w, ev)
		case <-ctx.Done():
		}
	}
	// The term ended: write what is queued, and what passes still running
	// tell, until they are quiet.
	drain, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainFor)
	defer cancel()
	for {
		select {
		case ev := <-s.queue:
			s.write(drain, w, ev)
		case <-time.After(drainQuiet):
			return
		case <-drain.Done():
			return
		}
	}
}

func (s *eventShard) write(ctx context.Context, w *eventWriter, ev *eventsv1.Event) {
	key := seriesKey{eventType: ev.Type, reason: ev.Reason, action: ev.Action, note: ev.Note,
		regarding: ev.Regarding.UID, regardingName: ev.Regarding.Name}
	if ev.Related != nil {
		key.related, key.relatedName = ev.Related.UID, ev.Related.Name
	}
	obj := klog.KRef(ev.Regarding.Namespace, ev.Regarding.Name)
	klog.V(2).InfoS("Event", "object", obj, "type", ev.Type, "reason", ev.Reason, "note", ev.Note)
	for try := 1; ; try++ {
		// The write in hand finishes even as the term ends.
		tryCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tryFor)
		err := s.writeOnce(tryCtx, w, key, ev, try > 1)
		cancel()
		if err == nil {
			return
		}
		var status apierrors.APIStatus
		if errors.As(err, &status) || try == writeTries || ctx.Err() != nil {
			klog.ErrorS(err, "Event not written", "object", obj, "reason", ev.Reason, "tries", try)
			return
		}
		klog.V(2).InfoS("Event not written yet, trying again", "object", obj, "reason", ev.Reason, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(wait.Jitter(retryAfter, 0.25)):
		}
	}
}

// writeOnce counts ev in the series of the same Event seen recently, or
// creates it. again: an earlier try may have reached the API server.
func (s *eventShard) writeOnce(ctx context.Context, w *eventWriter, key seriesKey, ev *eventsv1.Event, again bool) error {
	at := ev.EventTime.Time
	if v, ok := s.recent.Get(key); ok {
		seen := v.(*sighting)
		if at.Sub(seen.last) < seriesFor {
			count := seen.count + 1
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
		s.recent.Remove(key)
	}
	if err := w.client.Create(ctx, ev); err != nil && !(again && apierrors.IsAlreadyExists(err)) {
		return err
	}
	s.recent.Add(key, &sighting{name: ev.Name, namespace: ev.Namespace, count: 1, last: at})
	return nil
}
