package controlplane

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

// addFinalizer and removeFinalizer patch metadata.finalizers alone, guarded by
// the resourceVersion, so that no other field is ever written back and no
// other writer's finalizer is lost.
func addFinalizer(ctx context.Context, c client.Client, o client.Object, finalizer string) error {
	orig := o.DeepCopyObject().(client.Object)
	if !controllerutil.AddFinalizer(o, finalizer) {
		return nil
	}
	if err := c.Patch(ctx, o, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("adding finalizer %s to %s: %w", finalizer, o.GetName(), err)
	}
	return nil
}

func removeFinalizer(ctx context.Context, c client.Client, o client.Object, finalizer string) error {
	orig := o.DeepCopyObject().(client.Object)
	if !controllerutil.RemoveFinalizer(o, finalizer) {
		return nil
	}
	if err := c.Patch(ctx, o, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return client.IgnoreNotFound(fmt.Errorf("removing finalizer %s from %s: %w", finalizer, o.GetName(), err))
	}
	return nil
}
