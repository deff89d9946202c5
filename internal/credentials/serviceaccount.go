package credentials

import (
	"context"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/klog/v2"

	"sessiongate.dev/sessiongate/api/v1alpha1"
)

// minTokenLifetime is the shortest expirationSeconds the TokenRequest API takes.
const minTokenLifetime = 10 * time.Minute

// serviceAccountToken mints a bound ServiceAccount token per session. It is
// revocable: deleting the ServiceAccount invalidates its tokens server-side.
type serviceAccountToken struct {
	target Target
}

func (p *serviceAccountToken) Mint(ctx context.Context, s *v1alpha1.Session, notAfter time.Time) (*Credential, error) {
	if s.Spec.AccessLevel.Group != "" {
		return nil, permanent("spec.accessLevel.group needs a Cluster with a certificate provider (SignedCertificate or CertificateSigningRequest); cluster %s uses ServiceAccountToken", s.Spec.Cluster)
	}
	ns := SessionNamespace(p.target.Cluster)
	name := ObjectName(p.target.Gateway, s)
	sas := p.target.Client.CoreV1().ServiceAccounts(ns)
	sa, err := sas.Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
		if err := checkOwned(p.target, "ServiceAccount", sa, s, func() error { return sas.Delete(ctx, name, metav1.DeleteOptions{}) }); err != nil {
			return nil, err
		}
	case apierrors.IsNotFound(err):
		sa, err = sas.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns, Labels: sessionLabels(p.target.Gateway, s),
		}}, metav1.CreateOptions{})
		if apierrors.IsNotFound(err) {
			return nil, permanentReason(v1alpha1.ReasonNamespaceNotFound,
				"the session namespace %s does not exist on cluster %s (config/target/rbac.yaml creates it)", ns, p.target.Cluster.Name)
		}
		if err != nil {
			return nil, fmt.Errorf("creating ServiceAccount %s/%s: %w", ns, name, err)
		}
		klog.V(2).InfoS("Created ServiceAccount", "session", klog.KObj(s), "serviceAccount", klog.KObj(sa))
	default:
		return nil, fmt.Errorf("reading ServiceAccount %s/%s: %w", ns, name, err)
	}

	subject := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}
	if err := ensureBindings(ctx, p.target, s, subject); err != nil {
		return nil, err
	}

	lifetime := time.Until(notAfter).Round(time.Second) + time.Minute
	if lifetime < minTokenLifetime {
		lifetime = minTokenLifetime
	}
	seconds := int64(lifetime / time.Second)
	tr, err := sas.CreateToken(ctx, name, &authenticationv1.TokenRequest{
		// The token carries the ServiceAccount's UID, so it dies with that
		// object even if a ServiceAccount of the same name comes back.
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &seconds},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("requesting a token for ServiceAccount %s/%s: %w", ns, name, err)
	}
	klog.V(2).InfoS("Minted ServiceAccount token", "session", klog.KObj(s), "expiresAt", tr.Status.ExpirationTimestamp.Time)
	return &Credential{
		Token:    tr.Status.Token,
		Identity: serviceaccount.MakeUsername(ns, name),
		NotAfter: tr.Status.ExpirationTimestamp.Time,
	}, nil
}
