package controlplane_test

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/credentials"
	"sessiongate.dev/sessiongate/internal/testenv"
)

// The CertificateSigningRequest provider gets the session's certificate from
// the target's own kube-apiserver-client signer (kube-controller-manager),
// with exactly the rights config/target/rbac-csr.yaml grants, and leaves no
// request behind.
func TestCertificateSigningRequestProvider(t *testing.T) {
	e := newEnv(t)
	testenv.Must(t, testenv.ApplyFile(e.ctx, target.Client, filepath.Join(testenv.RepoRoot(), "config", "target", "rbac-csr.yaml"), ""))
	kcm, err := testenv.StartControllerManager(target, t.TempDir())
	testenv.Must(t, err)
	t.Cleanup(func() {
		kcm.Stop()
		if t.Failed() {
			log, _ := os.ReadFile(kcm.Log)
			t.Logf("kube-controller-manager:\n%s", log)
		}
	})
	e.registerCluster("csr", "target-kubeconfig", v1alpha1.CredentialProvider{Type: v1alpha1.ProviderCertificateSigningRequest})

	s := e.viewSession("by-csr")
	s.Spec.Cluster = "csr"
	s.Spec.TTL = metav1.Duration{Duration: 20 * time.Minute}
	e.create(s)
	s = e.waitPhase("by-csr", v1alpha1.PhaseActive, 60*time.Second)

	kube, sec := e.sessionClient(s)
	block, _ := pem.Decode(sec.Data[credentials.KeyClientCert])
	if block == nil || len(sec.Data[credentials.KeyToken]) != 0 {
		t.Fatal("the credentials Secret holds no client certificate, or a token")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	testenv.Must(t, err)
	if err := cert.CheckSignatureFrom(target.CA.Cert); err != nil {
		t.Errorf("the certificate is not the target signer's: %v", err)
	}
	if cert.NotAfter.Before(s.Status.ExpiresAt.Time) || cert.NotAfter.After(s.Status.ExpiresAt.Add(2*time.Minute)) {
		t.Errorf("certificate NotAfter %s, want just past the session's expiresAt %s", cert.NotAfter, s.Status.ExpiresAt.Time)
	}
	user, err := whoami(e.ctx, kube)
	testenv.Must(t, err)
	if user.Username != credentials.CertificateUser(s) {
		t.Errorf("the target sees %q, want %q", user.Username, credentials.CertificateUser(s))
	}
	if _, err := kube.CoreV1().Pods(metav1.NamespaceAll).List(e.ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("the view binding does not apply: %v", err)
	}
	sel := labels.Set{credentials.LabelSessionUID: string(s.UID)}.String()
	csrs, err := target.Kube.CertificatesV1().CertificateSigningRequests().List(e.ctx, metav1.ListOptions{LabelSelector: sel})
	testenv.Must(t, err)
	if len(csrs.Items) != 0 {
		t.Errorf("%d CertificateSigningRequest(s) left after issue", len(csrs.Items))
	}

	// The end removes the bindings: the certificate, still valid, can do
	// nothing.
	patch := client.MergeFrom(s.DeepCopy())
	s.Spec.Terminated = true
	testenv.Must(t, mgmt.Client.Patch(e.ctx, s, patch))
	s = e.waitPhase("by-csr", v1alpha1.PhaseTerminated, 30*time.Second)
	testenv.Eventually(t, 30*time.Second, func() error {
		if e.onTarget(s) {
			return errString("objects of the session are left on the target")
		}
		return nil
	})
	if _, err := kube.CoreV1().Pods(metav1.NamespaceAll).List(e.ctx, metav1.ListOptions{}); err == nil {
		t.Errorf("the certificate still lists pods after the session ended")
	}

	// The same refusal at the gateway's door as SignedCertificate: no
	// system: group is ever put in a request.
	bad := e.viewSession("csr-masters")
	bad.Spec.Cluster = "csr"
	bad.Spec.AccessLevel = v1alpha1.AccessLevel{Group: "system:masters"}
	e.create(bad)
	bad = e.waitPhase("csr-masters", v1alpha1.PhaseFailed, 30*time.Second)
	if r := meta.FindStatusCondition(bad.Status.Conditions, v1alpha1.ConditionReady); !strings.Contains(r.Message, "spec.accessLevel.group: Forbidden") {
		t.Errorf("system:masters over CSR: %+v", r)
	}
	all, err := target.Kube.CertificatesV1().CertificateSigningRequests().List(e.ctx, metav1.ListOptions{})
	testenv.Must(t, err)
	for _, c := range all.Items {
		if strings.Contains(c.Name, "csr-masters") {
			t.Errorf("a CertificateSigningRequest was made for the refused session: %s", c.Name)
		}
	}
}

type errString string

func (e errString) Error() string { return string(e) }
