package gateway_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"sessiongate.dev/sessiongate/internal/gateway"
	"sessiongate.dev/sessiongate/internal/testenv"
)

// The gateway's caches ask the RESTMapper on every Get whether a kind is
// namespaced: a mapping found once is remembered, and asking again costs no
// allocation; a kind not found is asked of the API server again, so an API
// installed later is found.
func TestTheMapperRemembersWhatItFoundAndLooksAgainForWhatItDidNot(t *testing.T) {
	hc, err := rest.HTTPClientFor(mgmt.Config)
	testenv.Must(t, err)
	m, err := gateway.NewMapper(mgmt.Config, hc)
	testenv.Must(t, err)

	session := schema.GroupKind{Group: "sessiongate.dev", Kind: "Session"}
	r, err := m.RESTMapping(session, "v1alpha1")
	testenv.Must(t, err)
	if r.Resource.Resource != "sessions" || r.Scope.Name() != meta.RESTScopeNameNamespace {
		t.Fatalf("Session maps to %v, scope %s", r.Resource, r.Scope.Name())
	}
	// One allocation is the caller's: its versions argument.
	base, err := apiutil.NewDynamicRESTMapper(mgmt.Config, hc)
	testenv.Must(t, err)
	_, _ = base.RESTMapping(session, "v1alpha1")
	before := testing.AllocsPerRun(100, func() { _, _ = base.RESTMapping(session, "v1alpha1") })
	t.Logf("a remembered mapping: %v allocations; the dynamic mapper: %v", testing.AllocsPerRun(100, func() { _, _ = m.RESTMapping(session, "v1alpha1") }), before)
	if n := testing.AllocsPerRun(100, func() { _, _ = m.RESTMapping(session, "v1alpha1") }); n > 1 {
		t.Errorf("a mapping found before costs %v allocations (%v without remembering)", n, before)
	}

	group := "t" + rand.String(6) + ".example.com"
	widget := schema.GroupKind{Group: group, Kind: "Widget"}
	if _, err := m.RESTMapping(widget, "v1"); !meta.IsNoMatchError(err) {
		t.Fatalf("a kind not installed: %v, want no match", err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets." + group},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: group, Scope: apiextensionsv1.ClusterScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object"}}}},
		},
	}
	crds, err := apiextensionsclient.NewForConfig(mgmt.Config)
	testenv.Must(t, err)
	_, err = crds.ApiextensionsV1().CustomResourceDefinitions().Create(context.Background(), crd, metav1.CreateOptions{})
	testenv.Must(t, err)
	t.Cleanup(func() {
		_ = crds.ApiextensionsV1().CustomResourceDefinitions().Delete(context.Background(), crd.Name, metav1.DeleteOptions{})
	})
	testenv.Eventually(t, 30*time.Second, func() error {
		r, err := m.RESTMapping(widget, "v1")
		if err != nil {
			return err
		}
		if r.Resource.Resource != "widgets" || r.Scope.Name() != meta.RESTScopeNameRoot {
			return fmt.Errorf("Widget maps to %v, scope %s", r.Resource, r.Scope.Name())
		}
		return nil
	})
}
