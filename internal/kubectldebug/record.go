package kubectldebug

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/api/v1alpha1"
)

// Recorder appends what kubectl-debug mode created to the session's
// status.debug.created. Any replica records, and the leader patches the
// same status: each append is a merge patch of that one list at the version
// it was read at, made again on a conflict.
type Recorder struct {
	Client client.Client
	// Reader reads the session uncached; default Client.
	Reader client.Reader
}

// Created is one DebugCreated, stamped now.
func Created(kind Kind, namespace, pod, container, image, by string, now time.Time) v1alpha1.DebugCreated {
	return v1alpha1.DebugCreated{Kind: string(kind), Namespace: namespace, Pod: pod, Container: container, Image: image, By: by, At: &metav1.Time{Time: now}}
}

// Record appends items to the status of session namespace/name, if it is
// still the session of uid; an item already listed is not added again.
func (r *Recorder) Record(ctx context.Context, namespace, name string, uid types.UID, items ...v1alpha1.DebugCreated) error {
	reader := r.Reader
	if reader == nil {
		reader = r.Client
	}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s := &v1alpha1.Session{}
		if err := reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, s); err != nil {
			return err
		}
		if s.UID != uid {
			return fmt.Errorf("session %s/%s is no longer the session %s", namespace, name, uid)
		}
		if s.Status.Debug == nil {
			return fmt.Errorf("session %s/%s has no status.debug", namespace, name)
		}
		base := s.DeepCopy()
		for _, it := range items {
			if !listed(s.Status.Debug.Created, it) {
				s.Status.Debug.Created = append(s.Status.Debug.Created, it)
			}
		}
		if len(s.Status.Debug.Created) == len(base.Status.Debug.Created) {
			return nil
		}
		return r.Client.Status().Patch(ctx, s, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
	})
}

func listed(list []v1alpha1.DebugCreated, it v1alpha1.DebugCreated) bool {
	for _, c := range list {
		if c.Kind == it.Kind && c.Namespace == it.Namespace && c.Pod == it.Pod && c.Container == it.Container {
			return true
		}
	}
	return false
}

// TargetClient acts on a session's target as the session: the backend's
// transport (which verifies the target, and carries a client certificate if
// that is the credential) and bearer token.
func TargetClient(server *url.URL, token string, rt http.RoundTripper) (kubernetes.Interface, error) {
	return kubernetes.NewForConfig(&rest.Config{Host: server.String(), BearerToken: token, Transport: rt, UserAgent: "sessiongate"})
}

// CheckNodeLabelsOn reads node as the session (kube is its own client) to
// judge its labels against the template's deniedNodeLabels. A node the
// session may not read, or that is not there, is refused: its labels are
// unknown.
func (c *Checker) CheckNodeLabelsOn(ctx context.Context, kube kubernetes.Interface, fld, node string) error {
	if len(c.DeniedNodeLabels) == 0 {
		return nil
	}
	n, err := kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err) || apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
		return c.refuse(fld, RuleDeniedNodeLabels, "%s %q: the node cannot be read as the session (%s), so %s's deniedNodeLabels cannot be checked", fld, node, apierrors.ReasonForError(err), c.template())
	case err != nil:
		return fmt.Errorf("reading node %s: %w", node, err)
	}
	return c.CheckNodeLabels(fld, node, n.Labels)
}

// AnnotationCreated, on a request's audit record, lists what kubectl-debug
// mode let it create: "Kind namespace/pod[/container] "image"", joined by "; ".
const AnnotationCreated = "sessiongate.dev/debug-created"

// Describe is an item for AnnotationCreated.
func Describe(items []v1alpha1.DebugCreated) string {
	parts := make([]string, len(items))
	for i, it := range items {
		parts[i] = describe(Kind(it.Kind), it.Namespace, it.Pod, it.Container, it.Image)
	}
	return strings.Join(parts, "; ")
}
