package gateway_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/internal/credentials"
	"sessiongate.dev/sessiongate/internal/gateway"
	"sessiongate.dev/sessiongate/internal/testenv"
)

// seen records the names of the objects an event handler was told about.
type seen struct {
	mu    sync.Mutex
	names map[string]bool
}

func (s *seen) OnAdd(obj any, _ bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.names == nil {
		s.names = map[string]bool{}
	}
	s.names[obj.(client.Object).GetName()] = true
}
func (s *seen) OnUpdate(_, obj any) { s.OnAdd(obj, false) }
func (s *seen) OnDelete(any)        {}
func (s *seen) has(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.names[name]
}

// The leader's control plane reads through the replica's cache instead of
// keeping a second copy of every session. A term that ends takes its event
// handlers with it (the informers stay, serving the data plane and the next
// term), and what a term reads it may change without changing the cache.
func TestAControlPlaneTermBorrowsTheReplicasCache(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns := "termcache"
	testenv.Must(t, mgmt.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	replica, err := cache.New(mgmt.Config, gateway.ReplicaCacheOptions(ns))
	testenv.Must(t, err)
	go func() { _ = replica.Start(ctx) }()
	if !replica.WaitForCacheSync(ctx) {
		t.Fatal("the replica's cache did not sync")
	}
	indexes := &gateway.SharedIndexes{}
	byData := func(o client.Object) []string { return []string{o.(*corev1.ConfigMap).Data["k"]} }

	// The replica already serves from the informer a term indexes.
	configMap(t, ns, "before")
	testenv.Eventually(t, 10*time.Second, func() error {
		return replica.Get(ctx, client.ObjectKey{Namespace: ns, Name: "before"}, &corev1.ConfigMap{})
	})
	first := gateway.NewTermCache(replica, indexes)
	testenv.Must(t, first.IndexField(ctx, &corev1.ConfigMap{}, "data.k", byData))
	informer, err := first.GetInformer(ctx, &corev1.ConfigMap{})
	testenv.Must(t, err)
	firstSaw := &seen{}
	_, err = informer.AddEventHandler(firstSaw)
	testenv.Must(t, err)
	configMap(t, ns, "during-first")
	testenv.Eventually(t, 10*time.Second, func() error {
		if !firstSaw.has("during-first") {
			return fmt.Errorf("the first term's handler has not seen during-first")
		}
		return nil
	})

	first.End()
	if n := first.Handlers(); n != 0 {
		t.Errorf("an ended term still has %d event handlers", n)
	}
	if _, err := informer.AddEventHandler(&seen{}); err == nil {
		t.Error("an ended term accepted a new event handler")
	}

	// The next term sets up the same index and handler again.
	second := gateway.NewTermCache(replica, indexes)
	testenv.Must(t, second.IndexField(ctx, &corev1.ConfigMap{}, "data.k", byData))
	informer, err = second.GetInformer(ctx, &corev1.ConfigMap{})
	testenv.Must(t, err)
	secondSaw := &seen{}
	_, err = informer.AddEventHandler(toolscache.ResourceEventHandler(secondSaw))
	testenv.Must(t, err)
	configMap(t, ns, "during-second")
	testenv.Eventually(t, 10*time.Second, func() error {
		if !secondSaw.has("during-first") || !secondSaw.has("during-second") {
			return fmt.Errorf("the second term's handler saw %v", secondSaw.names)
		}
		return nil
	})
	// Had the first term's handler stayed, it would have been given
	// during-second along with the second's, within microseconds.
	testenv.Holds(t, time.Second, func() error {
		if firstSaw.has("during-second") {
			return fmt.Errorf("the ended term's event handler still receives events")
		}
		return nil
	})
	for _, name := range []string{"before", "during-second"} {
		found := &corev1.ConfigMapList{}
		testenv.Must(t, second.List(ctx, found, client.MatchingFields{"data.k": name}))
		if len(found.Items) != 1 {
			t.Errorf("the shared index found %d config maps for %s, want 1", len(found.Items), name)
		}
	}

	// Secrets reach the data plane uncopied; a term gets its own copy.
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "creds", Labels: map[string]string{credentials.LabelManagedBy: credentials.ManagedByValue},
			Annotations: map[string]string{credentials.AnnotationIdentity: "original"}},
		Data: map[string][]byte{"token": []byte("original")},
	}
	testenv.Must(t, mgmt.Client.Create(ctx, sec))
	key := client.ObjectKeyFromObject(sec)
	read := &corev1.Secret{}
	testenv.Eventually(t, 10*time.Second, func() error { return second.Get(ctx, key, read) })
	read.Data["token"] = []byte("changed by the control plane")
	list := &corev1.SecretList{}
	testenv.Must(t, second.List(ctx, list, client.InNamespace(ns)))
	list.Items[0].Data["token"] = []byte("changed through a list")
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	testenv.Must(t, second.Get(ctx, key, meta))
	meta.Annotations[credentials.AnnotationIdentity] = "changed through its metadata"
	cached := &corev1.Secret{}
	testenv.Must(t, replica.Get(ctx, key, cached))
	if got := string(cached.Data["token"]); got != "original" {
		t.Errorf("the replica's cached Secret holds %q after the term changed its copy", got)
	}
	if got := cached.Annotations[credentials.AnnotationIdentity]; got != "original" {
		t.Errorf("the replica's cached Secret is annotated %q after the term changed its metadata", got)
	}
	// The cache keeps no labels of a credentials Secret: the API server
	// chose the Secrets by them, and nothing reads them there.
	if cached.Labels != nil {
		t.Errorf("the replica's cached Secret keeps its labels %v", cached.Labels)
	}
}

func configMap(t *testing.T, ns, name string) {
	t.Helper()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string]string{"k": name}}
	testenv.Must(t, mgmt.Client.Create(context.Background(), cm))
}
