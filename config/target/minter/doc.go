// Package minter holds, as kubebuilder RBAC markers, what the gateway's
// identity needs on every TARGET cluster to mint and revoke session
// credentials. `make generate` writes role.yaml beside it and joins it with
// bindings.yaml into config/target/rbac.yaml, the one file an operator
// applies. docs/operators.md explains each rule.
package minter

// One ServiceAccount per session, only in the session namespace; list and
// delete serve revocation and the orphan sweep.
// +kubebuilder:rbac:groups="",namespace=sessiongate-sessions,resources=serviceaccounts,verbs=get;list;create;delete

// The session's token: only for ServiceAccounts in the session namespace, so
// the gateway's identity can never mint a token for any other ServiceAccount.
// +kubebuilder:rbac:groups="",namespace=sessiongate-sessions,resources=serviceaccounts/token,verbs=create

// Bindings cannot be scoped further: a session may be granted a ClusterRole
// in any namespace its policy allows (RoleBindings there) or, for view,
// cluster-wide (a ClusterRoleBinding), and revocation and the sweep list them
// by label across namespaces. What they can grant is limited by the next rule.
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=rolebindings;clusterrolebindings,verbs=get;list;create;delete

// The API server lets the gateway bind only these ClusterRoles, and it never
// has escalate. Keep the list in step with --allowed-cluster-roles.
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles,resourceNames=view;edit,verbs=bind
