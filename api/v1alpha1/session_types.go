package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// OwnerType says whether a session belongs to one user or to a group.
// +kubebuilder:validation:Enum=User;Group
type OwnerType string

const (
	OwnerUser  OwnerType = "User"
	OwnerGroup OwnerType = "Group"
)

// SessionSpec is what a session asks for. It cannot change once created,
// except that terminated may go from false to true.
//
// +kubebuilder:validation:XValidation:rule="duration(self.ttl) == duration(oldSelf.ttl) && self.cluster == oldSelf.cluster && has(self.accessLevel) == has(oldSelf.accessLevel) && (!has(self.accessLevel) || self.accessLevel == oldSelf.accessLevel) && self.owner == oldSelf.owner && has(self.reason) == has(oldSelf.reason) && (!has(self.reason) || self.reason == oldSelf.reason)",message="spec is immutable except for terminated and participants"
// +kubebuilder:validation:XValidation:rule="has(self.debug) == has(oldSelf.debug) && (!has(self.debug) || self.debug == oldSelf.debug)",message="spec is immutable except for terminated and participants"
// +kubebuilder:validation:XValidation:rule="has(self.accessLevel) != has(self.debug)",message="set exactly one of accessLevel or debug"
// +kubebuilder:validation:XValidation:rule="has(self.policy) == has(oldSelf.policy) && (!has(self.policy) || self.policy == oldSelf.policy) && has(self.requester) == has(oldSelf.requester) && (!has(self.requester) || self.requester == oldSelf.requester) && has(self.startAt) == has(oldSelf.startAt) && (!has(self.startAt) || self.startAt == oldSelf.startAt)",message="spec is immutable except for terminated and participants"
// +kubebuilder:validation:XValidation:rule="!(has(oldSelf.terminated) && oldSelf.terminated) || (has(self.terminated) && self.terminated)",message="terminated cannot be set back to false"
type SessionSpec struct {
	// ttl is how long the session stays Active, counted from activation, as a
	// duration such as 30m or 1h. It must be positive and no longer than the
	// gateway's maximum.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) > duration('0s')",message="must be a positive duration such as 30m or 1h"
	// +required
	TTL metav1.Duration `json:"ttl"`

	// cluster is the name of a Cluster in the gateway's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Cluster string `json:"cluster"`

	// accessLevel is what the session may do on the target. A debug
	// session has none: its template says what it may touch.
	// +optional
	AccessLevel AccessLevel `json:"accessLevel,omitzero"`

	// debug makes this a debug session from a DebugSessionTemplate.
	// +optional
	Debug *DebugRequest `json:"debug,omitempty"`

	// participants the owner let in: a participant may do what the owner
	// may, a viewer only read (get, list, watch, logs).
	// +kubebuilder:validation:MaxItems=32
	// +listType=map
	// +listMapKey=user
	// +optional
	Participants []Participant `json:"participants,omitempty"`

	// owner is the identity allowed to use the session.
	// +required
	Owner Owner `json:"owner"`

	// reason says why access is needed, e.g. an incident number. It is written
	// to the audit log.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Reason string `json:"reason,omitempty"`

	// terminated ends the session early. It may only go from false to true.
	// +optional
	Terminated bool `json:"terminated,omitempty"`

	// policy names the AccessPolicy the request asks to be judged by; empty
	// lets the gateway choose among those that grant it.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Policy string `json:"policy,omitempty"`

	// requester is who asked, as the gateway verified them; the REST API sets
	// it, and such a session is granted only what an AccessPolicy grants. A
	// Session without it was created directly by a management-cluster
	// principal (the admin path) and is held to the gateway's guards only.
	// +optional
	Requester *Requester `json:"requester,omitempty"`

	// startAt asks for a later start; the granting policy must allow
	// scheduling. The session stays Scheduled until then, and its ttl counts
	// from activation.
	// +optional
	StartAt *metav1.Time `json:"startAt,omitempty"`
}

// Requester is the verified identity behind a request.
type Requester struct {
	// user by the gateway's username claim.
	// +kubebuilder:validation:MaxLength=1024
	// +required
	User string `json:"user"`
	// groups from the token's groups claim when the request was made.
	// +kubebuilder:validation:MaxItems=256
	// +listType=atomic
	// +optional
	Groups []string `json:"groups,omitempty"`
}

// AccessLevel has exactly one shape: a ClusterRole bound cluster-wide, a
// ClusterRole bound in the listed namespaces, or a group carried in a
// certificate identity.
//
// +kubebuilder:validation:XValidation:rule="has(self.clusterRole) != has(self.group)",message="set exactly one of clusterRole or group"
// +kubebuilder:validation:XValidation:rule="!has(self.namespaces) || has(self.clusterRole)",message="namespaces can only be used with clusterRole"
type AccessLevel struct {
	// clusterRole is the name of a ClusterRole on the target, e.g. view or
	// edit. The gateway only grants ClusterRoles its policy allows.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	ClusterRole string `json:"clusterRole,omitempty"`

	// namespaces limits clusterRole to these namespaces (RoleBindings); empty
	// means cluster-wide (a ClusterRoleBinding).
	// +kubebuilder:validation:MaxItems=32
	// +listType=set
	// +optional
	Namespaces []string `json:"namespaces,omitempty"`

	// group is carried as the organisation of a session certificate, for
	// targets whose RBAC already names that group. Needs the
	// SignedCertificate provider.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Group string `json:"group,omitempty"`
}

// Owner is who may use a session.
type Owner struct {
	// type is User or Group.
	// +required
	Type OwnerType `json:"type"`

	// userPrincipal identifies the user when type is User.
	// +optional
	UserPrincipal *UserPrincipal `json:"userPrincipal,omitempty"`

	// group identifies the group when type is Group.
	// +optional
	Group *GroupPrincipal `json:"group,omitempty"`
}

// UserPrincipal matches one claim of the caller's token.
type UserPrincipal struct {
	// name the claim must equal, e.g. alice@example.com.
	// +required
	Name string `json:"name"`
	// claim of the caller's OIDC token that holds the name, e.g. sub, email, upn.
	// +required
	Claim string `json:"claim"`
}

// GroupPrincipal matches a member of the caller's groups claim.
type GroupPrincipal struct {
	// name of the group.
	// +required
	Name string `json:"name"`
}

// SessionPhase is a summary of a session's conditions.
// +kubebuilder:validation:Enum=Pending;PendingApproval;Scheduled;Active;Expired;IdleExpired;Terminated;Rejected;ApprovalTimeout;Failed
type SessionPhase string

const (
	PhasePending         SessionPhase = "Pending"
	PhasePendingApproval SessionPhase = "PendingApproval"
	PhaseScheduled       SessionPhase = "Scheduled"
	PhaseIdleExpired     SessionPhase = "IdleExpired"
	PhaseActive          SessionPhase = "Active"
	PhaseExpired         SessionPhase = "Expired"
	PhaseTerminated      SessionPhase = "Terminated"
	PhaseRejected        SessionPhase = "Rejected"
	PhaseApprovalTimeout SessionPhase = "ApprovalTimeout"
	PhaseFailed          SessionPhase = "Failed"
)

// Condition types of a Session.
const (
	// ConditionReady is True while the session may be used.
	ConditionReady = "Ready"
	// ConditionCredentialsAvailable is True while minted credentials exist on
	// the target and in the session's Secret.
	ConditionCredentialsAvailable = "CredentialsAvailable"
)

// Condition reasons of a Session.
const (
	ReasonActive             = "Active"
	ReasonPending            = "Pending"
	ReasonInvalidSpec        = "InvalidSpec"
	ReasonClusterNotFound    = "ClusterNotFound"
	ReasonTargetUnreachable  = "TargetUnreachable"
	ReasonMintFailed         = "MintFailed"
	ReasonMinted             = "Minted"
	ReasonExpired            = "Expired"
	ReasonTerminated         = "Terminated"
	ReasonRevoked            = "Revoked"
	ReasonRevocationRetrying = "RevocationRetrying"
	// ReasonClusterDeleted ends the sessions of a Cluster being deleted.
	ReasonClusterDeleted = "ClusterDeleted"
	// ReasonNamespaceNotFound: a namespace the access level names does not
	// exist on the target.
	ReasonNamespaceNotFound = "NamespaceNotFound"
	// ReasonTargetForbidden: the gateway's identity on the target may not do
	// what the session needs (e.g. bind the ClusterRole).
	ReasonTargetForbidden = "TargetForbidden"
	// ReasonNameConflict: an object the session needs is in the way and was
	// not made by this gateway for this session.
	ReasonNameConflict = "NameConflict"
	// ReasonPolicyDenied: no AccessPolicy grants the request.
	ReasonPolicyDenied = "PolicyDenied"
	// ReasonPendingApproval: the request waits for its approvers.
	ReasonPendingApproval = "PendingApproval"
	// ReasonRejected: an approver rejected the request.
	ReasonRejected = "Rejected"
	// ReasonApprovalTimeout: no decision came within the policy's timeout.
	ReasonApprovalTimeout = "ApprovalTimeout"
	// ReasonScheduled: approved, waiting for spec.startAt.
	ReasonScheduled = "Scheduled"
	// ReasonIdleExpired: no proxied request for the policy's idleTimeout.
	ReasonIdleExpired = "IdleExpired"
	// ReasonRenewed: a renewal extended the session.
	ReasonRenewed = "Renewed"
)

// RenewalRequest is an owner's request to extend an Active session.
type RenewalRequest struct {
	// ttl to add to expiresAt.
	// +required
	TTL metav1.Duration `json:"ttl"`
	// requestedBy as the gateway verified them.
	// +required
	RequestedBy string `json:"requestedBy"`
	// requestedAt is when.
	// +required
	RequestedAt metav1.Time `json:"requestedAt"`
	// decisions of approvers, when the policy's renewals need approval.
	// +listType=atomic
	// +optional
	Decisions []Decision `json:"decisions,omitempty"`
}

// AnnotationTerminatedBy names who set spec.terminated through the gateway.
const AnnotationTerminatedBy = "sessiongate.dev/terminated-by"

// DecisionType is an approver's answer.
// +kubebuilder:validation:Enum=Approved;Rejected
type DecisionType string

const (
	DecisionApproved DecisionType = "Approved"
	DecisionRejected DecisionType = "Rejected"
)

// Decision is one approver's answer to a request.
type Decision struct {
	// approver as the gateway verified them.
	// +required
	Approver string `json:"approver"`
	// decision: Approved or Rejected.
	// +required
	Decision DecisionType `json:"decision"`
	// time of the decision.
	// +required
	Time metav1.Time `json:"time"`
	// comment the approver gave.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Comment string `json:"comment,omitempty"`
}

// SessionLimits is what the granting policy allowed, as it was when the
// session was granted: editing the policy later never widens a session.
type SessionLimits struct {
	// maxTTL per request and per renewal: the policy's, or the gateway's
	// --max-ttl where that is shorter.
	// +optional
	MaxTTL metav1.Duration `json:"maxTTL,omitempty"`
	// approval the request needs; nil when none.
	// +optional
	Approval *Approval `json:"approval,omitempty"`
	// renewal allowed.
	// +optional
	Renewal *Renewal `json:"renewal,omitempty"`
	// renewalApproval decides renewals when the policy's renewals need
	// approval.
	// +optional
	RenewalApproval *Approval `json:"renewalApproval,omitempty"`
	// idleTimeout, if any.
	// +optional
	IdleTimeout *metav1.Duration `json:"idleTimeout,omitempty"`
	// streams limits, if any.
	// +optional
	Streams *StreamPolicy `json:"streams,omitempty"`
	// guests are who the owner may let in (spec.participants): the
	// granting policy's requesters. Nil for a session created directly
	// (the admin path), whose owner may let in anyone.
	// +optional
	Guests *Subjects `json:"guests,omitempty"`
}

// SessionStatus is the observed state of a Session.
type SessionStatus struct {
	// phase summarises the conditions.
	// +optional
	Phase SessionPhase `json:"phase,omitempty"`

	// activatedAt is when the session first became Active.
	// +optional
	ActivatedAt *metav1.Time `json:"activatedAt,omitempty"`

	// expiresAt is activatedAt plus ttl.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// endpoint is the gateway URL that serves the session:
	// <ingress base URL>/sessiongate/<name>/kas.
	// +optional
	Endpoint string `json:"endpoint,omitempty"`

	// credentialsSecretRef names the Secret, in the session's namespace, that
	// holds the minted credential.
	// +optional
	CredentialsSecretRef string `json:"credentialsSecretRef,omitempty"`

	// backendKASURL is the target API server the gateway forwards to.
	// +optional
	BackendKASURL string `json:"backendKASURL,omitempty"`

	// policy is the AccessPolicy that granted the session; empty for a
	// session created directly (the admin path).
	// +optional
	Policy string `json:"policy,omitempty"`

	// limits the granting policy set, snapshotted at grant time.
	// +optional
	Limits *SessionLimits `json:"limits,omitempty"`

	// decisions of approvers, in order.
	// +listType=atomic
	// +optional
	Decisions []Decision `json:"decisions,omitempty"`

	// renewals granted so far.
	// +optional
	Renewals int32 `json:"renewals,omitempty"`

	// renewalRequest is a renewal waiting for the leader (and, if the policy
	// says so, for approvers).
	// +optional
	RenewalRequest *RenewalRequest `json:"renewalRequest,omitempty"`

	// lastActivityAt is the latest proxied request any replica reported;
	// replicas report at most every 30s per session.
	// +optional
	LastActivityAt *metav1.Time `json:"lastActivityAt,omitempty"`

	// expiringSoonNotified is the expiresAt the expiring-soon notification
	// was sent for; a renewal that moves expiresAt arms it again.
	// +optional
	ExpiringSoonNotified *metav1.Time `json:"expiringSoonNotified,omitempty"`

	// debug is what a debug session deployed and may touch.
	// +optional
	Debug *DebugStatus `json:"debug,omitempty"`

	// observedGeneration is the generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions of the session.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Session grants its owner time-limited access to a target cluster through the
// gateway. Its name is at most 63 characters: it is carried in labels and in
// the names of what the gateway makes on the target.
//
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 63",message="metadata.name must be at most 63 characters"
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=sgs
// +kubebuilder:printcolumn:name="Owner",type=string,JSONPath=`.spec.owner.userPrincipal.name`
// +kubebuilder:printcolumn:name="Group",type=string,JSONPath=`.spec.owner.group.name`,priority=1
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=`.spec.cluster`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Policy",type=string,JSONPath=`.status.policy`,priority=1
// +kubebuilder:printcolumn:name="Debug-Template",type=string,JSONPath=`.spec.debug.template`,priority=1
// +kubebuilder:printcolumn:name="Expires-At",type=string,JSONPath=`.status.expiresAt`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.spec.reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Session struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   SessionSpec   `json:"spec"`
	Status SessionStatus `json:"status,omitempty"`
}

// SessionList is a list of Sessions.
//
// +kubebuilder:object:root=true
type SessionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Session `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Session{}, &SessionList{})
}
