package gateway_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"sessiongate.dev/sessiongate/internal/testenv"
)

func TestKubectlGetAndExecThroughGateway(t *testing.T) {
	session(t, "kubectl-basics", "alice@example.com")
	kc := kubeconfig(t, 0, "kubectl-basics", token(t, "alice@example.com"))

	out, err := runKubectl(t, kc, nil, "", "get", "pods", "-n", "demo", "-o", "name")
	if err != nil || !strings.Contains(out, "pod/web") {
		t.Fatalf("kubectl get pods: %v\n%s", err, out)
	}
	if out, err := runKubectl(t, kc, nil, "", "get", "secrets", "-n", "kube-system"); err == nil || !strings.Contains(out, "Forbidden") {
		t.Errorf("kubectl get secrets outside the session's namespaces: want Forbidden, got %v\n%s", err, out)
	}

	for _, proto := range []struct {
		name string
		env  []string
	}{
		{"websocket", nil},
		{"spdy", []string{"KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false"}},
	} {
		t.Run("exec-"+proto.name, func(t *testing.T) {
			out, err := runKubectl(t, kc, proto.env, "", "exec", "-n", "demo", "web", "--", "echo", "hello", proto.name)
			if err != nil || !strings.Contains(out, "hello "+proto.name) {
				t.Fatalf("kubectl exec: %v\n%s", err, out)
			}
			out, err = runKubectl(t, kc, proto.env, "ping-"+proto.name+"\n", "exec", "-i", "-n", "demo", "web", "--", "head", "-n", "1")
			if err != nil || !strings.Contains(out, "ping-"+proto.name) {
				t.Fatalf("kubectl exec -i head: %v\n%s", err, out)
			}
		})
	}
}

func TestKubectlLogsFollowThroughGateway(t *testing.T) {
	session(t, "kubectl-logs", "alice@example.com")
	kc := kubeconfig(t, 1, "kubectl-logs", token(t, "alice@example.com"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := kubectl(ctx, kc, nil, "logs", "-f", "-n", "demo", "web")
	stdout, err := cmd.StdoutPipe()
	testenv.Must(t, err)
	testenv.Must(t, cmd.Start())
	defer func() { cancel(); _ = cmd.Wait() }()
	lines := bufio.NewScanner(stdout)
	var got []string
	for len(got) < 2 && lines.Scan() {
		got = append(got, lines.Text())
	}
	if len(got) < 2 || got[0] != "web started" || got[1] != "GET / 200" {
		t.Fatalf("kubectl logs -f printed %q", got)
	}
}

func TestKubectlPortForwardThroughGateway(t *testing.T) {
	session(t, "kubectl-pf", "alice@example.com")
	kc := kubeconfig(t, 0, "kubectl-pf", token(t, "alice@example.com"))
	for _, proto := range []struct {
		name string
		env  []string
	}{
		{"websocket", nil},
		{"spdy", []string{"KUBECTL_PORT_FORWARD_WEBSOCKETS=false"}},
	} {
		t.Run(proto.name, func(t *testing.T) {
			port, cmd := portForward(t, kc, proto.env)
			defer func() { _ = cmd.Process.Kill(); <-cmd.exited }()
			resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port))
			testenv.Must(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != webReply {
				t.Errorf("through port-forward got %q, want %q", body, webReply)
			}
		})
	}
}

// portForward starts `kubectl port-forward pod/web` and waits until it listens.
func portForward(t *testing.T, kc string, env []string) (int, *cmdHandle) {
	t.Helper()
	port, err := testenv.FreePort()
	testenv.Must(t, err)
	cmd := kubectl(context.Background(), kc, env, "port-forward", "-n", "demo", "pod/web", strconv.Itoa(port)+":80")
	stdout, err := cmd.StdoutPipe()
	testenv.Must(t, err)
	testenv.Must(t, cmd.Start())
	h := &cmdHandle{Cmd: cmd, exited: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			if strings.HasPrefix(s.Text(), "Forwarding from") {
				close(ready)
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() { _ = cmd.Wait(); close(h.exited) }()
	select {
	case <-ready:
	case <-h.exited:
		t.Fatal("kubectl port-forward exited before it was ready")
	case <-time.After(30 * time.Second):
		t.Fatal("kubectl port-forward is not ready after 30s")
	}
	return port, h
}

func TestClientGoListAndWatchThroughGateway(t *testing.T) {
	session(t, "client-go", "alice@example.com")
	c := clientset(t, 1, "client-go", token(t, "alice@example.com"))
	ctx := context.Background()

	pods, err := c.CoreV1().Pods("demo").List(ctx, metav1.ListOptions{})
	testenv.Must(t, err)
	if len(pods.Items) == 0 {
		t.Fatal("no pods listed in demo")
	}
	w, err := c.CoreV1().ConfigMaps("demo").Watch(ctx, metav1.ListOptions{})
	testenv.Must(t, err)
	defer w.Stop()
	name := "watched-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	_, err = target.Kube.CoreV1().ConfigMaps("demo").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	testenv.Must(t, err)
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatal("watch closed before the event arrived")
			}
			if cm, isCM := ev.Object.(*corev1.ConfigMap); isCM && ev.Type == watch.Added && cm.Name == name {
				return
			}
		case <-timeout:
			t.Fatal("watch event did not arrive within 10s")
		}
	}
}

// whoami asks the target who the request arrived as.
func whoami(ctx context.Context, c interface {
	Create(context.Context, *authenticationv1.SelfSubjectReview, metav1.CreateOptions) (*authenticationv1.SelfSubjectReview, error)
}) (string, error) {
	r, err := c.Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return r.Status.UserInfo.Username, nil
}
