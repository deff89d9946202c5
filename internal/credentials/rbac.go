package credentials

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"sessiongate.dev/sessiongate/api/v1alpha1"
)

// ensureBindings grants subject the session's ClusterRole: cluster-wide with a
// ClusterRoleBinding, or with one RoleBinding per listed namespace. A group
// access level needs no binding: the target's RBAC already names the group.
func ensureBindings(ctx context.Context, t Target, s *v1alpha1.Session, subject rbacv1.Subject) error {
	al := s.Spec.AccessLevel
	if al.ClusterRole == "" {
		return nil
	}
	meta := metav1.ObjectMeta{Name: objectName(s), Labels: sessionLabels(t.Gateway, s)}
	roleRef := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: al.ClusterRole}
	subjects := []rbacv1.Subject{subject}

	if len(al.Namespaces) == 0 {
		crbs := t.Client.RbacV1().ClusterRoleBindings()
		existing, err := crbs.Get(ctx, meta.Name, metav1.GetOptions{})
		if err == nil {
			return checkOwned(ctx, existing, s, func() error { return crbs.Delete(ctx, meta.Name, metav1.DeleteOptions{}) })
		}
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("reading ClusterRoleBinding %s: %w", meta.Name, err)
		}
		_, err = crbs.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: meta, RoleRef: roleRef, Subjects: subjects}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating ClusterRoleBinding %s: %w", meta.Name, err)
		}
		klog.V(2).InfoS("Bound ClusterRole", "session", klog.KObj(s), "clusterRole", al.ClusterRole, "subject", subject.Name)
		return nil
	}

	for _, ns := range al.Namespaces {
		rbs := t.Client.RbacV1().RoleBindings(ns)
		existing, err := rbs.Get(ctx, meta.Name, metav1.GetOptions{})
		if err == nil {
			if err := checkOwned(ctx, existing, s, func() error { return rbs.Delete(ctx, meta.Name, metav1.DeleteOptions{}) }); err != nil {
				return err
			}
			continue
		}
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("reading RoleBinding %s/%s: %w", ns, meta.Name, err)
		}
		rb := &rbacv1.RoleBinding{ObjectMeta: meta, RoleRef: roleRef, Subjects: subjects}
		rb.Namespace = ns
		if _, err := rbs.Create(ctx, rb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			if apierrors.IsNotFound(err) {
				return fmt.Errorf("namespace %q of spec.accessLevel.namespaces does not exist on the target: %w", ns, err)
			}
			return fmt.Errorf("creating RoleBinding %s/%s: %w", ns, meta.Name, err)
		}
		klog.V(2).InfoS("Bound ClusterRole in namespace", "session", klog.KObj(s), "clusterRole", al.ClusterRole, "namespace", ns, "subject", subject.Name)
	}
	return nil
}

// checkOwned accepts an existing object of session s. One left by an earlier
// session of the same name is deleted (its grants must not carry over) and
// the caller retries.
func checkOwned(ctx context.Context, obj metav1.Object, s *v1alpha1.Session, del func() error) error {
	if obj.GetLabels()[LabelSessionUID] == string(s.UID) {
		return nil
	}
	if err := del(); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting stale %s left by an earlier session: %w", obj.GetName(), err)
	}
	return fmt.Errorf("deleted stale %s left by an earlier session of the same name; retrying", obj.GetName())
}

// ensureNamespace creates the target namespace that holds session
// ServiceAccounts when it is missing.
func ensureNamespace(ctx context.Context, c kubernetes.Interface, name string) error {
	_, err := c.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading namespace %s: %w", name, err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{LabelManagedBy: ManagedByValue}}}
	if _, err := c.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	return nil
}
