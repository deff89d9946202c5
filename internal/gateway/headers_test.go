package gateway_test

import (
	"strings"
	"testing"
)

func TestKubectlImpersonationThroughASessionIsRefused(t *testing.T) {
	rec := recordedCluster(t)
	session(t, "no-as", "alice@example.com", onRecorded)
	kc := kubeconfig(t, 0, "no-as", token(t, "alice@example.com"))

	// The question the session itself may ask is answered.
	if out, err := runKubectl(t, kc, nil, "", "auth", "can-i", "list", "pods", "-n", "demo"); err != nil || strings.TrimSpace(out) != "yes" {
		t.Fatalf("kubectl auth can-i list pods: %v\n%s", err, out)
	}
	before := len(proxied(rec, "selfsubjectaccessreviews"))

	// Asked for someone else, it is refused instead of answered for the
	// session: the true answer for demo:default is no, the session's yes.
	for _, args := range [][]string{
		{"auth", "can-i", "list", "secrets", "-n", "demo", "--as=system:serviceaccount:demo:default"},
		{"auth", "can-i", "list", "secrets", "-n", "demo", "--as=alice", "--as-group=system:masters"},
		{"get", "pods", "-n", "demo", "--as=system:admin"},
	} {
		out, err := runKubectl(t, kc, nil, "", args...)
		if err == nil || strings.Contains(out, "yes") || !strings.Contains(out, "impersonation through a session is not supported") {
			t.Errorf("kubectl %s: exit %v, want a failure that says impersonation is not supported:\n%s", strings.Join(args, " "), err, out)
		}
	}
	if after := len(proxied(rec, "selfsubjectaccessreviews")); after != before {
		t.Errorf("%d impersonating access reviews reached the target, want none", after-before)
	}
}
