package gateway

import "sigs.k8s.io/controller-runtime/pkg/cache"

// ReplicaCacheOptions are the options of a replica's own cache in namespace ns.
func ReplicaCacheOptions(ns string) cache.Options {
	o := dataPlaneCache(cacheOptions(ns, newWatchHealth()))
	o.Scheme = Scheme()
	return o
}

// TermCache is what one term of the control plane reads through.
type TermCache = termCache

// NewTermCache lends replica to a term; terms of one replica share indexes.
func NewTermCache(replica cache.Cache, indexes *SharedIndexes) *TermCache {
	return newTermCache(replica, indexes)
}

// SharedIndexes are the indexes a replica's terms have added.
type SharedIndexes = sharedIndexes

func (c *termCache) End()          { c.end() }
func (c *termCache) Handlers() int { return c.handlerCount() }

// TermHandlers is how many event handlers the control plane's current (or
// last) term has on the replica's cache.
func (g *Gateway) TermHandlers() int {
	if t := g.cp.term.Load(); t != nil {
		return t.handlerCount()
	}
	return 0
}

// NewMapper is the RESTMapper the gateway's managers use.
var NewMapper = newMapper
