package controlplane_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/credentials"
	"sessiongate.dev/sessiongate/internal/testenv"
)

// A certificate's Organization is a group on the target: system:masters there
// is cluster-admin. No policy, flag or spelling may put one in a certificate.
func TestSystemGroupsAreNeverSigned(t *testing.T) {
	e := newEnv(t)
	testenv.Must(t, mgmt.Client.Create(e.ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.namespace, Name: "target-client-ca"},
		Data:       map[string][]byte{corev1.TLSCertKey: target.CA.CertPEM, corev1.TLSPrivateKeyKey: target.CA.KeyPEM},
	}))
	e.registerCluster("certs", "target-kubeconfig", v1alpha1.CredentialProvider{
		Type:              v1alpha1.ProviderSignedCertificate,
		SignedCertificate: &v1alpha1.SignedCertificateProvider{CASecretRef: v1alpha1.SecretKeyRef{Name: "target-client-ca"}},
	})
	// testPolicy allows group sre; the gateway refuses to start with a
	// system: group in --allowed-groups (policy.Check).
	for i, g := range []string{"system:masters", "System:Masters", "admins"} {
		name := fmt.Sprintf("group-%d", i)
		s := e.viewSession(name)
		s.Spec.Cluster = "certs"
		s.Spec.AccessLevel = v1alpha1.AccessLevel{Group: g}
		e.create(s)
		s = e.waitPhase(name, v1alpha1.PhaseFailed, 20*time.Second)
		r := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady)
		if r.Reason != v1alpha1.ReasonInvalidSpec || !strings.Contains(r.Message, "spec.accessLevel.group: Forbidden") {
			t.Errorf("group %q: Ready %+v, want InvalidSpec naming spec.accessLevel.group", g, r)
		}
		err := mgmt.Client.Get(e.ctx, client.ObjectKey{Namespace: e.namespace, Name: name + "-credentials"}, &corev1.Secret{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("group %q: a credentials Secret exists (err=%v): a certificate was signed", g, err)
		}
	}
}

// Revocation follows every end, not only expiry and termination: a session
// that a stricter policy fails while it is Active loses everything it had.
func TestSessionFailedByALaterPolicyIsRevoked(t *testing.T) {
	e := newEnv(t)
	targetNamespace(t, e.ctx, "team-p")
	s := e.viewSession("edit-then-not")
	s.Spec.AccessLevel = v1alpha1.AccessLevel{ClusterRole: "edit", Namespaces: []string{"team-p"}}
	e.create(s)
	s = e.waitPhase("edit-then-not", v1alpha1.PhaseActive, 20*time.Second)
	kube, _ := e.sessionClient(s)

	e.stopGateway()
	stricter := testPolicy
	stricter.ClusterRoles = []string{"view"}
	e.startGatewayWith(stricter)
	s = e.waitPhase("edit-then-not", v1alpha1.PhaseFailed, 20*time.Second)
	testenv.Eventually(t, 30*time.Second, func() error {
		testenv.Must(t, mgmt.Client.Get(e.ctx, client.ObjectKeyFromObject(s), s))
		if c := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionCredentialsAvailable); c == nil || c.Reason != v1alpha1.ReasonRevoked {
			return fmt.Errorf("CredentialsAvailable = %+v, want Revoked", c)
		}
		return nil
	})
	e.assertRevoked(s, kube)
}

// An object in the way that this gateway did not make — another
// installation's, or an operator's — is never deleted or reused.
func TestObjectsWithoutOurLabelsAreNeverTouched(t *testing.T) {
	e := newEnv(t)
	s := e.viewSession("squatted")
	name := credentials.ObjectName(e.namespace, s)
	testenv.Must(t, target.Client.Create(e.ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
		Namespace: v1alpha1.DefaultSessionNamespace, Name: name,
	}}))
	e.create(s)
	s = e.waitPhase("squatted", v1alpha1.PhaseFailed, 20*time.Second)
	r := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady)
	if r.Reason != v1alpha1.ReasonNameConflict || !strings.Contains(r.Message, "was not made by this gateway") {
		t.Errorf("Ready %+v, want NameConflict saying the object is not ours", r)
	}
	sa := &corev1.ServiceAccount{}
	testenv.Must(t, target.Client.Get(e.ctx, client.ObjectKey{Namespace: v1alpha1.DefaultSessionNamespace, Name: name}, sa))
	if len(sa.Labels) != 0 {
		t.Errorf("the foreign ServiceAccount was changed: labels %v", sa.Labels)
	}
}

// Permanent errors fail the session with a reason, instead of retrying forever.
func TestPermanentMintErrorsSayWhy(t *testing.T) {
	e := newEnv(t)
	s := e.viewSession("no-such-ns")
	s.Spec.AccessLevel = v1alpha1.AccessLevel{ClusterRole: "edit", Namespaces: []string{"does-not-exist"}}
	e.create(s)
	s = e.waitPhase("no-such-ns", v1alpha1.PhaseFailed, 20*time.Second)
	if r := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady); r.Reason != v1alpha1.ReasonNamespaceNotFound || !strings.Contains(r.Message, `namespace "does-not-exist" does not exist`) {
		t.Errorf("Ready %+v, want NamespaceNotFound naming the namespace", r)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if e.onTarget(s) {
			return fmt.Errorf("a failed session left objects on the target")
		}
		return nil
	})

	// A ClusterRole the gateway's identity may not bind on the target.
	pol := testPolicy
	pol.ClusterRoles = []string{"view", "edit", "admin"}
	e.stopGateway()
	e.startGatewayWith(pol)
	s = e.viewSession("cannot-bind")
	s.Spec.AccessLevel = v1alpha1.AccessLevel{ClusterRole: "admin", Namespaces: []string{"default"}}
	e.create(s)
	s = e.waitPhase("cannot-bind", v1alpha1.PhaseFailed, 20*time.Second)
	if r := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady); r.Reason != v1alpha1.ReasonTargetForbidden || !strings.Contains(r.Message, `binding ClusterRole "admin"`) {
		t.Errorf("Ready %+v, want TargetForbidden naming the ClusterRole", r)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if e.onTarget(s) {
			return fmt.Errorf("a failed session left objects on the target")
		}
		return nil
	})
}
