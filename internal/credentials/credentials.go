// Package credentials mints and revokes the short-lived credentials a session
// uses on its target cluster, and stores them in the session's Secret. Each
// provider lives in its own file behind the Minter interface; revocation and
// orphan discovery are shared because every provider labels what it creates.
package credentials

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"

	"sessiongate.dev/sessiongate/api/v1alpha1"
)

// Labels on every object the gateway creates on a target, so that it can be
// found and garbage-collected even when its Session is gone.
const (
	LabelManagedBy        = "app.kubernetes.io/managed-by"
	ManagedByValue        = "sessiongate"
	LabelGateway          = "sessiongate.dev/gateway"
	LabelSessionUID       = "sessiongate.dev/session-uid"
	LabelSessionName      = "sessiongate.dev/session-name"
	LabelSessionNamespace = "sessiongate.dev/session-namespace"
)

// Keys and annotations of a session's credentials Secret.
const (
	SecretType         corev1.SecretType = "sessiongate.dev/credentials"
	KeyServer                            = "server"
	KeyCA                                = "ca.crt"
	KeyToken                             = "token"
	KeyClientCert                        = "tls.crt"
	KeyClientKey                         = "tls.key"
	AnnotationNotAfter                   = "sessiongate.dev/credential-not-after"
	AnnotationIdentity                   = "sessiongate.dev/target-identity"
)

// Credential is what a session presents to its target.
type Credential struct {
	// Token is a bearer token, or empty when a client certificate is used.
	Token string
	// CertPEM and KeyPEM are a client certificate and its key.
	CertPEM, KeyPEM []byte
	// Identity is the username the target sees.
	Identity string
	// NotAfter is when the credential stops working on its own.
	NotAfter time.Time
}

// Minter mints a credential for one session on one target.
type Minter interface {
	// Mint creates whatever the session needs on the target (idempotently)
	// and returns a fresh credential valid until at least notAfter, or until
	// the target's maximum lifetime if that is shorter.
	Mint(ctx context.Context, s *v1alpha1.Session, notAfter time.Time) (*Credential, error)
}

// Target is a cluster the gateway mints on.
type Target struct {
	Cluster *v1alpha1.Cluster
	// Client acts on the target with the Cluster's kubeconfig.
	Client kubernetes.Interface
	// Gateway names this gateway installation; it scopes garbage collection.
	Gateway string
	// CASecret is the Cluster's signing CA, for the SignedCertificate provider.
	CASecret *corev1.Secret
}

// ErrPermanent marks errors that retrying will not fix: the session's request
// cannot be met on this target.
var ErrPermanent = errors.New("permanent")

// PermanentError is an ErrPermanent with the condition reason that names it.
type PermanentError struct {
	Reason string
	Msg    string
}

func (e *PermanentError) Error() string { return e.Msg }

// Is makes errors.Is(err, ErrPermanent) true.
func (e *PermanentError) Is(target error) bool { return target == ErrPermanent }

func permanent(format string, args ...any) error {
	return &PermanentError{Reason: v1alpha1.ReasonMintFailed, Msg: fmt.Sprintf(format, args...)}
}

func permanentReason(reason, format string, args ...any) error {
	return &PermanentError{Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// ReasonOf returns the reason of a permanent error, and whether it is one.
func ReasonOf(err error) (string, bool) {
	var pe *PermanentError
	if errors.As(err, &pe) {
		return pe.Reason, true
	}
	return "", false
}

// NewMinter returns the Minter for the target's provider type.
func NewMinter(t Target) (Minter, error) {
	switch t.Cluster.Spec.Provider.Type {
	case v1alpha1.ProviderServiceAccountToken, "":
		return &serviceAccountToken{target: t}, nil
	case v1alpha1.ProviderSignedCertificate:
		return newSignedCertificate(t)
	case v1alpha1.ProviderCertificateSigningRequest:
		return &certificateSigningRequest{target: t}, nil
	default:
		return nil, permanent("cluster %s: unknown provider type %q", t.Cluster.Name, t.Cluster.Spec.Provider.Type)
	}
}

// SessionNamespace is where per-session ServiceAccounts live on the target.
func SessionNamespace(c *v1alpha1.Cluster) string {
	if c == nil {
		return v1alpha1.DefaultSessionNamespace
	}
	if ns := c.Spec.Provider.SessionNamespace; ns != "" {
		return ns
	}
	return v1alpha1.DefaultSessionNamespace
}

// sessionLabels are put on every object made on a target for s. Session
// names and namespaces are at most 63 characters (admission checks the name).
func sessionLabels(gateway string, s *v1alpha1.Session) map[string]string {
	return map[string]string{
		LabelManagedBy:        ManagedByValue,
		LabelGateway:          gateway,
		LabelSessionUID:       string(s.UID),
		LabelSessionName:      s.Name,
		LabelSessionNamespace: s.Namespace,
	}
}

// ObjectName is the name of the per-session objects on the target. It carries
// the gateway installation and the session name, so two installations never
// reach for the same object and the target's audit log leads back to both.
func ObjectName(gateway string, s *v1alpha1.Session) string {
	return "sessiongate." + gateway + "." + s.Name
}

// SecretData renders c as the data of a session credentials Secret.
func (c *Credential) SecretData(server string, ca []byte) map[string][]byte {
	d := map[string][]byte{KeyServer: []byte(server), KeyCA: ca}
	if c.Token != "" {
		d[KeyToken] = []byte(c.Token)
	}
	if len(c.CertPEM) > 0 {
		d[KeyClientCert] = c.CertPEM
		d[KeyClientKey] = c.KeyPEM
	}
	return d
}

// NotAfterOf reads when the credential stored in sec stops working.
func NotAfterOf(sec *corev1.Secret) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339, sec.Annotations[AnnotationNotAfter])
	return t, err == nil
}
