package gateway

import (
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/credentials"
)

// The cache transforms below keep less of each cached Session and
// credentials Secret: an idle registered session costs what its cached
// objects cost, on every replica.

// compactSecrets keeps less of each cached credentials Secret:
//   - every Secret of one target holds the same copy of its CA: each
//     session's Secret carries the target's CA, and at thousands of sessions
//     those copies were a tenth of an idle session's memory;
//   - the labels are dropped: the API server already selected the Secrets by
//     them, nothing reads them from the cache, and a map of two labels is
//     most of half a KiB per session. (The control plane writes a Secret's
//     labels whole whenever it updates one.);
//   - the strings every Secret repeats (namespace, type, owner's kind) are
//     one copy each.
func compactSecrets(next toolscache.TransformFunc) toolscache.TransformFunc {
	var mu sync.Mutex
	shared := map[string][]byte{}
	return func(obj any) (any, error) {
		obj, err := next(obj)
		if err != nil {
			return obj, err
		}
		if sec, ok := obj.(*corev1.Secret); ok {
			sec.Labels = nil
			intern(&sec.Namespace)
			intern((*string)(&sec.Type))
			for i := range sec.OwnerReferences {
				intern(&sec.OwnerReferences[i].APIVersion)
				intern(&sec.OwnerReferences[i].Kind)
			}
			if ca, ok := sec.Data[credentials.KeyCA]; ok {
				mu.Lock()
				if have, ok := shared[string(ca)]; ok {
					sec.Data[credentials.KeyCA] = have
				} else if len(shared) < maxSharedCAs {
					shared[string(ca)] = ca
				}
				mu.Unlock()
			}
		}
		return obj, nil
	}
}

// maxSharedCAs bounds compactSecrets' table: one entry per target CA (and per
// rotation); past it, Secrets keep their own copies.
const maxSharedCAs = 256

// internSessions makes the strings that the cached Sessions share (their
// namespace, cluster, policy, access level, owner, phase, target URL and
// conditions' types and reasons) one copy each instead of one per session.
func internSessions(next toolscache.TransformFunc) toolscache.TransformFunc {
	return func(obj any) (any, error) {
		obj, err := next(obj)
		s, ok := obj.(*v1alpha1.Session)
		if err != nil || !ok {
			return obj, err
		}
		intern(&s.Namespace)
		spec := &s.Spec
		intern(&spec.Cluster)
		intern(&spec.Policy)
		intern(&spec.AccessLevel.ClusterRole)
		intern(&spec.AccessLevel.Group)
		for i := range spec.AccessLevel.Namespaces {
			intern(&spec.AccessLevel.Namespaces[i])
		}
		intern((*string)(&spec.Owner.Type))
		if u := spec.Owner.UserPrincipal; u != nil {
			intern(&u.Name)
			intern(&u.Claim)
		}
		if g := spec.Owner.Group; g != nil {
			intern(&g.Name)
		}
		st := &s.Status
		intern((*string)(&st.Phase))
		intern(&st.BackendKASURL)
		intern(&st.Policy)
		for i := range st.Conditions {
			c := &st.Conditions[i]
			intern(&c.Type)
			intern((*string)(&c.Status))
			intern(&c.Reason)
		}
		return s, nil
	}
}

// interned is the table of strings the cached objects share. It is bounded
// (an operator or requester chooses some of these values: owner names,
// policy names) and keeps what it took: cluster, namespace and condition
// names are few and long-lived. Past its bound, or for a long value, an
// object keeps its own copy. (Go's unique package forgets a value once no
// Handle to it is left, at the next collection: it shared little here.)
var interned = struct {
	sync.Mutex
	m map[string]string
}{m: map[string]string{}}

const (
	maxInterned   = 4096
	maxInternable = 256
)

// intern replaces *p by the table's copy of its value.
func intern(p *string) {
	s := *p
	if s == "" || len(s) > maxInternable {
		return
	}
	interned.Lock()
	defer interned.Unlock()
	if have, ok := interned.m[s]; ok {
		*p = have
	} else if len(interned.m) < maxInterned {
		// Its own copy: s may be part of something larger.
		s = strings.Clone(s)
		interned.m[s] = s
		*p = s
	}
}
