package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/testenv"
)

// A policy's exec rules hold for vanilla kubectl through the gateway: a
// denied command, however wrapped, never reaches the target, the refusal
// names its rule, and an allowed command runs.
func TestExecRulesOfThePolicyHoldForKubectl(t *testing.T) {
	rec := recordedCluster(t)
	accessPolicy(t, "api-exec-rules", func(s *v1alpha1.AccessPolicySpec) {
		s.Requesters = v1alpha1.Subjects{Users: []string{"erin@example.com"}}
		s.Clusters = v1alpha1.ClusterSelector{Names: []string{recordedClusterName}}
		s.AccessLevels = []v1alpha1.PolicyAccessLevel{{ClusterRole: "edit", Namespaces: &v1alpha1.NamespaceFilter{Allow: []string{"demo"}}}}
		s.Streams = &v1alpha1.StreamPolicy{ForbidInteractive: true, Exec: &v1alpha1.ExecRules{Deny: []string{"rm", "dd"}}}
	})
	erin := bearer(token(t, "erin@example.com"))
	r := requestAs(t, erin, `{"cluster":"`+recordedClusterName+`","accessLevel":{"clusterRole":"edit","namespaces":["demo"]},"ttl":"30m"}`)
	var s v1alpha1.Session
	testenv.Must(t, json.Unmarshal([]byte(r.body), &s))
	waitPhaseAPI(t, erin, s.Name, v1alpha1.PhaseActive)
	testenv.Eventually(t, 30*time.Second, func() error {
		for i, gw := range replicas {
			if cur, ok := gw.Registry.Get(s.Name); !ok || cur.Limits().Streams == nil {
				return fmt.Errorf("replica %d does not serve the session's stream limits yet", i)
			}
		}
		return nil
	})
	kc := kubeconfig(t, 0, s.Name, token(t, "erin@example.com"))

	for _, argv := range [][]string{
		{"rm", "-rf", "/tmp/x"},
		{"/bin/../bin/rm", "x"},
		{"env", "nice", "dd", "if=/dev/zero"},
		{"sh", "-c", "ls; 'r'm x"},
		{"sh", "-c", "$(echo rm) x"},
		// GNU sed's e command runs its argument.
		{"sed", "-n", "1e rm -rf /tmp/x", "/etc/hostname"},
	} {
		out, err := runKubectl(t, kc, nil, "", append([]string{"exec", "-n", "demo", "web", "--"}, argv...)...)
		if err == nil || !strings.Contains(out, "is forbidden") || !strings.Contains(out, "refused by") {
			t.Errorf("kubectl exec %q: %v\n%q", argv, err, out)
		}
	}
	// A shell, an interpreter or xargs on a pipe would run whatever the
	// caller pipes in, past every rule (and past forbidInteractive, which
	// refuses only a TTY): kubectl exec -i without -t.
	for _, argv := range [][]string{{"sh"}, {"env", "sh"}, {"sh", "-s"}, {"python3"}, {"xargs", "sh"}} {
		out, err := runKubectl(t, kc, nil, "rm -rf /tmp/x\n", append([]string{"exec", "-i", "-n", "demo", "web", "--"}, argv...)...)
		if err == nil || !strings.Contains(out, "is forbidden") || !strings.Contains(out, "undecidable") {
			t.Errorf("kubectl exec -i %q with commands on stdin: %v\n%q", argv, err, out)
		}
	}
	if n := len(proxied(rec, "/exec")); n != 0 {
		t.Errorf("%d refused exec(s) reached the target", n)
	}
	if !strings.Contains(auditLog.String(), `"sessiongate.dev/refused-by":"deny rm"`) {
		t.Errorf("no audit record names the rule that refused the exec")
	}

	out, err := runKubectl(t, kc, nil, "", "exec", "-n", "demo", "web", "--", "echo", "allowed")
	if err != nil || !strings.Contains(out, "allowed") {
		t.Errorf("an allowed command: %v\n%s", err, out)
	}
	// sed whose script runs nothing runs.
	out, err = runKubectl(t, kc, nil, "", "exec", "-n", "demo", "web", "--", "sed", "-n", "s/^/sed ran: /p", "/etc/hostname")
	if err != nil || !strings.Contains(out, "sed ran: ") {
		t.Errorf("sed with a script that runs nothing: %v\n%s", err, out)
	}

	// Interactive streams are forbidden: exec with stdin and a TTY, and attach.
	for _, q := range []string{"exec?command=sh&stdin=true&tty=true&stdout=true", "attach?stdin=true&stdout=true"} {
		resp := call(t, "POST", "/sessiongate/"+s.Name+"/kas/api/v1/namespaces/demo/pods/web/"+q, nil, erin)
		if resp.code != http.StatusForbidden || !strings.Contains(resp.st.Message, "forbids interactive streams") {
			t.Errorf("%s: %d %q, want 403", q, resp.code, resp.st.Message)
		}
	}
	if n := len(proxied(rec, "/attach")); n != 0 {
		t.Errorf("a refused attach reached the target")
	}
	// Spellings the API server takes as true are read as true, or refused.
	reached := len(proxied(rec, "/exec"))
	upgrade := http.Header{"Connection": {"Upgrade"}, "Upgrade": {"SPDY/3.1"}, "X-Stream-Protocol-Version": {"v4.channel.k8s.io"}}
	for k, v := range erin {
		upgrade[k] = v
	}
	for q, want := range map[string]int{
		"command=sh&stdin=True&tty=TRUE&stdout=true":     http.StatusForbidden,
		"command=sh&stdin=&tty=true&stdout=true":         http.StatusBadRequest,
		"command=sh&stdin=yes&tty=1&stdout=true":         http.StatusBadRequest,
		"command=sh&stdin=0&stdin=1&tty=true&stdout=1":   http.StatusBadRequest,
		"command=sh&stdin=true&tty=true&stdout=true&x=1": http.StatusForbidden,
	} {
		resp := call(t, "POST", "/sessiongate/"+s.Name+"/kas/api/v1/namespaces/demo/pods/web/exec?"+q, nil, upgrade)
		if resp.code != want {
			t.Errorf("exec?%s: %d %q, want %d", q, resp.code, resp.st.Message, want)
		}
	}
	if n := len(proxied(rec, "/exec")); n != reached {
		t.Errorf("%d refused execs reached the target", n-reached)
	}
}
