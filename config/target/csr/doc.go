// Package csr holds, as kubebuilder RBAC markers, what the gateway's identity
// needs on a TARGET whose Cluster uses the CertificateSigningRequest
// provider, in addition to package minter's rules. `make generate` writes
// role.yaml beside it and joins it with bindings.yaml into
// config/target/rbac-csr.yaml.
package csr

// A request per session: created, read until issued, deleted whatever
// happened; list serves the orphan sweep.
// +kubebuilder:rbac:groups=certificates.k8s.io,resources=certificatesigningrequests,verbs=get;list;create;delete

// The gateway approves its own requests: its access policies are the approval.
// +kubebuilder:rbac:groups=certificates.k8s.io,resources=certificatesigningrequests/approval,verbs=update

// Approving for the kube-apiserver-client signer lets this identity approve
// ANY client-certificate request on the target, whatever user or group it
// names: give it only to the gateway's identity, or prefer the
// ServiceAccountToken provider (revocable) or SignedCertificate with a CA of
// its own where that is too much.
// +kubebuilder:rbac:groups=certificates.k8s.io,resources=signers,resourceNames=kubernetes.io/kube-apiserver-client,verbs=approve
