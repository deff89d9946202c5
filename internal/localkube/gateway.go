package localkube

import (
	"context"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"sessiongate.dev/sessiongate/config"
)

// GatewayConfig returns a config for a new user on the management cluster
// that holds exactly what config/rbac/role.yaml — generated from the code's
// RBAC markers — grants, in namespace: the sandbox's and the tests' gateways
// run with it, so a verb the code needs and the markers miss fails.
func (c *Cluster) GatewayConfig(ctx context.Context, namespace string) (*rest.Config, error) {
	role, err := config.File(config.RolePath)
	if err != nil {
		return nil, err
	}
	if err := Apply(ctx, c.Client, config.RolePath, role, namespace); err != nil {
		return nil, err
	}
	user := "sessiongate-gateway:" + namespace
	subjects := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}
	ref := func(kind string) rbacv1.RoleRef {
		return rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: "sessiongate"}
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "sessiongate"}, RoleRef: ref("Role"), Subjects: subjects}
	if err := c.Client.Create(ctx, rb); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("binding the gateway Role: %w", err)
	}
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "sessiongate-" + namespace}, RoleRef: ref("ClusterRole"), Subjects: subjects}
	if err := c.Client.Create(ctx, crb); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("binding the gateway ClusterRole: %w", err)
	}
	u, err := c.Env.ControlPlane.AddUser(envtest.User{Name: user}, nil)
	if err != nil {
		return nil, err
	}
	cfg := u.Config()
	cfg.QPS, cfg.Burst = 100, 200
	return cfg, nil
}
