package controlplane_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"sessiongate.dev/sessiongate/internal/controlplane"
	"sessiongate.dev/sessiongate/internal/testenv"
)

// eventsAbout lists what reached the API server about the named object, as
// "note×count" (count 1 for an Event without a series), oldest first.
func eventsAbout(t *testing.T, ctx context.Context, ns, name string) []string {
	t.Helper()
	list := &eventsv1.EventList{}
	testenv.Must(t, mgmt.Client.List(ctx, list, client.InNamespace(ns)))
	slices.SortFunc(list.Items, func(a, b eventsv1.Event) int { return a.EventTime.Compare(b.EventTime.Time) })
	var out []string
	for _, ev := range list.Items {
		if ev.Regarding.Name != name {
			continue
		}
		count := int32(1)
		if ev.Series != nil {
			count = ev.Series.Count
		}
		out = append(out, fmt.Sprintf("%s×%d", ev.Note, count))
	}
	return out
}

func configMaps(t *testing.T, ctx context.Context, names ...string) (string, []*corev1.ConfigMap) {
	t.Helper()
	ns := "ev-" + rand.String(6)
	testenv.Must(t, mgmt.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	var out []*corev1.ConfigMap
	for _, n := range names {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: n}}
		testenv.Must(t, mgmt.Client.Create(ctx, cm))
		out = append(out, cm)
	}
	return ns, out
}

func wantEvents(t *testing.T, ctx context.Context, ns, name string, want ...string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		if got := eventsAbout(t, ctx, ns, name); !slices.Equal(got, want) {
			return fmt.Errorf("Events about %s: %q, want %q", name, got, want)
		}
		return nil
	})
}

// The same Event seen again is counted in the series of the first, as
// client-go does, while a different note is an Event of its own; and the
// writer remembers only its last few Events, so its memory is bounded
// however many objects it tells of (client-go kept each for 6-12 minutes).
func TestRepeatedEventsFoldIntoASeriesAndTheWriterForgets(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns, cms := configMaps(t, ctx, "first", "second")
	rec, start := controlplane.NewEventWriter(mgmt.Client, 2, 100)
	go func() { _ = start(ctx) }()

	for range 3 {
		rec.Eventf(cms[0], nil, corev1.EventTypeWarning, "MintFailed", "Mint", "the target refused: %s", "quota")
	}
	rec.Eventf(cms[0], nil, corev1.EventTypeWarning, "MintFailed", "Mint", "the target refused: %s", "webhook")
	wantEvents(t, ctx, ns, "first", "the target refused: quota×3", "the target refused: webhook×1")
	// What an operator reads.
	kc, err := mgmt.AdminKubeconfig()
	testenv.Must(t, err)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	testenv.Must(t, os.WriteFile(kubeconfig, kc, 0o600))
	out, err := exec.CommandContext(ctx, filepath.Join(testenv.BinDir(), "kubectl"), "--kubeconfig", kubeconfig, "describe", "configmap", "first", "-n", ns).CombinedOutput()
	testenv.Must(t, err)
	if !regexp.MustCompile(`Warning +MintFailed +.*\(x3 over .*the target refused: quota`).Match(out) {
		t.Errorf("kubectl describe does not count the repeated Warning:\n%s", out)
	}

	// Two Events about the second object push the first object's out of
	// the writer's memory: the next repeat starts a new Event.
	rec.Eventf(cms[1], nil, corev1.EventTypeNormal, "Active", "Activate", "one")
	rec.Eventf(cms[1], nil, corev1.EventTypeNormal, "Active", "Activate", "two")
	rec.Eventf(cms[0], nil, corev1.EventTypeWarning, "MintFailed", "Mint", "the target refused: %s", "quota")
	wantEvents(t, ctx, ns, "second", "one×1", "two×1")
	wantEvents(t, ctx, ns, "first", "the target refused: quota×3", "the target refused: webhook×1", "the target refused: quota×1")
}

// droppedEvents reads sessiongate_events_dropped_total as the metrics
// endpoint serves it.
func droppedEvents(t *testing.T) float64 {
	t.Helper()
	families, err := metrics.Registry.Gather()
	testenv.Must(t, err)
	for _, f := range families {
		if f.GetName() == "sessiongate_events_dropped_total" {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("no sessiongate_events_dropped_total")
	return 0
}

// Events that find the queue full, or come after the control plane's term
// ended, are dropped and counted, not held: a leader that cannot write
// Events does not grow without bound.
func TestEventsBeyondTheQueueAreDropped(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns, cms := configMaps(t, ctx, "busy")
	rec, start := controlplane.NewEventWriter(mgmt.Client, 16, 2)
	before := droppedEvents(t)
	for i := range 3 {
		rec.Eventf(cms[0], nil, corev1.EventTypeNormal, "Step", "Step", "step %d", i)
	}
	if got := droppedEvents(t) - before; got != 1 {
		t.Errorf("%v Events counted as dropped, want 1", got)
	}
	stopped := make(chan error)
	go func() { stopped <- start(ctx) }()
	wantEvents(t, ctx, ns, "busy", "step 0×1", "step 1×1")
	// Written in order: once a later one reaches the API server, a dropped
	// one never will.
	rec.Eventf(cms[0], nil, corev1.EventTypeNormal, "Step", "Step", "last")
	wantEvents(t, ctx, ns, "busy", "step 0×1", "step 1×1", "last×1")

	// The term ends: the writer stops, and what comes after is dropped.
	cancel()
	testenv.Must(t, <-stopped)
	rec.Eventf(cms[0], nil, corev1.EventTypeNormal, "Step", "Step", "after the term")
	if got := droppedEvents(t) - before; got != 2 {
		t.Errorf("%v Events counted as dropped, want 2", got)
	}
}
