// Package policy decides whether a session request may be granted at all:
// TTL bounds, which ClusterRoles and groups the gateway hands out and where,
// and the shape of the access level and owner. The control plane and the REST
// API share it, so a request is judged the same way whichever door it comes
// through.
package policy

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
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
	// Groups are the groups a session certificate may carry
	// (spec.accessLevel.group). system:* groups are never allowed.
	Groups []string
	// DeniedNamespaces may never be named by a namespaced grant, whatever
	// else allows it; each Cluster's session namespace is always denied too.
	DeniedNamespaces []string
	// OwnerClaims are the token claims a session's owner may be matched on.
	OwnerClaims []string
}

// ClusterWideRole is the only ClusterRole granted cluster-wide: any other
// cluster-wide grant is break-glass, which needs an access policy to allow it.
const ClusterWideRole = "view"

// Default is the policy of a gateway started without flags.
func Default() Policy {
	return Policy{
		MinTTL: time.Minute, MaxTTL: 8 * time.Hour,
		ClusterRoles:     []string{"view", "edit"},
		DeniedNamespaces: []string{"kube-system", "kube-public", "kube-node-lease"},
		OwnerClaims:      []string{"sub", "email"},
	}
}

// Check refuses a policy that could never be safe: groups the gateway must
// never hand out.
func (p Policy) Check() error {
	for _, g := range p.Groups {
		if isSystemGroup(g) {
			return fmt.Errorf("--allowed-groups: %q is a system: group, which a session may never carry", g)
		}
	}
	if p.MaxTTL < p.MinTTL {
		return fmt.Errorf("--max-ttl (%s) is shorter than --min-ttl (%s)", p.MaxTTL, p.MinTTL)
	}
	return nil
}

func isSystemGroup(g string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(g)), "system:")
}

// NeverGranted are the namespaces no grant may name on a target whose
// session namespace is sessionNamespace: --denied-namespaces and that one.
func (p Policy) NeverGranted(sessionNamespace string) []string {
	return append(slices.Clone(p.DeniedNamespaces), sessionNamespace)
}

// Validate returns every way spec breaks the policy, each naming its field.
// sessionNamespace is the target Cluster's session namespace, which no grant
// may name: rights there reach other sessions' ServiceAccounts. Only when an
// AccessPolicy explicitly grants it (grantedClusterWide) may a ClusterRole
// other than view be bound cluster-wide.
func (p Policy) Validate(spec *v1alpha1.SessionSpec, sessionNamespace string, grantedClusterWide bool) field.ErrorList {
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

	switch {
	case spec.Debug == nil:
		errs = append(errs, p.validateAccessLevel(&spec.AccessLevel, sessionNamespace, grantedClusterWide, root.Child("accessLevel"))...)
	case !reflect.DeepEqual(spec.AccessLevel, v1alpha1.AccessLevel{}):
		errs = append(errs, field.Forbidden(root.Child("accessLevel"), "a debug session has no access level: its template says what it may touch"))
	case spec.Debug.Template == "":
		errs = append(errs, field.Required(root.Child("debug", "template"), "name a DebugSessionTemplate"))
	}
	errs = append(errs, p.validateOwner(&spec.Owner, root.Child("owner"))...)
	return errs
}

func (p Policy) validateAccessLevel(al *v1alpha1.AccessLevel, sessionNamespace string, grantedClusterWide bool, path *field.Path) field.ErrorList {
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
	case al.Group != "" && isSystemGroup(al.Group):
		errs = append(errs, field.Forbidden(path.Child("group"), fmt.Sprintf("%q is a system: group, which a session may never carry", al.Group)))
	case al.Group != "" && !slices.Contains(p.Groups, al.Group):
		errs = append(errs, field.Forbidden(path.Child("group"), fmt.Sprintf("group %q is not one the gateway hands out (--allowed-groups)", al.Group)))
	case al.ClusterRole != "" && len(al.Namespaces) == 0 && al.ClusterRole != ClusterWideRole && !grantedClusterWide:
		errs = append(errs, field.Required(path.Child("namespaces"),
			fmt.Sprintf("a cluster-wide grant of %q is break-glass, which only an AccessPolicy can grant; name the namespaces, or ask for %q cluster-wide", al.ClusterRole, ClusterWideRole)))
	}
	seen := map[string]bool{}
	for i, ns := range al.Namespaces {
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			errs = append(errs, field.Invalid(path.Child("namespaces").Index(i), ns, msgs[0]))
		}
		if slices.Contains(p.NeverGranted(sessionNamespace), ns) {
			errs = append(errs, field.Forbidden(path.Child("namespaces").Index(i), fmt.Sprintf("namespace %q may never be granted through the gateway", ns)))
		}
		if seen[ns] {
			errs = append(errs, field.Duplicate(path.Child("namespaces").Index(i), ns))
		}
		seen[ns] = true
	}
	return errs
}

func (p Policy) validateOwner(o *v1alpha1.Owner, path *field.Path) field.ErrorList {
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
			switch {
			case up.Claim == "":
				errs = append(errs, field.Required(path.Child("userPrincipal", "claim"), "the token claim that holds the name, e.g. sub or email"))
			case !slices.Contains(p.OwnerClaims, up.Claim):
				errs = append(errs, field.NotSupported(path.Child("userPrincipal", "claim"), up.Claim, p.OwnerClaims))
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
