package controlplane

import (
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

func TestAPassWaitsOnlyForTheLeadersOwnWritesAndNotForLong(t *testing.T) {
	now := time.Now()
	w := &ownWrites{now: func() time.Time { return now }}
	key := types.NamespacedName{Namespace: "gw", Name: "s"}

	// A finalizer patch and a status patch, one after the other.
	w.wrote(key, "1", "2")
	w.wrote(key, "2", "3")
	for _, v := range []string{"1", "2"} {
		if !w.past(key, v) {
			t.Errorf("version %s, written past, does not make the pass wait", v)
		}
	}
	if w.past(key, "3") {
		t.Errorf("the version the leader wrote makes the pass wait")
	}
	if w.past(key, "1") || len(w.m) != 0 {
		t.Errorf("once the cache has caught up, older versions still make a pass wait (%d remembered)", len(w.m))
	}

	// A write the API server found nothing new in: no watch event follows.
	w.wrote(key, "4", "4")
	if w.past(key, "4") || len(w.m) != 0 {
		t.Errorf("a write that kept the version makes the pass wait for an event that never comes")
	}

	// Someone else's write in between: the leader's later write starts over.
	w.wrote(key, "5", "6")
	w.wrote(key, "7", "8")
	if e := w.m[key]; e == nil || !slices.Equal(e.past, []string{"7"}) {
		t.Errorf("after a write by someone else, the versions remembered are %+v, want only 7", e)
	}

	// A cache that lags too long gets its passes.
	now = now.Add(ownWriteWait)
	if w.past(key, "7") || len(w.m) != 0 {
		t.Errorf("a pass waits for the leader's own write longer than %v", ownWriteWait)
	}

	// A session that is gone is forgotten.
	w.wrote(key, "9", "10")
	w.forget(key)
	if len(w.m) != 0 {
		t.Errorf("a session that is gone is still remembered")
	}
}
