package gateway_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"sessiongate.dev/sessiongate/internal/testenv"
)

// kubectlProxy starts kubectl proxy on a free port and returns its URL.
func kubectlProxy(t *testing.T, kc string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	cmd := kubectl(ctx, kc, nil, append([]string{"proxy", "--port=0"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	testenv.Must(t, err)
	testenv.Must(t, cmd.Start())
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "Starting to serve on ")
	if err != nil || !ok {
		t.Fatalf("kubectl proxy printed %q (%v)", line, err)
	}
	return "http://" + addr
}

// The documented behaviour of kubectl proxy with a session kubeconfig
// (docs/users.md): it drops the server URL's path unless told to keep it.
func TestKubectlProxyNeedsAppendServerPath(t *testing.T) {
	session(t, "kubectl-proxy", "alice@example.com")
	kc := kubeconfig(t, 0, "kubectl-proxy", token(t, "alice@example.com"))
	get := func(base string) (int, string) {
		resp, err := http.Get(base + "/api/v1/namespaces/demo/pods")
		testenv.Must(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(kubectlProxy(t, kc, "--append-server-path")); code != http.StatusOK || !strings.Contains(body, `"web"`) {
		t.Errorf("kubectl proxy --append-server-path: %d %s", code, body)
	}
	if code, _ := get(kubectlProxy(t, kc)); code != http.StatusNotFound && code != http.StatusBadRequest {
		t.Errorf("kubectl proxy without --append-server-path answered %d: if kubectl now keeps the path, update docs/users.md and sgctl's hint", code)
	}
}
