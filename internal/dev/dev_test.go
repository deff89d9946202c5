package dev_test

import (
	"bufio"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/dev"
	"sessiongate.dev/sessiongate/internal/testenv"
)

// buildDir holds `make build`'s output once built; TestMain removes it.
var buildDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// built is `make build`'s output, built once for the package's tests.
var built = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "sessiongate-build-")
	if err != nil {
		return "", err
	}
	buildDir = dir
	cmd := exec.Command("make", "build", "BIN="+dir)
	cmd.Dir = testenv.RepoRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("make build: %w\n%s", err, b)
	}
	return dir, nil
})

// install puts make build's sessiongate and sgctl in a fresh directory next
// to the Kubernetes binaries (linked from bin/), as an installation would
// have them, and checks that the build is static.
func install(t *testing.T, with ...string) (bin string) {
	t.Helper()
	src, err := built()
	testenv.Must(t, err)
	bin = t.TempDir()
	for _, name := range []string{"sessiongate", "sgctl"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		testenv.Must(t, err)
		testenv.Must(t, os.WriteFile(filepath.Join(bin, name), b, 0o755))
	}
	for _, name := range with {
		testenv.Must(t, os.Symlink(filepath.Join(testenv.BinDir(), name), filepath.Join(bin, name)))
	}
	f, err := elf.Open(filepath.Join(bin, "sessiongate"))
	testenv.Must(t, err)
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("make build's sessiongate is dynamically linked")
		}
	}
	return bin
}

// standalone runs an installed sessiongate outside the checkout, with
// nothing telling it where the checkout or the test binaries are.
func standalone(bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(bin, "sessiongate"), args...)
	cmd.Dir = filepath.Dir(bin)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KUBEBUILDER_ASSETS=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	return cmd
}

// descendants lists the processes below pid, read from /proc.
func descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The fields after the command name, which is in parentheses.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) > 1 {
			if ppid, err := strconv.Atoi(fields[1]); err == nil {
				children[ppid] = append(children[ppid], p)
			}
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		out = append(out, children[p]...)
		queue = append(queue, children[p]...)
	}
	return out
}

// lockedBuilder is a strings.Builder a running command writes to while the
// test reads it.
type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func alive(pid int) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	return err == nil && !strings.Contains(string(stat), ") Z ")
}

// TestReadmeWalkthrough runs `sessiongate dev` and follows the README's
// walkthrough with sgctl and the real kubectl, then stops the sandbox and
// checks that nothing it started is left running.
func TestReadmeWalkthrough(t *testing.T) {
	bin := install(t, "kube-apiserver", "etcd", "kwok", "kwok-config", "kube-controller-manager", "kube-scheduler")
	sessiongate, sgctl := filepath.Join(bin, "sessiongate"), filepath.Join(bin, "sgctl")
	kubectl := filepath.Join(testenv.BinDir(), "kubectl")
	dir := filepath.Join(t.TempDir(), "dev")
	port, err := testenv.FreePort()
	testenv.Must(t, err)
	listen := "127.0.0.1:" + strconv.Itoa(port)

	sandbox := standalone(bin, "dev", "--dir", dir, "--listen", listen)
	stdout, err := sandbox.StdoutPipe()
	testenv.Must(t, err)
	logFile, err := os.Create(filepath.Join(t.TempDir(), "dev.log"))
	testenv.Must(t, err)
	sandbox.Stderr = logFile
	testenv.Must(t, sandbox.Start())
	exited := make(chan error, 1)
	go func() { exited <- sandbox.Wait() }()
	defer func() {
		if sandbox.ProcessState == nil {
			_ = sandbox.Process.Kill()
		}
	}()

	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile(logFile.Name())
			t.Logf("sessiongate dev's log:\n%s", log)
		}
	})
	ready := make(chan struct{})
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			if strings.HasPrefix(s.Text(), dev.ReadyLine) {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case err := <-exited:
		log, _ := os.ReadFile(logFile.Name())
		t.Fatalf("sessiongate dev exited before it was ready: %v\n%s", err, log)
	case <-time.After(3 * time.Minute):
		t.Fatal("sessiongate dev is not ready after 3 minutes")
	}

	run := func(env []string, name string, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = append(append(os.Environ(), "HOME="+dir, "SESSIONGATE_SERVER=https://"+listen, "SESSIONGATE_CA="+filepath.Join(dir, "ca.crt")), env...)
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		if err != nil {
			return out.String(), fmt.Errorf("%s %s: %w\n%s%s", filepath.Base(name), strings.Join(args, " "), err, out.String(), errOut.String())
		}
		return out.String(), nil
	}
	tokenFor := func(user, groups string) []string {
		tok, err := run(nil, sessiongate, "dev", "token", user, "--groups", groups, "--dir", dir)
		testenv.Must(t, err)
		return []string{"SESSIONGATE_TOKEN=" + strings.TrimSpace(tok)}
	}
	alice, bob := tokenFor("alice@example.com", "dev"), tokenFor("bob@example.com", "sre")

	out, err := run(alice, sgctl, "policies")
	testenv.Must(t, err)
	if !strings.Contains(out, "dev-edit") || !strings.Contains(out, "1 of group sre") {
		t.Errorf("sgctl policies does not show dev-edit needing one approval from sre:\n%s", out)
	}
	// Nothing that no policy grants: edit in a namespace dev-edit does not name.
	if _, err := run(alice, sgctl, "request", "--cluster", "dev-target", "--access", "edit", "--namespace", "default", "--reason", "x"); err == nil ||
		!strings.Contains(err.Error(), `policy dev-edit: access level "edit" in namespaces default is not allowed here`) {
		t.Errorf("a request no policy grants: got %v", err)
	}
	out, err = run(alice, sgctl, "request", "--cluster", "dev-target", "--access", "edit", "--namespace", "demo", "--ttl", "30m", "--reason", "walkthrough")
	testenv.Must(t, err)
	session := strings.TrimSpace(out)
	if _, err := run(alice, sgctl, "approve", session); err == nil || !strings.Contains(err.Error(), "you cannot decide your own request") {
		t.Errorf("alice approving her own request: got %v", err)
	}
	out, err = run(bob, sgctl, "approvals")
	testenv.Must(t, err)
	if !strings.Contains(out, session) || !strings.Contains(out, "alice@example.com") {
		t.Errorf("bob's approvals do not list %s:\n%s", session, out)
	}
	_, err = run(bob, sgctl, "approve", session, "--comment", "go ahead")
	testenv.Must(t, err)
	_, err = run(alice, sgctl, "wait", session)
	testenv.Must(t, err)
	kc, err := run(alice, sgctl, "kubeconfig", session)
	testenv.Must(t, err)
	if strings.Contains(kc, strings.TrimPrefix(alice[0], "SESSIONGATE_TOKEN=")) {
		t.Fatal("the kubeconfig holds the token")
	}
	kcFile := filepath.Join(dir, "alice.kubeconfig")
	testenv.Must(t, os.WriteFile(kcFile, []byte(kc), 0o600))

	if out, err := run(alice, kubectl, "--kubeconfig", kcFile, "get", "pods", "-n", "demo"); err != nil || !strings.Contains(out, "web") {
		t.Fatalf("alice: kubectl get pods: %v\n%s", err, out)
	}
	if out, err := run(alice, kubectl, "--kubeconfig", kcFile, "exec", "-n", "demo", "web", "--", "echo", "hello through sessiongate"); err != nil || !strings.Contains(out, "hello through sessiongate") {
		t.Fatalf("alice: kubectl exec: %v\n%s", err, out)
	}
	// dev-edit denies rm, however it is wrapped.
	if _, err := run(alice, kubectl, "--kubeconfig", kcFile, "exec", "-n", "demo", "web", "--", "sh", "-c", "rm -rf /tmp/x"); err == nil || !strings.Contains(err.Error(), "refused by deny rm") {
		t.Errorf("alice: kubectl exec rm under dev-edit: %v", err)
	}
	if out, err := run(alice, kubectl, "--kubeconfig", kcFile, "logs", "-n", "demo", "web"); err != nil || !strings.Contains(out, "demo web server started") {
		t.Fatalf("alice: kubectl logs: %v\n%s", err, out)
	}

	if _, err := run(bob, kubectl, "--kubeconfig", kcFile, "get", "pods", "-n", "demo"); err == nil || !strings.Contains(err.Error(), "no active session") {
		t.Errorf("bob with alice's kubeconfig: got %v, want a refusal", err)
	}
	// carol is neither alice nor one of her approvers: the session does not
	// exist for her.
	carol := tokenFor("carol@example.com", "dev")
	if _, err := run(carol, sgctl, "terminate", session); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("carol terminating alice's session: got %v, want not found", err)
	}

	_, err = run(alice, sgctl, "terminate", session)
	testenv.Must(t, err)
	testenv.Eventually(t, 30*time.Second, func() error {
		_, err := run(alice, kubectl, "--kubeconfig", kcFile, "get", "pods", "-n", "demo")
		if err == nil {
			return fmt.Errorf("kubectl still works after terminate")
		}
		return nil
	})

	// sgctl request --wait says which policy it is judged by and follows
	// the approval through to Active; the owner renews once (dev-edit allows
	// one renewal); an SRE rejects another request; an admin revokes.
	waitCmd := exec.Command(sgctl, "request", "--cluster", "dev-target", "--access", "edit", "--namespace", "demo", "--ttl", "30m", "--reason", "second", "--wait", "--timeout", "1m")
	waitCmd.Env = append(append(os.Environ(), "HOME="+dir, "SESSIONGATE_SERVER=https://"+listen, "SESSIONGATE_CA="+filepath.Join(dir, "ca.crt")), alice...)
	var waitOut strings.Builder
	waitErr := &lockedBuilder{}
	waitCmd.Stdout, waitCmd.Stderr = &waitOut, waitErr
	testenv.Must(t, waitCmd.Start())
	waitDone := make(chan error, 1)
	go func() { waitDone <- waitCmd.Wait() }()
	var second string
	testenv.Eventually(t, 30*time.Second, func() error {
		progress := waitErr.String()
		first, _, _ := strings.Cut(progress, "\n")
		name, rest, ok := strings.Cut(strings.TrimPrefix(first, "session "), ": ")
		if !ok || !strings.Contains(rest, " under AccessPolicy dev-edit") ||
			!strings.Contains(progress, "session "+name+": PendingApproval (waiting for 1 more approval(s) from group(s) sre") &&
				!strings.Contains(progress, "session "+name+": PendingApproval under AccessPolicy dev-edit (waiting for 1 more approval(s) from group(s) sre") {
			return fmt.Errorf("sgctl request --wait has not said it waits under dev-edit for an SRE yet:\n%s", progress)
		}
		second = name
		return nil
	})
	_, err = run(bob, sgctl, "approve", second, "--comment", "once more")
	testenv.Must(t, err)
	select {
	case err := <-waitDone:
		if err != nil || strings.TrimSpace(waitOut.String()) != second {
			t.Fatalf("sgctl request --wait: %v, printed %q\n%s", err, waitOut.String(), waitErr.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("sgctl request --wait did not return once approved:\n%s", waitErr.String())
	}
	for _, want := range []string{`approved by bob@example.com: "once more"`, "session " + second + ": Active"} {
		if !strings.Contains(waitErr.String(), want) {
			t.Errorf("sgctl request --wait did not say %q:\n%s", want, waitErr.String())
		}
	}
	if out, err := run(alice, sgctl, "renew", second, "--ttl", "30m"); err != nil || !strings.Contains(out, "renewal of session "+second+" requested") {
		t.Errorf("sgctl renew: %v\n%s", err, out)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		out, err := run(alice, sgctl, "get", second, "-o", "json")
		if err != nil {
			return err
		}
		var got struct{ Status struct{ Renewals int } }
		testenv.Must(t, json.Unmarshal([]byte(out), &got))
		if got.Status.Renewals != 1 {
			return fmt.Errorf("session %s renewed %d times, want 1", second, got.Status.Renewals)
		}
		return nil
	})
	if _, err := run(alice, sgctl, "renew", second, "--ttl", "30m"); err == nil || !strings.Contains(err.Error(), "renewed 1 time(s), the policy's maximum") {
		t.Errorf("a second renewal under dev-edit: got %v", err)
	}

	out, err = run(alice, sgctl, "request", "--cluster", "dev-target", "--access", "edit", "--namespace", "demo", "--ttl", "30m", "--reason", "third")
	testenv.Must(t, err)
	third := strings.TrimSpace(out)
	if out, err := run(bob, sgctl, "reject", third, "--comment", "not today"); err != nil || !strings.Contains(out, "session "+third+" rejected") {
		t.Errorf("sgctl reject: %v\n%s", err, out)
	}
	if _, err := run(alice, sgctl, "wait", third); err == nil || !strings.Contains(err.Error(), "rejected by bob@example.com: not today") {
		t.Errorf("waiting for a rejected request: got %v", err)
	}

	// The sandbox's debug-pods template: an SRE's request starts at once,
	// and its pod takes an exec through the gateway.
	out, err = run(bob, sgctl, "templates")
	if err != nil || !strings.Contains(out, "debug-pods") || !strings.Contains(out, "ephemeral-debug") {
		t.Errorf("sgctl templates: %v\n%s", err, out)
	}
	if _, err := run(bob, sgctl, "request", "--cluster", "dev-target", "--template", "debug-pods", "--var", "sleep=5", "--reason", "x"); err == nil ||
		!strings.Contains(err.Error(), `debug.variables[sleep]: Invalid value: "5": must be at least 60`) {
		t.Errorf("a debug request with a variable out of range: got %v", err)
	}
	out, err = run(bob, sgctl, "request", "--cluster", "dev-target", "--template", "debug-pods", "--var", "sleep=600", "--reason", "node check", "--wait", "--timeout", "2m")
	testenv.Must(t, err)
	debugSession := strings.TrimSpace(out)
	out, err = run(bob, sgctl, "get", debugSession, "-o", "json")
	testenv.Must(t, err)
	var got struct {
		Status struct{ Debug v1alpha1.DebugStatus }
	}
	testenv.Must(t, json.Unmarshal([]byte(out), &got))
	if len(got.Status.Debug.Pods) == 0 {
		t.Fatalf("debug session %s has no pods:\n%s", debugSession, out)
	}
	debugKC, err := run(bob, sgctl, "kubeconfig", debugSession)
	testenv.Must(t, err)
	debugKCFile := filepath.Join(t.TempDir(), "debug.kubeconfig")
	testenv.Must(t, os.WriteFile(debugKCFile, []byte(debugKC), 0o600))
	pod := got.Status.Debug.Pods[0]
	if out, err := run(bob, kubectl, "--kubeconfig", debugKCFile, "exec", "-n", pod.Namespace, pod.Name, "--", "echo", "debugging"); err != nil || !strings.Contains(out, "debugging") {
		t.Errorf("kubectl exec into the debug pod: %v\n%s", err, out)
	}
	if _, err := run(bob, sgctl, "terminate", debugSession); err != nil {
		t.Error(err)
	}

	irene := tokenFor("irene@example.com", dev.AdminGroup)
	if _, err := run(alice, sgctl, "revoke", "--user", "alice@example.com"); err == nil || !strings.Contains(err.Error(), "revocation is for members of the gateway's admin groups") {
		t.Errorf("alice revoking: got %v, want a refusal", err)
	}
	out, err = run(irene, sgctl, "revoke", "--user", "alice@example.com")
	if err != nil || !strings.Contains(out, "session "+second+" ended") || strings.Contains(out, "session "+third+" ended") {
		t.Errorf("sgctl revoke --user alice@example.com: %v\n%s", err, out)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		out, err := run(alice, sgctl, "get", second)
		if err != nil || !strings.Contains(out, "Terminated") {
			return fmt.Errorf("after revocation session %s is: %v\n%s", second, err, out)
		}
		return nil
	})

	// The sandbox's receiver verified and logged the session's story, each
	// event once. Several workers deliver, so events the leader sends in one
	// step (approved and activated) may arrive in either order.
	testenv.Eventually(t, 30*time.Second, func() error {
		b, _ := os.ReadFile(filepath.Join(dir, dev.NotificationsLog))
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var ev struct{ Type, Session string }
			if json.Unmarshal([]byte(line), &ev) == nil && ev.Session == session {
				got = append(got, ev.Type)
			}
		}
		slices.Sort(got)
		want := "session.activated session.approved session.requested session.terminated"
		if strings.Join(got, " ") != want {
			return fmt.Errorf("notifications for %s: %v, want %s", session, got, want)
		}
		return nil
	})

	children := descendants(sandbox.Process.Pid)
	if len(children) == 0 {
		t.Fatal("found no processes started by sessiongate dev")
	}
	testenv.Must(t, sandbox.Process.Signal(syscall.SIGINT))
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("sessiongate dev did not exit cleanly on Ctrl-C: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("sessiongate dev still running a minute after Ctrl-C")
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		for _, p := range children {
			if alive(p) {
				cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p), "cmdline"))
				return fmt.Errorf("process %d (%s) outlived sessiongate dev", p, strings.ReplaceAll(string(cmdline), "\x00", " "))
			}
		}
		return nil
	})
}

func TestBusyPortIsAClearErrorBeforeAnythingStarts(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	testenv.Must(t, err)
	defer l.Close()
	err = dev.Run(context.Background(), dev.Options{Dir: t.TempDir(), Listen: l.Addr().String(), Replicas: 1, Out: io.Discard})
	if err == nil || !strings.Contains(err.Error(), l.Addr().String()+" is in use") {
		t.Errorf("got %v, want an error saying %s is in use", err, l.Addr())
	}
}

// A sandbox that cannot finish starting stops what it did start.
func TestAFailedStartLeavesNothingRunning(t *testing.T) {
	bin := install(t, "kube-apiserver", "etcd") // no kwok
	dir := filepath.Join(t.TempDir(), "dev")
	port, err := testenv.FreePort()
	testenv.Must(t, err)
	out, err := standalone(bin, "dev", "--dir", dir, "--listen", "127.0.0.1:"+strconv.Itoa(port)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "kwok") {
		t.Fatalf("sessiongate dev without kwok: %v\n%s", err, out)
	}
	// Nothing runs from the installation's directory any more.
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.HasPrefix(string(cmdline), bin) && alive(atoi(e.Name())) {
			t.Errorf("process %s outlived the failed sandbox: %s", e.Name(), strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// --dir never empties a directory the sandbox did not make.
func TestForeignDirIsNotEmptied(t *testing.T) {
	dir := t.TempDir()
	mine := filepath.Join(dir, "go.mod")
	testenv.Must(t, os.WriteFile(mine, []byte("module precious\n"), 0o600))
	port, err := testenv.FreePort()
	testenv.Must(t, err)
	err = dev.Run(context.Background(), dev.Options{Dir: dir, Listen: "127.0.0.1:" + strconv.Itoa(port), Replicas: 1, Out: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "refusing to empty it") {
		t.Errorf("got %v, want a refusal", err)
	}
	if _, err := os.Stat(mine); err != nil {
		t.Errorf("the sandbox removed a file it did not make: %v", err)
	}
}

// The product never carries the test helpers.
func TestCommandsDoNotImportTestHelpers(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "./cmd/...")
	cmd.Dir = testenv.RepoRoot()
	out, err := cmd.Output()
	testenv.Must(t, err)
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasSuffix(pkg, "/internal/testenv") || strings.Contains(pkg, "controller-runtime/pkg/envtest/komega") {
			t.Errorf("a command imports %s", pkg)
		}
	}
}

// The image is built by make build, the build the tests above check, and
// runs as a non-root user.
func TestDockerfileBuildsWithMakeBuildAndRunsAsNonRoot(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "Dockerfile"))
	testenv.Must(t, err)
	var runs []string
	var user string
	for _, line := range strings.Split(string(b), "\n") {
		switch f := strings.Fields(line); {
		case len(f) > 1 && f[0] == "RUN" && f[1] != "go":
			runs = append(runs, strings.Join(f[1:], " "))
		case len(f) > 1 && f[0] == "USER":
			user = f[1]
		}
	}
	if len(runs) != 1 || !strings.HasPrefix(runs[0], "make build ") {
		t.Errorf("the Dockerfile builds with %q, want make build alone", runs)
	}
	if user == "" || strings.HasPrefix(user, "0") || strings.HasPrefix(user, "root") {
		t.Errorf("the image runs as %q, want a non-root user", user)
	}
}
