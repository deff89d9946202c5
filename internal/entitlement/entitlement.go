// Package entitlement decides who may have what, where and for how long, and
// who must say yes: it judges a request against the AccessPolicies and
// answers with the policy that grants it, or why none does. Nothing is granted
// that no policy grants. The REST API and the control plane share it.
package entitlement

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"sessiongate.dev/sessiongate/api/v1alpha1"
)

// DefaultApprovalTimeout is how long a request waits for approvers when the
// policy does not say.
const DefaultApprovalTimeout = 24 * time.Hour

// Request is what a requester asks for.
type Request struct {
	User   string
	Groups []string
	// Cluster is the target, with its labels.
	Cluster     *v1alpha1.Cluster
	AccessLevel v1alpha1.AccessLevel
	// TTL asked for; zero takes the policy's default.
	TTL    time.Duration
	Reason string
	// Policy, when set, is the only policy the request may be granted by.
	Policy string
	// StartAt, when set, asks for a later start; Now is the time of the
	// request.
	StartAt, Now time.Time
}

// DefaultMaxScheduleDelay is how far ahead a start may be when the policy
// does not say.
const DefaultMaxScheduleDelay = 7 * 24 * time.Hour

// Grant is a policy's yes.
type Grant struct {
	Policy *v1alpha1.AccessPolicy
	// TTL the session gets.
	TTL time.Duration
	// NeedsApproval: the request waits for the policy's approvers.
	NeedsApproval bool
	// Limits to snapshot into the session.
	Limits v1alpha1.SessionLimits
}

// Denied says why no policy grants a request; its message is safe to show
// the requester (it names only policies that cover them).
type Denied struct{ msg string }

func (d *Denied) Error() string { return d.msg }

func deny(format string, args ...any) error { return &Denied{msg: fmt.Sprintf(format, args...)} }

// Deny is a refusal with the given message.
func Deny(format string, args ...any) error { return deny(format, args...) }

// Decide judges req against policies. Where several grant it, the one the
// request names wins, else the one needing the fewest approvals, then the
// shortest maxTTL, then the first by name.
func Decide(policies []v1alpha1.AccessPolicy, req Request) (*Grant, error) {
	var covering []*v1alpha1.AccessPolicy
	for i := range policies {
		p := &policies[i]
		if Covers(p, req.User, req.Groups, req.Cluster) {
			covering = append(covering, p)
		}
	}
	if req.Policy != "" {
		covering = slices.DeleteFunc(covering, func(p *v1alpha1.AccessPolicy) bool { return p.Name != req.Policy })
		if len(covering) == 0 {
			return nil, deny("policy %q does not let you request access to cluster %q", req.Policy, req.Cluster.Name)
		}
	}
	if len(covering) == 0 {
		return nil, deny("no policy lets you request access to cluster %q", req.Cluster.Name)
	}
	var grants []*Grant
	var why []string
	for _, p := range covering {
		g, err := judge(p, req)
		if err != nil {
			why = append(why, fmt.Sprintf("policy %s: %v", p.Name, err))
			continue
		}
		grants = append(grants, g)
	}
	if len(grants) == 0 {
		return nil, deny("%s", strings.Join(why, "; "))
	}
	sort.SliceStable(grants, func(i, j int) bool {
		a, b := grants[i], grants[j]
		if na, nb := approvalsNeeded(a), approvalsNeeded(b); na != nb {
			return na < nb
		}
		if a.Limits.MaxTTL.Duration != b.Limits.MaxTTL.Duration {
			return a.Limits.MaxTTL.Duration < b.Limits.MaxTTL.Duration
		}
		return a.Policy.Name < b.Policy.Name
	})
	return grants[0], nil
}

func approvalsNeeded(g *Grant) int32 {
	if !g.NeedsApproval {
		return 0
	}
	return MinApprovals(g.Limits.Approval)
}

// Covers reports whether the policy is one the user may request under for
// the cluster: they are among its requesters and the cluster among its
// clusters.
func Covers(p *v1alpha1.AccessPolicy, user string, groups []string, cluster *v1alpha1.Cluster) bool {
	return isSubject(p.Spec.Requesters, user, groups) && coversCluster(p.Spec.Clusters, cluster)
}

// IsSubject reports whether the user, or one of its groups, is among s.
func IsSubject(s v1alpha1.Subjects, user string, groups []string) bool {
	return isSubject(s, user, groups)
}

func isSubject(s v1alpha1.Subjects, user string, groups []string) bool {
	if user != "" && slices.Contains(s.Users, user) {
		return true
	}
	return slices.ContainsFunc(groups, func(g string) bool { return slices.Contains(s.Groups, g) })
}

func coversCluster(sel v1alpha1.ClusterSelector, c *v1alpha1.Cluster) bool {
	if c == nil {
		return false
	}
	for _, pattern := range sel.Names {
		if ok, err := path.Match(pattern, c.Name); err == nil && ok {
			return true
		}
	}
	if sel.Selector != nil {
		s, err := metav1.LabelSelectorAsSelector(sel.Selector)
		// A selector that matches everything must be written as one: an
		// empty selector here selects nothing, so a typo never grants all.
		if err == nil && !s.Empty() && s.Matches(labels.Set(c.Labels)) {
			return true
		}
	}
	return false
}

// judge checks one covering policy: access level, namespaces, TTL, reason.
func judge(p *v1alpha1.AccessPolicy, req Request) (*Grant, error) {
	if !allowsAccessLevel(p.Spec.AccessLevels, req.AccessLevel) {
		return nil, fmt.Errorf("access level %s is not allowed here", describe(req.AccessLevel))
	}
	return grant(p, req)
}

// DecideDebug judges a debug session request against its template, which
// says who may ask, on which clusters, for how long and who must approve,
// as an AccessPolicy does. The template's pods and rules are the debug
// package's to resolve.
func DecideDebug(t *v1alpha1.DebugSessionTemplate, req Request) (*Grant, error) {
	p := PolicyOf(t)
	if !Covers(p, req.User, req.Groups, req.Cluster) {
		name := ""
		if req.Cluster != nil {
			name = req.Cluster.Name
		}
		return nil, deny("debug session template %q does not let you request access to cluster %q", t.Name, name)
	}
	g, err := grant(p, req)
	if err != nil {
		return nil, deny("debug session template %s: %v", t.Name, err)
	}
	return g, nil
}

// PolicyOf is the AccessPolicy a debug session template's requesters,
// clusters, TTLs, approval and stream limits amount to.
func PolicyOf(t *v1alpha1.DebugSessionTemplate) *v1alpha1.AccessPolicy {
	return &v1alpha1.AccessPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: t.Name, Namespace: t.Namespace},
		Spec: v1alpha1.AccessPolicySpec{
			Requesters: t.Spec.Requesters, Clusters: t.Spec.Clusters,
			MaxTTL: t.Spec.MaxTTL, DefaultTTL: t.Spec.DefaultTTL,
			Approval: t.Spec.Approval, Streams: t.Spec.Streams,
		},
	}
}

// grant checks TTL, reason and schedule under p and says what it grants.
func grant(p *v1alpha1.AccessPolicy, req Request) (*Grant, error) {
	ttl := req.TTL
	if ttl == 0 {
		ttl = p.Spec.MaxTTL.Duration
		if p.Spec.DefaultTTL != nil {
			ttl = p.Spec.DefaultTTL.Duration
		}
	}
	if ttl > p.Spec.MaxTTL.Duration {
		return nil, fmt.Errorf("ttl %s is over the policy's maximum of %s", ttl, p.Spec.MaxTTL.Duration)
	}
	if a := p.Spec.Approval; a != nil && a.RequireReason && strings.TrimSpace(req.Reason) == "" {
		return nil, fmt.Errorf("a reason is required")
	}
	if !req.StartAt.IsZero() {
		sch := p.Spec.Schedule
		if sch == nil || !sch.Allowed {
			return nil, fmt.Errorf("a scheduled start is not allowed")
		}
		limit := DefaultMaxScheduleDelay
		if sch.MaxDelay != nil {
			limit = sch.MaxDelay.Duration
		}
		if req.StartAt.After(req.Now.Add(limit)) {
			return nil, fmt.Errorf("the start %s is more than %s ahead", req.StartAt.UTC().Format(time.RFC3339), limit)
		}
	}
	g := &Grant{Policy: p, TTL: ttl, NeedsApproval: NeedsApproval(p.Spec.Approval, req.Groups)}
	g.Limits = v1alpha1.SessionLimits{MaxTTL: p.Spec.MaxTTL, Renewal: p.Spec.Renewal.DeepCopy(), IdleTimeout: p.Spec.IdleTimeout.DeepCopy(), Streams: p.Spec.Streams.DeepCopy(),
		// Sharing grants nothing the policy does not: only its requesters
		// may be let in.
		Guests: p.Spec.Requesters.DeepCopy()}
	if g.NeedsApproval {
		g.Limits.Approval = withDefaults(p.Spec.Approval)
	}
	if r := p.Spec.Renewal; r != nil && r.RequiresApproval && p.Spec.Approval != nil {
		g.Limits.RenewalApproval = withDefaults(p.Spec.Approval)
	}
	return g, nil
}

func withDefaults(in *v1alpha1.Approval) *v1alpha1.Approval {
	a := in.DeepCopy()
	a.MinApprovals = MinApprovals(a)
	if a.Timeout == nil {
		a.Timeout = &metav1.Duration{Duration: DefaultApprovalTimeout}
	}
	a.AutoApprove = nil
	return a
}

// NeedsApproval reports whether a request by a member of groups waits for
// the approvers under a: a policy with approval needs it unless autoApprove
// lets the request through. It depends on nothing else about the request.
func NeedsApproval(a *v1alpha1.Approval, groups []string) bool {
	if a == nil {
		return false
	}
	if aa := a.AutoApprove; aa != nil && (aa.All || slices.ContainsFunc(groups, func(g string) bool { return slices.Contains(aa.Groups, g) })) {
		return false
	}
	return true
}

// MinApprovals is how many approvals a request needs under a: at least one.
func MinApprovals(a *v1alpha1.Approval) int32 {
	if a == nil || a.MinApprovals < 1 {
		return 1
	}
	return a.MinApprovals
}

func allowsAccessLevel(levels []v1alpha1.PolicyAccessLevel, al v1alpha1.AccessLevel) bool {
	for _, l := range levels {
		switch {
		case al.Group != "":
			if l.Group == al.Group {
				return true
			}
		case l.ClusterRole != "" && l.ClusterRole == al.ClusterRole:
			if len(al.Namespaces) == 0 {
				if l.Scope == v1alpha1.ScopeCluster {
					return true
				}
				continue
			}
			if l.Scope == v1alpha1.ScopeCluster || allNamespacesAllowed(l.Namespaces, al.Namespaces) {
				return true
			}
		}
	}
	return false
}

func allNamespacesAllowed(f *v1alpha1.NamespaceFilter, namespaces []string) bool {
	for _, ns := range namespaces {
		if f == nil {
			continue
		}
		if matchesAny(f.Deny, ns) || (len(f.Allow) > 0 && !matchesAny(f.Allow, ns)) {
			return false
		}
	}
	return true
}

func matchesAny(patterns []string, s string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool {
		ok, err := path.Match(p, s)
		return err == nil && ok
	})
}

func describe(al v1alpha1.AccessLevel) string {
	switch {
	case al.Group != "":
		return fmt.Sprintf("group %q", al.Group)
	case len(al.Namespaces) == 0:
		return fmt.Sprintf("%q cluster-wide", al.ClusterRole)
	default:
		return fmt.Sprintf("%q in namespaces %s", al.ClusterRole, strings.Join(al.Namespaces, ", "))
	}
}

// CanDecide reports whether user (with groups) may approve or reject a
// request under approval: an approver, and never the requester.
func CanDecide(a *v1alpha1.Approval, requester *v1alpha1.Requester, user string, groups []string) bool {
	if a == nil || user == "" || (requester != nil && requester.User == user) {
		return false
	}
	return isSubject(a.Approvers, user, groups)
}

// Outcome is where the approvals of a request stand.
type Outcome struct {
	Approvals int32
	Needed    int32
	// Rejected is the first rejection, if any.
	Rejected *v1alpha1.Decision
}

// Approved reports whether the quorum is reached.
func (o Outcome) Approved() bool { return o.Rejected == nil && o.Approvals >= o.Needed }

// Tally counts distinct approvers' decisions, ignoring any by the requester.
func Tally(a *v1alpha1.Approval, requester *v1alpha1.Requester, decisions []v1alpha1.Decision) Outcome {
	o := Outcome{Needed: MinApprovals(a)}
	seen := map[string]bool{}
	for i := range decisions {
		d := &decisions[i]
		if seen[d.Approver] || (requester != nil && d.Approver == requester.User) {
			continue
		}
		seen[d.Approver] = true
		switch d.Decision {
		case v1alpha1.DecisionRejected:
			if o.Rejected == nil {
				o.Rejected = d
			}
		case v1alpha1.DecisionApproved:
			o.Approvals++
		}
	}
	return o
}

// MaxRenewal is the longest a session under l may be renewed by at once:
// its maxTTL, or the gateway's maxTTL (--max-ttl; 0 for none) if shorter.
func MaxRenewal(l *v1alpha1.SessionLimits, maxTTL time.Duration) time.Duration {
	if most := l.MaxTTL.Duration; maxTTL <= 0 || most < maxTTL {
		return most
	}
	return maxTTL
}

// CheckRenewal says why a renewal of ttl may not be granted under limits, or
// nil. maxTTL is the gateway's (--max-ttl; 0 for none), which bounds a
// session granted before its limits were capped by it too. A session never
// lasts past that maximum × (1 + maxRenewals) in all.
func CheckRenewal(l *v1alpha1.SessionLimits, renewals int32, activatedAt, expiresAt time.Time, ttl, maxTTL time.Duration) error {
	if l == nil || l.Renewal == nil || !l.Renewal.Allowed {
		return fmt.Errorf("the session's policy allows no renewal")
	}
	if renewals >= l.Renewal.MaxRenewals {
		return fmt.Errorf("the session was renewed %d time(s), the policy's maximum", renewals)
	}
	most := MaxRenewal(l, maxTTL)
	if ttl <= 0 || ttl > most {
		return fmt.Errorf("ttl %s must be positive and at most the session's maximum of %s (its policy's maxTTL, within the gateway's --max-ttl)", ttl, most)
	}
	total := most * time.Duration(1+l.Renewal.MaxRenewals)
	if lifetime := expiresAt.Add(ttl).Sub(activatedAt); lifetime > total {
		return fmt.Errorf("renewing by %s would make the session last %s, past the session's total of %s", ttl, lifetime.Round(time.Second), total)
	}
	return nil
}
