package gateway

import (
	"net/http"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// newMapper is controller-runtime's dynamic RESTMapper, remembering the
// mappings it has found.
func newMapper(cfg *rest.Config, hc *http.Client) (meta.RESTMapper, error) {
	m, err := apiutil.NewDynamicRESTMapper(cfg, hc)
	if err != nil {
		return nil, err
	}
	return &mappings{RESTMapper: m}, nil
}

// mappings remembers the RESTMapping of each kind and version it was asked
// for. The dynamic mapper builds every answer anew, through a mapper per API
// group (about a hundred small allocations), and the cache asks it on every
// Get whether the kind is namespaced: the leader's passes over thousands of
// sessions made more garbage there than anywhere else. A kind that is not
// found is asked again every time, so an API installed later is found.
type mappings struct {
	meta.RESTMapper
	found sync.Map // schema.GroupVersionKind → *meta.RESTMapping
}

func (m *mappings) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	if len(versions) != 1 {
		return m.RESTMapper.RESTMapping(gk, versions...)
	}
	key := gk.WithVersion(versions[0])
	if r, ok := m.found.Load(key); ok {
		return r.(*meta.RESTMapping), nil
	}
	r, err := m.RESTMapper.RESTMapping(gk, versions...)
	if err == nil {
		m.found.Store(key, r)
	}
	return r, err
}
