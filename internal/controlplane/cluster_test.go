package controlplane_test

import (
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/controlplane"
	"sessiongate.dev/sessiongate/internal/testenv"
)

// waitClusterReady polls until the Cluster's Ready condition has the reason.
func (e *env) waitClusterReady(name, reason string) *metav1.Condition {
	e.t.Helper()
	var ready *metav1.Condition
	testenv.Eventually(e.t, 20*time.Second, func() error {
		c := &v1alpha1.Cluster{}
		if err := mgmt.Client.Get(e.ctx, client.ObjectKey{Namespace: e.namespace, Name: name}, c); err != nil {
			return err
		}
		ready = meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ClusterConditionReady)
		if ready == nil || ready.Reason != reason {
			return fmt.Errorf("cluster %s Ready = %+v, want reason %s", name, ready, reason)
		}
		return nil
	})
	return ready
}

func (e *env) kubeconfigSecret(name, kubeconfig string) {
	e.t.Helper()
	testenv.Must(e.t, mgmt.Client.Create(e.ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.namespace, Name: name},
		Data:       map[string][]byte{"kubeconfig": []byte(kubeconfig)},
	}))
}

// annotateSecret lets the kubeconfig Secret name's credential go to the
// servers listed, as the docs tell an operator to: kubectl annotate.
func (e *env) annotateSecret(name, servers string) {
	e.t.Helper()
	if _, err := kubectl(e.ctx, adminKubeconfig(e.t), "", "-n", e.namespace, "annotate", "--overwrite", "secret", name, controlplane.AnnotationServers+"="+servers); err != nil {
		e.t.Fatal(err)
	}
}

// Whoever may write Clusters but not read Secrets must not have a Secret's
// credential sent to a server of their choosing: a kubeconfig Secret's goes
// to the server it names, trusted through its own CA, or to a server its
// annotation lists, whatever the Cluster that names the Secret is called.
func TestAKubeconfigSecretsCredentialGoesOnlyWhereItSays(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	var sent []string
	thief := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sent = append(sent, r.Header.Get("Authorization"))
		mu.Unlock()
		http.Error(w, "thanks", http.StatusUnauthorized)
	}))
	t.Cleanup(thief.Close)
	thiefCA := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: thief.Certificate().Raw})
	// No current-context: its only context is the one meant.
	victim := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: victim, cluster: {server: %q, certificate-authority-data: %s}}]
users: [{name: u, user: {token: the-minters-token}}]
contexts: [{name: c, context: {cluster: victim, user: u}}]
`, target.Config.Host, base64.StdEncoding.EncodeToString(target.Config.CAData))
	e.kubeconfigSecret("victim-kubeconfig", victim)
	other, err := testenv.NewCA("not-the-target-ca")
	testenv.Must(t, err)

	e.registerClusterAt("thief", thief.URL, thiefCA, "victim-kubeconfig", v1alpha1.CredentialProvider{})
	e.registerClusterAt("other-ca", target.Config.Host, other.CertPEM, "victim-kubeconfig", v1alpha1.CredentialProvider{})
	e.registerClusterAt("victim", strings.TrimSuffix(target.Config.Host, "/"), target.Config.CAData, "victim-kubeconfig", v1alpha1.CredentialProvider{})
	for name, want := range map[string][]string{
		"thief":    {"kubeconfig Secret victim-kubeconfig is for server " + target.Config.Host + ", not " + thief.URL, "add that to the Secret's annotation sessiongate.dev/servers"},
		"other-ca": {"spec.caBundle holds a CA (CN=not-the-target-ca) that kubeconfig Secret victim-kubeconfig does not trust", "add the CA there"},
	} {
		if r := e.waitClusterReady(name, v1alpha1.ReasonKubeconfigUnsafe); !strings.Contains(r.Message, want[0]) || !strings.Contains(r.Message, want[1]) {
			t.Errorf("cluster %s Ready message %q, want it to say %q and %q", name, r.Message, want[0], want[1])
		}
	}
	// Its own server (spelled otherwise) and CA: the target is asked, and
	// refuses the made-up token.
	e.waitClusterReady("victim", v1alpha1.ReasonTargetAuthFailed)
	mu.Lock()
	if len(sent) != 0 {
		t.Errorf("a server the Secret does not name was sent %q", sent)
	}
	mu.Unlock()

	// A server its writer lists, through a CA it trusts, is asked, whatever
	// the Cluster is called: which shows the thief's server would have seen
	// the token. Another server is not, under any Cluster name, nor a listed
	// one through a CA the Secret does not trust.
	e.kubeconfigSecret("listed-untrusted-kubeconfig", victim)
	e.annotateSecret("listed-untrusted-kubeconfig", thief.URL)
	e.registerClusterAt("listed-untrusted", thief.URL, thiefCA, "listed-untrusted-kubeconfig", v1alpha1.CredentialProvider{})
	if r := e.waitClusterReady("listed-untrusted", v1alpha1.ReasonKubeconfigUnsafe); !strings.Contains(r.Message, "that kubeconfig Secret listed-untrusted-kubeconfig does not trust") {
		t.Errorf("listed-untrusted Ready message %q", r.Message)
	}
	mu.Lock()
	if len(sent) != 0 {
		t.Errorf("a CA the Secret does not trust was used: the server got %q", sent)
	}
	mu.Unlock()
	trusting, err := testenv.TrustAlso([]byte(victim), thiefCA)
	testenv.Must(t, err)
	e.kubeconfigSecret("listed-kubeconfig", string(trusting))
	e.annotateSecret("listed-kubeconfig", "https://elsewhere.example:6443, "+thief.URL)
	e.registerClusterAt("listed", thief.URL, thiefCA, "listed-kubeconfig", v1alpha1.CredentialProvider{})
	e.registerClusterAt("listed-elsewhere", "https://127.0.0.1:2", thiefCA, "listed-kubeconfig", v1alpha1.CredentialProvider{})
	e.waitClusterReady("listed", v1alpha1.ReasonTargetAuthFailed)
	mu.Lock()
	if len(sent) == 0 || sent[0] != "Bearer the-minters-token" {
		t.Errorf("the listed server got %q", sent)
	}
	mu.Unlock()
	if r := e.waitClusterReady("listed-elsewhere", v1alpha1.ReasonKubeconfigUnsafe); !strings.Contains(r.Message, "not https://127.0.0.1:2") {
		t.Errorf("listed-elsewhere Ready message %q", r.Message)
	}
}

func TestRegisteredClusterIsReady(t *testing.T) {
	e := newEnv(t)
	ready := e.waitClusterReady("target", v1alpha1.ReasonClusterReady)
	if ready.Status != metav1.ConditionTrue || !strings.Contains(ready.Message, "reached as sessiongate") {
		t.Errorf("Ready = %+v, want True naming the identity the target sees", ready)
	}
}

// Whoever can write a Cluster's kubeconfig Secret must not get to run code in
// the gateway, read its files, or turn TLS verification off.
func TestUnsafeKubeconfigsAreRefusedAndNeverUsed(t *testing.T) {
	e := newEnv(t)
	marker := filepath.Join(t.TempDir(), "exec-plugin-ran")
	script := filepath.Join(t.TempDir(), "plugin.sh")
	testenv.Must(t, os.WriteFile(script, []byte("#!/bin/sh\ntouch "+marker+"\necho '{}'\n"), 0o755))
	const head = "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts: [{name: c, context: {cluster: t, user: u}}]\n"
	cases := []struct {
		name, kubeconfig, want string
	}{
		{"exec", head + "clusters: [{name: t, cluster: {server: https://127.0.0.1:1}}]\nusers: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: " + script + ", interactiveMode: Never}}}]\n", `user "u" runs an exec plugin`},
		{"insecure", head + "clusters: [{name: t, cluster: {server: https://127.0.0.1:1, insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {token: x}}]\n", `sets insecure-skip-tls-verify`},
		{"token-file", head + "clusters: [{name: t, cluster: {server: https://127.0.0.1:1}}]\nusers: [{name: u, user: {tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token}}]\n", `names a file`},
		{"cert-file", head + "clusters: [{name: t, cluster: {server: https://127.0.0.1:1}}]\nusers: [{name: u, user: {client-certificate: /etc/passwd, client-key: /etc/passwd}}]\n", `names a file`},
		{"impersonate", head + "clusters: [{name: t, cluster: {server: https://127.0.0.1:1}}]\nusers: [{name: u, user: {token: x, as: system:admin}}]\n", `impersonates`},
	}
	for _, c := range cases {
		e.kubeconfigSecret(c.name+"-kubeconfig", c.kubeconfig)
		e.registerCluster(c.name, c.name+"-kubeconfig", v1alpha1.CredentialProvider{})
		s := e.viewSession("on-" + c.name)
		s.Spec.Cluster = c.name
		e.create(s)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ready := e.waitClusterReady(c.name, v1alpha1.ReasonKubeconfigUnsafe)
			if ready.Status != metav1.ConditionFalse || !strings.Contains(ready.Message, c.want) {
				t.Errorf("Cluster Ready = %+v, want False saying %q", ready, c.want)
			}
			// Its sessions wait, and say why.
			testenv.Eventually(t, 30*time.Second, func() error {
				s := &v1alpha1.Session{}
				testenv.Must(t, mgmt.Client.Get(e.ctx, client.ObjectKey{Namespace: e.namespace, Name: "on-" + c.name}, s))
				r := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady)
				if s.Status.Phase != v1alpha1.PhasePending || r == nil || r.Reason != v1alpha1.ReasonKubeconfigUnsafe {
					return fmt.Errorf("session %s is %s with Ready %+v, want Pending/KubeconfigUnsafe", s.Name, s.Status.Phase, r)
				}
				return nil
			})
		})
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the gateway ran the exec plugin of a kubeconfig Secret")
	}
}

// The server and CA come from the Cluster alone, so a wrong one shows on the
// Cluster rather than in sessions that go Active and then answer 502.
func TestWrongServerOrCAIsAClusterCondition(t *testing.T) {
	e := newEnv(t)
	other, err := testenv.NewCA("not-the-target-ca")
	testenv.Must(t, err)
	// The Secret's writer lets its credential go to these servers, and
	// through the other CA, so that what the target answers is what shows.
	e.annotateSecret("target-kubeconfig", "https://127.0.0.1:1")
	kc, err := target.MinterKubeconfig(e.ctx)
	testenv.Must(t, err)
	kc, err = testenv.TrustAlso(kc, other.CertPEM)
	testenv.Must(t, err)
	e.kubeconfigSecret("wrong-ca-kubeconfig", string(kc))
	e.registerClusterAt("wrong-ca", target.Config.Host, other.CertPEM, "wrong-ca-kubeconfig", v1alpha1.CredentialProvider{})
	e.registerClusterAt("nowhere", "https://127.0.0.1:1", target.Config.CAData, "target-kubeconfig", v1alpha1.CredentialProvider{})

	if r := e.waitClusterReady("wrong-ca", v1alpha1.ReasonTargetTLSFailed); !strings.Contains(r.Message, "does not verify against spec.caBundle") {
		t.Errorf("wrong-ca Ready message %q does not say what is wrong", r.Message)
	}
	e.waitClusterReady("nowhere", v1alpha1.ReasonTargetUnreachable)

	s := e.viewSession("on-wrong-ca")
	s.Spec.Cluster = "wrong-ca"
	e.create(s)
	testenv.Eventually(t, 30*time.Second, func() error {
		testenv.Must(t, mgmt.Client.Get(e.ctx, client.ObjectKeyFromObject(s), s))
		r := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady)
		if s.Status.Phase != v1alpha1.PhasePending || r == nil || r.Reason != v1alpha1.ReasonTargetTLSFailed {
			return fmt.Errorf("session is %s with Ready %+v, want Pending/TargetTLSFailed", s.Status.Phase, r)
		}
		return nil
	})
}

func TestDeletingAClusterEndsAndRevokesItsSessionsFirst(t *testing.T) {
	e := newEnv(t)
	e.create(e.viewSession("on-deleted"))
	s := e.waitPhase("on-deleted", v1alpha1.PhaseActive, 20*time.Second)
	kube, _ := e.sessionClient(s)
	cluster := &v1alpha1.Cluster{}
	testenv.Must(t, mgmt.Client.Get(e.ctx, client.ObjectKey{Namespace: e.namespace, Name: "target"}, cluster))
	if !strings.Contains(strings.Join(cluster.Finalizers, ","), v1alpha1.ClusterFinalizer) {
		t.Fatalf("Cluster has finalizers %v, want %s", cluster.Finalizers, v1alpha1.ClusterFinalizer)
	}

	testenv.Must(t, mgmt.Client.Delete(e.ctx, cluster))
	s = e.waitPhase("on-deleted", v1alpha1.PhaseTerminated, 20*time.Second)
	if r := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady); r.Reason != v1alpha1.ReasonClusterDeleted {
		t.Errorf("Ready reason %q, want %s", r.Reason, v1alpha1.ReasonClusterDeleted)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		err := mgmt.Client.Get(e.ctx, client.ObjectKeyFromObject(cluster), &v1alpha1.Cluster{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("Cluster still there (err=%v)", err)
	})
	e.assertRevoked(s, kube)
}
