package localkube

import (
	"context"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
)

// AggregateClusterRoles fills aggregated ClusterRoles (view, edit, admin) with
// the rules of the roles their selectors pick, as kube-controller-manager's
// aggregation controller does on a real cluster. envtest runs no
// controller-manager, so without this "view" grants nothing.
func AggregateClusterRoles(ctx context.Context, kube kubernetes.Interface) error {
	// Aggregated roles aggregate each other (view into edit into admin):
	// three passes reach the fixed point.
	for range 3 {
		if err := aggregateOnce(ctx, kube); err != nil {
			return err
		}
	}
	return nil
}

func aggregateOnce(ctx context.Context, kube kubernetes.Interface) error {
	roles, err := kube.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, role := range roles.Items {
		if role.AggregationRule == nil {
			continue
		}
		var rules []rbacv1.PolicyRule
		for _, sel := range role.AggregationRule.ClusterRoleSelectors {
			s, err := metav1.LabelSelectorAsSelector(&sel)
			if err != nil {
				return err
			}
			for _, r := range roles.Items {
				if r.Name != role.Name && s.Matches(labels.Set(r.Labels)) {
					rules = append(rules, r.Rules...)
				}
			}
		}
		role.Rules = rules
		if _, err := kube.RbacV1().ClusterRoles().Update(ctx, &role, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("aggregating ClusterRole %s: %w", role.Name, err)
		}
	}
	return nil
}
