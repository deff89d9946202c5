// Package chart renders the Helm chart in charts/sessiongate with Helm's own
// library, as `helm install --dry-run` (client-only) does: values checked
// against values.schema.json, templates rendered, manifests in Helm's install
// order. Its tests lint the chart, apply what it renders to a real
// kube-apiserver and run the gateway it describes.
package chart

import (
	"fmt"
	"path"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/releaseutil"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// KubeVersion is the Kubernetes version charts are rendered for: the one
// the tests' kube-apiserver runs (hack/test-bins.sh).
const KubeVersion = "v1.37.2"

// Release names an installation.
type Release struct {
	Name, Namespace string
}

// Rendered is what an install would create, besides the CRDs.
type Rendered struct {
	// Manifests are the rendered documents in Helm's install order.
	Manifests []releaseutil.Manifest
	// CRDs are the chart's crds/ files, which Helm applies first.
	CRDs []*chart.File
	// Notes is the rendered NOTES.txt.
	Notes string
}

// Render renders the chart in dir for rel with values over the chart's
// defaults. Values that values.schema.json refuses are an error.
func Render(dir string, rel Release, values map[string]any) (*Rendered, error) {
	c, err := loader.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("loading chart %s: %w", dir, err)
	}
	caps, err := capabilities()
	if err != nil {
		return nil, err
	}
	if err := chartutil.ProcessDependenciesWithMerge(c, values); err != nil {
		return nil, err
	}
	opts := chartutil.ReleaseOptions{Name: rel.Name, Namespace: rel.Namespace, Revision: 1, IsInstall: true}
	vals, err := chartutil.ToRenderValues(c, values, opts, caps)
	if err != nil {
		return nil, err
	}
	files, err := engine.Render(c, vals)
	if err != nil {
		return nil, err
	}
	r := &Rendered{CRDs: c.CRDs()}
	for name, content := range files {
		if path.Base(name) == "NOTES.txt" {
			r.Notes = content
			delete(files, name)
		}
	}
	hooks, manifests, err := releaseutil.SortManifests(files, caps.APIVersions, releaseutil.InstallOrder)
	if err != nil {
		return nil, err
	}
	if len(hooks) > 0 {
		return nil, fmt.Errorf("the chart has %d hooks; nothing here runs them", len(hooks))
	}
	r.Manifests = manifests
	return r, nil
}

func capabilities() (*chartutil.Capabilities, error) {
	kv, err := chartutil.ParseKubeVersion(KubeVersion)
	if err != nil {
		return nil, err
	}
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = *kv
	return caps, nil
}

// YAML is every manifest as one multi-document stream, in install order.
func (r *Rendered) YAML() []byte {
	var b strings.Builder
	for _, m := range r.Manifests {
		b.WriteString("---\n# Source: " + m.Name + "\n" + m.Content + "\n")
	}
	return []byte(b.String())
}

// Objects decodes the manifests with scheme; a kind it does not know is an
// error.
func (r *Rendered) Objects(scheme *runtime.Scheme) ([]client.Object, error) {
	decode := serializer.NewCodecFactory(scheme).UniversalDeserializer().Decode
	var objs []client.Object
	for _, m := range r.Manifests {
		obj, _, err := decode([]byte(m.Content), nil, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.Name, err)
		}
		objs = append(objs, obj.(client.Object))
	}
	return objs, nil
}
