package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/audit"
	"sessiongate.dev/sessiongate/internal/gateway"
	"sessiongate.dev/sessiongate/internal/recording"
	"sessiongate.dev/sessiongate/internal/testenv"
)

// protocols are the two ways kubectl streams exec.
var protocols = []struct {
	name string
	env  []string
}{
	{"websocket", nil},
	{"spdy", []string{"KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false"}},
}

// running is a kubectl that was started and may still run.
type running struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
	err    error
}

// startKubectl runs kubectl in the background and returns once its output
// holds ready.
func startKubectl(t *testing.T, kc string, env []string, ready string, args ...string) *running {
	t.Helper()
	r := &running{out: &syncBuffer{}, exited: make(chan struct{})}
	r.cmd = kubectl(context.Background(), kc, env, args...)
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	testenv.Must(t, r.cmd.Start())
	t.Cleanup(func() { _ = r.cmd.Process.Kill(); <-r.exited })
	go func() { r.err = r.cmd.Wait(); close(r.exited) }()
	testenv.Eventually(t, 30*time.Second, func() error {
		if strings.Contains(r.out.String(), ready) {
			return nil // even if it has exited since: a slow poll is no failure
		}
		select {
		case <-r.exited:
			t.Fatalf("kubectl %v exited before it was ready: %v\n%s", args, r.err, r.out.String())
		default:
		}
		return fmt.Errorf("kubectl %v has not printed %q yet", args, ready)
	})
	return r
}

// wait returns kubectl's exit code and output once it exits.
func (r *running) wait(t *testing.T) (int, string) {
	t.Helper()
	select {
	case <-r.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("kubectl %v still running 30s later\n%s", r.cmd.Args, r.out.String())
	}
	var exitErr *exec.ExitError
	if errors.As(r.err, &exitErr) {
		return exitErr.ExitCode(), r.out.String()
	}
	if r.err != nil {
		t.Fatalf("kubectl %v: %v", r.cmd.Args, r.err)
	}
	return 0, r.out.String()
}

// A stream the gateway ends is never a silent success: kubectl exec (both
// protocols) and kubectl get --watch exit non-zero saying which session
// ended and why, and a client-go watch ends with an ERROR event whose Status
// says the same.
func TestAnEndedSessionTellsEveryStreamWhy(t *testing.T) {
	s := session(t, "why-cut", "alice@example.com")
	tok := token(t, "alice@example.com")
	kc := kubeconfig(t, 0, s.Name, tok)

	var execs []*running
	for _, p := range protocols {
		execs = append(execs, startKubectl(t, kc, p.env, "started", "exec", "-n", "demo", "web", "--", "sh", "-c", "echo started; exec sleep 300"))
	}
	// The watch is live once it prints an object created after it started.
	watcher := &running{out: &syncBuffer{}, exited: make(chan struct{})}
	watcher.cmd = kubectl(context.Background(), kc, nil, "get", "configmaps", "-n", "demo", "--watch-only")
	watcher.cmd.Stdout, watcher.cmd.Stderr = watcher.out, watcher.out
	testenv.Must(t, watcher.cmd.Start())
	t.Cleanup(func() { _ = watcher.cmd.Process.Kill(); <-watcher.exited })
	go func() { watcher.err = watcher.cmd.Wait(); close(watcher.exited) }()
	n := 0
	testenv.Eventually(t, 30*time.Second, func() error {
		if strings.Contains(watcher.out.String(), "why-cut-") {
			return nil
		}
		n++
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: fmt.Sprintf("why-cut-%d", n)}}
		testenv.Must(t, target.Client.Create(context.Background(), cm))
		t.Cleanup(func() { _ = target.Client.Delete(context.Background(), cm) })
		return fmt.Errorf("kubectl get --watch has seen none of %d new ConfigMaps", n)
	})
	w, err := clientset(t, 1, s.Name, tok).CoreV1().ConfigMaps("demo").Watch(context.Background(), metav1.ListOptions{})
	testenv.Must(t, err)
	defer w.Stop()

	patch := client.MergeFrom(s.DeepCopy())
	s.Spec.Terminated = true
	testenv.Must(t, mgmt.Client.Patch(context.Background(), s, patch))

	for i, r := range execs {
		code, out := r.wait(t)
		if code == 0 || !strings.Contains(out, `session "why-cut" ended: Terminated`) {
			t.Errorf("exec %s exited %d, want non-zero with the session and reason:\n%s", protocols[i].name, code, out)
		}
	}
	// kubectl get --watch decides its exit itself (0 for any watch that
	// ends); what it prints is the Status of the gateway's ERROR event.
	if _, out := watcher.wait(t); !strings.Contains(out, `Gone     sessiongate: session "why-cut" ended: Terminated`) {
		t.Errorf("kubectl get --watch printed:\n%s", out)
	}
	var last watch.Event
	for ev := range w.ResultChan() {
		last = ev
	}
	st, ok := last.Object.(*metav1.Status)
	if last.Type != watch.Error || !ok || !strings.Contains(st.Message, `session "why-cut" ended: Terminated`) {
		t.Errorf("the client-go watch ended with %s %#v, want an ERROR event naming the session and reason", last.Type, last.Object)
	}
	// The audit record of each stream cut says why it ended: both watches
	// and every exec.
	testenv.Eventually(t, 30*time.Second, func() error {
		watches, execsEnded := 0, 0
		for _, ev := range auditRecords(t) {
			if ev.Annotations[audit.AnnotationSession] != s.Name || ev.Stage != auditv1.StageResponseComplete ||
				!strings.Contains(ev.Annotations[audit.AnnotationStreamEnd], `session "why-cut" ended: Terminated`) {
				continue
			}
			switch {
			case ev.Verb == "watch":
				watches++
			case ev.ObjectRef != nil && ev.ObjectRef.Subresource == "exec":
				execsEnded++
			}
		}
		if watches < 2 || execsEnded < len(execs) {
			return fmt.Errorf("audit records say the session ended for %d watches and %d execs, want 2 and %d", watches, execsEnded, len(execs))
		}
		return nil
	})
}

// castsOf returns the casts the audit log names for a session, with the
// audit records of its streams (start and end).
func castsOf(t *testing.T, session string) (map[string]*recording.Cast, []auditv1.Event) {
	t.Helper()
	casts := map[string]*recording.Cast{}
	var records []auditv1.Event
	for _, ev := range auditRecords(t) {
		id := ev.Annotations[audit.AnnotationRecording]
		if ev.Annotations[audit.AnnotationSession] != session || id == "" {
			continue
		}
		records = append(records, ev)
		if ev.Stage != auditv1.StageResponseComplete {
			continue
		}
		f, err := recordings.Open(context.Background(), id)
		testenv.Must(t, err)
		c, err := recording.Read(f)
		f.Close()
		testenv.Must(t, err)
		casts[id] = c
	}
	return casts, records
}

// joined concatenates a cast's events of one type.
func joined(c *recording.Cast, typ recording.EventType) string {
	var b strings.Builder
	for _, e := range c.Events {
		if e.Type == typ {
			b.WriteString(e.Data)
		}
	}
	return b.String()
}

// The cast of a scripted kubectl exec holds exactly what the client sent
// and saw, over WebSocket and SPDY, and the stream has two audit records,
// at its start and at its end, naming the cast.
func TestExecCastHoldsWhatTheClientSentAndSaw(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			name := "cast-" + p.name
			session(t, name, "alice@example.com")
			kc := kubeconfig(t, 0, name, token(t, "alice@example.com"))
			// kwok's exec never passes on the end of stdin, so the command
			// ends itself after two lines.
			in := "one\ntwo ünïcode\n"
			out, err := runKubectl(t, kc, p.env, in, "exec", "-i", "-n", "demo", "web", "-c", "main", "--", "head", "-n", "2")
			if err != nil || out != in {
				t.Fatalf("kubectl exec -i head: %v\n%q", err, out)
			}
			var casts map[string]*recording.Cast
			var records []auditv1.Event
			testenv.Eventually(t, 30*time.Second, func() error {
				if casts, records = castsOf(t, name); len(casts) != 1 {
					return fmt.Errorf("%d casts of session %s, want 1", len(casts), name)
				}
				return nil
			})
			for id, c := range casts {
				if out, err := sgctlAs(t, token(t, "alice@example.com"), "replay", id, "--speed", "0"); err != nil || out != in {
					t.Errorf("sgctl replay %s printed %q, %v; want what kubectl showed", id, out, err)
				}
				if got := joined(c, recording.Input); got != in {
					t.Errorf("recorded input %q, want %q", got, in)
				}
				if got := joined(c, recording.Output); got != in {
					t.Errorf("recorded output %q, want %q", got, in)
				}
				m := c.Header.Sessiongate
				if m.Session != name || m.User != "alice@example.com" || m.Cluster != "target" || m.Namespace != "demo" || m.Pod != "web" ||
					m.Container != "main" || strings.Join(m.Command, " ") != "head -n 2" || m.Kind != "exec" {
					t.Errorf("cast header %+v", m)
				}
			}
			if len(records) != 2 || records[0].Stage != auditv1.StageResponseStarted || records[1].Stage != auditv1.StageResponseComplete ||
				records[0].AuditID != records[1].AuditID || records[1].Annotations[audit.AnnotationExitCode] != "0" {
				t.Errorf("audit records of the exec: %+v", records)
			}
		})
	}
}

// Output of many messages reaches kubectl whole and in order, and the cast
// holds it: the relay gathers each message's TLS records into one write of
// the caller's connection.
func TestLongOutputReachesTheCallerWhole(t *testing.T) {
	want, err := exec.Command("seq", "1", "300000").Output() // 2 MB, 60 of kubectl's messages
	testenv.Must(t, err)
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			name := "long-" + p.name
			session(t, name, "alice@example.com")
			kc := kubeconfig(t, 0, name, token(t, "alice@example.com"))
			var out bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := kubectl(ctx, kc, p.env, "exec", "-n", "demo", "web", "-c", "main", "--", "seq", "1", "300000")
			cmd.Stdout = &out
			if err := cmd.Run(); err != nil || !bytes.Equal(out.Bytes(), want) {
				t.Fatalf("kubectl exec seq: %v; %d bytes, want the %d seq printed, the same", err, out.Len(), len(want))
			}
			testenv.Eventually(t, 30*time.Second, func() error {
				casts, _ := castsOf(t, name)
				if len(casts) != 1 {
					return fmt.Errorf("%d casts of session %s, want 1", len(casts), name)
				}
				for _, c := range casts {
					if got := joined(c, recording.Output); got != string(want) {
						return fmt.Errorf("the cast holds %d bytes of output, want the %d kubectl printed", len(got), len(want))
					}
				}
				return nil
			})
		})
	}
}

// sizeQueue hands out terminal sizes, then ends.
type sizeQueue chan remotecommand.TerminalSize

func (q sizeQueue) Next() *remotecommand.TerminalSize {
	s, ok := <-q
	if !ok {
		return nil
	}
	return &s
}

// An exec with a TTY records the terminal's size changes.
func TestExecWithATTYRecordsResizesAndExitCodes(t *testing.T) {
	const name = "cast-tty"
	session(t, name, "alice@example.com")
	cfg := restConfig(0, name, token(t, "alice@example.com"))
	u, err := url.Parse(cfg.Host + "/api/v1/namespaces/demo/pods/web/exec?command=sh&command=-c&command=read+x&stdin=true&stdout=true&tty=true")
	testenv.Must(t, err)
	exe, err := remotecommand.NewWebSocketExecutor(cfg, http.MethodGet, u.String())
	testenv.Must(t, err)
	sizes := make(sizeQueue, 2)
	sizes <- remotecommand.TerminalSize{Width: 132, Height: 43}
	stdinR, stdinW := io.Pipe()
	var stdout bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- exe.StreamWithContext(context.Background(), remotecommand.StreamOptions{Stdin: stdinR, Stdout: &stdout, Tty: true, TerminalSizeQueue: sizes})
	}()
	testenv.Eventually(t, 30*time.Second, func() error {
		for _, ev := range auditRecords(t) {
			if ev.Annotations[audit.AnnotationSession] == name && ev.Stage == auditv1.StageResponseStarted {
				return nil
			}
		}
		return fmt.Errorf("the exec has not started")
	})
	sizes <- remotecommand.TerminalSize{Width: 80, Height: 25}
	close(sizes)
	// The resize and the line that ends the command travel on different
	// channels: end it only once the cast being written holds the resize
	// (the directory store writes it to a hidden file until the stream ends).
	testenv.Eventually(t, 30*time.Second, func() error {
		open, _ := filepath.Glob(filepath.Join(string(recordings), "."+name+"-*"))
		for _, f := range open {
			if b, _ := os.ReadFile(f); bytes.Contains(b, []byte(`"80x25"`)) {
				return nil
			}
		}
		return fmt.Errorf("the open cast does not hold the resize yet (%d open)", len(open))
	})
	_, _ = stdinW.Write([]byte("go\n"))
	select {
	case err := <-done:
		// kwok answers a TTY exec's exit with an internal error, whatever
		// the command did; the API server would send its exit code, and
		// the gateway passes on what it gets.
		t.Logf("exec ended: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("exec did not end")
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		casts, _ := castsOf(t, name)
		for _, c := range casts {
			var got []string
			for _, e := range c.Events {
				if e.Type == recording.Resize {
					got = append(got, e.Data)
				}
			}
			if strings.Join(got, " ") != "132x43 80x25" || !c.Header.Sessiongate.TTY {
				return fmt.Errorf("resizes recorded: %q (tty %v)", got, c.Header.Sessiongate.TTY)
			}
			return nil
		}
		return fmt.Errorf("no cast of %s yet", name)
	})
}

// streamsSession is a session requested through the API under a policy that
// grants these stream limits.
func streamsSession(t *testing.T, user string, limits v1alpha1.StreamPolicy) string {
	t.Helper()
	policyName := "streams-" + strings.Split(user, "@")[0]
	accessPolicy(t, policyName, func(s *v1alpha1.AccessPolicySpec) {
		s.Requesters = v1alpha1.Subjects{Users: []string{user}}
		s.Clusters = v1alpha1.ClusterSelector{Names: []string{"target"}}
		s.AccessLevels = []v1alpha1.PolicyAccessLevel{{ClusterRole: "edit", Namespaces: &v1alpha1.NamespaceFilter{Allow: []string{"demo"}}}}
		s.Streams = &limits
	})
	who := bearer(token(t, user))
	r := requestAs(t, who, `{"cluster":"target","accessLevel":{"clusterRole":"edit","namespaces":["demo"]},"ttl":"30m"}`)
	var s v1alpha1.Session
	testenv.Must(t, json.Unmarshal([]byte(r.body), &s))
	if s.Name == "" {
		t.Fatalf("request refused: %d %s", r.code, r.body)
	}
	t.Cleanup(func() { _ = mgmt.Client.Delete(context.Background(), &s) })
	waitPhaseAPI(t, who, s.Name, v1alpha1.PhaseActive)
	testenv.Eventually(t, 30*time.Second, func() error {
		for i, gw := range replicas {
			if cur, ok := gw.Registry.Get(s.Name); !ok || cur.Limits().Streams == nil {
				return fmt.Errorf("replica %d does not serve the session's stream limits yet", i)
			}
		}
		return nil
	})
	return s.Name
}

// A stream through which nothing passes is closed at the policy's idle
// limit, one that keeps talking at its maximum lifetime; exec says why on
// the caller's stderr and exits non-zero, and a watch, a followed log and a
// port-forward are closed too.
func TestStreamLifetimesOfThePolicyCloseStreams(t *testing.T) {
	name := streamsSession(t, "lifetimes@example.com", v1alpha1.StreamPolicy{
		StreamIdleTimeout: &metav1.Duration{Duration: 2 * time.Second},
		MaxStreamDuration: &metav1.Duration{Duration: 5 * time.Second},
	})
	tok := token(t, "lifetimes@example.com")
	kc := kubeconfig(t, 0, name, tok)

	start := time.Now()
	idle := startKubectl(t, kc, nil, "quiet", "exec", "-n", "demo", "web", "--", "sh", "-c", "echo quiet; exec sleep 300")
	busy := startKubectl(t, kc, protocols[1].env, "tick", "exec", "-n", "demo", "web", "--", "sh", "-c", "while true; do echo tick; sleep 0.5; done")
	w, err := clientset(t, 1, name, tok).CoreV1().ConfigMaps("demo").Watch(context.Background(), metav1.ListOptions{})
	testenv.Must(t, err)
	defer w.Stop()
	logs := startKubectl(t, kc, nil, "GET / 200", "logs", "-f", "-n", "demo", "web")

	code, out := idle.wait(t)
	if code == 0 || !strings.Contains(out, "sessiongate: session "+`"`+name+`"`+": stream idle for 2s, closed") {
		t.Errorf("idle exec exited %d:\n%s", code, out)
	}
	code, out = busy.wait(t)
	if d := time.Since(start); code == 0 || !strings.Contains(out, "stream open for its maximum of 5s, closed") || d < 5*time.Second {
		t.Errorf("busy exec exited %d after %s:\n%s", code, d, out)
	}
	// A followed log says why it ended (idle, or at its maximum if kwok
	// keeps writing), and kubectl does not take the end for the log's.
	code, out = logs.wait(t)
	if code == 0 || !strings.Contains(out, "web started") || !strings.Contains(out, "sessiongate: session "+`"`+name+`"`+": stream ") || !strings.Contains(out, ", closed") {
		t.Errorf("kubectl logs -f exited %d:\n%s", code, out)
	}
	var last watch.Event
	for ev := range w.ResultChan() {
		last = ev
	}
	if st, ok := last.Object.(*metav1.Status); last.Type != watch.Error || !ok || !strings.Contains(st.Message, "stream idle for 2s") {
		t.Errorf("the idle watch ended with %s %#v", last.Type, last.Object)
	}
	_, pf := portForward(t, kc, nil)
	select {
	case <-pf.exited:
		if code := pf.ProcessState.ExitCode(); code == 0 {
			t.Errorf("kubectl port-forward closed for idleness exited 0")
		}
	case <-time.After(30 * time.Second):
		t.Errorf("an idle port-forward was not closed")
	}
	var ends []string
	for _, ev := range auditRecords(t) {
		if ev.Annotations[audit.AnnotationSession] == name && ev.Stage == auditv1.StageResponseComplete {
			if e := ev.Annotations[audit.AnnotationStreamEnd]; e != "" {
				ends = append(ends, e)
			}
		}
	}
	if len(ends) < 5 {
		t.Errorf("audit records say why %d streams were closed, want 5: %q", len(ends), ends)
	}
}

// startReplica starts one more replica of the suite's gateway, with its own
// recording store, and returns it once it serves the session.
func startReplica(t *testing.T, sink recording.Sink, session string) *gateway.Gateway {
	t.Helper()
	return startReplicaWith(t, session, replicaOptions("0", sink))
}

// startReplicaWith starts a replica with opts and waits until it serves
// session.
func startReplicaWith(t *testing.T, session string, opts gateway.Options) *gateway.Gateway {
	t.Helper()
	gw, err := gateway.New(gwConfig, opts)
	testenv.Must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	testenv.Eventually(t, 30*time.Second, func() error {
		if _, ok := gw.Registry.Get(session); !ok || gw.Addr() == "" {
			return fmt.Errorf("the extra replica does not serve %s yet", session)
		}
		return nil
	})
	return gw
}

// A policy that requires recording refuses an exec, before anything reaches
// the target, when the store cannot take writes; and closes a stream whose
// store fails (here: a full disk) with a message that says so.
func TestRequiredRecordingRefusesOrClosesWhenTheStoreFails(t *testing.T) {
	name := streamsSession(t, "recorded@example.com", v1alpha1.StreamPolicy{Recording: v1alpha1.RecordingRequired})
	tok := token(t, "recorded@example.com")

	// A store whose directory cannot be made: a file is in its way.
	blocked := filepath.Join(t.TempDir(), "not-a-directory")
	testenv.Must(t, os.WriteFile(blocked, nil, 0o600))
	down := startReplica(t, recording.Dir(filepath.Join(blocked, "casts")), name)
	kc := kubeconfigFor(t, "https://"+down.Addr()+"/sessiongate/"+name+"/kas", tok)
	out, err := runKubectl(t, kc, nil, "", "exec", "-n", "demo", "web", "--", "echo", "unrecorded")
	if err == nil || !strings.Contains(out, "must record its streams and the recording store cannot take it") || strings.Contains(out, "unrecorded") {
		t.Errorf("exec with the store down: %v\n%s", err, out)
	}

	// A store on a small filesystem that fills up mid-stream.
	full := filepath.Join(t.TempDir(), "small")
	testenv.Must(t, os.MkdirAll(full, 0o700))
	if msg, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", full).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small filesystem to fill (needs root): %v %s", err, msg)
	}
	t.Cleanup(func() { _ = exec.Command("umount", full).Run() })
	small := startReplica(t, recording.Dir(full), name)
	kc = kubeconfigFor(t, "https://"+small.Addr()+"/sessiongate/"+name+"/kas", tok)
	out, err = runKubectl(t, kc, nil, "", "exec", "-n", "demo", "web", "--", "sh", "-c", "echo started; while true; do echo filling the recording store until it is full; done")
	if err == nil || !strings.Contains(out, "started") || !strings.Contains(out, "its policy requires recording and the recording failed") {
		t.Errorf("exec whose recording store filled up: %v\n%s", err, lastLines(out, 3))
	}
}

// kubeconfigFor writes a kubeconfig for a session endpoint.
func kubeconfigFor(t *testing.T, server, tok string) string {
	t.Helper()
	path := kubeconfig(t, 0, "unused", tok)
	b, err := os.ReadFile(path)
	testenv.Must(t, err)
	b = bytes.Replace(b, []byte(endpoint(0, "unused")), []byte(server), 1)
	testenv.Must(t, os.WriteFile(path, b, 0o600))
	return path
}

func lastLines(s string, n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// kubectl exec through the gateway fails as it would against the target:
// with a command's failure, after its output on the right streams, and with
// the target's own refusal for a pod that is not there (once: the client
// does not try again over SPDY). The audit records say the same. (kwok reports an exit code as an internal error; exit codes
// as the kubelet sends them are read by the streams package's tests.)
func TestExecEndsWithTheTargetsStatusOrRefusal(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			name := "exit-" + p.name
			session(t, name, "alice@example.com")
			kc := kubeconfig(t, 0, name, token(t, "alice@example.com"))

			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := kubectl(ctx, kc, p.env, "exec", "-n", "demo", "web", "-c", "main", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if err == nil || stdout.String() != "out\n" || !strings.HasPrefix(stderr.String(), "err\nerror: ") {
				t.Errorf("kubectl exec: %v, stdout %q, stderr %q; want a failure after out and err", err, stdout.String(), stderr.String())
			}
			// Over WebSocket the target's status reaches the caller as the
			// target wrote it.
			if p.name == "websocket" && !strings.Contains(stderr.String(), "exit status 3") {
				t.Errorf("kubectl exec over WebSocket printed %q, want the target's reason", stderr.String())
			}

			// kubectl looks the pod up before it execs; client-go's executor
			// goes straight to the exec.
			cfg := restConfig(0, name, token(t, "alice@example.com"))
			u := cfg.Host + "/api/v1/namespaces/demo/pods/nope/exec?command=true&stdout=true"
			var exe remotecommand.Executor
			if p.name == "websocket" {
				exe, err = remotecommand.NewWebSocketExecutor(cfg, http.MethodGet, u)
			} else {
				var loc *url.URL
				loc, err = url.Parse(u)
				testenv.Must(t, err)
				exe, err = remotecommand.NewSPDYExecutor(cfg, http.MethodPost, loc)
			}
			testenv.Must(t, err)
			if err := exe.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: io.Discard}); err == nil || !strings.Contains(err.Error(), `pods "nope" not found`) {
				t.Errorf("exec into a missing pod: %v, want the target's refusal", err)
			}

			testenv.Eventually(t, 30*time.Second, func() error {
				failed, refused, refusals := false, false, 0
				for _, ev := range auditRecords(t) {
					if ev.Annotations[audit.AnnotationSession] != name || ev.Stage != auditv1.StageResponseComplete || ev.ObjectRef == nil {
						continue
					}
					switch ev.ObjectRef.Name {
					case "web":
						failed = ev.Annotations[audit.AnnotationStreamEnd] != "" && ev.Annotations[audit.AnnotationExitCode] == ""
					case "nope":
						if ev.ObjectRef.Subresource != "exec" {
							continue
						}
						refused = strings.Contains(ev.Annotations[audit.AnnotationStreamEnd], `pods "nope" not found`)
						refusals++
					}
				}
				if !failed || !refused || refusals != 1 {
					return fmt.Errorf("audit records: the failure recorded %v, the missing pod's refusal recorded %v (%d records, want 1)", failed, refused, refusals)
				}
				return nil
			})
		})
	}
}

// A caller that stops reading an exec's output and then leaves does not hold
// the stream: the gateway ends it (and writes its audit record) at once,
// even while the target still has output for it.
func TestACallerThatLeavesWithoutReadingEndsItsStream(t *testing.T) {
	const name = "leaves"
	session(t, name, "alice@example.com")
	conn := dialExec(t, name, "command=yes&stdout=true")
	// The first output, then no more reading: the target's output fills
	// the connection's buffers.
	if _, _, err := conn.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		for _, ev := range auditRecords(t) {
			if ev.Annotations[audit.AnnotationSession] == name && ev.Stage == auditv1.StageResponseStarted {
				return nil
			}
		}
		return fmt.Errorf("the exec has not started")
	})
	// Once the gateway's writes to the caller wait on the caller's full
	// window, the caller is done writing: its stream ends, though it still
	// holds the connection and has not read what waits.
	gw, me := conn.RemoteAddr().(*net.TCPAddr).Port, conn.LocalAddr().(*net.TCPAddr).Port
	testenv.Eventually(t, 30*time.Second, func() error {
		if n := sendQueue(t, gw, me); n == 0 {
			return fmt.Errorf("the gateway's socket to the caller has nothing waiting to be sent")
		}
		return nil
	})
	testenv.Must(t, conn.NetConn().(*tls.Conn).CloseWrite())
	// At once: well within the 5 s a TLS close waits to tell a caller who
	// does not read.
	testenv.Eventually(t, 4*time.Second, func() error {
		for _, ev := range auditRecords(t) {
			if ev.Annotations[audit.AnnotationSession] == name && ev.Stage == auditv1.StageResponseComplete {
				return nil
			}
		}
		return fmt.Errorf("the stream has not ended")
	})
}

// dialExec opens an exec in demo/web through session name over WebSocket
// (v5), as a raw client that writes its messages itself.
func dialExec(t *testing.T, name, query string) *websocket.Conn {
	t.Helper()
	cfg := restConfig(0, name, token(t, "alice@example.com"))
	tlsCfg, err := rest.TLSConfigFor(cfg)
	testenv.Must(t, err)
	d := websocket.Dialer{TLSClientConfig: tlsCfg, Subprotocols: []string{"v5.channel.k8s.io"}}
	u := strings.Replace(cfg.Host, "https://", "wss://", 1) + "/api/v1/namespaces/demo/pods/web/exec?" + query
	conn, resp, err := d.Dial(u, http.Header{"Authorization": {"Bearer " + cfg.BearerToken}})
	if err != nil {
		t.Fatalf("dialing the exec: %v (%v)", err, resp)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// A caller's message is at most what kubectl writes (32 KiB of stdin and a
// channel byte, with room to spare): a longer one ends the stream, and none
// of it reaches the target, which would take it whole.
func TestAnOversizedMessageFromTheCallerEndsTheStream(t *testing.T) {
	const name = "oversized"
	session(t, name, "alice@example.com")
	conn := dialExec(t, name, "command=cat&stdin=true&stdout=true")
	testenv.Must(t, conn.SetReadDeadline(time.Now().Add(30*time.Second)))
	const stdin, stdout = 0, 1
	echoed := func(want byte, n int) error {
		got := 0
		for got < n {
			_, msg, err := conn.ReadMessage()
			if err != nil {
				return err
			}
			if len(msg) > 0 && msg[0] == stdout {
				got += bytes.Count(msg[1:], []byte{want})
			}
		}
		return nil
	}
	// kubectl's largest message passes, and cat echoes it.
	full := append([]byte{stdin}, bytes.Repeat([]byte("a"), 32<<10)...)
	testenv.Must(t, conn.WriteMessage(websocket.BinaryMessage, full))
	testenv.Must(t, echoed('a', 32<<10))

	// The gateway closes the stream as soon as it reads the message's
	// length (1009, too big), possibly before this client has written all
	// of it: a failed write is as good an answer as the close.
	big := append([]byte{stdin}, bytes.Repeat([]byte("b"), 40<<10)...)
	if err := conn.WriteMessage(websocket.BinaryMessage, big); err == nil {
		if err := echoed('b', 1); err == nil {
			t.Fatal("a 40 KiB message reached the target")
		} else if _, isClose := err.(*websocket.CloseError); isClose && !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
			t.Fatalf("after a 40 KiB message the stream was closed with %v, want 1009 (too big)", err)
		}
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		for _, ev := range auditRecords(t) {
			if ev.Annotations[audit.AnnotationSession] == name && ev.Stage == auditv1.StageResponseComplete {
				if end := ev.Annotations[audit.AnnotationStreamEnd]; !strings.Contains(end, "read limit") {
					return fmt.Errorf("the stream's audit record says it ended with %q", end)
				}
				return nil
			}
		}
		return fmt.Errorf("the stream has not ended")
	})
}

// sendQueue is how many bytes wait to be sent on this host's TCP socket from
// port local to port remote, from /proc/net/tcp and tcp6.
func sendQueue(t *testing.T, local, remote int) int64 {
	t.Helper()
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			// sl local_address rem_address st tx_queue:rx_queue ...
			fs := strings.Fields(line)
			if len(fs) < 5 || !strings.HasSuffix(fs[1], fmt.Sprintf(":%04X", local)) || !strings.HasSuffix(fs[2], fmt.Sprintf(":%04X", remote)) {
				continue
			}
			tx, _, _ := strings.Cut(fs[4], ":")
			n, err := strconv.ParseInt(tx, 16, 64)
			testenv.Must(t, err)
			return n
		}
	}
	t.Fatalf("no TCP socket from port %d to %d", local, remote)
	return 0
}
