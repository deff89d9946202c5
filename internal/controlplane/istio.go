package controlplane

import (
	"context"
	"fmt"

	securityv1beta1 "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"sessiongate.dev/sessiongate/api/v1alpha1"
)

// IstioOptions turn on a per-session Istio AuthorizationPolicy: the mesh in
// front of the gateway lets a session's path through only for requests whose
// verified JWT names the session's owner. The gateway keeps verifying tokens
// itself either way.
type IstioOptions struct {
	// Selector picks the workloads the policies apply to: the gateway's pods
	// (with sidecars) or the ingress gateway in the same namespace.
	Selector map[string]string
	// GroupsClaim is the JWT claim with the caller's groups, for sessions
	// owned by a group.
	GroupsClaim string
}

// +kubebuilder:rbac:groups=security.istio.io,namespace=sessiongate,resources=authorizationpolicies,verbs=get;create;delete

// authorizationPolicyName is the session's AuthorizationPolicy.
func authorizationPolicyName(s *v1alpha1.Session) string { return "sessiongate-" + s.Name }

// ensureAuthorizationPolicy creates the session's AuthorizationPolicy, owned
// by the Session; it exists only while the session is Active.
func (r *SessionReconciler) ensureAuthorizationPolicy(ctx context.Context, s *v1alpha1.Session) error {
	if r.Istio == nil {
		return nil
	}
	key, value := "", ""
	switch o := s.Spec.Owner; {
	case o.UserPrincipal != nil:
		key, value = o.UserPrincipal.Claim, o.UserPrincipal.Name
	case o.Group != nil:
		key, value = r.Istio.GroupsClaim, o.Group.Name
	default:
		return fmt.Errorf("session %s has no owner to write an AuthorizationPolicy for", s.Name)
	}
	prefix := "/sessiongate/" + s.Name + "/kas"
	ap := &securityv1.AuthorizationPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: authorizationPolicyName(s)},
		Spec: securityv1beta1.AuthorizationPolicy{
			Selector: &typev1beta1.WorkloadSelector{MatchLabels: r.Istio.Selector},
			Action:   securityv1beta1.AuthorizationPolicy_ALLOW,
			Rules: []*securityv1beta1.Rule{{
				To:   []*securityv1beta1.Rule_To{{Operation: &securityv1beta1.Operation{Paths: []string{prefix, prefix + "/*"}}}},
				When: []*securityv1beta1.Condition{{Key: "request.auth.claims[" + key + "]", Values: []string{value}}},
			}},
		},
	}
	if err := controllerutil.SetControllerReference(s, ap, r.Scheme()); err != nil {
		return err
	}
	err := r.Create(ctx, ap)
	switch {
	case err == nil:
		klog.V(2).InfoS("Created Istio AuthorizationPolicy", "session", klog.KObj(s), "authorizationPolicy", ap.Name)
	case apierrors.IsAlreadyExists(err):
	case meta.IsNoMatchError(err):
		return fmt.Errorf("Istio's AuthorizationPolicy CRD (security.istio.io/v1) is not installed on the management cluster; install Istio or drop --istio-authorization-policies")
	default:
		return fmt.Errorf("creating Istio AuthorizationPolicy %s: %w", ap.Name, err)
	}
	return nil
}

// deleteAuthorizationPolicy removes the session's AuthorizationPolicy.
func (r *SessionReconciler) deleteAuthorizationPolicy(ctx context.Context, s *v1alpha1.Session) error {
	if r.Istio == nil {
		return nil
	}
	ap := &securityv1.AuthorizationPolicy{}
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: s.Namespace, Name: authorizationPolicyName(s)}, ap)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("reading Istio AuthorizationPolicy: %w", err)
	case !metav1.IsControlledBy(ap, s):
		return nil // not ours: leave it
	}
	uid := ap.UID
	if err := r.Delete(ctx, ap, &client.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting Istio AuthorizationPolicy %s: %w", ap.Name, err)
	}
	return nil
}
