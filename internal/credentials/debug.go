package credentials

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/klog/v2"

	"sessiongate.dev/sessiongate/api/v1alpha1"
)

// LabelDebugWorkload selects a session's debug pods. The gateway sets it
// (and the session labels) on the pod template after the template's own
// labels, so a template's author can neither drop it nor claim it for pods
// of their own.
const LabelDebugWorkload = "sessiongate.dev/debug-workload"

// debugRBACHint is what an operator applies when a target refuses the
// gateway a debug object.
const debugRBACHint = "config/target/rbac-debug.yaml grants it"

// SessionLabels are the labels every object made on a target for s carries.
func SessionLabels(gateway string, s *v1alpha1.Session) map[string]string {
	return sessionLabels(gateway, s)
}

// DebugName names a session's debug workload and what comes with it (quota,
// disruption budget) in the debug namespace: a DNS label of at most 58
// characters, leaving room for the suffix a DaemonSet's pods get. The hash
// tells apart sessions of different gateways and long names cut alike.
func DebugName(gateway string, s *v1alpha1.Session) string {
	h := sha256.Sum256([]byte(gateway + "/" + s.Namespace + "/" + s.Name))
	base := strings.ReplaceAll(s.Name, ".", "-")
	if len(base) > 40 {
		base = base[:40]
	}
	return "sg-debug-" + strings.TrimRight(base, "-") + "-" + hex.EncodeToString(h[:4])
}

// DebugSelector selects the pods of a session's debug workload.
func DebugSelector(gateway string, s *v1alpha1.Session) map[string]string {
	return map[string]string{LabelSessionUID: string(s.UID), LabelDebugWorkload: DebugName(gateway, s)}
}

// targetAPI is the part of a typed client-go client that ensureObject uses.
type targetAPI[T metav1.Object] interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
	Create(ctx context.Context, obj T, opts metav1.CreateOptions) (T, error)
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
}

// ensureObject creates obj with the session's labels unless it is there
// already, and returns what the target holds. An object in the way that
// this gateway did not make for s is never touched.
func ensureObject[T metav1.Object](ctx context.Context, t Target, s *v1alpha1.Session, kind string, api targetAPI[T], obj T) (T, error) {
	var zero T
	what := kind + " " + obj.GetNamespace() + "/" + obj.GetName()
	existing, err := api.Get(ctx, obj.GetName(), metav1.GetOptions{})
	switch {
	case err == nil:
		if err := checkDebugOwned(t, kind, existing, s, func() error {
			return api.Delete(ctx, obj.GetName(), preconditions(existing.GetUID()))
		}); err != nil {
			return zero, err
		}
		return existing, nil
	case apierrors.IsForbidden(err):
		return zero, debugForbidden(t, "reading "+what, err)
	case !apierrors.IsNotFound(err):
		return zero, fmt.Errorf("reading %s: %w", what, err)
	}
	l := obj.GetLabels()
	if l == nil {
		l = map[string]string{}
	}
	maps.Copy(l, sessionLabels(t.Gateway, s))
	obj.SetLabels(l)
	created, err := api.Create(ctx, obj, metav1.CreateOptions{})
	switch {
	case apierrors.IsForbidden(err):
		return zero, debugForbidden(t, "creating "+what, err)
	case apierrors.IsAlreadyExists(err):
		return zero, fmt.Errorf("%s appeared while creating it; looking again", what)
	case err != nil:
		return zero, fmt.Errorf("creating %s: %w", what, err)
	}
	klog.V(2).InfoS("Created debug object on target", "session", klog.KObj(s), "kind", kind, "object", klog.KObj(created))
	return created, nil
}

// checkDebugOwned is checkOwned for objects in a debug namespace, where a
// name may also be taken by another live session of this gateway (two
// sessions of one template whose pod template names its ConfigMap alike):
// that one is the other session's and is never deleted.
func checkDebugOwned(t Target, kind string, obj metav1.Object, s *v1alpha1.Session, del func() error) error {
	l := obj.GetLabels()
	if l[LabelGateway] == t.Gateway && l[LabelSessionUID] != "" && l[LabelSessionUID] != string(s.UID) &&
		(l[LabelSessionName] != s.Name || l[LabelSessionNamespace] != s.Namespace) {
		return permanentReason(v1alpha1.ReasonNameConflict,
			"%s %s/%s on cluster %s belongs to session %s/%s of this gateway; it was left alone (give it a name of its own, e.g. with {{ .Session }})",
			kind, obj.GetNamespace(), obj.GetName(), t.Cluster.Name, l[LabelSessionNamespace], l[LabelSessionName])
	}
	return checkOwned(t, kind, obj, s, del)
}

// debugForbidden explains a refusal: a target without the debug RBAC keeps
// refusing, so the session fails with what to apply.
func debugForbidden(t Target, what string, err error) error {
	return permanentReason(v1alpha1.ReasonTargetForbidden, "cluster %s refused %s (%s): %v", t.Cluster.Name, what, debugRBACHint, err)
}

// EnsureDebugObject creates one of the objects a debug session deploys —
// its workload, quota, disruption budget or a pod template's supporting
// object — labelled for s, and returns what the target holds.
func EnsureDebugObject(ctx context.Context, t Target, s *v1alpha1.Session, obj metav1.Object) (metav1.Object, error) {
	c, ns := t.Client, obj.GetNamespace()
	switch o := obj.(type) {
	case *appsv1.DaemonSet:
		return ensureObject(ctx, t, s, "DaemonSet", c.AppsV1().DaemonSets(ns), o)
	case *appsv1.Deployment:
		return ensureObject(ctx, t, s, "Deployment", c.AppsV1().Deployments(ns), o)
	case *corev1.ConfigMap:
		return ensureObject(ctx, t, s, "ConfigMap", c.CoreV1().ConfigMaps(ns), o)
	case *corev1.Secret:
		return ensureObject(ctx, t, s, "Secret", c.CoreV1().Secrets(ns), o)
	case *corev1.PersistentVolumeClaim:
		return ensureObject(ctx, t, s, "PersistentVolumeClaim", c.CoreV1().PersistentVolumeClaims(ns), o)
	case *corev1.ResourceQuota:
		return ensureObject(ctx, t, s, "ResourceQuota", c.CoreV1().ResourceQuotas(ns), o)
	case *networkingv1.NetworkPolicy:
		return ensureObject(ctx, t, s, "NetworkPolicy", c.NetworkingV1().NetworkPolicies(ns), o)
	case *policyv1.PodDisruptionBudget:
		return ensureObject(ctx, t, s, "PodDisruptionBudget", c.PolicyV1().PodDisruptionBudgets(ns), o)
	default:
		return nil, permanentReason(v1alpha1.ReasonTemplateInvalid, "a debug session cannot create a %T", obj)
	}
}

// EnsureDebugNamespace makes sure the debug namespace is there: an existing
// one must match selector (if any); a missing one is created for s when
// create is set. created reports whether the gateway made it for s, and so
// removes it at the end.
func EnsureDebugNamespace(ctx context.Context, t Target, s *v1alpha1.Session, name string, create bool, selector *metav1.LabelSelector) (created bool, err error) {
	nss := t.Client.CoreV1().Namespaces()
	ns, err := nss.Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
	case apierrors.IsForbidden(err):
		return false, debugForbidden(t, "reading namespace "+name, err)
	case !apierrors.IsNotFound(err):
		return false, fmt.Errorf("reading namespace %s: %w", name, err)
	case !create:
		return false, permanentReason(v1alpha1.ReasonNamespaceNotFound, "debug namespace %q does not exist on cluster %s and the template does not create it", name, t.Cluster.Name)
	default:
		ns, err = nss.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: sessionLabels(t.Gateway, s)}}, metav1.CreateOptions{})
		switch {
		case apierrors.IsForbidden(err):
			return false, debugForbidden(t, "creating namespace "+name, err)
		case apierrors.IsAlreadyExists(err):
			return false, fmt.Errorf("namespace %s appeared while creating it; looking again", name)
		case err != nil:
			return false, fmt.Errorf("creating namespace %s: %w", name, err)
		}
		klog.V(2).InfoS("Created debug namespace on target", "session", klog.KObj(s), "namespace", name)
		return true, nil
	}
	if !ns.DeletionTimestamp.IsZero() {
		// Left by an earlier session; a namespace being deleted takes no
		// new objects, and a new one can be made once it is gone.
		return false, fmt.Errorf("debug namespace %s on cluster %s is being deleted; waiting until it is gone", name, t.Cluster.Name)
	}
	if selector != nil && ns.Labels[LabelSessionUID] != string(s.UID) {
		sel, err := metav1.LabelSelectorAsSelector(selector)
		if err != nil {
			return false, permanentReason(v1alpha1.ReasonTemplateInvalid, "the template's namespace selector: %v", err)
		}
		if !sel.Matches(labels.Set(ns.Labels)) {
			return false, permanentReason(v1alpha1.ReasonInvalidSpec, "debug namespace %q on cluster %s does not match the template's namespace selector %s", name, t.Cluster.Name, sel)
		}
	}
	return ns.Labels[LabelSessionUID] == string(s.UID) && ns.Labels[LabelGateway] == t.Gateway, nil
}

// SessionSubject is who a session's credential is on the target: its
// ServiceAccount, or the user its certificate names.
func SessionSubject(t Target, s *v1alpha1.Session) (rbacv1.Subject, error) {
	switch t.Cluster.Spec.Provider.Type {
	case v1alpha1.ProviderServiceAccountToken, "":
		return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: ObjectName(t.Gateway, s), Namespace: SessionNamespace(t.Cluster)}, nil
	case v1alpha1.ProviderSignedCertificate, v1alpha1.ProviderCertificateSigningRequest:
		return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: CertificateUser(s)}, nil
	default:
		return rbacv1.Subject{}, permanent("cluster %s: unknown provider type %q", t.Cluster.Name, t.Cluster.Spec.Provider.Type)
	}
}

// EnsureDebugRole grants the session's subject rules in namespace, through
// a Role and RoleBinding of the session's name there. The Role is rewritten
// whenever rules change (the session's pod set did), so it never grants
// more than the pods the session has now.
func EnsureDebugRole(ctx context.Context, t Target, s *v1alpha1.Session, namespace string, rules []rbacv1.PolicyRule) error {
	subject, err := SessionSubject(t, s)
	if err != nil {
		return err
	}
	name := ObjectName(t.Gateway, s)
	roles := t.Client.RbacV1().Roles(namespace)
	role, err := ensureObject(ctx, t, s, "Role", roles, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Rules:      rules,
	})
	if err != nil {
		return err
	}
	if !equality.Semantic.DeepEqual(role.Rules, rules) && !(len(role.Rules) == 0 && len(rules) == 0) {
		role.Rules = rules
		if _, err := roles.Update(ctx, role, metav1.UpdateOptions{}); err != nil {
			if apierrors.IsForbidden(err) {
				return debugForbidden(t, "updating Role "+namespace+"/"+name, err)
			}
			return fmt.Errorf("updating Role %s/%s: %w", namespace, name, err)
		}
		klog.V(4).InfoS("Narrowed debug Role to the session's pods", "session", klog.KObj(s), "role", klog.KObj(role), "rules", len(rules))
	}
	_, err = ensureObject(ctx, t, s, "RoleBinding", t.Client.RbacV1().RoleBindings(namespace), &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{subject},
	})
	return err
}

// SessionPodNames are the pods in namespace that carry the session's labels:
// its debug pods, and the copies and node pods made through it.
func SessionPodNames(ctx context.Context, t Target, s *v1alpha1.Session, namespace string) ([]string, error) {
	sel := labels.Set{LabelManagedBy: ManagedByValue, LabelGateway: t.Gateway, LabelSessionUID: string(s.UID)}.String()
	l, err := t.Client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("listing the session's pods in %s: %w", namespace, err)
	}
	names := make([]string, 0, len(l.Items))
	for _, p := range l.Items {
		names = append(names, p.Name)
	}
	return names, nil
}

// DebugNodesRole is the ClusterRole (config/target/rbac-debug.yaml) a
// session that may run kubectl debug node is bound to: get nodes.
const DebugNodesRole = "sessiongate-debug-nodes"

// EnsureDebugNodeReader binds the session's subject to DebugNodesRole with
// a ClusterRoleBinding of its own, which revocation deletes by its labels.
func EnsureDebugNodeReader(ctx context.Context, t Target, s *v1alpha1.Session) error {
	subject, err := SessionSubject(t, s)
	if err != nil {
		return err
	}
	_, err = ensureObject(ctx, t, s, "ClusterRoleBinding", t.Client.RbacV1().ClusterRoleBindings(), &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: ObjectName(t.Gateway, s) + ".nodes"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: DebugNodesRole},
		Subjects:   []rbacv1.Subject{subject},
	})
	return err
}

// labelledKind lists and deletes, by label across namespaces, one kind a
// debug session may have on a target.
type labelledKind struct {
	kind string
	list func(ctx context.Context, opts metav1.ListOptions) ([]metav1.Object, error)
	del  func(ctx context.Context, namespace, name string, opts metav1.DeleteOptions) error
}

// listDeleter is the part of a typed client-go client a labelledKind uses.
type listDeleter[L any] interface {
	List(ctx context.Context, opts metav1.ListOptions) (L, error)
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
}

// labelled makes the labelledKind of one typed client: in(namespace) is
// its client for a namespace (metav1.NamespaceAll lists them all), items
// the items of its list.
func labelled[L any, T any, PT interface {
	*T
	metav1.Object
}, C listDeleter[L]](kind string, in func(namespace string) C, items func(L) []T) labelledKind {
	return labelledKind{
		kind: kind,
		list: func(ctx context.Context, opts metav1.ListOptions) ([]metav1.Object, error) {
			l, err := in(metav1.NamespaceAll).List(ctx, opts)
			if err != nil {
				return nil, err
			}
			list := items(l)
			out := make([]metav1.Object, len(list))
			for i := range list {
				out[i] = PT(&list[i])
			}
			return out, nil
		},
		del: func(ctx context.Context, namespace, name string, opts metav1.DeleteOptions) error {
			return in(namespace).Delete(ctx, name, opts)
		},
	}
}

// debugKinds are what a debug session may leave on a target, in the order
// they are deleted: workloads before their pods (or the controllers make
// them again), pods before the Role that lets the session reach them, and
// the namespaces the gateway created last of all.
func debugKinds(t Target) []labelledKind {
	core, c := t.Client.CoreV1(), t.Client
	return []labelledKind{
		labelled("DaemonSets", c.AppsV1().DaemonSets, func(l *appsv1.DaemonSetList) []appsv1.DaemonSet { return l.Items }),
		labelled("Deployments", c.AppsV1().Deployments, func(l *appsv1.DeploymentList) []appsv1.Deployment { return l.Items }),
		labelled("Pods", core.Pods, func(l *corev1.PodList) []corev1.Pod { return l.Items }),
		labelled("Roles", c.RbacV1().Roles, func(l *rbacv1.RoleList) []rbacv1.Role { return l.Items }),
		labelled("ResourceQuotas", core.ResourceQuotas, func(l *corev1.ResourceQuotaList) []corev1.ResourceQuota { return l.Items }),
		labelled("PodDisruptionBudgets", c.PolicyV1().PodDisruptionBudgets, func(l *policyv1.PodDisruptionBudgetList) []policyv1.PodDisruptionBudget { return l.Items }),
		labelled("ConfigMaps", core.ConfigMaps, func(l *corev1.ConfigMapList) []corev1.ConfigMap { return l.Items }),
		labelled("Secrets", core.Secrets, func(l *corev1.SecretList) []corev1.Secret { return l.Items }),
		labelled("PersistentVolumeClaims", core.PersistentVolumeClaims, func(l *corev1.PersistentVolumeClaimList) []corev1.PersistentVolumeClaim { return l.Items }),
		labelled("NetworkPolicies", c.NetworkingV1().NetworkPolicies, func(l *networkingv1.NetworkPolicyList) []networkingv1.NetworkPolicy { return l.Items }),
		labelled("Namespaces", func(string) corev1client.NamespaceInterface { return core.Namespaces() }, func(l *corev1.NamespaceList) []corev1.Namespace { return l.Items }),
	}
}

// listDebug lists one debug kind; a target that refuses the list never
// gave the gateway the debug RBAC, so the gateway cannot have made any.
func listDebug(ctx context.Context, k labelledKind, opts metav1.ListOptions) ([]metav1.Object, error) {
	items, err := k.list(ctx, opts)
	if apierrors.IsForbidden(err) {
		klog.V(4).InfoS("Target refuses listing a debug kind; taking it to hold none of the gateway's", "kind", k.kind)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", k.kind, err)
	}
	return items, nil
}

// revokeDebug deletes, for revocation, every debug object with the
// session's labels (opts), namespaces last.
func revokeDebug(ctx context.Context, t Target, opts metav1.ListOptions) []error {
	var errs []error
	// Deleting a workload leaves its ReplicaSets and pods to the target's
	// garbage collector; the pods are deleted here as well, by label.
	background := metav1.DeletePropagationBackground
	for _, k := range debugKinds(t) {
		items, err := listDebug(ctx, k, opts)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, o := range items {
			if !o.GetDeletionTimestamp().IsZero() {
				continue
			}
			if k.kind == "Namespaces" {
				handed, err := handOverNamespace(ctx, t, o)
				if err != nil {
					errs = append(errs, err)
				}
				if handed || err != nil {
					continue
				}
			}
			del := preconditions(o.GetUID())
			del.PropagationPolicy = &background
			if err := k.del(ctx, o.GetNamespace(), o.GetName(), del); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("deleting %s %s/%s: %w", k.kind, o.GetNamespace(), o.GetName(), err))
				continue
			}
			klog.V(4).InfoS("Deleted debug object on target", "kind", k.kind, "namespace", o.GetNamespace(), "name", o.GetName())
		}
	}
	return errs
}

// debugRemnants lists the debug objects of this gateway's sessions, for
// the orphan sweep. One already being deleted (a namespace emptying, a pod
// stopping) is no remnant: there is nothing left to do to it.
func debugRemnants(ctx context.Context, t Target, opts metav1.ListOptions, add func(metav1.Object)) error {
	for _, k := range debugKinds(t) {
		items, err := listDebug(ctx, k, opts)
		if err != nil {
			return err
		}
		for _, o := range items {
			if o.GetDeletionTimestamp().IsZero() {
				add(o)
			}
		}
	}
	return nil
}

// handOverNamespace keeps a namespace the ending session created while
// another session of this gateway still works in it (two sessions of one
// template share its namespace): the namespace passes to that session,
// whose end removes it. A session's Role marks that it works there; the
// ending session's own Role is gone by now.
func handOverNamespace(ctx context.Context, t Target, ns metav1.Object) (bool, error) {
	sel := labels.Set{LabelManagedBy: ManagedByValue, LabelGateway: t.Gateway}.String() + "," + LabelSessionUID
	roles, err := t.Client.RbacV1().Roles(ns.GetName()).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return false, fmt.Errorf("listing Roles in namespace %s: %w", ns.GetName(), err)
	}
	for _, r := range roles.Items {
		if r.Labels[LabelSessionUID] == ns.GetLabels()[LabelSessionUID] || !r.DeletionTimestamp.IsZero() {
			continue
		}
		n, err := t.Client.CoreV1().Namespaces().Get(ctx, ns.GetName(), metav1.GetOptions{})
		if err != nil {
			return false, fmt.Errorf("reading namespace %s: %w", ns.GetName(), err)
		}
		if n.UID != ns.GetUID() {
			return true, nil
		}
		for _, l := range []string{LabelSessionUID, LabelSessionName, LabelSessionNamespace} {
			n.Labels[l] = r.Labels[l]
		}
		if _, err := t.Client.CoreV1().Namespaces().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
			return false, fmt.Errorf("handing namespace %s over to session %s: %w", n.Name, r.Labels[LabelSessionName], err)
		}
		klog.V(2).InfoS("Debug namespace passes to a session still using it", "namespace", n.Name, "session", r.Labels[LabelSessionNamespace]+"/"+r.Labels[LabelSessionName])
		return true, nil
	}
	return false, nil
}
