// Package debug decides what a debug session deploys and may touch: it
// resolves a DebugSessionTemplate, its DebugPodTemplate and a request (the
// namespace, the variables, the scheduling option) into a Plan, refusing
// whatever the template does not allow with an error naming the field. The
// REST API resolves before it creates a Session, so a requester hears at
// once; the leader resolves again when it deploys.
package debug

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"sessiongate.dev/sessiongate/api/v1alpha1"
)

// DefaultReadinessTimeout is how long debug pods may take to become ready
// when the template does not say.
const DefaultReadinessTimeout = 5 * time.Minute

// DefaultOperations are what a session may do to its debug pods when the
// template does not say: exec and logs.
var DefaultOperations = v1alpha1.PodOperations{Exec: true, Logs: true}

// SupportingKinds are the objects a multi-document pod template may add.
var SupportingKinds = []string{"ConfigMap", "Secret", "PersistentVolumeClaim", "NetworkPolicy"}

// Request is a debug session request, as the gateway verified it.
type Request struct {
	// Session, Owner and Cluster are the template's context.
	Session, Owner, Cluster string
	// Groups of the requester, for scheduling options limited to groups.
	Groups []string
	Debug  v1alpha1.DebugRequest
	// DeniedNamespaces are never allowed, whatever the template says: the
	// gateway's own guards and the target's session namespace.
	DeniedNamespaces []string
}

// Plan is what a debug session deploys and may touch.
type Plan struct {
	Template  string
	Mode      v1alpha1.DebugMode
	Namespace string
	// CreateNamespace: make the namespace if it is missing (and then
	// remove it at the end).
	CreateNamespace bool
	// NamespaceSelector, if set, must match an existing namespace's labels.
	NamespaceSelector *metav1.LabelSelector
	Operations        v1alpha1.PodOperations
	KubectlDebug      *v1alpha1.KubectlDebugRules
	DeniedNodes       []string
	DeniedNodeLabels  []string
	// Workload is nil in mode kubectl-debug.
	Workload *Workload
}

// Workload is the debug pods' workload, before the gateway names and labels
// it.
type Workload struct {
	Kind     v1alpha1.WorkloadKind
	Replicas int32
	// Pod carries the template's pod with the scheduling constraints
	// applied.
	Pod              corev1.PodTemplateSpec
	Supporting       []*unstructured.Unstructured
	ReadinessTimeout time.Duration
	ResourceQuota    *corev1.ResourceQuotaSpec
	MinAvailable     *int32
}

// Status is the part of the plan a session's status keeps: what it was
// granted, so that editing the template later never widens it.
func (p *Plan) Status() *v1alpha1.DebugStatus {
	return &v1alpha1.DebugStatus{
		Template:         p.Template,
		Mode:             p.Mode,
		Namespace:        p.Namespace,
		Operations:       p.Operations,
		KubectlDebug:     p.KubectlDebug.DeepCopy(),
		DeniedNodes:      slices.Clone(p.DeniedNodes),
		DeniedNodeLabels: slices.Clone(p.DeniedNodeLabels),
	}
}

// NeedsPodTemplate reports whether t deploys pods, and so needs its
// DebugPodTemplate to resolve.
func NeedsPodTemplate(t *v1alpha1.DebugSessionTemplate) bool {
	return t.Spec.Mode != v1alpha1.ModeKubectlDebug && t.Spec.Workload != nil
}

// Resolve decides the plan for req under t; pt is t's pod template (nil in
// mode kubectl-debug). Every error names the request's field or the
// template's.
func Resolve(t *v1alpha1.DebugSessionTemplate, pt *v1alpha1.DebugPodTemplate, req Request) (*Plan, field.ErrorList) {
	root := field.NewPath("debug")
	var errs field.ErrorList
	p := &Plan{
		Template:          t.Name,
		Mode:              t.Spec.Mode,
		CreateNamespace:   t.Spec.Namespace.Create,
		Operations:        DefaultOperations,
		KubectlDebug:      t.Spec.KubectlDebug.DeepCopy(),
		NamespaceSelector: t.Spec.Namespace.Selector.DeepCopy(),
	}
	if p.Mode == "" {
		p.Mode = v1alpha1.ModeWorkload
	}
	if p.Mode == v1alpha1.ModeWorkload {
		p.KubectlDebug = nil
	}
	if ops := t.Spec.AllowedPodOperations; ops != nil {
		p.Operations = *ops
	}

	p.Namespace, errs = namespace(t, req.Debug.Namespace, root.Child("namespace"))
	if slices.Contains(req.DeniedNamespaces, p.Namespace) && len(errs) == 0 {
		errs = append(errs, field.Forbidden(root.Child("namespace"), fmt.Sprintf("namespace %q may never be used through the gateway", p.Namespace)))
	}
	sched := t.Spec.Scheduling
	if sched != nil {
		p.DeniedNodes = slices.Clone(sched.DeniedNodes)
		p.DeniedNodeLabels = slices.Clone(sched.DeniedNodeLabels)
	}
	option, oerrs := schedulingOption(t, req, root.Child("scheduling"))
	errs = append(errs, oerrs...)

	if p.Mode == v1alpha1.ModeKubectlDebug {
		if len(req.Debug.Variables) > 0 {
			errs = append(errs, field.Forbidden(root.Child("variables"), fmt.Sprintf("template %s deploys no pods and takes no variables", t.Name)))
		}
		return p, errs
	}
	w := t.Spec.Workload
	if w == nil || pt == nil {
		return p, append(errs, field.Required(field.NewPath("template", "spec", "workload"), fmt.Sprintf("template %s in mode %s names no pod template", t.Name, p.Mode)))
	}
	vars, verrs := variables(pt, req.Debug.Variables, root.Child("variables"))
	errs = append(errs, verrs...)
	if pt.Spec.Text != "" && (!safeValue.MatchString(req.Owner) || strings.HasPrefix(req.Owner, "-")) {
		// The owner's name is pasted into the pod template's YAML too.
		errs = append(errs, field.Invalid(field.NewPath("owner"), req.Owner, fmt.Sprintf("pod template %s is rendered with the owner's name, which may hold only letters, digits and . _ : / @ = + -", pt.Name)))
	}
	if len(errs) > 0 {
		return p, errs
	}
	node := ""
	if option != nil && option.NodeSelector != nil {
		node = option.NodeSelector[corev1.LabelHostname]
	}
	pod, supporting, err := render(pt, TemplateContext{
		Session: req.Session, Owner: req.Owner, Cluster: req.Cluster,
		Namespace: p.Namespace, Node: node, Vars: vars,
	})
	if err != nil {
		return p, field.ErrorList{field.Invalid(field.NewPath("podTemplate", pt.Name), "", err.Error())}
	}
	applyScheduling(&pod.Spec, sched, option)
	if pod.Spec.AutomountServiceAccountToken == nil {
		// Debug pods run as the namespace's default ServiceAccount; its
		// token is nothing a debugger needs, unless the template says so.
		pod.Spec.AutomountServiceAccountToken = new(bool)
	}
	p.Workload = &Workload{
		Kind:             w.Kind,
		Replicas:         1,
		Pod:              *pod,
		Supporting:       supporting,
		ReadinessTimeout: DefaultReadinessTimeout,
		ResourceQuota:    w.ResourceQuota.DeepCopy(),
		MinAvailable:     w.MinAvailable,
	}
	if w.Replicas != nil {
		p.Workload.Replicas = *w.Replicas
	}
	if w.ReadinessTimeout != nil {
		p.Workload.ReadinessTimeout = w.ReadinessTimeout.Duration
	}
	return p, nil
}

// namespace is the request's namespace, or the template's default, if the
// template allows it.
func namespace(t *v1alpha1.DebugSessionTemplate, asked string, fp *field.Path) (string, field.ErrorList) {
	ns := t.Spec.Namespace
	if asked == "" {
		asked = ns.Default
	}
	if msgs := validation.IsDNS1123Label(asked); len(msgs) > 0 {
		return asked, field.ErrorList{field.Invalid(fp, asked, msgs[0])}
	}
	switch {
	case matchesAny(ns.Deny, asked):
		return asked, field.ErrorList{field.Forbidden(fp, fmt.Sprintf("namespace %q is denied by template %s", asked, t.Name))}
	case asked != ns.Default && !matchesAny(ns.Allow, asked):
		allowed := append([]string{ns.Default}, ns.Allow...)
		return asked, field.ErrorList{field.Forbidden(fp, fmt.Sprintf("namespace %q is not allowed by template %s (allowed: %s)", asked, t.Name, strings.Join(allowed, ", ")))}
	case strings.HasPrefix(asked, "kube-") && !slices.Contains(ns.Allow, asked) && asked != ns.Default:
		// A glob never reaches kube-system and its kind: only a name does.
		return asked, field.ErrorList{field.Forbidden(fp, fmt.Sprintf("namespace %q must be named exactly in template %s's allow list", asked, t.Name))}
	}
	return asked, nil
}

// schedulingOption is the option the request chose (or the default), if
// the requester's groups may choose it.
func schedulingOption(t *v1alpha1.DebugSessionTemplate, req Request, fp *field.Path) (*v1alpha1.SchedulingOption, field.ErrorList) {
	sched := t.Spec.Scheduling
	name := req.Debug.Scheduling
	if name == "" && sched != nil {
		name = sched.DefaultOption
	}
	if name == "" {
		return nil, nil
	}
	if sched == nil {
		return nil, field.ErrorList{field.NotSupported(fp, name, []string{})}
	}
	var names []string
	for i := range sched.Options {
		o := &sched.Options[i]
		names = append(names, o.Name)
		if o.Name != name {
			continue
		}
		if len(o.Groups) > 0 && !slices.ContainsFunc(req.Groups, func(g string) bool { return slices.Contains(o.Groups, g) }) {
			return nil, field.ErrorList{field.Forbidden(fp, fmt.Sprintf("scheduling option %q of template %s is only for groups %s", name, t.Name, strings.Join(o.Groups, ", ")))}
		}
		return o, nil
	}
	return nil, field.ErrorList{field.NotSupported(fp, name, names)}
}

// applyScheduling adds the template's constraints and the option's to the
// pod. The template's come last on every key, so neither the pod template's
// author nor the option loosens them.
func applyScheduling(spec *corev1.PodSpec, sched *v1alpha1.DebugScheduling, option *v1alpha1.SchedulingOption) {
	if sched == nil {
		return
	}
	if spec.NodeSelector == nil && (len(sched.NodeSelector) > 0 || (option != nil && len(option.NodeSelector) > 0)) {
		spec.NodeSelector = map[string]string{}
	}
	if option != nil {
		for k, v := range option.NodeSelector {
			spec.NodeSelector[k] = v
		}
		spec.Tolerations = append(spec.Tolerations, option.Tolerations...)
	}
	for k, v := range sched.NodeSelector {
		spec.NodeSelector[k] = v
	}
	spec.Tolerations = append(spec.Tolerations, sched.Tolerations...)
	if sched.Affinity != nil {
		spec.Affinity = sched.Affinity.DeepCopy()
	}
	// Denied nodes and node labels: a required node affinity term the
	// scheduler holds, added to every term there is.
	var reqs []corev1.NodeSelectorRequirement
	var denied []string
	for _, n := range sched.DeniedNodes {
		if !strings.ContainsAny(n, "*?[") {
			denied = append(denied, n)
		}
	}
	if len(denied) > 0 {
		reqs = append(reqs, corev1.NodeSelectorRequirement{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpNotIn, Values: denied})
	}
	for _, l := range sched.DeniedNodeLabels {
		k, v, hasValue := strings.Cut(l, "=")
		if hasValue {
			reqs = append(reqs, corev1.NodeSelectorRequirement{Key: k, Operator: corev1.NodeSelectorOpNotIn, Values: []string{v}})
		} else {
			reqs = append(reqs, corev1.NodeSelectorRequirement{Key: k, Operator: corev1.NodeSelectorOpDoesNotExist})
		}
	}
	if len(reqs) == 0 {
		return
	}
	if spec.Affinity == nil {
		spec.Affinity = &corev1.Affinity{}
	}
	if spec.Affinity.NodeAffinity == nil {
		spec.Affinity.NodeAffinity = &corev1.NodeAffinity{}
	}
	na := spec.Affinity.NodeAffinity
	if na.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		na.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{}}}
	}
	terms := na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	for i := range terms {
		terms[i].MatchExpressions = append(terms[i].MatchExpressions, reqs...)
	}
}

// NodeDenied reports whether a node (by name and labels) may not run debug
// pods under the plan.
func (p *Plan) NodeDenied(name string, nodeLabels map[string]string) bool {
	if matchesAny(p.DeniedNodes, name) {
		return true
	}
	for _, l := range p.DeniedNodeLabels {
		k, v, hasValue := strings.Cut(l, "=")
		if got, ok := nodeLabels[k]; ok && (!hasValue || got == v) {
			return true
		}
	}
	return false
}

// safeValue is what a string variable (and the owner's name) may hold: it is
// pasted into YAML, so nothing that can end a scalar, start a structure, a
// comment or a list item, or quote.
var safeValue = regexp.MustCompile(`^[A-Za-z0-9._:/@=+-]*$`)

// variables checks the request's values against the pod template's
// declarations and returns every declared variable's value, typed.
func variables(pt *v1alpha1.DebugPodTemplate, given map[string]string, fp *field.Path) (map[string]any, field.ErrorList) {
	var errs field.ErrorList
	declared := map[string]*v1alpha1.DebugVariable{}
	for i := range pt.Spec.Variables {
		declared[pt.Spec.Variables[i].Name] = &pt.Spec.Variables[i]
	}
	for name := range given {
		if declared[name] == nil {
			var names []string
			for n := range declared {
				names = append(names, n)
			}
			slices.Sort(names)
			errs = append(errs, field.NotSupported(fp.Key(name), name, names))
		}
	}
	out := map[string]any{}
	for name, d := range declared {
		vp := fp.Key(name)
		raw, ok := given[name]
		if !ok {
			if d.Default == nil {
				errs = append(errs, field.Required(vp, fmt.Sprintf("pod template %s needs variable %s%s", pt.Name, name, describeVar(d))))
				continue
			}
			raw = *d.Default
		}
		if len(d.Enum) > 0 && !slices.Contains(d.Enum, raw) {
			errs = append(errs, field.NotSupported(vp, raw, d.Enum))
			continue
		}
		switch d.Type {
		case v1alpha1.VariableInt:
			n, err := strconv.ParseInt(raw, 10, 64)
			switch {
			case err != nil:
				errs = append(errs, field.Invalid(vp, raw, "must be an integer"))
			case d.Minimum != nil && n < *d.Minimum:
				errs = append(errs, field.Invalid(vp, raw, fmt.Sprintf("must be at least %d", *d.Minimum)))
			case d.Maximum != nil && n > *d.Maximum:
				errs = append(errs, field.Invalid(vp, raw, fmt.Sprintf("must be at most %d", *d.Maximum)))
			default:
				out[name] = n
			}
		case v1alpha1.VariableBool:
			b, err := strconv.ParseBool(raw)
			if err != nil || (raw != "true" && raw != "false") {
				errs = append(errs, field.Invalid(vp, raw, "must be true or false"))
				continue
			}
			out[name] = b
		default:
			limit := 256
			if d.MaxLength != nil {
				limit = int(*d.MaxLength)
			}
			switch {
			case len(raw) > limit:
				errs = append(errs, field.TooLong(vp, "", limit))
			case !safeValue.MatchString(raw) || strings.HasPrefix(raw, "-"):
				errs = append(errs, field.Invalid(vp, raw, "may hold only letters, digits and . _ : / @ = + - (and not start with -)"))
			case d.Pattern != "":
				re, err := regexp.Compile("^(?:" + d.Pattern + ")$")
				if err != nil {
					errs = append(errs, field.Invalid(field.NewPath("podTemplate", pt.Name, "variables").Key(name).Child("pattern"), d.Pattern, err.Error()))
				} else if !re.MatchString(raw) {
					errs = append(errs, field.Invalid(vp, raw, "must match "+d.Pattern))
				} else {
					out[name] = raw
				}
			default:
				out[name] = raw
			}
		}
	}
	return out, errs
}

func describeVar(d *v1alpha1.DebugVariable) string {
	if d.Description != "" {
		return " (" + d.Description + ")"
	}
	return ""
}

// TemplateContext is what a pod template's text sees.
type TemplateContext struct {
	Session, Owner, Cluster, Namespace, Node string
	Vars                                     map[string]any
}

// render turns the pod template into a pod and its supporting objects.
func render(pt *v1alpha1.DebugPodTemplate, ctx TemplateContext) (*corev1.PodTemplateSpec, []*unstructured.Unstructured, error) {
	if pt.Spec.Template != nil {
		return pt.Spec.Template.DeepCopy(), nil, nil
	}
	tmpl, err := template.New(pt.Name).Option("missingkey=error").Parse(pt.Spec.Text)
	if err != nil {
		return nil, nil, fmt.Errorf("text does not parse: %v", err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, ctx); err != nil {
		return nil, nil, fmt.Errorf("text does not render: %v", err)
	}
	docs := utilyaml.NewYAMLReader(bufio.NewReader(&buf))
	var pod *corev1.PodTemplateSpec
	var supporting []*unstructured.Unstructured
	for i := 0; ; i++ {
		doc, err := docs.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("document %d does not read: %v", i, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		if pod == nil {
			pod = &corev1.PodTemplateSpec{}
			if err := yaml.UnmarshalStrict(doc, pod); err != nil {
				return nil, nil, fmt.Errorf("the first document is not a pod template (metadata, spec): %v", err)
			}
			continue
		}
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &obj.Object); err != nil {
			return nil, nil, fmt.Errorf("document %d does not parse: %v", i, err)
		}
		if !slices.Contains(SupportingKinds, obj.GetKind()) {
			return nil, nil, fmt.Errorf("document %d is a %q; a pod template may add only %s", i, obj.GetKind(), strings.Join(SupportingKinds, ", "))
		}
		supporting = append(supporting, obj)
	}
	if pod == nil || len(pod.Spec.Containers) == 0 {
		return nil, nil, fmt.Errorf("renders no pod with containers")
	}
	return pod, supporting, nil
}

func matchesAny(patterns []string, s string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool {
		ok, err := path.Match(p, s)
		return err == nil && ok
	})
}
