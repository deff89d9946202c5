// Package authz decides whether a verified caller may use a session.
package authz

import (
	"slices"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/authn"
)

// Owns reports whether id is the session's owner: for a User owner, the
// claim the owner names must equal its name exactly; for a Group owner, the
// caller's groups must contain it.
func Owns(id *authn.Identity, owner v1alpha1.Owner) bool {
	switch owner.Type {
	case v1alpha1.OwnerUser:
		up := owner.UserPrincipal
		if up == nil || up.Name == "" || up.Claim == "" {
			return false
		}
		v, ok := id.Claims[up.Claim]
		return ok && v == up.Name
	case v1alpha1.OwnerGroup:
		return owner.Group != nil && owner.Group.Name != "" && slices.Contains(id.Groups, owner.Group.Name)
	}
	return false
}
