package credentials

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
	"k8s.io/klog/v2"

	"sessiongate.dev/sessiongate/api/v1alpha1"
)

// clockSkew backdates certificates so a target whose clock runs a little
// behind the gateway's accepts them at once.
const clockSkew = 30 * time.Second

// signedCertificate signs a client certificate per session with a CA the
// target trusts. A certificate cannot be revoked before it expires, so it is
// valid no longer than the session and the gateway refuses it at its own door
// once the session ends; RBAC bindings made for it are deleted.
type signedCertificate struct {
	target Target
	caCert *x509.Certificate
	caKey  crypto.Signer
}

func newSignedCertificate(t Target) (*signedCertificate, error) {
	sec := t.CASecret
	if t.Cluster.Spec.Provider.SignedCertificate == nil || sec == nil {
		return nil, permanent("cluster %s: spec.provider.signedCertificate.caSecretRef is required for the SignedCertificate provider", t.Cluster.Name)
	}
	certs, err := certutil.ParseCertsPEM(sec.Data[corev1.TLSCertKey])
	if err != nil {
		return nil, permanent("cluster %s: CA Secret %s: %s is not a PEM certificate: %v", t.Cluster.Name, sec.Name, corev1.TLSCertKey, err)
	}
	key, err := keyutil.ParsePrivateKeyPEM(sec.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		return nil, permanent("cluster %s: CA Secret %s: %s is not a PEM private key", t.Cluster.Name, sec.Name, corev1.TLSPrivateKeyKey)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, permanent("cluster %s: CA Secret %s: unsupported private key type", t.Cluster.Name, sec.Name)
	}
	return &signedCertificate{target: t, caCert: certs[0], caKey: signer}, nil
}

// CertificateUser is the username a session certificate carries: it names the
// session and its owner, so the target's audit log leads back to both.
func CertificateUser(s *v1alpha1.Session) string {
	owner := ""
	switch {
	case s.Spec.Owner.UserPrincipal != nil:
		owner = s.Spec.Owner.UserPrincipal.Name
	case s.Spec.Owner.Group != nil:
		owner = "group:" + s.Spec.Owner.Group.Name
	}
	return fmt.Sprintf("sessiongate:%s/%s:%s", s.Namespace, s.Name, owner)
}

func (p *signedCertificate) Mint(ctx context.Context, s *v1alpha1.Session, notAfter time.Time) (*Credential, error) {
	user := CertificateUser(s)
	if err := ensureBindings(ctx, p.target, s, rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}); err != nil {
		return nil, err
	}
	if notAfter.After(p.caCert.NotAfter) {
		notAfter = p.caCert.NotAfter
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating a session key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generating a serial number: %w", err)
	}
	subject := pkix.Name{CommonName: user}
	if g := s.Spec.AccessLevel.Group; g != "" {
		subject.Organization = []string{g}
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      subject,
		NotBefore:    time.Now().Add(-clockSkew),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, key.Public(), p.caKey)
	if err != nil {
		return nil, fmt.Errorf("signing the session certificate: %w", err)
	}
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return nil, fmt.Errorf("encoding the session key: %w", err)
	}
	klog.V(2).InfoS("Signed session certificate", "session", klog.KObj(s), "user", user, "notAfter", notAfter)
	return &Credential{
		CertPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:   keyPEM,
		Identity: user,
		NotAfter: notAfter,
	}, nil
}
