package credentials

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
	"k8s.io/klog/v2"

	"sessiongate.dev/sessiongate/api/v1alpha1"
)

// minCSRSeconds is the shortest expirationSeconds the CSR API accepts.
const minCSRSeconds = 600

// issueTimeout bounds the wait for the target's signer.
const issueTimeout = 30 * time.Second

// certificateSigningRequest asks the target's kube-apiserver-client signer
// for a client certificate: the gateway creates the request, approves it
// itself (its policies are the approval), collects the certificate and
// deletes the request. The certificate cannot be revoked before it expires,
// so the gateway refuses it at its own door once the session ends and deletes
// its bindings.
type certificateSigningRequest struct {
	target Target
}

func (p *certificateSigningRequest) Mint(ctx context.Context, s *v1alpha1.Session, notAfter time.Time) (*Credential, error) {
	user := CertificateUser(s)
	if err := ensureBindings(ctx, p.target, s, rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating a session key: %w", err)
	}
	subject := pkix.Name{CommonName: user}
	if g := s.Spec.AccessLevel.Group; g != "" {
		subject.Organization = []string{g}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subject}, key)
	if err != nil {
		return nil, fmt.Errorf("creating the certificate request: %w", err)
	}
	seconds := int32(time.Until(notAfter).Round(time.Second)/time.Second) + int32(clockSkew/time.Second)
	if seconds < minCSRSeconds {
		seconds = minCSRSeconds
	}
	csrs := p.target.Client.CertificatesV1().CertificateSigningRequests()
	csr, err := csrs.Create(ctx, &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{
			// A refresh mints again: every request gets a name of its own.
			GenerateName: ObjectName(p.target.Gateway, s) + ".",
			Labels:       sessionLabels(p.target.Gateway, s),
		},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:           pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName:        certificatesv1.KubeAPIServerClientSignerName,
			ExpirationSeconds: &seconds,
			Usages:            []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		if apierrors.IsForbidden(err) {
			return nil, permanentReason(v1alpha1.ReasonTargetForbidden, "cluster %s: creating a CertificateSigningRequest: %v (config/target/rbac-csr.yaml grants it)", p.target.Cluster.Name, err)
		}
		return nil, fmt.Errorf("creating a CertificateSigningRequest: %w", err)
	}
	// Whatever happens next, the request does not outlive this mint.
	defer func() {
		uid := csr.UID
		if err := csrs.Delete(context.WithoutCancel(ctx), csr.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil && !apierrors.IsNotFound(err) {
			klog.ErrorS(err, "Deleting the session's CertificateSigningRequest; revocation will", "session", klog.KObj(s), "csr", csr.Name)
		}
	}()

	csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "SessiongateApproved",
		Message: fmt.Sprintf("session %s/%s, granted by the gateway's policies", s.Namespace, s.Name), LastUpdateTime: metav1.Now(),
	})
	if csr, err = csrs.UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsForbidden(err) {
			return nil, permanentReason(v1alpha1.ReasonTargetForbidden, "cluster %s: approving a CertificateSigningRequest: %v (config/target/rbac-csr.yaml grants it)", p.target.Cluster.Name, err)
		}
		return nil, fmt.Errorf("approving CertificateSigningRequest %s: %w", csr.Name, err)
	}

	var certPEM []byte
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, issueTimeout, true, func(ctx context.Context) (bool, error) {
		got, err := csrs.Get(ctx, csr.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range got.Status.Conditions {
			if (c.Type == certificatesv1.CertificateDenied || c.Type == certificatesv1.CertificateFailed) && c.Status == corev1.ConditionTrue {
				return false, permanent("cluster %s: the signer %s the certificate request: %s", p.target.Cluster.Name, map[certificatesv1.RequestConditionType]string{certificatesv1.CertificateDenied: "denied", certificatesv1.CertificateFailed: "failed"}[c.Type], c.Message)
			}
		}
		certPEM = got.Status.Certificate
		return len(certPEM) > 0, nil
	})
	if err != nil {
		if _, ok := ReasonOf(err); ok {
			return nil, err
		}
		return nil, fmt.Errorf("cluster %s: no certificate for CertificateSigningRequest %s within %s (does the target run kube-controller-manager's csrsigning controller?): %w", p.target.Cluster.Name, csr.Name, issueTimeout, err)
	}
	certs, err := certutil.ParseCertsPEM(certPEM)
	if err != nil || len(certs) == 0 {
		return nil, fmt.Errorf("cluster %s: the signer issued no valid certificate: %v", p.target.Cluster.Name, err)
	}
	// The signer decides the lifetime; it may be shorter than asked.
	if got, ok := certs[0].PublicKey.(*ecdsa.PublicKey); !ok || !got.Equal(&key.PublicKey) || certs[0].Subject.CommonName != user {
		return nil, permanent("cluster %s: the signer issued a certificate for %q or another key", p.target.Cluster.Name, certs[0].Subject.CommonName)
	}
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return nil, fmt.Errorf("encoding the session key: %w", err)
	}
	klog.V(2).InfoS("Target issued session certificate", "session", klog.KObj(s), "user", user, "notAfter", certs[0].NotAfter)
	return &Credential{CertPEM: certPEM, KeyPEM: keyPEM, Identity: user, NotAfter: certs[0].NotAfter}, nil
}
