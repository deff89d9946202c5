package controlplane

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/credentials"
	"sessiongate.dev/sessiongate/internal/debug"
	"sessiongate.dev/sessiongate/internal/entitlement"
)

// +kubebuilder:rbac:groups=sessiongate.dev,namespace=sessiongate,resources=debugsessiontemplates;debugpodtemplates,verbs=get;list;watch

const (
	// debugStartingPoll is how often a session whose debug pods are not all
	// ready looks again.
	debugStartingPoll = time.Second
	// debugRefresh is how often an Active debug session refreshes its pods
	// in status.debug and its Role on the target.
	debugRefresh = 15 * time.Second
)

// ensureDebug deploys a debug session's workload on the target, narrows the
// session's Role there to its pods, and holds the session back until they
// are ready. Every part is create-if-missing, so a pass after a crash picks
// up where the last one stopped; what a failed session made, Revoke removes
// by its labels. done is true when the reconcile ends here.
func (r *SessionReconciler) ensureDebug(ctx context.Context, s *v1alpha1.Session, target credentials.Target, now time.Time) (done bool, res ctrl.Result, err error) {
	// Like minting, deploying acts on the target before any status says
	// so: never for a session a stale read still shows going.
	if stale, err := r.staleRead(ctx, s); err != nil || stale {
		// The watch brings the newer version and another pass.
		return true, ctrl.Result{RequeueAfter: staleRequeue}, err
	}
	plan, err := r.debugPlan(ctx, s, target.Cluster)
	if err != nil {
		res, err := r.debugStepFailed(ctx, s, nil, now, err)
		return true, res, err
	}
	st := s.Status.Debug
	if st.DeployedAt == nil && s.Status.ActivatedAt == nil {
		// The readiness deadline counts from here, in every mode: a
		// session whose namespace never comes does not wait forever.
		st.DeployedAt = &metav1.Time{Time: now}
		klog.V(2).InfoS("Deploying debug session", "session", klog.KObj(s), "mode", st.Mode, "namespace", st.Namespace, "cluster", s.Spec.Cluster)
	}
	created, err := credentials.EnsureDebugNamespace(ctx, target, s, st.Namespace, plan.CreateNamespace, plan.NamespaceSelector)
	if err != nil {
		res, err := r.debugStepFailed(ctx, s, plan, now, err)
		return true, res, err
	}
	if created {
		st.NamespaceCreated = true
	}

	ready, why, want := true, "", 0
	if plan.Workload != nil {
		workload, err := r.deployDebug(ctx, s, target, plan)
		if err != nil {
			res, err := r.debugStepFailed(ctx, s, plan, now, err)
			return true, res, err
		}
		want, ready, why, err = debugPods(ctx, target, s, plan, workload)
		if err != nil {
			res, err := r.debugStepFailed(ctx, s, plan, now, err)
			return true, res, err
		}
	}
	labelled, err := credentials.SessionPodNames(ctx, target, s, st.Namespace)
	if err != nil {
		res, err := r.debugStepFailed(ctx, s, plan, now, err)
		return true, res, err
	}
	if err := credentials.EnsureDebugRole(ctx, target, s, st.Namespace, debugRules(st, labelled)); err != nil {
		res, err := r.debugStepFailed(ctx, s, plan, now, err)
		return true, res, err
	}
	if k := st.KubectlDebug; k != nil && k.Node && st.Mode != v1alpha1.ModeWorkload {
		if err := credentials.EnsureDebugNodeReader(ctx, target, s); err != nil {
			res, err := r.debugStepFailed(ctx, s, plan, now, err)
			return true, res, err
		}
	}
	if ready || s.Status.ActivatedAt != nil {
		// An Active session keeps going while a pod restarts; its Role and
		// status.debug.pods follow the pods that are there.
		return false, ctrl.Result{}, nil
	}
	if timeout := plan.Workload.ReadinessTimeout; now.Sub(st.DeployedAt.Time) >= timeout {
		res, err := r.fail(ctx, s, v1alpha1.ReasonDebugPodsNotReady, fmt.Sprintf("%s after %s: %s", notReadyCount(st, want), timeout, why))
		return true, res, err
	}
	setCondition(s, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonDebugPodsStarting,
		fmt.Sprintf("%d/%d debug pods ready: %s", readyCount(st), max(want, len(st.Pods)), why))
	return true, ctrl.Result{RequeueAfter: debugStartingPoll}, nil
}

// debugPlan resolves the session's template and request. A session made by
// the REST API had its grant snapshotted into status.debug by the
// entitlement step; one created directly (the admin path) gets it here.
func (r *SessionReconciler) debugPlan(ctx context.Context, s *v1alpha1.Session, cluster *v1alpha1.Cluster) (*debug.Plan, error) {
	t, pt, err := debugTemplates(ctx, r.Client, s.Namespace, s.Spec.Debug.Template)
	if isTemplateMissing(err) && r.APIReader != nil {
		// Created a moment ago and not in the cache yet: a failure is final,
		// so it is decided on what the API server says.
		t, pt, err = debugTemplates(ctx, r.APIReader, s.Namespace, s.Spec.Debug.Template)
	}
	if isTemplateMissing(err) {
		return nil, &credentials.PermanentError{Reason: v1alpha1.ReasonTemplateInvalid, Msg: "spec.debug.template: " + err.Error()}
	}
	if err != nil {
		return nil, &managementError{err}
	}
	var groups []string
	if s.Spec.Requester != nil {
		groups = s.Spec.Requester.Groups
	}
	plan, errs := debug.Resolve(t, pt, debug.Request{
		Session: s.Name, Owner: ownerName(s), Cluster: s.Spec.Cluster, Groups: groups, Debug: *s.Spec.Debug,
		DeniedNamespaces: r.Policy.NeverGranted(credentials.SessionNamespace(cluster)),
	})
	if len(errs) > 0 {
		return nil, &credentials.PermanentError{Reason: v1alpha1.ReasonInvalidSpec, Msg: "spec." + errs.ToAggregate().Error()}
	}
	if s.Status.Debug == nil {
		s.Status.Debug = plan.Status()
	}
	if plan.Workload != nil && plan.Namespace != s.Status.Debug.Namespace {
		// The pod was rendered for the plan's namespace; the session may only
		// ever use the one it was granted.
		return nil, &credentials.PermanentError{Reason: v1alpha1.ReasonTemplateInvalid,
			Msg: fmt.Sprintf("template %s now resolves to namespace %q, but the session was granted %q", t.Name, plan.Namespace, s.Status.Debug.Namespace)}
	}
	return plan, nil
}

func isTemplateMissing(err error) bool {
	return errors.As(err, new(*entitlement.Denied)) || errors.As(err, new(*invalidRequest))
}

// debugStepFailed is stepFailed for the debug steps: a permanent error
// fails (and so cleans up) the session; anything else is retried, and says
// why while the session is not yet Active — until the readiness timeout,
// which holds for the whole deployment, not only for the pods: a session
// that could not be deployed in time fails too.
func (r *SessionReconciler) debugStepFailed(ctx context.Context, s *v1alpha1.Session, plan *debug.Plan, now time.Time, err error) (ctrl.Result, error) {
	reason, permanent := classify(err)
	if permanent {
		return r.fail(ctx, s, reason, err.Error())
	}
	if st := s.Status.Debug; s.Status.ActivatedAt == nil && st != nil && st.DeployedAt != nil {
		timeout := debug.DefaultReadinessTimeout
		if plan != nil && plan.Workload != nil {
			timeout = plan.Workload.ReadinessTimeout
		}
		if now.Sub(st.DeployedAt.Time) >= timeout {
			return r.fail(ctx, s, v1alpha1.ReasonDebugPodsNotReady, fmt.Sprintf("not deployed after %s: %v", timeout, err))
		}
	}
	if reason == reasonMintRetrying {
		reason = v1alpha1.ReasonDebugPodsStarting
	}
	if s.Status.ActivatedAt == nil {
		setCondition(s, v1alpha1.ConditionReady, metav1.ConditionFalse, reason, err.Error())
	}
	r.Recorder.Eventf(s, nil, corev1.EventTypeWarning, reason, "Deploy", "%s (retrying)", err.Error())
	return retry(err)
}

// deployDebug creates the workload and what comes with it, each labelled
// for the session, and returns the workload as the target holds it.
func (r *SessionReconciler) deployDebug(ctx context.Context, s *v1alpha1.Session, target credentials.Target, plan *debug.Plan) (metav1.Object, error) {
	ns, name, w := s.Status.Debug.Namespace, credentials.DebugName(target.Gateway, s), plan.Workload
	selector := credentials.DebugSelector(target.Gateway, s)
	var objs []metav1.Object
	if w.ResourceQuota != nil {
		objs = append(objs, &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: *w.ResourceQuota.DeepCopy()})
	}
	for i, u := range w.Supporting {
		o, err := supportingObject(u, ns)
		if err != nil {
			return nil, &credentials.PermanentError{Reason: v1alpha1.ReasonTemplateInvalid,
				Msg: fmt.Sprintf("pod template of %s: supporting object %d (%s %s): %v", plan.Template, i+1, u.GetKind(), u.GetName(), err)}
		}
		objs = append(objs, o)
	}
	if w.MinAvailable != nil {
		min := intstr.FromInt32(*w.MinAvailable)
		objs = append(objs, &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &min, Selector: &metav1.LabelSelector{MatchLabels: selector}}})
	}
	for _, o := range objs {
		if _, err := credentials.EnsureDebugObject(ctx, target, s, o); err != nil {
			return nil, err
		}
	}

	pod := w.Pod.DeepCopy()
	pod.Namespace, pod.Name = "", ""
	// The gateway's labels go on last: the template's author cannot take
	// them away, nor make other pods look like the session's.
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	maps.Copy(pod.Labels, credentials.SessionLabels(target.Gateway, s))
	maps.Copy(pod.Labels, selector)
	meta := metav1.ObjectMeta{Namespace: ns, Name: name}
	sel := &metav1.LabelSelector{MatchLabels: selector}
	var workload metav1.Object
	switch w.Kind {
	case v1alpha1.WorkloadDaemonSet:
		workload = &appsv1.DaemonSet{ObjectMeta: meta, Spec: appsv1.DaemonSetSpec{Selector: sel, Template: *pod}}
	case v1alpha1.WorkloadDeployment:
		replicas := w.Replicas
		workload = &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: sel, Template: *pod}}
	default:
		return nil, &credentials.PermanentError{Reason: v1alpha1.ReasonTemplateInvalid, Msg: fmt.Sprintf("template %s: unknown workload kind %q", plan.Template, w.Kind)}
	}
	return credentials.EnsureDebugObject(ctx, target, s, workload)
}

// supportingObject turns a pod template's extra document into its typed
// object in the debug namespace, whatever namespace the document named.
func supportingObject(u *unstructured.Unstructured, ns string) (metav1.Object, error) {
	var o metav1.Object
	want := "v1"
	switch u.GetKind() {
	case "ConfigMap":
		o = &corev1.ConfigMap{}
	case "Secret":
		o = &corev1.Secret{}
	case "PersistentVolumeClaim":
		o = &corev1.PersistentVolumeClaim{}
	case "NetworkPolicy":
		o, want = &networkingv1.NetworkPolicy{}, networkingv1.SchemeGroupVersion.String()
	default:
		return nil, fmt.Errorf("kind %q cannot be a supporting object", u.GetKind())
	}
	if u.GetAPIVersion() != want {
		return nil, fmt.Errorf("apiVersion %q, want %q", u.GetAPIVersion(), want)
	}
	if u.GetName() == "" {
		return nil, errors.New("metadata.name is required")
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, o, true); err != nil {
		return nil, err
	}
	o.SetNamespace(ns)
	o.SetResourceVersion("")
	o.SetUID("")
	o.SetOwnerReferences(nil)
	return o, nil
}

// debugPods fills status.debug.pods with the workload's pods and reports
// how many it should have, whether they are all ready, and if not, why.
func debugPods(ctx context.Context, target credentials.Target, s *v1alpha1.Session, plan *debug.Plan, workload metav1.Object) (want int, ready bool, why string, err error) {
	st := s.Status.Debug
	list, err := target.Client.CoreV1().Pods(st.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.Set(credentials.DebugSelector(target.Gateway, s)).String(),
	})
	if err != nil {
		return 0, false, "", fmt.Errorf("listing debug pods in %s: %w", st.Namespace, err)
	}
	var pods []v1alpha1.DebugPod
	var waiting []string
	for i := range list.Items {
		p := &list.Items[i]
		if !p.DeletionTimestamp.IsZero() {
			continue
		}
		if p.Spec.NodeName != "" && plan.NodeDenied(p.Spec.NodeName, nil) {
			// A node a glob denies (the scheduler only knows exact names):
			// the session may not touch this pod.
			waiting = append(waiting, fmt.Sprintf("pod %s: on denied node %s", p.Name, p.Spec.NodeName))
			continue
		}
		ready := podReady(p)
		pods = append(pods, v1alpha1.DebugPod{Name: p.Name, Namespace: p.Namespace, Node: p.Spec.NodeName, Ready: ready})
		if !ready {
			waiting = append(waiting, fmt.Sprintf("pod %s: %s", p.Name, notReadyReason(p)))
		}
	}
	slices.SortFunc(pods, func(a, b v1alpha1.DebugPod) int { return strings.Compare(a.Name, b.Name) })
	slices.Sort(waiting)
	st.Pods = pods

	want = int(plan.Workload.Replicas)
	if ds, ok := workload.(*appsv1.DaemonSet); ok {
		if ds.Status.ObservedGeneration < ds.Generation {
			return len(pods), false, "the DaemonSet controller has not counted the nodes yet", nil
		}
		want = int(ds.Status.DesiredNumberScheduled)
		if want == 0 {
			return 0, false, fmt.Sprintf("no node matched the DaemonSet's scheduling (%s)", describeScheduling(&plan.Workload.Pod.Spec)), nil
		}
	}
	switch {
	case len(pods) == 0:
		return want, false, "no debug pods yet (is the target's controller-manager running?)", nil
	case readyCount(st) < want || len(waiting) > 0:
		if len(waiting) == 0 {
			waiting = append(waiting, fmt.Sprintf("%d of %d pods created", len(pods), want))
		}
		return want, false, strings.Join(waiting, "; "), nil
	}
	return want, true, "", nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// notReadyReason says what a pod waits for, as kubectl describe would.
func notReadyReason(p *corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status != corev1.ConditionTrue {
			if c.Message != "" {
				return "not scheduled: " + c.Message
			}
			return "not scheduled"
		}
	}
	if p.Spec.NodeName == "" {
		return "not scheduled to a node"
	}
	for _, cs := range append(slices.Clone(p.Status.InitContainerStatuses), p.Status.ContainerStatuses...) {
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			if w.Message != "" {
				return fmt.Sprintf("container %s: %s: %s", cs.Name, w.Reason, w.Message)
			}
			return fmt.Sprintf("container %s: %s", cs.Name, w.Reason)
		}
		if t := cs.State.Terminated; t != nil {
			return fmt.Sprintf("container %s terminated: %s (exit code %d)", cs.Name, t.Reason, t.ExitCode)
		}
	}
	return fmt.Sprintf("%s on node %s", p.Status.Phase, p.Spec.NodeName)
}

func describeScheduling(spec *corev1.PodSpec) string {
	var parts []string
	if len(spec.NodeSelector) > 0 {
		parts = append(parts, "nodeSelector "+labels.Set(spec.NodeSelector).String())
	}
	if a := spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		parts = append(parts, "a required node affinity")
	}
	if len(parts) == 0 {
		return "no node constraints; does the target have nodes?"
	}
	return strings.Join(parts, ", ")
}

func readyCount(st *v1alpha1.DebugStatus) int {
	n := 0
	for _, p := range st.Pods {
		if p.Ready {
			n++
		}
	}
	return n
}

func notReadyCount(st *v1alpha1.DebugStatus, want int) string {
	want = max(want, len(st.Pods))
	if want == 0 {
		return "no debug pods"
	}
	return fmt.Sprintf("%d of %d debug pods not ready", want-readyCount(st), want)
}

// debugRules are the session's rights in its debug namespace: to see the
// pods there, and the template's operations on its own pods only, by name.
// A rule with no pod to name is left out — resourceNames empty would mean
// every pod. In mode kubectl-debug and hybrid the session may also add
// ephemeral containers, create and delete pods (copies, node pods) and
// attach; what it may create is judged by the gateway before the target
// sees it.
// debugRules are the rules of a session's Role. A pod kubectl debug made is
// named only while it carries the session's labels (labelled): a pod of the
// same name made since by someone else never inherits its rights.
func debugRules(st *v1alpha1.DebugStatus, labelled []string) []rbacv1.PolicyRule {
	var names []string
	for _, p := range st.Pods {
		if p.Namespace == st.Namespace {
			names = append(names, p.Name)
		}
	}
	for _, c := range st.Created {
		if (c.Kind == "PodCopy" || c.Kind == "NodePod") && c.Namespace == st.Namespace && slices.Contains(labelled, c.Pod) {
			names = append(names, c.Pod)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)

	rules := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}}}
	onPods := func(allowed bool, subresource string, verbs ...string) {
		if allowed && len(names) > 0 {
			rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{subresource}, ResourceNames: names, Verbs: verbs})
		}
	}
	ops := st.Operations
	onPods(ops.Exec, "pods/exec", "create", "get")
	onPods(ops.Attach, "pods/attach", "create", "get")
	onPods(ops.Logs, "pods/log", "get")
	onPods(ops.PortForward, "pods/portforward", "create", "get")
	if st.Mode == v1alpha1.ModeKubectlDebug || st.Mode == v1alpha1.ModeHybrid {
		// A pod it creates has no name yet, and an ephemeral container
		// may go into any pod of the namespace (the gateway judges each);
		// it deletes only the copies and node pods it made.
		rules = append(rules,
			rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods/ephemeralcontainers"}, Verbs: []string{"patch", "update"}},
			rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"create"}},
			rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods/attach"}, Verbs: []string{"create", "get"}},
		)
		var made []string
		for _, c := range st.Created {
			if (c.Kind == "PodCopy" || c.Kind == "NodePod") && c.Namespace == st.Namespace && slices.Contains(labelled, c.Pod) {
				made = append(made, c.Pod)
			}
		}
		slices.Sort(made)
		if made = slices.Compact(made); len(made) > 0 {
			rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}, ResourceNames: made, Verbs: []string{"delete"}})
		}
	}
	return rules
}

// ephemeralContainers lists the ephemeral containers a debug session added,
// as namespace/pod/container.
func ephemeralContainers(s *v1alpha1.Session) string {
	if s.Status.Debug == nil {
		return ""
	}
	const shown = 8
	var out []string
	n := 0
	for _, c := range s.Status.Debug.Created {
		if c.Kind == "EphemeralContainer" {
			if n++; n <= shown {
				out = append(out, c.Namespace+"/"+c.Pod+"/"+c.Container)
			}
		}
	}
	if n > shown {
		out = append(out, fmt.Sprintf("and %d more (status.debug.created)", n-shown))
	}
	return strings.Join(out, ", ")
}
