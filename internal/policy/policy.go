// Package policy decides whether a session request may be granted at all:
// TTL bounds, which ClusterRoles the gateway hands out, and the shape of the
// access level and owner. The control plane and the REST API share it, so a
// request is judged the same way whichever door it comes through.
package policy

import (
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"sessiongate.dev/sessiongate/api/v1alpha1"
)

// Policy is the gateway-wide policy for sessions.
type Policy struct {
	// MinTTL and MaxTTL bound spec.ttl.
	MinTTL, MaxTTL time.Duration
	// ClusterRoles are the ClusterRoles a session may ask for.
	ClusterRoles []string
}

// Default is the policy of a gateway started without flags.
func Default() Policy {
	return Policy{MinTTL: time.Minute, MaxTTL: 8 * time.Hour, ClusterRoles: []string{"view", "edit"}}
}

// Validate returns every way spec breaks the policy, each naming its field.
func (p Policy) Validate(spec *v1alpha1.SessionSpec) field.ErrorList {
	var errs field.ErrorList
	root := field.NewPath("spec")

	ttl := spec.TTL.Duration
	switch {
	case ttl <= 0:
		errs = append(errs, field.Invalid(root.Child("ttl"), spec.TTL.Duration.String(), "must be greater than zero"))
	case ttl < p.MinTTL:
		errs = append(errs, field.Invalid(root.Child("ttl"), spec.TTL.Duration.String(), fmt.Sprintf("must be at least %s", p.MinTTL)))
	case p.MaxTTL > 0 && ttl > p.MaxTTL:
		errs = append(errs, field.Invalid(root.Child("ttl"), spec.TTL.Duration.String(), fmt.Sprintf("must be at most the gateway maximum of %s", p.MaxTTL)))
	}

	if spec.Cluster == "" {
		errs = append(errs, field.Required(root.Child("cluster"), "name a registered Cluster"))
	}

	errs = append(errs, p.validateAccessLevel(&spec.AccessLevel, root.Child("accessLevel"))...)
	errs = append(errs, validateOwner(&spec.Owner, root.Child("owner"))...)
	return errs
}

func (p Policy) validateAccessLevel(al *v1alpha1.AccessLevel, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case al.ClusterRole != "" && al.Group != "":
		errs = append(errs, field.Invalid(path, "clusterRole+group", "set exactly one of clusterRole or group"))
	case al.ClusterRole == "" && al.Group == "":
		errs = append(errs, field.Required(path, "set one of clusterRole or group"))
	case al.ClusterRole != "" && !slices.Contains(p.ClusterRoles, al.ClusterRole):
		errs = append(errs, field.NotSupported(path.Child("clusterRole"), al.ClusterRole, p.ClusterRoles))
	case al.Group != "" && len(al.Namespaces) > 0:
		errs = append(errs, field.Forbidden(path.Child("namespaces"), "can only be used with clusterRole"))
	}
	seen := map[string]bool{}
	for i, ns := range al.Namespaces {
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			errs = append(errs, field.Invalid(path.Child("namespaces").Index(i), ns, msgs[0]))
		}
		if seen[ns] {
			errs = append(errs, field.Duplicate(path.Child("namespaces").Index(i), ns))
		}
		seen[ns] = true
	}
	return errs
}

func validateOwner(o *v1alpha1.Owner, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch o.Type {
	case v1alpha1.OwnerUser:
		up := o.UserPrincipal
		switch {
		case up == nil:
			errs = append(errs, field.Required(path.Child("userPrincipal"), "required when type is User"))
		default:
			if up.Name == "" {
				errs = append(errs, field.Required(path.Child("userPrincipal", "name"), "the value the claim must equal"))
			}
			if up.Claim == "" {
				errs = append(errs, field.Required(path.Child("userPrincipal", "claim"), "the token claim that holds the name, e.g. sub or email"))
			}
		}
		if o.Group != nil {
			errs = append(errs, field.Forbidden(path.Child("group"), "only allowed when type is Group"))
		}
	case v1alpha1.OwnerGroup:
		if o.Group == nil || o.Group.Name == "" {
			errs = append(errs, field.Required(path.Child("group", "name"), "required when type is Group"))
		}
		if o.UserPrincipal != nil {
			errs = append(errs, field.Forbidden(path.Child("userPrincipal"), "only allowed when type is User"))
		}
	default:
		errs = append(errs, field.NotSupported(path.Child("type"), o.Type, []v1alpha1.OwnerType{v1alpha1.OwnerUser, v1alpha1.OwnerGroup}))
	}
	return errs
}
