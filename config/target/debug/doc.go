// Package debug holds, as kubebuilder RBAC markers, what the gateway's
// identity needs on a TARGET used for debug sessions, in addition to package
// minter's rules. `make generate` writes role.yaml beside it and joins it
// with head.yaml and bindings.yaml into config/target/rbac-debug.yaml, a
// separate file operators apply only on clusters that serve debug sessions.
// A target without it still mints and revokes ordinary sessions: revocation
// and the orphan sweep take a refusal on these kinds to mean the gateway
// never made any there.
//
// The rules are cluster-wide because a template may name any namespace its
// allow list permits; what a session itself may do is the Role the gateway
// writes per session, narrowed to its own pods. Nothing here grants escalate,
// bind or impersonate.
package debug

// A template may create its namespace when it is missing, and the gateway
// removes it at the end of the session; get checks that a namespace exists
// and carries the labels the template's selector wants, list serves the
// orphan sweep, and update hands a namespace the ending session created to
// another session still working in it (its labels only).
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;create;update;delete

// The debug workload itself: created once and never changed (a template
// edited later does not reach a running session, so no update); list serves
// revocation and the sweep.
// +kubebuilder:rbac:groups=apps,resources=daemonsets;deployments,verbs=get;list;create;delete

// Pods: watched for readiness (status.debug.pods), created and deleted for
// kubectl-debug copies and node debug pods, deleted by label at the end.
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;create;delete

// The API server lets the gateway write a Role only with rights it holds
// itself (it has no escalate), so it holds what a session's Role may grant:
// exec, attach and port-forward on the session's pods, their logs, and
// ephemeral debug containers for kubectl-debug mode.
// +kubebuilder:rbac:groups="",resources=pods/exec;pods/attach;pods/portforward,verbs=create;get
// +kubebuilder:rbac:groups="",resources=pods/log,verbs=get
// +kubebuilder:rbac:groups="",resources=pods/ephemeralcontainers,verbs=patch;update

// The per-session Role in the debug namespace, narrowed to the session's
// pods with resourceNames and rewritten when its pod set changes. The minter
// rules already allow its RoleBinding.
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles,verbs=get;list;create;update;delete

// What a pod template may bring along (ConfigMap, Secret, PVC,
// NetworkPolicy) and what a template may ask for (ResourceQuota,
// PodDisruptionBudget): created with the session's labels and deleted by
// them. Secrets are only ever read to check their labels.
// +kubebuilder:rbac:groups="",resources=configmaps;secrets;persistentvolumeclaims;resourcequotas,verbs=get;list;create;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;create;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;create;delete

// kubectl debug node/NAME reads the Node first, which no namespaced Role can
// grant: a session whose template allows node debugging gets a
// ClusterRoleBinding to the ClusterRole sessiongate-debug-nodes (get nodes,
// in bindings.yaml). The gateway may bind it because it holds get on nodes
// itself; it needs no bind verb.
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get
