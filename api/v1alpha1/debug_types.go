package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DebugPodTemplateSpec is the pod a debug session runs: structured, or as a
// Go text/template rendered with the session's context and the requester's
// variables.
//
// +kubebuilder:validation:XValidation:rule="has(self.template) != has(self.text)",message="set exactly one of template or text"
type DebugPodTemplateSpec struct {
	// template is the pod, structured. Labels the gateway needs are added;
	// what it sets itself (the session's labels) cannot be overridden.
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:validation:Type=object
	// +optional
	Template *corev1.PodTemplateSpec `json:"template,omitempty"`

	// text is a Go text/template that renders to a PodTemplateSpec in YAML,
	// optionally followed by "---" and supporting objects (ConfigMap,
	// Secret, PersistentVolumeClaim, NetworkPolicy) that live and die with
	// the session. It sees .Session, .Owner, .Cluster, .Namespace, .Node
	// (the scheduling option's node, if any) and .Vars.
	// +kubebuilder:validation:MaxLength=65536
	// +optional
	Text string `json:"text,omitempty"`

	// variables the requester may set; any other is refused.
	// +kubebuilder:validation:MaxItems=32
	// +listType=map
	// +listMapKey=name
	// +optional
	Variables []DebugVariable `json:"variables,omitempty"`
}

// DebugVariableType is the type of a template variable.
// +kubebuilder:validation:Enum=string;int;bool
type DebugVariableType string

const (
	VariableString DebugVariableType = "string"
	VariableInt    DebugVariableType = "int"
	VariableBool   DebugVariableType = "bool"
)

// DebugVariable is one value a requester may choose.
type DebugVariable struct {
	// name as used in the template (.Vars.name).
	// +kubebuilder:validation:Pattern=`^[a-zA-Z][a-zA-Z0-9_]{0,62}$`
	// +required
	Name string `json:"name"`
	// type: string (default), int or bool.
	// +optional
	Type DebugVariableType `json:"type,omitempty"`
	// default when the request does not set it; a variable with no default
	// must be set.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Default *string `json:"default,omitempty"`
	// description shown to requesters.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Description string `json:"description,omitempty"`
	// enum, if set, lists every value allowed.
	// +kubebuilder:validation:MaxItems=64
	// +listType=set
	// +optional
	Enum []string `json:"enum,omitempty"`
	// pattern a string value must match in full (RE2).
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Pattern string `json:"pattern,omitempty"`
	// maxLength of a string value; default 256.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1024
	// +optional
	MaxLength *int32 `json:"maxLength,omitempty"`
	// minimum of an int value.
	// +optional
	Minimum *int64 `json:"minimum,omitempty"`
	// maximum of an int value.
	// +optional
	Maximum *int64 `json:"maximum,omitempty"`
}

// DebugPodTemplate is a pod a DebugSessionTemplate deploys.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=dpt
// +kubebuilder:printcolumn:name="Variables",type=string,JSONPath=`.spec.variables[*].name`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type DebugPodTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec DebugPodTemplateSpec `json:"spec"`
}

// DebugPodTemplateList is a list of DebugPodTemplates.
//
// +kubebuilder:object:root=true
type DebugPodTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DebugPodTemplate `json:"items"`
}

// DebugMode says what a debug session may do.
// +kubebuilder:validation:Enum=workload;kubectl-debug;hybrid
type DebugMode string

const (
	// ModeWorkload deploys debug pods from a DebugPodTemplate.
	ModeWorkload DebugMode = "workload"
	// ModeKubectlDebug allows kubectl-debug operations (ephemeral containers,
	// pod copies, node debug pods) under the template's rules.
	ModeKubectlDebug DebugMode = "kubectl-debug"
	// ModeHybrid does both.
	ModeHybrid DebugMode = "hybrid"
)

// WorkloadKind is how debug pods are deployed.
// +kubebuilder:validation:Enum=DaemonSet;Deployment
type WorkloadKind string

const (
	WorkloadDaemonSet  WorkloadKind = "DaemonSet"
	WorkloadDeployment WorkloadKind = "Deployment"
)

// DebugSessionTemplateSpec says what a debug session deploys or permits,
// where, and who may ask for it.
//
// +kubebuilder:validation:XValidation:rule="self.mode == 'kubectl-debug' || has(self.workload)",message="workload is required in mode workload and hybrid",fieldPath=".workload"
// +kubebuilder:validation:XValidation:rule="self.mode == 'workload' || has(self.kubectlDebug)",message="kubectlDebug is required in mode kubectl-debug and hybrid",fieldPath=".kubectlDebug"
// +kubebuilder:validation:XValidation:rule="!has(self.defaultTTL) || duration(self.defaultTTL) <= duration(self.maxTTL)",message="defaultTTL must not exceed maxTTL",fieldPath=".defaultTTL"
type DebugSessionTemplateSpec struct {
	// mode: workload, kubectl-debug or hybrid.
	// +required
	Mode DebugMode `json:"mode"`

	// description shown to requesters.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Description string `json:"description,omitempty"`

	// requesters may ask for sessions from this template.
	// +required
	Requesters Subjects `json:"requesters"`

	// clusters the template may be used on.
	// +required
	Clusters ClusterSelector `json:"clusters"`

	// maxTTL is the longest a debug session may last.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) > duration('0s')",message="must be a positive duration such as 30m or 1h"
	// +required
	MaxTTL metav1.Duration `json:"maxTTL"`

	// defaultTTL when a request names none; default maxTTL.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) > duration('0s')",message="must be a positive duration such as 30m or 1h"
	// +optional
	DefaultTTL *metav1.Duration `json:"defaultTTL,omitempty"`

	// approval, as in an AccessPolicy; none means sessions start at once.
	// +optional
	Approval *Approval `json:"approval,omitempty"`

	// streams limits the session's exec and attach streams, as in an
	// AccessPolicy.
	// +optional
	Streams *StreamPolicy `json:"streams,omitempty"`

	// namespace the debug pods run in and kubectl-debug may act in.
	// +required
	Namespace DebugNamespace `json:"namespace"`

	// workload deploys debug pods (mode workload and hybrid).
	// +optional
	Workload *DebugWorkload `json:"workload,omitempty"`

	// scheduling constrains where debug pods run.
	// +optional
	Scheduling *DebugScheduling `json:"scheduling,omitempty"`

	// allowedPodOperations on the session's debug pods; default exec and
	// logs.
	// +optional
	AllowedPodOperations *PodOperations `json:"allowedPodOperations,omitempty"`

	// kubectlDebug limits kubectl-debug operations (mode kubectl-debug and
	// hybrid).
	// +optional
	KubectlDebug *KubectlDebugRules `json:"kubectlDebug,omitempty"`
}

// DebugNamespace says where a debug session acts.
type DebugNamespace struct {
	// default namespace when the request names none.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +required
	Default string `json:"default"`
	// allow lists the namespaces (globs) a request may name; empty allows
	// only the default.
	// +kubebuilder:validation:MaxItems=64
	// +listType=set
	// +optional
	Allow []string `json:"allow,omitempty"`
	// deny lists namespaces (globs) never allowed; deny wins.
	// +kubebuilder:validation:MaxItems=64
	// +listType=set
	// +optional
	Deny []string `json:"deny,omitempty"`
	// selector, if set, must match the target namespace's labels (an
	// existing namespace only).
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
	// create the namespace when it is missing; the gateway then removes it
	// at the end of the session.
	// +optional
	Create bool `json:"create,omitempty"`
}

// DebugWorkload is how debug pods are deployed.
type DebugWorkload struct {
	// podTemplate names a DebugPodTemplate in the gateway's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	PodTemplate string `json:"podTemplate"`
	// kind: DaemonSet (a pod on every node the scheduling allows) or
	// Deployment.
	// +required
	Kind WorkloadKind `json:"kind"`
	// replicas of a Deployment; default 1.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`
	// readinessTimeout: a session whose pods are not all ready this long
	// after deployment fails (reason DebugPodsNotReady) and is cleaned up;
	// default 5m.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1s')",message="must be a duration of at least 1s"
	// +optional
	ReadinessTimeout *metav1.Duration `json:"readinessTimeout,omitempty"`
	// resourceQuota, if set, is created in the namespace for the session.
	// +optional
	ResourceQuota *corev1.ResourceQuotaSpec `json:"resourceQuota,omitempty"`
	// podDisruptionBudget, if set, keeps this many debug pods available.
	// +kubebuilder:validation:Minimum=1
	// +optional
	MinAvailable *int32 `json:"minAvailable,omitempty"`
}

// DebugScheduling constrains where debug pods run. What is set here the
// requester cannot loosen; options add to it.
type DebugScheduling struct {
	// nodeSelector every debug pod carries.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// affinity every debug pod carries.
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:validation:Type=object
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`
	// tolerations every debug pod carries.
	// +listType=atomic
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// deniedNodes (globs) never run debug pods, and kubectl debug node, or
	// an ephemeral container in a pod on one, is refused on them.
	// +kubebuilder:validation:MaxItems=64
	// +listType=set
	// +optional
	DeniedNodes []string `json:"deniedNodes,omitempty"`
	// deniedNodeLabels: nodes with any of these labels (key, or key=value)
	// never run debug pods.
	// +kubebuilder:validation:MaxItems=64
	// +listType=set
	// +optional
	DeniedNodeLabels []string `json:"deniedNodeLabels,omitempty"`
	// options a requester may choose from by name.
	// +kubebuilder:validation:MaxItems=32
	// +listType=map
	// +listMapKey=name
	// +optional
	Options []SchedulingOption `json:"options,omitempty"`
	// defaultOption when a request names none.
	// +optional
	DefaultOption string `json:"defaultOption,omitempty"`
}

// SchedulingOption is a named placement a requester may choose.
type SchedulingOption struct {
	// name the request uses.
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:MaxLength=63
	// +required
	Name string `json:"name"`
	// description shown to requesters.
	// +optional
	Description string `json:"description,omitempty"`
	// nodeSelector added to the template's.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// tolerations added to the template's.
	// +listType=atomic
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// groups whose members may choose it; empty lets every requester.
	// +kubebuilder:validation:MaxItems=64
	// +listType=set
	// +optional
	Groups []string `json:"groups,omitempty"`
}

// PodOperations are what a session may do to its debug pods.
type PodOperations struct {
	// +optional
	Exec bool `json:"exec,omitempty"`
	// +optional
	Attach bool `json:"attach,omitempty"`
	// +optional
	Logs bool `json:"logs,omitempty"`
	// +optional
	PortForward bool `json:"portForward,omitempty"`
}

// KubectlDebugRules limit what kubectl debug may create.
type KubectlDebugRules struct {
	// ephemeral allows ephemeral containers in pods of the namespace.
	// +optional
	Ephemeral bool `json:"ephemeral,omitempty"`
	// copy allows copies of pods, removed at the end of the session.
	// +optional
	Copy bool `json:"copy,omitempty"`
	// node allows debug pods on nodes (kubectl debug node/NAME).
	// +optional
	Node bool `json:"node,omitempty"`
	// images allowed, as globs (busybox:*, registry.example.com/tools/*).
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +listType=set
	// +required
	Images []string `json:"images"`
	// requireDigest refuses images not pinned by @sha256: digest.
	// +optional
	RequireDigest bool `json:"requireDigest,omitempty"`
	// allowPrivileged lets a debug container run privileged.
	// +optional
	AllowPrivileged bool `json:"allowPrivileged,omitempty"`
	// requireRunAsNonRoot refuses containers that do not set
	// runAsNonRoot: true.
	// +optional
	RequireRunAsNonRoot bool `json:"requireRunAsNonRoot,omitempty"`
	// allowedCapabilities a debug container may add; none when empty.
	// +kubebuilder:validation:MaxItems=64
	// +listType=set
	// +optional
	AllowedCapabilities []string `json:"allowedCapabilities,omitempty"`
	// allowHostNamespaces lets a node debug pod use the host's PID,
	// network and IPC namespaces, hostPath volumes and host ports; no other
	// pod may.
	// +optional
	AllowHostNamespaces bool `json:"allowHostNamespaces,omitempty"`
}

// DebugSessionTemplate is a kind of debug session requesters may ask for.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=dst
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Namespace",type=string,JSONPath=`.spec.namespace.default`
// +kubebuilder:printcolumn:name="Max-TTL",type=string,JSONPath=`.spec.maxTTL`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type DebugSessionTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec DebugSessionTemplateSpec `json:"spec"`
}

// DebugSessionTemplateList is a list of DebugSessionTemplates.
//
// +kubebuilder:object:root=true
type DebugSessionTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DebugSessionTemplate `json:"items"`
}

// DebugRequest asks a Session to be a debug session from a template.
type DebugRequest struct {
	// template names a DebugSessionTemplate in the gateway's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Template string `json:"template"`
	// namespace on the target; default the template's.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// variables for the pod template.
	// +kubebuilder:validation:MaxProperties=32
	// +optional
	Variables map[string]string `json:"variables,omitempty"`
	// scheduling names one of the template's scheduling options.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Scheduling string `json:"scheduling,omitempty"`
}

// ParticipantRole is what a participant may do.
// +kubebuilder:validation:Enum=participant;viewer
type ParticipantRole string

const (
	// RoleParticipant may do what the owner may through the session.
	RoleParticipant ParticipantRole = "participant"
	// RoleViewer may only read: get, list, watch and logs.
	RoleViewer ParticipantRole = "viewer"
)

// Participant is someone the owner let into a session.
type Participant struct {
	// user by the gateway's username claim.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +required
	User string `json:"user"`
	// role: participant or viewer.
	// +required
	Role ParticipantRole `json:"role"`
	// addedBy as the gateway verified them.
	// +optional
	AddedBy string `json:"addedBy,omitempty"`
	// addedAt is when.
	// +optional
	AddedAt *metav1.Time `json:"addedAt,omitempty"`
}

// DebugStatus is what a debug session deployed and may touch.
type DebugStatus struct {
	// template the session was made from.
	// +optional
	Template string `json:"template,omitempty"`
	// mode of the template, snapshotted.
	// +optional
	Mode DebugMode `json:"mode,omitempty"`
	// namespace on the target.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// namespaceCreated: the gateway made the namespace and removes it.
	// +optional
	NamespaceCreated bool `json:"namespaceCreated,omitempty"`
	// operations allowed on the debug pods, snapshotted.
	// +optional
	Operations PodOperations `json:"operations,omitempty"`
	// kubectlDebug rules, snapshotted.
	// +optional
	KubectlDebug *KubectlDebugRules `json:"kubectlDebug,omitempty"`
	// deniedNodes (globs) of the template's scheduling, snapshotted: no
	// debug pod, kubectl debug node pod or ephemeral container runs on them.
	// +listType=atomic
	// +optional
	DeniedNodes []string `json:"deniedNodes,omitempty"`
	// deniedNodeLabels of the template's scheduling, snapshotted (key, or
	// key=value): no kubectl debug node pod runs on a node carrying one.
	// +listType=atomic
	// +optional
	DeniedNodeLabels []string `json:"deniedNodeLabels,omitempty"`
	// deployedAt is when the gateway started deploying the session; its
	// readiness timeout counts from then.
	// +optional
	DeployedAt *metav1.Time `json:"deployedAt,omitempty"`
	// pods the session may touch.
	// +listType=atomic
	// +optional
	Pods []DebugPod `json:"pods,omitempty"`
	// created through kubectl-debug mode (ephemeral containers and pods).
	// +listType=atomic
	// +optional
	Created []DebugCreated `json:"created,omitempty"`
}

// DebugPod is one pod of a debug session.
type DebugPod struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// +optional
	Node string `json:"node,omitempty"`
	// +optional
	Ready bool `json:"ready,omitempty"`
}

// DebugCreated is one thing made through kubectl-debug mode.
type DebugCreated struct {
	// kind: EphemeralContainer, PodCopy or NodePod.
	Kind string `json:"kind"`
	// namespace and pod it is in (or is).
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	// container name.
	// +optional
	Container string `json:"container,omitempty"`
	// image it runs.
	// +optional
	Image string `json:"image,omitempty"`
	// by whom.
	// +optional
	By string `json:"by,omitempty"`
	// +optional
	At *metav1.Time `json:"at,omitempty"`
}

// Condition reasons of debug sessions.
const (
	// ReasonDebugPodsStarting: the workload is deployed, not all pods ready.
	ReasonDebugPodsStarting = "DebugPodsStarting"
	// ReasonDebugPodsNotReady: the pods were not ready within the timeout.
	ReasonDebugPodsNotReady = "DebugPodsNotReady"
	// ReasonTemplateInvalid: the template cannot be used as written.
	ReasonTemplateInvalid = "TemplateInvalid"
)

func init() {
	SchemeBuilder.Register(&DebugPodTemplate{}, &DebugPodTemplateList{}, &DebugSessionTemplate{}, &DebugSessionTemplateList{})
}
