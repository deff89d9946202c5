// Package authz decides whether a verified caller may use a session.
package authz

import (
	"fmt"
	"slices"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/authn"
	"sessiongate.dev/sessiongate/internal/entitlement"
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

// Role is what a caller may do through a session.
type Role int

const (
	// None: not the session's owner and not let in.
	None Role = iota
	// Viewer may only read: get, list, watch and logs.
	Viewer
	// Participant may do what the owner may.
	Participant
	// Owner owns the session.
	Owner
)

// RoleOf is the caller's role in a session with the given owner and
// participants. A participant is matched by the verified username alone;
// an empty username is never let in.
func RoleOf(id *authn.Identity, owner v1alpha1.Owner, participants []v1alpha1.Participant) Role {
	if Owns(id, owner) {
		return Owner
	}
	if id.Username == "" {
		return None
	}
	for _, p := range participants {
		if p.User != id.Username {
			continue
		}
		switch p.Role {
		case v1alpha1.RoleParticipant:
			return Participant
		case v1alpha1.RoleViewer:
			return Viewer
		}
	}
	return None
}

// Admitted reports whether the policy that granted a session lets id use it
// in role: its owner always; anyone the owner let in only while guests (the
// policy's requesters) name them or a group of theirs, since sharing grants
// nothing the policy does not. Nil guests: the session was not granted by
// a policy (the admin path), and its owner may let in anyone.
func Admitted(id *authn.Identity, role Role, guests *v1alpha1.Subjects) bool {
	switch role {
	case Owner:
		return true
	case None:
		return false
	}
	return guests == nil || entitlement.IsSubject(*guests, id.Username, id.Groups)
}

// NotAdmitted says why someone the owner let into session is refused where
// Admitted is false: the proxy and the debug API say it alike.
func NotAdmitted(session string) error {
	return fmt.Errorf("you were let into session %s, but the policy that granted it does not name you (or a group of yours) among its requesters", session)
}

func (r Role) String() string {
	switch r {
	case Viewer:
		return "viewer"
	case Participant:
		return "participant"
	case Owner:
		return "owner"
	}
	return "none"
}
