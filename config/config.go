// Package config embeds the manifests the sessiongate binary needs at run
// time, so an installed binary works outside a source checkout: the CRDs, the
// gateway's generated Role, the target-side RBAC, and the sandbox's policies.
package config

import (
	"bufio"
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
)

//go:embed crd/*.yaml rbac/role.yaml target/rbac.yaml target/rbac-debug.yaml dev/policies.yaml dev/debug.yaml
var files embed.FS

// Paths of the embedded manifests.
const (
	RolePath       = "rbac/role.yaml"
	TargetRBACPath = "target/rbac.yaml"
	// TargetDebugRBACPath is the opt-in RBAC of targets used for debug sessions.
	TargetDebugRBACPath = "target/rbac-debug.yaml"
	DevPoliciesPath     = "dev/policies.yaml"
	// DevDebugPath holds the sandbox's debug session templates.
	DevDebugPath = "dev/debug.yaml"
	crdGlob      = "crd/*.yaml"
)

// File returns an embedded manifest.
func File(path string) ([]byte, error) { return files.ReadFile(path) }

// CRDs returns sessiongate's CustomResourceDefinitions.
func CRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	paths, err := fs.Glob(files, crdGlob)
	if err != nil {
		return nil, err
	}
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, p := range paths {
		b, err := files.ReadFile(p)
		if err != nil {
			return nil, err
		}
		r := yaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
		for {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := yaml.Unmarshal(doc, crd); err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			crds = append(crds, crd)
		}
	}
	if len(crds) == 0 {
		return nil, errors.New("no CRDs embedded")
	}
	return crds, nil
}
