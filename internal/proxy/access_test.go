package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/endpoints/request"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/authz"
)

func TestCheckAccess(t *testing.T) {
	resolver := &request.RequestInfoFactory{APIPrefixes: sets.NewString("api", "apis"), GrouplessAPIPrefixes: sets.NewString("api")}
	info := func(method, path string) *request.RequestInfo {
		u, _ := url.Parse(path)
		i, err := resolver.NewRequestInfo(&http.Request{Method: method, URL: u})
		if err != nil {
			t.Fatal(err)
		}
		return i
	}
	debug := &v1alpha1.DebugStatus{
		Template: "debug-pods", Namespace: "dbg",
		Operations: v1alpha1.PodOperations{Exec: true, Logs: true},
		Pods:       []v1alpha1.DebugPod{{Name: "p1", Namespace: "dbg"}},
		Created: []v1alpha1.DebugCreated{{Kind: "PodCopy", Namespace: "dbg", Pod: "copy1"},
			{Kind: "EphemeralContainer", Namespace: "dbg", Pod: "app", Container: "debugger-x1"}},
	}
	attachable := debug.DeepCopy()
	attachable.Operations.Attach = true
	onlyLogs := debug.DeepCopy()
	onlyLogs.Operations = v1alpha1.PodOperations{Logs: true}
	for _, tc := range []struct {
		name, method, path string
		role               authz.Role
		debug              *v1alpha1.DebugStatus
		rule, msg          string
	}{
		{"owner anything", "DELETE", "/api/v1/namespaces/a/pods/x", authz.Owner, nil, "", ""},
		{"viewer list", "GET", "/api/v1/namespaces/a/pods", authz.Viewer, nil, "", ""},
		{"viewer watch", "GET", "/api/v1/namespaces/a/pods?watch=true", authz.Viewer, nil, "", ""},
		{"viewer logs", "GET", "/api/v1/namespaces/a/pods/x/log", authz.Viewer, nil, "", ""},
		{"viewer discovery", "GET", "/apis", authz.Viewer, nil, "", ""},
		{"viewer delete", "DELETE", "/api/v1/namespaces/a/pods/x", authz.Viewer, nil, RuleViewer, "viewers may only get, list, watch"},
		{"viewer exec by GET", "GET", "/api/v1/namespaces/a/pods/x/exec?command=sh", authz.Viewer, nil, RuleViewer, "pods/exec"},
		{"viewer service proxy", "GET", "/api/v1/namespaces/a/services/x/proxy/", authz.Viewer, nil, RuleViewer, ""},
		{"viewer node proxy", "GET", "/api/v1/nodes/n/proxy/exec", authz.Viewer, nil, RuleViewer, ""},
		{"viewer secret get", "GET", "/api/v1/namespaces/a/secrets/x", authz.Viewer, nil, RuleViewer, "no Secrets"},
		{"viewer secret list", "GET", "/api/v1/secrets", authz.Viewer, nil, RuleViewer, "no Secrets"},
		{"viewer configmap get", "GET", "/api/v1/namespaces/a/configmaps/x", authz.Viewer, nil, "", ""},
		{"viewer post non-resource", "POST", "/version", authz.Viewer, nil, RuleViewer, ""},
		{"debug exec own pod", "POST", "/api/v1/namespaces/dbg/pods/p1/exec?command=sh", authz.Participant, debug, "", ""},
		{"debug logs own pod", "GET", "/api/v1/namespaces/dbg/pods/p1/log", authz.Owner, debug, "", ""},
		{"debug viewer logs own pod", "GET", "/api/v1/namespaces/dbg/pods/p1/log", authz.Viewer, debug, "", ""},
		{"debug exec other pod", "POST", "/api/v1/namespaces/dbg/pods/other/exec?command=sh", authz.Owner, debug, RuleDebugPods, "not one of the session's debug pods (dbg/p1)"},
		{"debug exec same name other namespace", "POST", "/api/v1/namespaces/prod/pods/p1/exec", authz.Owner, debug, RuleDebugPods, "pod prod/p1"},
		{"debug port-forward not allowed", "POST", "/api/v1/namespaces/dbg/pods/p1/portforward", authz.Owner, debug, RuleAllowedPodOperations, "allows only exec, logs"},
		{"debug attach not allowed", "POST", "/api/v1/namespaces/dbg/pods/p1/attach", authz.Owner, debug, RuleAllowedPodOperations, "may not attach to pod dbg/p1"},
		{"debug attach to a copy", "POST", "/api/v1/namespaces/dbg/pods/copy1/attach", authz.Owner, attachable, "", ""},
		{"debug attach to its ephemeral container", "POST", "/api/v1/namespaces/dbg/pods/app/attach?container=debugger-x1", authz.Owner, attachable, "", ""},
		{"debug attach to the app's own container", "POST", "/api/v1/namespaces/dbg/pods/app/attach?container=app", authz.Owner, attachable, RuleDebugPods, `only in the ephemeral containers it added (debugger-x1), not "app"`},
		{"debug exec with no container named", "POST", "/api/v1/namespaces/dbg/pods/app/exec?command=sh", authz.Owner, debug, RuleDebugPods, "only in the ephemeral containers it added"},
		{"debug exec into a copy the template allows no exec in", "POST", "/api/v1/namespaces/dbg/pods/copy1/exec?command=sh", authz.Owner, onlyLogs, RuleAllowedPodOperations, "allows only logs"},
		{"debug pod proxy as port-forward", "GET", "/api/v1/namespaces/dbg/pods/p1/proxy/", authz.Owner, debug, RuleAllowedPodOperations, "may not port-forward pod dbg/p1"},
		{"debug pod proxy of another pod", "GET", "/api/v1/namespaces/dbg/pods/other:80/proxy/x", authz.Owner, debug, RuleDebugPods, ""},
		{"debug get other pod is the target's to judge", "GET", "/api/v1/namespaces/dbg/pods/other", authz.Owner, debug, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, _ := url.Parse(tc.path)
			rule, err := checkAccess("s1", tc.role, tc.debug, info(tc.method, tc.path), u)
			if rule != tc.rule {
				t.Fatalf("rule = %q, want %q (err %v)", rule, tc.rule, err)
			}
			if tc.rule == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || err.Status().Code != http.StatusForbidden || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want a 403 containing %q", err, tc.msg)
			}
		})
	}
}
