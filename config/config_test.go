package config

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
)

// The target RBAC files an operator applies are the generated roles with
// their namespace and bindings, as `make generate` joins them.
func TestTargetRBACIsTheGeneratedRoles(t *testing.T) {
	for file, dir := range map[string]string{"target/rbac.yaml": "target/minter", "target/rbac-csr.yaml": "target/csr", "target/rbac-debug.yaml": "target/debug"} {
		var want []byte
		for _, part := range []string{"head.yaml", "role.yaml", "bindings.yaml"} {
			b, err := os.ReadFile(filepath.Join(dir, part))
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, b...)
		}
		got, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is not %s/{head,role,bindings}.yaml joined: run make generate, and edit the markers in %s/doc.go instead", file, dir, dir)
		}
	}
}

// The bind rule names the ClusterRoles the gateway may hand out, and no
// rule anywhere grants escalate or a wildcard.
func TestTargetRolesNeverEscalate(t *testing.T) {
	for _, dir := range []string{"target/minter", "target/csr", "target/debug"} {
		b, err := os.ReadFile(filepath.Join(dir, "role.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		d := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
		rules := 0
		for {
			var r rbacv1.ClusterRole // a Role has the same rules
			if err := d.Decode(&r); err != nil {
				break
			}
			rules += len(r.Rules)
			for _, rule := range r.Rules {
				for _, v := range append(append(rule.Verbs, rule.Resources...), rule.APIGroups...) {
					if v == "escalate" || v == "*" || v == "impersonate" {
						t.Errorf("%s %s grants %q: %+v", dir, r.Name, v, rule)
					}
				}
				for _, v := range rule.Verbs {
					if v == "bind" && len(rule.ResourceNames) == 0 {
						t.Errorf("%s %s may bind any role: %+v", dir, r.Name, rule)
					}
				}
			}
		}
		if rules == 0 {
			t.Errorf("%s/role.yaml holds no rules", dir)
		}
	}
}

// The debug role adds no way to grant: the per-session Roles it writes can
// hold only what it holds itself, and their bindings come from the minter's
// rules.
func TestTargetDebugRoleNeverBinds(t *testing.T) {
	b, err := os.ReadFile("target/debug/role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var r rbacv1.ClusterRole
	if err := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096).Decode(&r); err != nil {
		t.Fatal(err)
	}
	for _, rule := range r.Rules {
		for _, v := range rule.Verbs {
			if v == "bind" {
				t.Errorf("target/debug grants bind: %+v", rule)
			}
		}
		for _, res := range rule.Resources {
			if res == "clusterroles" || res == "clusterrolebindings" || res == "serviceaccounts/token" {
				t.Errorf("target/debug grants %s: %+v", res, rule)
			}
		}
	}
}
