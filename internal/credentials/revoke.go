package credentials

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"sessiongate.dev/sessiongate/api/v1alpha1"
)

// Revoke deletes everything made on the target for the session with the given
// UID: ServiceAccounts (which kills their tokens server-side), RoleBindings,
// ClusterRoleBindings and CertificateSigningRequests a crash left behind, and
// what a debug session deployed (workloads, pods, Roles, quotas, supporting
// objects, and last the namespace it created). It is idempotent, and it only
// ever deletes objects that carry this gateway's labels.
func Revoke(ctx context.Context, t Target, sessionUID types.UID) error {
	sel := labels.Set{LabelManagedBy: ManagedByValue, LabelGateway: t.Gateway, LabelSessionUID: string(sessionUID)}.String()
	opts := metav1.ListOptions{LabelSelector: sel}
	var errs []error
	note := func(kind string, err error) {
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting %s: %w", kind, err))
		}
	}
	// Bindings first: once they are gone the credential can do nothing, even
	// in the seconds the target keeps authenticating a deleted account's token.
	rbac := t.Client.RbacV1()
	crbs, err := rbac.ClusterRoleBindings().List(ctx, opts)
	note("ClusterRoleBindings", err)
	if err == nil {
		for _, o := range crbs.Items {
			note("ClusterRoleBinding "+o.Name, rbac.ClusterRoleBindings().Delete(ctx, o.Name, preconditions(o.UID)))
		}
	}
	rbs, err := rbac.RoleBindings(metav1.NamespaceAll).List(ctx, opts)
	note("RoleBindings", err)
	if err == nil {
		for _, o := range rbs.Items {
			note("RoleBinding "+o.Namespace+"/"+o.Name, rbac.RoleBindings(o.Namespace).Delete(ctx, o.Name, preconditions(o.UID)))
		}
	}
	if t.Cluster != nil && t.Cluster.Spec.Provider.Type == v1alpha1.ProviderCertificateSigningRequest {
		// A request normally goes as soon as it is issued; one a crash left
		// behind goes here.
		csrs := t.Client.CertificatesV1().CertificateSigningRequests()
		list, err := csrs.List(ctx, opts)
		note("CertificateSigningRequests", err)
		if err == nil {
			for _, o := range list.Items {
				note("CertificateSigningRequest "+o.Name, csrs.Delete(ctx, o.Name, preconditions(o.UID)))
			}
		}
	}
	ns := SessionNamespace(t.Cluster)
	sas, err := t.Client.CoreV1().ServiceAccounts(ns).List(ctx, opts)
	note("ServiceAccounts", err)
	if err == nil {
		for _, o := range sas.Items {
			note("ServiceAccount "+o.Namespace+"/"+o.Name, t.Client.CoreV1().ServiceAccounts(o.Namespace).Delete(ctx, o.Name, preconditions(o.UID)))
		}
	}
	// With the bindings and the account gone, what a debug session deployed.
	errs = append(errs, revokeDebug(ctx, t, opts)...)
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	klog.V(4).InfoS("Deleted session objects on target", "cluster", t.Cluster.Name, "selector", sel)
	return nil
}

// preconditions make a delete apply only to the object that was listed, never
// to one of the same name made since.
func preconditions(uid types.UID) metav1.DeleteOptions {
	return metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}
}

// Remnant is what a session of this gateway still has on a target.
type Remnant struct {
	// SessionName is the session's name, from the objects' labels.
	SessionName string
	// Newest is the creation time of its most recently created object.
	Newest time.Time
}

// SessionsOnTarget lists, by session UID, every session of this gateway that
// still has objects on the target.
func SessionsOnTarget(ctx context.Context, t Target) (map[types.UID]Remnant, error) {
	sel := labels.Set{LabelManagedBy: ManagedByValue, LabelGateway: t.Gateway}.String() + "," + LabelSessionUID
	opts := metav1.ListOptions{LabelSelector: sel}
	found := map[types.UID]Remnant{}
	add := func(m metav1.Object) {
		uid := types.UID(m.GetLabels()[LabelSessionUID])
		r := found[uid]
		r.SessionName = m.GetLabels()[LabelSessionName]
		if c := m.GetCreationTimestamp().Time; c.After(r.Newest) {
			r.Newest = c
		}
		found[uid] = r
	}
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
	sas, err := t.Client.CoreV1().ServiceAccounts(SessionNamespace(t.Cluster)).List(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("listing ServiceAccounts: %w", err)
	}
	if t.Cluster != nil && t.Cluster.Spec.Provider.Type == v1alpha1.ProviderCertificateSigningRequest {
		csrs, err := t.Client.CertificatesV1().CertificateSigningRequests().List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("listing CertificateSigningRequests: %w", err)
		}
		for i := range csrs.Items {
			add(&csrs.Items[i])
		}
	}
	for i := range sas.Items {
		add(&sas.Items[i])
	}
	if err := debugRemnants(ctx, t, opts, add); err != nil {
		return nil, err
	}
	return found, nil
}
