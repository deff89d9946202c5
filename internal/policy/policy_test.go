package policy

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sessiongate.dev/sessiongate/api/v1alpha1"
)

func validSpec() v1alpha1.SessionSpec {
	return v1alpha1.SessionSpec{
		TTL:         metav1.Duration{Duration: 30 * time.Minute},
		Cluster:     "prod-eu",
		AccessLevel: v1alpha1.AccessLevel{ClusterRole: "view"},
		Owner:       v1alpha1.Owner{Type: v1alpha1.OwnerUser, UserPrincipal: &v1alpha1.UserPrincipal{Name: "alice@example.com", Claim: "email"}},
	}
}

func TestValidate(t *testing.T) {
	p := Default()
	p.Groups = []string{"sre"}
	cases := []struct {
		name   string
		mutate func(*v1alpha1.SessionSpec)
		want   string // empty: allowed
	}{
		{"view cluster-wide", func(*v1alpha1.SessionSpec) {}, ""},
		{"edit in namespaces", func(s *v1alpha1.SessionSpec) {
			s.AccessLevel = v1alpha1.AccessLevel{ClusterRole: "edit", Namespaces: []string{"a", "b"}}
		}, ""},
		{"allowed group", func(s *v1alpha1.SessionSpec) { s.AccessLevel = v1alpha1.AccessLevel{Group: "sre"} }, ""},
		{"group not allowed", func(s *v1alpha1.SessionSpec) { s.AccessLevel = v1alpha1.AccessLevel{Group: "admins"} }, `spec.accessLevel.group: Forbidden: group "admins" is not one the gateway hands out`},
		{"system:masters", func(s *v1alpha1.SessionSpec) { s.AccessLevel = v1alpha1.AccessLevel{Group: "system:masters"} }, `spec.accessLevel.group: Forbidden: "system:masters" is a system: group`},
		{"System:Masters in any case", func(s *v1alpha1.SessionSpec) { s.AccessLevel = v1alpha1.AccessLevel{Group: "System:Masters"} }, "is a system: group"},
		{"edit cluster-wide is break-glass", func(s *v1alpha1.SessionSpec) { s.AccessLevel = v1alpha1.AccessLevel{ClusterRole: "edit"} },
			`spec.accessLevel.namespaces: Required value: a cluster-wide grant of "edit" is break-glass`},
		{"kube-system denied", func(s *v1alpha1.SessionSpec) {
			s.AccessLevel = v1alpha1.AccessLevel{ClusterRole: "edit", Namespaces: []string{"a", "kube-system"}}
		}, `spec.accessLevel.namespaces[1]: Forbidden: namespace "kube-system" may never be granted`},
		{"session namespace denied", func(s *v1alpha1.SessionSpec) {
			s.AccessLevel = v1alpha1.AccessLevel{ClusterRole: "view", Namespaces: []string{"sessiongate-sessions"}}
		}, `spec.accessLevel.namespaces[0]: Forbidden: namespace "sessiongate-sessions"`},
		{"owner claim not allowed", func(s *v1alpha1.SessionSpec) { s.Owner.UserPrincipal.Claim = "iss" }, `spec.owner.userPrincipal.claim: Unsupported value: "iss"`},
		{"group owner", func(s *v1alpha1.SessionSpec) {
			s.Owner = v1alpha1.Owner{Type: v1alpha1.OwnerGroup, Group: &v1alpha1.GroupPrincipal{Name: "sre"}}
		}, ""},
		{"ttl at max", func(s *v1alpha1.SessionSpec) { s.TTL.Duration = 8 * time.Hour }, ""},
		{"ttl over max", func(s *v1alpha1.SessionSpec) { s.TTL.Duration = 8*time.Hour + time.Second }, "spec.ttl: Invalid value: \"8h0m1s\": must be at most"},
		{"ttl under min", func(s *v1alpha1.SessionSpec) { s.TTL.Duration = time.Second }, "spec.ttl: Invalid value: \"1s\": must be at least 1m0s"},
		{"ttl zero", func(s *v1alpha1.SessionSpec) { s.TTL.Duration = 0 }, "must be greater than zero"},
		{"no cluster", func(s *v1alpha1.SessionSpec) { s.Cluster = "" }, "spec.cluster: Required value"},
		{"no access level", func(s *v1alpha1.SessionSpec) { s.AccessLevel = v1alpha1.AccessLevel{} }, "spec.accessLevel: Required value"},
		{"both shapes", func(s *v1alpha1.SessionSpec) { s.AccessLevel.Group = "sre" }, "set exactly one of clusterRole or group"},
		{"role not allowed", func(s *v1alpha1.SessionSpec) { s.AccessLevel.ClusterRole = "cluster-admin" }, `spec.accessLevel.clusterRole: Unsupported value: "cluster-admin"`},
		{"namespaces with group", func(s *v1alpha1.SessionSpec) {
			s.AccessLevel = v1alpha1.AccessLevel{Group: "sre", Namespaces: []string{"a"}}
		}, "spec.accessLevel.namespaces: Forbidden"},
		{"bad namespace", func(s *v1alpha1.SessionSpec) { s.AccessLevel.Namespaces = []string{"Not_A_Namespace"} }, "spec.accessLevel.namespaces[0]: Invalid value"},
		{"duplicate namespace", func(s *v1alpha1.SessionSpec) { s.AccessLevel.Namespaces = []string{"a", "a"} }, "spec.accessLevel.namespaces[1]: Duplicate value"},
		{"owner type unknown", func(s *v1alpha1.SessionSpec) { s.Owner.Type = "Robot" }, `spec.owner.type: Unsupported value: "Robot"`},
		{"user without name", func(s *v1alpha1.SessionSpec) { s.Owner.UserPrincipal.Name = "" }, "spec.owner.userPrincipal.name: Required value"},
		{"user with group", func(s *v1alpha1.SessionSpec) { s.Owner.Group = &v1alpha1.GroupPrincipal{Name: "x"} }, "spec.owner.group: Forbidden"},
		{"group owner with user", func(s *v1alpha1.SessionSpec) { s.Owner.Type = v1alpha1.OwnerGroup }, "spec.owner.group.name: Required value"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec := validSpec()
			c.mutate(&spec)
			err := p.Validate(&spec, "sessiongate-sessions", false).ToAggregate()
			switch {
			case c.want == "" && err != nil:
				t.Errorf("refused a valid spec: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestCheckRefusesSystemGroups(t *testing.T) {
	p := Default()
	p.Groups = []string{"sre", " system:masters"}
	if err := p.Check(); err == nil || !strings.Contains(err.Error(), "system:masters") {
		t.Errorf("Check() = %v, want a refusal naming system:masters", err)
	}
}
