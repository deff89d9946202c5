package controlplane

import (
	"slices"
	"testing"

	"sessiongate.dev/sessiongate/api/v1alpha1"
)

// A debug session's Role names its pods; a rule with no pod to name is left
// out, never written with empty resourceNames (which means every pod).
func TestDebugRulesNameOnlyTheSessionsPods(t *testing.T) {
	pods := []v1alpha1.DebugPod{{Name: "b", Namespace: "dbg"}, {Name: "a", Namespace: "dbg"}, {Name: "elsewhere", Namespace: "other"}}
	for _, c := range []struct {
		name string
		st   v1alpha1.DebugStatus
		want map[string][]string // subresource → resourceNames; "" for unnamed
	}{
		{"no pods yet", v1alpha1.DebugStatus{Namespace: "dbg", Mode: v1alpha1.ModeWorkload, Operations: v1alpha1.PodOperations{Exec: true, Logs: true}},
			map[string][]string{"pods": nil}},
		{"exec and logs", v1alpha1.DebugStatus{Namespace: "dbg", Mode: v1alpha1.ModeWorkload, Operations: v1alpha1.PodOperations{Exec: true, Logs: true}, Pods: pods},
			map[string][]string{"pods": nil, "pods/exec": {"a", "b"}, "pods/log": {"a", "b"}}},
		{"every operation", v1alpha1.DebugStatus{Namespace: "dbg", Mode: v1alpha1.ModeWorkload, Operations: v1alpha1.PodOperations{Exec: true, Attach: true, Logs: true, PortForward: true}, Pods: pods[:1]},
			map[string][]string{"pods": nil, "pods/exec": {"b"}, "pods/attach": {"b"}, "pods/log": {"b"}, "pods/portforward": {"b"}}},
		{"kubectl-debug copies", v1alpha1.DebugStatus{Namespace: "dbg", Mode: v1alpha1.ModeKubectlDebug, Operations: v1alpha1.PodOperations{Exec: true},
			Created: []v1alpha1.DebugCreated{{Kind: "PodCopy", Namespace: "dbg", Pod: "web-copy"}, {Kind: "EphemeralContainer", Namespace: "dbg", Pod: "web"}}},
			map[string][]string{"pods": nil, "pods/exec": {"web-copy"}, "pods/ephemeralcontainers": nil, "pods/attach": nil}},
	} {
		got := map[string][]string{}
		for _, r := range debugRules(&c.st, []string{"web-copy"}) {
			for _, res := range r.Resources {
				if r.ResourceNames != nil && len(r.ResourceNames) == 0 {
					t.Errorf("%s: rule %+v has empty resourceNames", c.name, r)
				}
				if _, dup := got[res]; dup && res != "pods" {
					t.Errorf("%s: %s in two rules", c.name, res)
				}
				if _, seen := got[res]; !seen || r.ResourceNames == nil {
					got[res] = r.ResourceNames
				}
			}
		}
		if len(got) != len(c.want) {
			t.Errorf("%s: rules for %v, want %v", c.name, keys(got), keys(c.want))
		}
		for res, names := range c.want {
			if g, ok := got[res]; !ok || !slices.Equal(g, names) {
				t.Errorf("%s: %s resourceNames %v (present %v), want %v", c.name, res, g, ok, names)
			}
		}
	}
	if r := debugRules(&v1alpha1.DebugStatus{Namespace: "dbg"}, nil); len(r) != 1 || !slices.Equal(r[0].Verbs, []string{"get", "list", "watch"}) {
		t.Errorf("a session with no operations gets %+v, want only to see its namespace's pods", r)
	}
}

// kubectl-debug mode deletes only the pods it made: never any pod of the
// namespace.
func TestDebugRulesDeleteOnlyTheSessionsOwnCopies(t *testing.T) {
	st := v1alpha1.DebugStatus{Namespace: "dbg", Mode: v1alpha1.ModeKubectlDebug,
		Created: []v1alpha1.DebugCreated{{Kind: "PodCopy", Namespace: "dbg", Pod: "web-copy"}, {Kind: "EphemeralContainer", Namespace: "dbg", Pod: "web"}, {Kind: "NodePod", Namespace: "dbg", Pod: "node-debugger"}}}
	var deletes [][]string
	for _, r := range debugRules(&st, []string{"web-copy", "node-debugger"}) {
		if slices.Contains(r.Resources, "pods") && slices.Contains(r.Verbs, "delete") {
			deletes = append(deletes, r.ResourceNames)
		}
	}
	if len(deletes) != 1 || !slices.Equal(deletes[0], []string{"node-debugger", "web-copy"}) {
		t.Errorf("delete on pods: %v, want one rule naming node-debugger and web-copy", deletes)
	}
	// A name the session once used, now another's pod without its labels.
	for _, r := range debugRules(&st, []string{"web-copy"}) {
		if slices.Contains(r.ResourceNames, "node-debugger") {
			t.Errorf("a pod no longer labelled for the session is named: %+v", r)
		}
	}
	st.Created = nil
	for _, r := range debugRules(&st, nil) {
		if slices.Contains(r.Resources, "pods") && slices.Contains(r.Verbs, "delete") {
			t.Errorf("a session that made no pod may delete pods: %+v", r)
		}
	}
}

func keys(m map[string][]string) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	slices.Sort(k)
	return k
}
