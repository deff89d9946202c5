package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ProviderType names how credentials are minted on a target cluster.
// +kubebuilder:validation:Enum=ServiceAccountToken;SignedCertificate;CertificateSigningRequest
type ProviderType string

const (
	// ProviderServiceAccountToken creates a ServiceAccount and RBAC bindings per
	// session on the target and mints a bound token with the TokenRequest API.
	// Revocable: deleting the ServiceAccount invalidates the token server-side.
	ProviderServiceAccountToken ProviderType = "ServiceAccountToken"
	// ProviderSignedCertificate signs a client certificate with a CA that the
	// target's API server trusts. The certificate lives no longer than the
	// session; RBAC bindings made for it are deleted at the end.
	ProviderSignedCertificate ProviderType = "SignedCertificate"
	// ProviderCertificateSigningRequest has the target's own
	// kubernetes.io/kube-apiserver-client signer issue a client certificate
	// through the CertificateSigningRequest API: the gateway approves its own
	// request and deletes it once issued. Like SignedCertificate, the
	// certificate cannot be revoked before it expires; its bindings are
	// deleted at the end.
	ProviderCertificateSigningRequest ProviderType = "CertificateSigningRequest"
)

// DefaultSessionNamespace is the namespace on a target cluster that holds the
// per-session ServiceAccounts when a Cluster does not name another.
const DefaultSessionNamespace = "sessiongate-sessions"

// ClusterSpec says where a target API server is and how the gateway mints
// credentials there.
type ClusterSpec struct {
	// server is the HTTPS URL of the target's API server as the gateway reaches it.
	// +kubebuilder:validation:Pattern=`^https://`
	// +kubebuilder:validation:MaxLength=2048
	// +required
	Server string `json:"server"`

	// caBundle is the PEM-encoded CA that the target's serving certificate
	// chains to. TLS to targets is always verified.
	// +kubebuilder:validation:MinLength=1
	// +required
	CABundle []byte `json:"caBundle"`

	// kubeconfigSecretRef names a Secret in the Cluster's namespace whose
	// "kubeconfig" key holds the credential the gateway mints and revokes
	// with on the target (see config/target/rbac.yaml for the rights it
	// needs). Only the current context's user is read, and only a token or
	// an inline client certificate: the server and CA always come from this
	// spec, and insecure-skip-tls-verify, exec and auth-provider plugins,
	// file references and impersonation are refused. The Secret must be
	// meant for this server: its current context names it, or its
	// annotation sessiongate.dev/servers lists it; and with
	// certificate-authority-data it must trust every CA of caBundle.
	// +required
	KubeconfigSecretRef SecretKeyRef `json:"kubeconfigSecretRef"`

	// provider chooses how credentials are minted.
	// +kubebuilder:default={type: ServiceAccountToken}
	// +optional
	Provider CredentialProvider `json:"provider,omitempty"`
}

// SecretKeyRef names a key of a Secret in the referring object's namespace.
type SecretKeyRef struct {
	// name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +required
	Name string `json:"name"`
	// key inside the Secret; each use documents its default.
	// +optional
	Key string `json:"key,omitempty"`
}

// CredentialProvider configures how credentials are minted on the target.
// +kubebuilder:validation:XValidation:rule="self.type != 'SignedCertificate' || has(self.signedCertificate)",message="signedCertificate is required when type is SignedCertificate"
type CredentialProvider struct {
	// type of provider.
	// +kubebuilder:default=ServiceAccountToken
	// +optional
	Type ProviderType `json:"type,omitempty"`

	// sessionNamespace is the namespace on the target that holds per-session
	// ServiceAccounts. It must exist (config/target/rbac.yaml creates the
	// default one); no session is ever granted rights in it.
	// +kubebuilder:default=sessiongate-sessions
	// +kubebuilder:validation:MaxLength=63
	// +optional
	SessionNamespace string `json:"sessionNamespace,omitempty"`

	// signedCertificate configures the SignedCertificate provider.
	// +optional
	SignedCertificate *SignedCertificateProvider `json:"signedCertificate,omitempty"`
}

// SignedCertificateProvider points at the CA that signs session certificates.
type SignedCertificateProvider struct {
	// caSecretRef names a Secret in the Cluster's namespace with "tls.crt" and
	// "tls.key": a CA that the target's API server trusts for client
	// certificates (its --client-ca-file).
	// +required
	CASecretRef SecretKeyRef `json:"caSecretRef"`
}

// ClusterFinalizer keeps a Cluster until every session on it has ended and
// been revoked on the target.
const ClusterFinalizer = "sessiongate.dev/end-sessions"

// Condition type and reasons of a Cluster.
const (
	// ClusterConditionReady is True when the gateway can reach the target
	// with the Cluster's server, CA and kubeconfig credentials.
	ClusterConditionReady = "Ready"

	ReasonClusterReady = "Ready"
	// ReasonKubeconfigInvalid: the kubeconfig Secret is missing, unreadable,
	// or holds no usable credential.
	ReasonKubeconfigInvalid = "KubeconfigInvalid"
	// ReasonKubeconfigUnsafe: the kubeconfig asks for something the gateway
	// refuses (insecure-skip-tls-verify, exec or auth-provider plugins, file
	// references, impersonation), or the Secret is not meant for this
	// Cluster's server (another server or CA, and no annotation lists it).
	ReasonKubeconfigUnsafe = "KubeconfigUnsafe"
	// ReasonCAInvalid: spec.caBundle holds no PEM certificate, or the signing
	// CA Secret of the SignedCertificate provider is unusable.
	ReasonCAInvalid = "CAInvalid"
	// ReasonTargetTLSFailed: the target's serving certificate does not verify
	// against spec.caBundle.
	ReasonTargetTLSFailed = "TargetTLSFailed"
	// ReasonTargetAuthFailed: the target refused the kubeconfig's credential.
	// (A target that does not answer is ReasonTargetUnreachable.)
	ReasonTargetAuthFailed = "TargetAuthFailed"
	// ReasonDeleting: the Cluster is being deleted; its sessions are ended.
	ReasonDeleting = "Deleting"
)

// ClusterStatus is the observed state of a Cluster.
type ClusterStatus struct {
	// conditions of the Cluster.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Cluster is a target cluster that Sessions can grant access to. Clusters live
// in the gateway's own namespace.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Server",type=string,JSONPath=`.spec.server`
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.spec.provider.type`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Cluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ClusterSpec   `json:"spec"`
	Status ClusterStatus `json:"status,omitempty"`
}

// ClusterList is a list of Clusters.
//
// +kubebuilder:object:root=true
type ClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Cluster `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Cluster{}, &ClusterList{})
}
