package credentials

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"
)

// Revoke deletes everything made on the target for the session with the given
// UID: ServiceAccounts (which kills their tokens server-side), RoleBindings and
// ClusterRoleBindings. It is idempotent.
func Revoke(ctx context.Context, t Target, sessionUID types.UID) error {
	sel := labels.Set{LabelGateway: t.Gateway, LabelSessionUID: string(sessionUID)}.String()
	return deleteLabelled(ctx, t, sel)
}

func deleteLabelled(ctx context.Context, t Target, selector string) error {
	opts := metav1.ListOptions{LabelSelector: selector}
	var errs []error
	note := func(kind string, err error) {
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting %s: %w", kind, err))
		}
	}
	rbac := t.Client.RbacV1()
	crbs, err := rbac.ClusterRoleBindings().List(ctx, opts)
	note("ClusterRoleBindings", err)
	if err == nil {
		for _, o := range crbs.Items {
			note("ClusterRoleBinding "+o.Name, rbac.ClusterRoleBindings().Delete(ctx, o.Name, metav1.DeleteOptions{}))
		}
	}
	rbs, err := rbac.RoleBindings(metav1.NamespaceAll).List(ctx, opts)
	note("RoleBindings", err)
	if err == nil {
		for _, o := range rbs.Items {
			note("RoleBinding "+o.Namespace+"/"+o.Name, rbac.RoleBindings(o.Namespace).Delete(ctx, o.Name, metav1.DeleteOptions{}))
		}
	}
	sas, err := t.Client.CoreV1().ServiceAccounts(metav1.NamespaceAll).List(ctx, opts)
	note("ServiceAccounts", err)
	if err == nil {
		for _, o := range sas.Items {
			note("ServiceAccount "+o.Namespace+"/"+o.Name, t.Client.CoreV1().ServiceAccounts(o.Namespace).Delete(ctx, o.Name, metav1.DeleteOptions{}))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	klog.V(4).InfoS("Deleted session objects on target", "cluster", t.Cluster.Name, "selector", selector)
	return nil
}

// SessionUIDsOnTarget lists the UIDs of every session of this gateway that
// still has objects on the target.
func SessionUIDsOnTarget(ctx context.Context, t Target) (sets.Set[types.UID], error) {
	opts := metav1.ListOptions{LabelSelector: labels.Set{LabelGateway: t.Gateway}.String() + "," + LabelSessionUID}
	uids := sets.New[types.UID]()
	add := func(m metav1.Object) { uids.Insert(types.UID(m.GetLabels()[LabelSessionUID])) }
	crbs, err := t.Client.RbacV1().ClusterRoleBindings().List(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("listing ClusterRoleBindings: %w", err)
	}
	for i := range crbs.Items {
		add(&crbs.Items[i])
	}
	rbs, err := t.Client.RbacV1().RoleBindings(metav1.NamespaceAll).List(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("listing RoleBindings: %w", err)
	}
	for i := range rbs.Items {
		add(&rbs.Items[i])
	}
	sas, err := t.Client.CoreV1().ServiceAccounts(metav1.NamespaceAll).List(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("listing ServiceAccounts: %w", err)
	}
	for i := range sas.Items {
		add(&sas.Items[i])
	}
	return uids, nil
}
