package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/api"
	"sessiongate.dev/sessiongate/internal/recording"
	"sessiongate.dev/sessiongate/internal/sgctl"
	"sessiongate.dev/sessiongate/internal/testenv"
)

// sgctlAs runs sgctl in-process with a user's token against replica 0.
func sgctlAs(t *testing.T, tok string, args ...string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	tokFile, caFile := filepath.Join(dir, "token"), filepath.Join(dir, "ca.crt")
	testenv.Must(t, os.WriteFile(tokFile, []byte(tok), 0o600))
	testenv.Must(t, os.WriteFile(caFile, gwCA.CertPEM, 0o600))
	cmd := sgctl.NewCommand()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(append([]string{"--server", "https://" + replicas[0].Addr(), "--certificate-authority", caFile, "--token-file", tokFile}, args...))
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

// Recordings are for the session's owner, its approvers and auditors; to
// anyone else a session's recordings do not exist.
func TestRecordingsAreForOwnersApproversAndAuditorsOnly(t *testing.T) {
	accessPolicy(t, "api-recorded", func(s *v1alpha1.AccessPolicySpec) {
		s.Requesters = v1alpha1.Subjects{Users: []string{"uma@example.com"}}
		s.Approval = &v1alpha1.Approval{Approvers: v1alpha1.Subjects{Users: []string{"vic@example.com"}}}
	})
	uma, vic := token(t, "uma@example.com"), token(t, "vic@example.com")
	r := requestAs(t, bearer(uma), `{"cluster":"target","accessLevel":{"clusterRole":"view"},"ttl":"30m"}`)
	var s v1alpha1.Session
	testenv.Must(t, json.Unmarshal([]byte(r.body), &s))
	waitPhaseAPI(t, bearer(uma), s.Name, v1alpha1.PhasePendingApproval)
	if _, err := sgctlAs(t, vic, "approve", s.Name); err != nil {
		t.Fatal(err)
	}
	waitPhaseAPI(t, bearer(uma), s.Name, v1alpha1.PhaseActive)

	// A cast of the session, as the proxy writes one.
	meta := recording.Meta{ID: recording.NewID(s.Name, time.Now()), Session: s.Name, User: "uma@example.com", Cluster: "target",
		Namespace: "demo", Pod: "web", Command: []string{"sh"}, Kind: "exec", TTY: true}
	rec, err := recording.Start(context.Background(), recordings, meta, 80, 24)
	testenv.Must(t, err)
	rec.Stdin([]byte("echo hi\r"))
	rec.Stdout([]byte("echo hi\r\nhi\r\n"))
	testenv.Must(t, rec.Close())

	for who, tok := range map[string]string{"owner": uma, "approver": vic, "auditor": token(t, "ann@example.com", "auditors")} {
		out, err := sgctlAs(t, tok, "recordings", s.Name)
		if err != nil || !strings.Contains(out, meta.ID) {
			t.Errorf("%s: sgctl recordings: %v\n%s", who, err, out)
		}
		out, err = sgctlAs(t, tok, "replay", meta.ID, "--speed", "0")
		if err != nil || out != "echo hi\r\nhi\r\n" {
			t.Errorf("%s: sgctl replay printed %q, %v", who, out, err)
		}
	}

	stranger := bearer(token(t, "mallory@example.com", "dev"))
	list := call(t, "GET", "/api/v1/sessions/"+s.Name+"/recordings", nil, stranger)
	missing := call(t, "GET", "/api/v1/sessions/no-such-session/recordings", nil, stranger)
	if list.code != http.StatusNotFound || missing.code != http.StatusNotFound {
		t.Errorf("a stranger listing: %d, a missing session: %d; want 404 for both", list.code, missing.code)
	}
	for _, id := range []string{meta.ID, recording.NewID(s.Name, time.Now()), "..%2F..%2Fetc%2Fpasswd", "x"} {
		if r := call(t, "GET", "/api/v1/recordings/"+id, nil, stranger); r.code != http.StatusNotFound || strings.Contains(r.body, "echo hi") {
			t.Errorf("a stranger fetching %s: %d %s", id, r.code, r.body)
		}
	}
	var got api.RecordingList
	r = call(t, "GET", "/api/v1/sessions/"+s.Name+"/recordings", nil, bearer(uma))
	testenv.Must(t, json.Unmarshal([]byte(r.body), &got))
	if len(got.Items) != 1 || got.Items[0].Size == 0 {
		t.Errorf("the owner's list: %s", r.body)
	}
	if !strings.Contains(auditLog.String(), `"verb":"get-recording"`) {
		t.Errorf("fetching a recording left no audit record")
	}
}
