package controlplane_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/controlplane"
	"sessiongate.dev/sessiongate/internal/credentials"
	"sessiongate.dev/sessiongate/internal/testenv"
)

func TestSignedCertificateCarriesGroupAndEndsWithTheSession(t *testing.T) {
	e := newEnv(t)
	testenv.Must(t, mgmt.Client.Create(e.ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.namespace, Name: "target-client-ca"},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: target.CA.CertPEM, corev1.TLSPrivateKeyKey: target.CA.KeyPEM},
	}))
	e.registerCluster("certs", "target-kubeconfig", v1alpha1.CredentialProvider{
		Type:              v1alpha1.ProviderSignedCertificate,
		SignedCertificate: &v1alpha1.SignedCertificateProvider{CASecretRef: v1alpha1.SecretKeyRef{Name: "target-client-ca"}},
	})
	// The target's own RBAC names the group; the session only carries it.
	group := "sre-" + e.namespace
	pol := testPolicy
	pol.Groups = []string{group}
	e.stopGateway()
	e.startGatewayWith(pol)
	testenv.Must(t, target.Client.Create(e.ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: group},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: group}},
	}))

	s := e.viewSession("cert")
	s.Spec.Cluster = "certs"
	s.Spec.TTL = metav1.Duration{Duration: 20 * time.Minute}
	s.Spec.AccessLevel = v1alpha1.AccessLevel{Group: group}
	e.create(s)
	s = e.waitPhase("cert", v1alpha1.PhaseActive, 20*time.Second)

	kube, sec := e.sessionClient(s)
	if len(sec.Data[credentials.KeyToken]) != 0 {
		t.Errorf("certificate session stored a token")
	}
	block, _ := pem.Decode(sec.Data[credentials.KeyClientCert])
	if block == nil {
		t.Fatal("no client certificate in the credentials Secret")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	testenv.Must(t, err)
	if !cert.NotAfter.Equal(s.Status.ExpiresAt.Time.Truncate(time.Second)) {
		t.Errorf("certificate NotAfter %s, want the session's expiresAt %s", cert.NotAfter, s.Status.ExpiresAt.Time)
	}

	user, err := whoami(e.ctx, kube)
	testenv.Must(t, err)
	if want := "sessiongate:" + e.namespace + "/cert:alice@example.com"; user.Username != want {
		t.Errorf("target sees user %q, want %q", user.Username, want)
	}
	if !slices.Contains(user.Groups, group) {
		t.Errorf("target sees groups %v, want %q among them", user.Groups, group)
	}
	if _, err := kube.CoreV1().Pods(metav1.NamespaceAll).List(e.ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("the group's view binding does not apply: %v", err)
	}
}

func TestSignedCertificateWithClusterRoleIsBoundAndUnbound(t *testing.T) {
	e := newEnv(t)
	testenv.Must(t, mgmt.Client.Create(e.ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.namespace, Name: "target-client-ca"},
		Data:       map[string][]byte{corev1.TLSCertKey: target.CA.CertPEM, corev1.TLSPrivateKeyKey: target.CA.KeyPEM},
	}))
	e.registerCluster("certs", "target-kubeconfig", v1alpha1.CredentialProvider{
		Type:              v1alpha1.ProviderSignedCertificate,
		SignedCertificate: &v1alpha1.SignedCertificateProvider{CASecretRef: v1alpha1.SecretKeyRef{Name: "target-client-ca"}},
	})
	s := e.viewSession("cert-view")
	s.Spec.Cluster = "certs"
	e.create(s)
	s = e.waitPhase("cert-view", v1alpha1.PhaseActive, 20*time.Second)
	kube, _ := e.sessionClient(s)
	if _, err := kube.CoreV1().Pods(metav1.NamespaceAll).List(e.ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("view binding for the certificate user does not apply: %v", err)
	}

	testenv.Must(t, mgmt.Client.Delete(e.ctx, s))
	testenv.Eventually(t, 30*time.Second, func() error {
		if e.onTarget(s) {
			return fmt.Errorf("bindings of %s still on the target", s.Name)
		}
		return nil
	})
	// A certificate cannot be revoked; with its binding gone it can do nothing.
	testenv.Eventually(t, 30*time.Second, func() error {
		_, err := kube.CoreV1().Pods(metav1.NamespaceAll).List(e.ctx, metav1.ListOptions{})
		if err == nil {
			return fmt.Errorf("certificate still lists pods")
		}
		return nil
	})
}

// sessionObjects counts what the target holds for a session.
func sessionObjects(t *testing.T, e *env, uid types.UID) (sas, crbs int) {
	t.Helper()
	opts := metav1.ListOptions{LabelSelector: labels.Set{credentials.LabelSessionUID: string(uid)}.String()}
	saList, err := target.Kube.CoreV1().ServiceAccounts(metav1.NamespaceAll).List(e.ctx, opts)
	testenv.Must(t, err)
	crbList, err := target.Kube.RbacV1().ClusterRoleBindings().List(e.ctx, opts)
	testenv.Must(t, err)
	return len(saList.Items), len(crbList.Items)
}

func TestGatewayRestartMidReconcileConvergesWithoutDuplicates(t *testing.T) {
	e := newEnv(t)
	s := e.viewSession("crash")
	e.create(s)
	// Stop the gateway the moment the first object appears on the target:
	// before the Secret and the status are written.
	testenv.Eventually(t, 30*time.Second, func() error {
		testenv.Must(t, mgmt.Client.Get(e.ctx, client.ObjectKeyFromObject(s), s))
		if s.UID == "" || !e.onTarget(s) {
			return fmt.Errorf("nothing on the target yet")
		}
		return nil
	})
	e.stopGateway()

	e.startGateway()
	s = e.waitPhase("crash", v1alpha1.PhaseActive, 30*time.Second)
	if sas, crbs := sessionObjects(t, e, s.UID); sas != 1 || crbs != 1 {
		t.Errorf("after restart the target holds %d ServiceAccounts and %d ClusterRoleBindings, want 1 and 1", sas, crbs)
	}
	secrets := &corev1.SecretList{}
	testenv.Must(t, mgmt.Client.List(e.ctx, secrets, client.InNamespace(e.namespace),
		client.MatchingLabels{credentials.LabelManagedBy: credentials.ManagedByValue}))
	if len(secrets.Items) != 1 {
		t.Errorf("gateway namespace holds %d credentials Secrets, want 1", len(secrets.Items))
	}
	kube, _ := e.sessionClient(s)
	if _, err := whoami(e.ctx, kube); err != nil {
		t.Errorf("stored credential does not work after restart: %v", err)
	}
}

func TestSweepRemovesObjectsOfVanishedSessions(t *testing.T) {
	e := newEnv(t)
	e.create(e.viewSession("live"))
	live := e.waitPhase("live", v1alpha1.PhaseActive, 20*time.Second)

	// What a crash could leave: objects of a session that no longer exists.
	orphan := labels.Set{
		credentials.LabelManagedBy:  credentials.ManagedByValue,
		credentials.LabelGateway:    e.namespace,
		credentials.LabelSessionUID: "00000000-0000-0000-0000-00000000dead",
	}
	ns := v1alpha1.DefaultSessionNamespace
	testenv.Must(t, target.Client.Create(e.ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "orphan-" + e.namespace, Labels: orphan}}))
	testenv.Must(t, target.Client.Create(e.ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "orphan-" + e.namespace, Labels: orphan},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
	}))
	// Another gateway's objects are not this gateway's to collect.
	foreign := labels.Set{credentials.LabelGateway: "someone-else", credentials.LabelSessionUID: "00000000-0000-0000-0000-00000000beef"}
	testenv.Must(t, target.Client.Create(e.ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "foreign-" + e.namespace, Labels: foreign}}))

	// Objects this young may belong to a session being minted right now:
	// the default grace spares them.
	opts := controlplane.Options{Namespace: e.namespace, Gateway: e.namespace}
	testenv.Must(t, controlplane.NewSweeper(mgmt.Client, mgmt.Client, opts).Sweep(e.ctx))
	if sas, crbs := sessionObjects(t, e, "00000000-0000-0000-0000-00000000dead"); sas != 1 || crbs != 1 {
		t.Fatalf("sweep removed objects younger than its grace period: %d ServiceAccounts, %d ClusterRoleBindings left", sas, crbs)
	}
	opts.SweepGrace = time.Nanosecond
	// A cache that has not seen the live session yet: the API server
	// still says it lives, and its objects stay.
	api := &countingReader{Reader: mgmt.Client}
	testenv.Must(t, controlplane.NewSweeper(laggingCache{mgmt.Client}, api, opts).Sweep(e.ctx))
	if sas, crbs := sessionObjects(t, e, live.UID); sas != 1 || crbs != 1 {
		t.Fatalf("a sweep on a lagging cache touched a live session: %d ServiceAccounts, %d ClusterRoleBindings left, want 1 and 1", sas, crbs)
	}
	if n := api.gets.Load(); n != 1 {
		t.Errorf("a sweep on a lagging cache asked the API server %d time(s) about the live session, want once", n)
	}
	// Objects of a session that is gone, under its name.
	gone := labels.Merge(orphan, labels.Set{credentials.LabelSessionUID: "00000000-0000-0000-0000-0000000000ff", credentials.LabelSessionName: "gone"})
	testenv.Must(t, target.Client.Create(e.ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gone-" + e.namespace, Labels: gone}}))
	// A sweep asks the API server only about sessions its cache does not
	// have: live ones cost no request.
	api = &countingReader{Reader: mgmt.Client}
	testenv.Must(t, controlplane.NewSweeper(mgmt.Client, api, opts).Sweep(e.ctx))
	if n := api.gets.Load(); n != 1 {
		t.Errorf("the sweep asked the API server %d time(s), want once (for session gone)", n)
	}
	if sas, _ := sessionObjects(t, e, "00000000-0000-0000-0000-0000000000ff"); sas != 0 {
		t.Errorf("sweep left the ServiceAccount of session gone")
	}

	if sas, crbs := sessionObjects(t, e, "00000000-0000-0000-0000-00000000dead"); sas != 0 || crbs != 0 {
		t.Errorf("sweep left %d ServiceAccounts and %d ClusterRoleBindings of a vanished session", sas, crbs)
	}
	if sas, crbs := sessionObjects(t, e, live.UID); sas != 1 || crbs != 1 {
		t.Errorf("sweep touched a live session: %d ServiceAccounts, %d ClusterRoleBindings left, want 1 and 1", sas, crbs)
	}
	if sas, _ := sessionObjects(t, e, "00000000-0000-0000-0000-00000000beef"); sas != 1 {
		t.Errorf("sweep deleted another gateway's ServiceAccount")
	}
}

// countingReader counts the reads of Sessions that reach the API server.
type countingReader struct {
	client.Reader
	gets atomic.Int32
}

func (c *countingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*v1alpha1.Session); ok {
		c.gets.Add(1)
	}
	return c.Reader.Get(ctx, key, obj, opts...)
}

// laggingCache has not seen any Session yet.
type laggingCache struct{ client.Client }

func (c laggingCache) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*v1alpha1.Session); ok {
		return apierrors.NewNotFound(v1alpha1.GroupVersion.WithResource("sessions").GroupResource(), key.Name)
	}
	return c.Client.Get(ctx, key, obj, opts...)
}
