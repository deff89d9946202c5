package gateway_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/internal/testenv"
)

// A leader that loses its lease — a short API outage is enough — stops
// leading the control plane, but keeps serving its sessions and their open
// streams; the control plane comes back wherever the lease goes next.
func TestLosingLeadershipKeepsTheDataPlaneServing(t *testing.T) {
	ctx := context.Background()
	session(t, "failover", "alice@example.com")
	leader := -1
	testenv.Eventually(t, 30*time.Second, func() error {
		for i, gw := range replicas {
			if gw.Leading() {
				leader = i
				return nil
			}
		}
		return fmt.Errorf("no replica leads")
	})
	// The control plane's controllers watch through the replica's cache.
	if n := replicas[leader].TermHandlers(); n == 0 {
		t.Errorf("the leader's control plane has no event handlers on the replica's cache")
	}
	c := clientset(t, leader, "failover", token(t, "alice@example.com"))
	w, err := c.CoreV1().ConfigMaps("demo").Watch(ctx, metav1.ListOptions{})
	testenv.Must(t, err)
	defer w.Stop()

	// Someone else takes the lease, for an hour.
	key := client.ObjectKey{Namespace: namespace, Name: "sessiongate"}
	t.Cleanup(func() {
		// Only the thief's lease: deleting a lease a replica holds would
		// let a second replica lead until the first notices.
		lease := &coordinationv1.Lease{}
		if err := mgmt.Client.Get(context.Background(), key, lease); err == nil && ptr.Deref(lease.Spec.HolderIdentity, "") == "thief" {
			_ = mgmt.Client.Delete(context.Background(), lease)
		}
	})
	testenv.Eventually(t, 30*time.Second, func() error {
		lease := &coordinationv1.Lease{}
		if err := mgmt.Client.Get(ctx, key, lease); err != nil {
			return err
		}
		lease.Spec.HolderIdentity = ptr.To("thief")
		lease.Spec.LeaseDurationSeconds = ptr.To[int32](3600)
		lease.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
		return mgmt.Client.Update(ctx, lease)
	})
	testenv.Eventually(t, 30*time.Second, func() error {
		if replicas[leader].Leading() {
			return fmt.Errorf("replica %d still believes it leads", leader)
		}
		return nil
	})
	// The term that ended took its handlers off the cache, which stays.
	testenv.Eventually(t, 30*time.Second, func() error {
		if n := replicas[leader].TermHandlers(); n != 0 {
			return fmt.Errorf("the ended term still has %d event handlers on the replica's cache", n)
		}
		return nil
	})

	// The former leader still serves: requests, and the watch it opened.
	if _, err := c.CoreV1().Pods("demo").List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("the former leader stopped serving: %v", err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "after-failover"}}
	testenv.Must(t, target.Client.Create(ctx, cm))
	t.Cleanup(func() { _ = target.Client.Delete(context.Background(), cm) })
	deadline := time.After(20 * time.Second)
	for seen := false; !seen; {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("the watch through the former leader ended")
			}
			if o, isCM := ev.Object.(*corev1.ConfigMap); isCM && ev.Type == watch.Added && o.Name == cm.Name {
				seen = true
			}
		case <-deadline:
			t.Fatalf("the watch through the former leader did not deliver %s", cm.Name)
		}
	}

	// The lease comes free; the control plane is led again and new sessions
	// go Active.
	testenv.Must(t, mgmt.Client.Delete(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}))
	session(t, "after-failover", "alice@example.com")
}
