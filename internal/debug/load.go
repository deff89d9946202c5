package debug

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/api/v1alpha1"
)

// Errors of Load for templates that are not there.
var (
	ErrNoTemplate    = errors.New("no such debug session template")
	ErrNoPodTemplate = errors.New("no such debug pod template")
)

// Load reads a DebugSessionTemplate and, when it deploys pods, its
// DebugPodTemplate, from namespace ns.
func Load(ctx context.Context, c client.Reader, ns, name string) (*v1alpha1.DebugSessionTemplate, *v1alpha1.DebugPodTemplate, error) {
	t := &v1alpha1.DebugSessionTemplate{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, t); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil, fmt.Errorf("%w %q", ErrNoTemplate, name)
		}
		return nil, nil, fmt.Errorf("reading DebugSessionTemplate %s: %w", name, err)
	}
	if !NeedsPodTemplate(t) {
		return t, nil, nil
	}
	pt := &v1alpha1.DebugPodTemplate{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: t.Spec.Workload.PodTemplate}, pt); err != nil {
		if apierrors.IsNotFound(err) {
			return t, nil, fmt.Errorf("debug session template %s names DebugPodTemplate %q: %w", name, t.Spec.Workload.PodTemplate, ErrNoPodTemplate)
		}
		return nil, nil, fmt.Errorf("reading DebugPodTemplate %s: %w", t.Spec.Workload.PodTemplate, err)
	}
	return t, pt, nil
}
