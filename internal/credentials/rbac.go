package credentials

import (
	"context"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	meta := metav1.ObjectMeta{Name: ObjectName(t.Gateway, s), Labels: sessionLabels(t.Gateway, s)}
	roleRef := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: al.ClusterRole}
	subjects := []rbacv1.Subject{subject}

	if len(al.Namespaces) == 0 {
		crbs := t.Client.RbacV1().ClusterRoleBindings()
		existing, err := crbs.Get(ctx, meta.Name, metav1.GetOptions{})
		if err == nil {
			return checkOwned(t, "ClusterRoleBinding", existing, s, func() error { return crbs.Delete(ctx, meta.Name, metav1.DeleteOptions{}) })
		}
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("reading ClusterRoleBinding %s: %w", meta.Name, err)
		}
		_, err = crbs.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: meta, RoleRef: roleRef, Subjects: subjects}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return bindingError(t, al.ClusterRole, "ClusterRoleBinding "+meta.Name, err)
		}
		klog.V(2).InfoS("Bound ClusterRole", "session", klog.KObj(s), "clusterRole", al.ClusterRole, "subject", subject.Name)
		return nil
	}

	for _, ns := range al.Namespaces {
		rbs := t.Client.RbacV1().RoleBindings(ns)
		existing, err := rbs.Get(ctx, meta.Name, metav1.GetOptions{})
		if err == nil {
			if err := checkOwned(t, "RoleBinding", existing, s, func() error { return rbs.Delete(ctx, meta.Name, metav1.DeleteOptions{}) }); err != nil {
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
				return permanentReason(v1alpha1.ReasonNamespaceNotFound, "spec.accessLevel.namespaces: namespace %q does not exist on cluster %s", ns, t.Cluster.Name)
			}
			return bindingError(t, al.ClusterRole, "RoleBinding "+ns+"/"+meta.Name, err)
		}
		klog.V(2).InfoS("Bound ClusterRole in namespace", "session", klog.KObj(s), "clusterRole", al.ClusterRole, "namespace", ns, "subject", subject.Name)
	}
	return nil
}

// bindingError explains a failed binding: a target that forbids it will keep
// forbidding it, so the session fails with the rule to fix.
func bindingError(t Target, clusterRole, what string, err error) error {
	if apierrors.IsForbidden(err) {
		return permanentReason(v1alpha1.ReasonTargetForbidden,
			"the gateway's identity on cluster %s may not create %s binding ClusterRole %q (is it in the bind rule of config/target/rbac.yaml?): %v",
			t.Cluster.Name, what, clusterRole, err)
	}
	return fmt.Errorf("creating %s: %w", what, err)
}

// checkOwned accepts an existing object of session s. One left by an earlier
// session of the same name of this gateway is deleted (its grants must not
// carry over) and the caller retries. Anything else in the way — an object
// without this gateway's labels — is never touched: the session fails.
func checkOwned(t Target, kind string, obj metav1.Object, s *v1alpha1.Session, del func() error) error {
	l := obj.GetLabels()
	switch {
	case l[LabelSessionUID] == string(s.UID) && l[LabelGateway] == t.Gateway:
		return nil
	case l[LabelManagedBy] != ManagedByValue || l[LabelGateway] != t.Gateway || l[LabelSessionUID] == "":
		return permanentReason(v1alpha1.ReasonNameConflict,
			"%s %s already exists on cluster %s and was not made by this gateway (%s); it was left alone", kind, obj.GetName(), t.Cluster.Name, t.Gateway)
	}
	if err := del(); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting stale %s %s left by an earlier session: %w", kind, obj.GetName(), err)
	}
	return fmt.Errorf("deleted stale %s %s left by an earlier session of the same name; retrying", kind, obj.GetName())
}
