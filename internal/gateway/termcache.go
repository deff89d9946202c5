package gateway

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// termCache lends the replica's cache to one term of the control plane. The
// leader once kept a second copy of every Session and credentials Secret in
// a cache of the control plane's own, and at thousands of idle sessions that
// copy was more than half of the leader's memory.
//
// A term only borrows: it does not start, wait for or stop the replica's
// cache; the event handlers its controllers add are removed when the term
// ends (controller-runtime never removes them); and Secrets, which the
// replica's cache hands out without copying for the data plane, are
// deep-copied before the control plane, which changes what it reads, gets
// them. The informers a term starts (Clusters, say) stay with the replica
// for the next term.
type termCache struct {
	cache.Cache
	indexes *sharedIndexes

	mu       sync.Mutex
	ended    bool
	handlers []termHandler
}

type termHandler struct {
	informer cache.Informer
	reg      toolscache.ResourceEventHandlerRegistration
}

// sharedIndexes remembers the field indexes added to the replica's cache:
// every term sets the same ones up, and an informer refuses a second index
// of the same name.
type sharedIndexes struct {
	mu    sync.Mutex
	added map[string]bool
}

func newTermCache(replica cache.Cache, indexes *sharedIndexes) *termCache {
	return &termCache{Cache: replica, indexes: indexes}
}

// Start holds the term's place among the manager's caches until the term
// ends; the replica's own manager runs the cache itself.
func (c *termCache) Start(ctx context.Context) error {
	<-ctx.Done()
	c.end()
	return nil
}

// end removes the term's event handlers; any a late controller adds after
// it is refused.
func (c *termCache) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ended = true
	for _, h := range c.handlers {
		_ = h.informer.RemoveEventHandler(h.reg)
	}
	c.handlers = nil
}

// handlerCount is how many of the term's event handlers are registered.
func (c *termCache) handlerCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.handlers)
}

func (c *termCache) add(i cache.Informer, register func() (toolscache.ResourceEventHandlerRegistration, error)) (toolscache.ResourceEventHandlerRegistration, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return nil, errors.New("the control plane's term has ended")
	}
	reg, err := register()
	if err == nil {
		c.handlers = append(c.handlers, termHandler{informer: i, reg: reg})
	}
	return reg, err
}

func (c *termCache) GetInformer(ctx context.Context, obj client.Object, opts ...cache.InformerGetOption) (cache.Informer, error) {
	i, err := c.Cache.GetInformer(ctx, obj, opts...)
	if err != nil {
		return nil, err
	}
	return &termInformer{Informer: i, term: c}, nil
}

func (c *termCache) GetInformerForKind(ctx context.Context, gvk schema.GroupVersionKind, opts ...cache.InformerGetOption) (cache.Informer, error) {
	i, err := c.Cache.GetInformerForKind(ctx, gvk, opts...)
	if err != nil {
		return nil, err
	}
	return &termInformer{Informer: i, term: c}, nil
}

// WaitForCacheSync does not wait for the replica's informers: the replica's
// manager started the control plane only once they had synced, and one
// that cannot sync again (its watch refused) must not hold the control
// plane's controllers back. A controller still waits for its own
// informers (GetInformer blocks until they sync) and handlers.
func (c *termCache) WaitForCacheSync(ctx context.Context) bool { return ctx.Err() == nil }

// RemoveInformer is refused: the data plane reads from the same informers.
func (c *termCache) RemoveInformer(context.Context, client.Object) error {
	return errors.New("the control plane cannot remove the replica's informers")
}

// IndexField adds an index once per replica; later terms find it there.
func (c *termCache) IndexField(ctx context.Context, obj client.Object, field string, extract client.IndexerFunc) error {
	key := fmt.Sprintf("%T/%s", obj, field)
	c.indexes.mu.Lock()
	defer c.indexes.mu.Unlock()
	if c.indexes.added[key] {
		return nil
	}
	if err := c.Cache.IndexField(ctx, obj, field, extract); err != nil {
		return err
	}
	if c.indexes.added == nil {
		c.indexes.added = map[string]bool{}
	}
	c.indexes.added[key] = true
	return nil
}

func (c *termCache) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	err := c.Cache.Get(ctx, key, obj, opts...)
	if err == nil && isSecret(obj) {
		ownCopy(obj)
	}
	return err
}

func (c *termCache) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	err := c.Cache.List(ctx, list, opts...)
	if err == nil && isSecret(list) {
		ownCopy(list)
	}
	return err
}

// isSecret says whether o is a Secret or a list of them, typed or read as
// metadata or unstructured (those name their kind).
func isSecret(o runtime.Object) bool {
	switch o.(type) {
	case *corev1.Secret, *corev1.SecretList:
		return true
	}
	gvk := o.GetObjectKind().GroupVersionKind()
	return gvk.Group == "" && (gvk.Kind == "Secret" || gvk.Kind == "SecretList")
}

// ownCopy replaces what o points to with a deep copy of it, so that nothing
// in o is shared with the cache.
func ownCopy(o runtime.Object) {
	reflect.ValueOf(o).Elem().Set(reflect.ValueOf(o.DeepCopyObject()).Elem())
}

// termInformer records the handlers a term's controllers add.
type termInformer struct {
	cache.Informer
	term *termCache
}

func (i *termInformer) AddEventHandler(h toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error) {
	return i.term.add(i.Informer, func() (toolscache.ResourceEventHandlerRegistration, error) {
		return i.Informer.AddEventHandler(h)
	})
}

func (i *termInformer) AddEventHandlerWithResyncPeriod(h toolscache.ResourceEventHandler, resync time.Duration) (toolscache.ResourceEventHandlerRegistration, error) {
	return i.term.add(i.Informer, func() (toolscache.ResourceEventHandlerRegistration, error) {
		return i.Informer.AddEventHandlerWithResyncPeriod(h, resync)
	})
}

func (i *termInformer) AddEventHandlerWithOptions(h toolscache.ResourceEventHandler, o toolscache.HandlerOptions) (toolscache.ResourceEventHandlerRegistration, error) {
	return i.term.add(i.Informer, func() (toolscache.ResourceEventHandlerRegistration, error) {
		return i.Informer.AddEventHandlerWithOptions(h, o)
	})
}

// RemoveEventHandler forgets the handler along with removing it.
func (i *termInformer) RemoveEventHandler(reg toolscache.ResourceEventHandlerRegistration) error {
	i.term.mu.Lock()
	for k, h := range i.term.handlers {
		if h.reg == reg {
			i.term.handlers = append(i.term.handlers[:k], i.term.handlers[k+1:]...)
			break
		}
	}
	i.term.mu.Unlock()
	return i.Informer.RemoveEventHandler(reg)
}
