package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AccessPolicySpec says who may request what, on which clusters, for how
// long, and who must approve. A request that no policy grants is refused.
//
// +kubebuilder:validation:XValidation:rule="!has(self.defaultTTL) || duration(self.defaultTTL) <= duration(self.maxTTL)",message="defaultTTL must not exceed maxTTL",fieldPath=".defaultTTL"
// +kubebuilder:validation:XValidation:rule="!has(self.renewal) || !has(self.renewal.requiresApproval) || !self.renewal.requiresApproval || (has(self.approval) && has(self.approval.approvers))",message="renewal.requiresApproval needs approval.approvers",fieldPath=".renewal.requiresApproval"
type AccessPolicySpec struct {
	// requesters may ask for sessions under this policy.
	// +required
	Requesters Subjects `json:"requesters"`

	// clusters this policy covers: any name or glob in names, or any Cluster
	// the selector matches.
	// +required
	Clusters ClusterSelector `json:"clusters"`

	// accessLevels a requester may ask for.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +required
	AccessLevels []PolicyAccessLevel `json:"accessLevels"`

	// maxTTL is the longest a session may last per request or renewal.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) > duration('0s')",message="must be a positive duration such as 30m or 1h"
	// +required
	MaxTTL metav1.Duration `json:"maxTTL"`

	// defaultTTL is used when a request names no ttl; default maxTTL.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) > duration('0s')",message="must be a positive duration such as 30m or 1h"
	// +optional
	DefaultTTL *metav1.Duration `json:"defaultTTL,omitempty"`

	// renewal says whether and how often a session may be extended.
	// +optional
	Renewal *Renewal `json:"renewal,omitempty"`

	// approval says who must agree before a session starts; none means the
	// session starts at once.
	// +optional
	Approval *Approval `json:"approval,omitempty"`

	// idleTimeout ends a session (reason IdleExpired) that has proxied no
	// request for this long.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1s')",message="must be a duration of at least 1s"
	// +optional
	IdleTimeout *metav1.Duration `json:"idleTimeout,omitempty"`

	// streams limits the exec and attach streams of the sessions this policy
	// grants.
	// +optional
	Streams *StreamPolicy `json:"streams,omitempty"`

	// schedule lets a requester ask for a later start.
	// +optional
	Schedule *Schedule `json:"schedule,omitempty"`

	// notifications say where the lifecycle events of the sessions this
	// policy grants are sent.
	// +optional
	Notifications *Notifications `json:"notifications,omitempty"`
}

// Subjects are users and groups of the caller's token.
type Subjects struct {
	// users by the gateway's username claim.
	// +kubebuilder:validation:MaxItems=256
	// +listType=set
	// +optional
	Users []string `json:"users,omitempty"`
	// groups from the token's groups claim.
	// +kubebuilder:validation:MaxItems=256
	// +listType=set
	// +optional
	Groups []string `json:"groups,omitempty"`
}

// ClusterSelector picks Clusters by name, glob or labels.
//
// +kubebuilder:validation:XValidation:rule="has(self.names) || has(self.selector)",message="set names, selector, or both"
type ClusterSelector struct {
	// names of Clusters; "*" and "?" are globs (prod-*).
	// +kubebuilder:validation:MaxItems=256
	// +listType=set
	// +optional
	Names []string `json:"names,omitempty"`
	// selector on the Clusters' labels.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
}

// AccessScope says where a ClusterRole may be bound.
// +kubebuilder:validation:Enum=Cluster;Namespaced
type AccessScope string

const (
	// ScopeCluster binds cluster-wide: the policy explicitly grants it.
	ScopeCluster AccessScope = "Cluster"
	// ScopeNamespaced binds in the requested namespaces only.
	ScopeNamespaced AccessScope = "Namespaced"
)

// PolicyAccessLevel is one access level a policy grants.
//
// +kubebuilder:validation:XValidation:rule="has(self.clusterRole) != has(self.group)",message="set exactly one of clusterRole or group"
// +kubebuilder:validation:XValidation:rule="!has(self.group) || (!has(self.scope) && !has(self.namespaces))",message="scope and namespaces apply to clusterRole only"
// +kubebuilder:validation:XValidation:rule="!has(self.namespaces) || !has(self.scope) || self.scope == 'Namespaced'",message="namespaces apply to scope Namespaced only"
type PolicyAccessLevel struct {
	// clusterRole on the target.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	ClusterRole string `json:"clusterRole,omitempty"`
	// scope: Namespaced (default) or Cluster.
	// +optional
	Scope AccessScope `json:"scope,omitempty"`
	// namespaces a Namespaced grant may name (globs); empty allows any that
	// the gateway's own guards allow.
	// +optional
	Namespaces *NamespaceFilter `json:"namespaces,omitempty"`
	// group carried in a SignedCertificate session's certificate.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Group string `json:"group,omitempty"`
}

// NamespaceFilter allows and denies namespaces by glob; deny wins.
type NamespaceFilter struct {
	// +kubebuilder:validation:MaxItems=64
	// +listType=set
	// +optional
	Allow []string `json:"allow,omitempty"`
	// +kubebuilder:validation:MaxItems=64
	// +listType=set
	// +optional
	Deny []string `json:"deny,omitempty"`
}

// Renewal limits extensions of a session.
type Renewal struct {
	// allowed turns renewal on.
	// +optional
	Allowed bool `json:"allowed,omitempty"`
	// maxRenewals caps how often; the whole lifetime never exceeds
	// maxTTL × (1 + maxRenewals).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	MaxRenewals int32 `json:"maxRenewals,omitempty"`
	// requiresApproval: each renewal waits for the policy's approvers.
	// +optional
	RequiresApproval bool `json:"requiresApproval,omitempty"`
}

// Approval says who must agree before a session starts.
type Approval struct {
	// approvers may approve or reject. The requester never approves its own
	// session, even when it is among them.
	// +optional
	Approvers Subjects `json:"approvers,omitempty"`
	// minApprovals needed; default 1.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10
	// +kubebuilder:default=1
	// +optional
	MinApprovals int32 `json:"minApprovals,omitempty"`
	// timeout after which an undecided request ends (ApprovalTimeout);
	// default 24h.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) > duration('0s')",message="must be a positive duration such as 30m or 1h"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// autoApprove skips approval: for everyone (all), or for requesters in
	// these groups.
	// +optional
	AutoApprove *AutoApprove `json:"autoApprove,omitempty"`
	// requireReason refuses requests without a reason.
	// +optional
	RequireReason bool `json:"requireReason,omitempty"`
}

// AutoApprove says whose requests need no approval.
type AutoApprove struct {
	// all requests.
	// +optional
	All bool `json:"all,omitempty"`
	// groups whose members' requests.
	// +kubebuilder:validation:MaxItems=64
	// +listType=set
	// +optional
	Groups []string `json:"groups,omitempty"`
}

// Schedule lets a requester pick a later start time.
type Schedule struct {
	// allowed turns scheduling on.
	// +optional
	Allowed bool `json:"allowed,omitempty"`
	// maxDelay is how far ahead a start may be; default 168h.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) > duration('0s')",message="must be a positive duration such as 30m or 1h"
	// +optional
	MaxDelay *metav1.Duration `json:"maxDelay,omitempty"`
}

// StreamPolicy limits a session's streams.
type StreamPolicy struct {
	// exec rules, checked on the exec request's command before the stream
	// opens.
	// +optional
	Exec *ExecRules `json:"exec,omitempty"`
	// forbidInteractive refuses attach, and exec with both stdin and a TTY:
	// keystrokes in an interactive shell cannot be checked against exec
	// rules.
	// +optional
	ForbidInteractive bool `json:"forbidInteractive,omitempty"`
	// recording of exec and attach streams: off, best-effort (the default:
	// a stream goes on if its recording fails) or required (an exec or
	// attach is refused when the recording store cannot take writes, and a
	// stream whose recording fails is closed).
	// +kubebuilder:validation:Enum=off;best-effort;required
	// +optional
	Recording RecordingMode `json:"recording,omitempty"`
	// maxStreamDuration closes an exec, attach, port-forward or watch
	// stream this long after it opened.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1s')",message="must be a duration of at least 1s"
	// +optional
	MaxStreamDuration *metav1.Duration `json:"maxStreamDuration,omitempty"`
	// streamIdleTimeout closes an exec, attach, port-forward or watch
	// stream through which nothing has passed, either way, for this long.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1s')",message="must be a duration of at least 1s"
	// +optional
	StreamIdleTimeout *metav1.Duration `json:"streamIdleTimeout,omitempty"`
}

// RecordingMode says whether a session's exec and attach streams are
// recorded, and what happens when the recording fails.
type RecordingMode string

const (
	RecordingOff        RecordingMode = "off"
	RecordingBestEffort RecordingMode = "best-effort"
	RecordingRequired   RecordingMode = "required"
)

// ExecRules are patterns over the commands an exec runs: "rm" matches the
// program's base name, "/usr/bin/rm" (with a slash) its cleaned path, and a
// pattern with a space ("rm -rf *") the whole command line word by word, a *
// alone being any number of words and a * inside a word any run of its
// characters. Wrappers (env, nice, timeout, xargs, busybox, ...) and
// shell -c strings are looked through; what cannot be (a command
// substitution, eval, sudo, ...) is refused unless allowUndecidable.
type ExecRules struct {
	// allow, when set, lists every command that may run; others are refused.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=256
	// +kubebuilder:validation:items:Pattern=`^[^\s]([^\t\n\r\f\v]*[^\s])?$`
	// +kubebuilder:validation:XValidation:rule="self.all(p, [p.contains(' ') ? p.substring(0, p.indexOf(' ')) : p].all(w, !w.contains('/') || (w.startsWith('/') && w != '/' && !w.contains('//') && !w.contains('/./') && !w.contains('/../') && !w.endsWith('/.') && !w.endsWith('/..') && !w.endsWith('/'))))",message="a path in a pattern (the pattern, or a whole-line pattern's first word) must be clean and absolute, such as /usr/bin/rm: the command's own path is cleaned before it is matched"
	// +listType=atomic
	// +optional
	Allow []string `json:"allow,omitempty"`
	// deny lists commands that may never run; deny wins over allow. A path
	// pattern (/usr/bin/rm) matches that path only: deny rm to refuse rm
	// wherever it is.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=256
	// +kubebuilder:validation:items:Pattern=`^[^\s]([^\t\n\r\f\v]*[^\s])?$`
	// +kubebuilder:validation:XValidation:rule="self.all(p, [p.contains(' ') ? p.substring(0, p.indexOf(' ')) : p].all(w, !w.contains('/') || (w.startsWith('/') && w != '/' && !w.contains('//') && !w.contains('/./') && !w.contains('/../') && !w.endsWith('/.') && !w.endsWith('/..') && !w.endsWith('/'))))",message="a path in a pattern (the pattern, or a whole-line pattern's first word) must be clean and absolute, such as /usr/bin/rm: the command's own path is cleaned before it is matched"
	// +listType=atomic
	// +optional
	Deny []string `json:"deny,omitempty"`
	// allowUndecidable lets through what the rules cannot see into.
	// +optional
	AllowUndecidable bool `json:"allowUndecidable,omitempty"`
}

// NotificationKind is the payload shape of a notification sink.
// +kubebuilder:validation:Enum=Webhook;Slack
type NotificationKind string

const (
	NotificationWebhook NotificationKind = "Webhook"
	NotificationSlack   NotificationKind = "Slack"
)

// Notifications are sent on request, approval, rejection, activation,
// expiring-soon, expiry and termination of a session.
type Notifications struct {
	// sinks receive every event.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +listType=atomic
	// +required
	Sinks []NotificationSink `json:"sinks"`
	// expiringSoon is how long before expiry the expiring-soon event is
	// sent; default 10m.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) > duration('0s')",message="must be a positive duration such as 30m or 1h"
	// +optional
	ExpiringSoon *metav1.Duration `json:"expiringSoon,omitempty"`
}

// NotificationSink is one receiver of lifecycle events.
// +kubebuilder:validation:XValidation:rule="self.kind != 'Webhook' || has(self.signingSecretRef)",message="a Webhook sink needs signingSecretRef: receivers must be able to refuse forged events",fieldPath=".signingSecretRef"
type NotificationSink struct {
	// kind: Webhook (JSON signed with HMAC-SHA256) or Slack (an incoming
	// webhook's payload).
	// +required
	Kind NotificationKind `json:"kind"`
	// urlSecretRef names a Secret (in the policy's namespace) whose key holds
	// the https:// URL (key default "url"): incoming-webhook URLs are
	// credentials.
	// +required
	URLSecretRef SecretKeyRef `json:"urlSecretRef"`
	// signingSecretRef names the Secret key (default "key") holding the
	// HMAC-SHA256 key that signs Webhook events; at least 32 bytes.
	// +optional
	SigningSecretRef *SecretKeyRef `json:"signingSecretRef,omitempty"`
	// caBundle verifies the receiver's TLS certificate (PEM); default
	// system roots.
	// +optional
	CABundle []byte `json:"caBundle,omitempty"`
}

// AccessPolicy grants requesters access to clusters. Policies live in the
// gateway's namespace; the gateway refuses every request that none grants.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=ap
// +kubebuilder:printcolumn:name="Max-TTL",type=string,JSONPath=`.spec.maxTTL`
// +kubebuilder:printcolumn:name="Approvals",type=integer,JSONPath=`.spec.approval.minApprovals`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AccessPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec AccessPolicySpec `json:"spec"`
}

// AccessPolicyList is a list of AccessPolicies.
//
// +kubebuilder:object:root=true
type AccessPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AccessPolicy `json:"items"`
}

func init() {
	SchemeBuilder.Register(&AccessPolicy{}, &AccessPolicyList{})
}
