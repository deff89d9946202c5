package controlplane_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/controlplane"
	"sessiongate.dev/sessiongate/internal/testenv"
)

// installIstioCRD installs Istio's own AuthorizationPolicy CRD, from the
// istio.io/api module the gateway builds with.
func installIstioCRD(t *testing.T) {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "istio.io/api").Output()
	testenv.Must(t, err)
	b, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "kubernetes", "customresourcedefinitions.gen.yaml"))
	testenv.Must(t, err)
	r := yaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			t.Fatal("no AuthorizationPolicy CRD in istio.io/api")
		}
		testenv.Must(t, err)
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if yaml.Unmarshal(doc, crd) == nil && crd.Name == "authorizationpolicies.security.istio.io" {
			_, err := envtest.InstallCRDs(mgmt.Config, envtest.CRDInstallOptions{CRDs: []*apiextensionsv1.CustomResourceDefinition{crd}})
			testenv.Must(t, err)
			return
		}
	}
}

// With the Istio option, an Active session has an AuthorizationPolicy that
// lets its path through only for its owner's JWT; it goes with the session.
func TestIstioAuthorizationPolicyFollowsTheSession(t *testing.T) {
	installIstioCRD(t)
	e := newEnv(t)
	e.stopGateway()
	e.startGatewayOpts(func(o *controlplane.Options) {
		o.Istio = &controlplane.IstioOptions{Selector: map[string]string{"app.kubernetes.io/name": "sessiongate"}, GroupsClaim: "groups"}
	})

	s := e.viewSession("meshed")
	e.create(s)
	s = e.waitPhase("meshed", v1alpha1.PhaseActive, 30*time.Second)
	ap := &securityv1.AuthorizationPolicy{}
	testenv.Must(t, mgmt.Client.Get(e.ctx, client.ObjectKey{Namespace: e.namespace, Name: "sessiongate-meshed"}, ap))
	if !metav1.IsControlledBy(ap, s) {
		t.Errorf("the AuthorizationPolicy is not owned by the Session: %v", ap.OwnerReferences)
	}
	spec := &ap.Spec
	if spec.Action.String() != "ALLOW" || spec.Selector.GetMatchLabels()["app.kubernetes.io/name"] != "sessiongate" || len(spec.Rules) != 1 {
		t.Fatalf("AuthorizationPolicy spec: %v", spec)
	}
	rule := spec.Rules[0]
	if paths := rule.To[0].Operation.Paths; strings.Join(paths, " ") != "/sessiongate/meshed/kas /sessiongate/meshed/kas/*" {
		t.Errorf("paths %v", paths)
	}
	if w := rule.When[0]; w.Key != "request.auth.claims[email]" || strings.Join(w.Values, ",") != "alice@example.com" {
		t.Errorf("condition %v, want the owner's email claim", w)
	}

	// A group's session: the groups claim.
	g := e.viewSession("meshed-group")
	g.Spec.Owner = v1alpha1.Owner{Type: v1alpha1.OwnerGroup, Group: &v1alpha1.GroupPrincipal{Name: "sre"}}
	e.create(g)
	e.waitPhase("meshed-group", v1alpha1.PhaseActive, 30*time.Second)
	gap := &securityv1.AuthorizationPolicy{}
	testenv.Must(t, mgmt.Client.Get(e.ctx, client.ObjectKey{Namespace: e.namespace, Name: "sessiongate-meshed-group"}, gap))
	if w := gap.Spec.Rules[0].When[0]; w.Key != "request.auth.claims[groups]" || strings.Join(w.Values, ",") != "sre" {
		t.Errorf("group session condition %v", w)
	}

	// The end removes it, with no garbage collector to count on.
	patch := client.MergeFrom(s.DeepCopy())
	s.Spec.Terminated = true
	testenv.Must(t, mgmt.Client.Patch(e.ctx, s, patch))
	e.waitPhase("meshed", v1alpha1.PhaseTerminated, 30*time.Second)
	testenv.Eventually(t, 30*time.Second, func() error {
		err := mgmt.Client.Get(e.ctx, client.ObjectKey{Namespace: e.namespace, Name: "sessiongate-meshed"}, &securityv1.AuthorizationPolicy{})
		if !apierrors.IsNotFound(err) {
			return errString("the AuthorizationPolicy outlived its session")
		}
		return nil
	})
}
