package authz

import (
	"testing"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/authn"
)

func TestOwns(t *testing.T) {
	alice := &authn.Identity{Username: "alice", Claims: map[string]string{"sub": "alice", "email": "alice@example.com"}, Groups: []string{"sre"}}
	user := func(name, claim string) v1alpha1.Owner {
		return v1alpha1.Owner{Type: v1alpha1.OwnerUser, UserPrincipal: &v1alpha1.UserPrincipal{Name: name, Claim: claim}}
	}
	group := func(name string) v1alpha1.Owner {
		return v1alpha1.Owner{Type: v1alpha1.OwnerGroup, Group: &v1alpha1.GroupPrincipal{Name: name}}
	}
	cases := []struct {
		name  string
		owner v1alpha1.Owner
		want  bool
	}{
		{"email claim matches", user("alice@example.com", "email"), true},
		{"sub claim matches", user("alice", "sub"), true},
		{"other user", user("bob@example.com", "email"), false},
		{"name in another claim", user("alice", "email"), false},
		{"claim absent", user("alice", "upn"), false},
		{"case differs", user("Alice@example.com", "email"), false},
		{"prefix only", user("alice@example", "email"), false},
		{"member of group", group("sre"), true},
		{"not a member", group("admins"), false},
		{"user without principal", v1alpha1.Owner{Type: v1alpha1.OwnerUser}, false},
		{"empty claim name", user("", ""), false},
		{"group without name", v1alpha1.Owner{Type: v1alpha1.OwnerGroup, Group: &v1alpha1.GroupPrincipal{}}, false},
		{"unknown type", v1alpha1.Owner{Type: "Robot", UserPrincipal: &v1alpha1.UserPrincipal{Name: "alice", Claim: "sub"}}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Owns(alice, c.owner); got != c.want {
				t.Errorf("Owns = %v, want %v", got, c.want)
			}
		})
	}
}
