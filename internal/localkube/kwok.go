package localkube

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// NodeName is the kwok node pods are placed on.
const NodeName = "kwok-node"

// Kwok fakes a node and its pods on a target: pods become Running, exec runs
// commands on this machine (in a scratch directory), logs come from a file and
// port-forward reaches a loopback port.
type Kwok struct {
	cmd *exec.Cmd
	// Dir holds kwok's files; LogsFile is what `kubectl logs` shows.
	Dir, LogsFile string
}

// KwokOptions say what "inside a pod" means.
type KwokOptions struct {
	// ForwardPort is the loopback port every pod port forwards to.
	ForwardPort int
	// Logs are the lines `kubectl logs` prints.
	Logs []string
}

// StartKwok runs kwok against c until Stop.
func StartKwok(ctx context.Context, c *Cluster, dir string, opts KwokOptions) (*Kwok, error) {
	cfgDir := filepath.Join(BinDir(), "kwok-config")
	if _, err := envtest.InstallCRDs(c.Config, envtest.CRDInstallOptions{
		Paths: []string{
			filepath.Join(cfgDir, "kwok.x-k8s.io_clusterexecs.yaml"),
			filepath.Join(cfgDir, "kwok.x-k8s.io_clusterlogs.yaml"),
			filepath.Join(cfgDir, "kwok.x-k8s.io_clusterportforwards.yaml"),
			filepath.Join(cfgDir, "kwok.x-k8s.io_clusterattaches.yaml"),
		},
		ErrorIfPathMissing: true,
	}); err != nil {
		return nil, fmt.Errorf("installing kwok CRDs (run make test-bins): %w", err)
	}
	k := &Kwok{Dir: dir, LogsFile: filepath.Join(dir, "pod.log")}
	var logs strings.Builder
	for i, l := range opts.Logs {
		fmt.Fprintf(&logs, "2026-01-01T00:00:%02d.000000000Z stdout F %s\n", i%60, l)
	}
	if err := os.WriteFile(k.LogsFile, []byte(logs.String()), 0o600); err != nil {
		return nil, err
	}
	workDir := filepath.Join(dir, "pods")
	if err := os.MkdirAll(workDir, 0o700); err != nil {
		return nil, err
	}
	for _, obj := range []map[string]any{
		{"kind": "ClusterExec", "spec": map[string]any{"execs": []any{map[string]any{"local": map[string]any{"workDir": workDir}}}}},
		{"kind": "ClusterLogs", "spec": map[string]any{"logs": []any{map[string]any{"containers": []any{}, "logsFile": k.LogsFile, "follow": true}}}},
		{"kind": "ClusterPortForward", "spec": map[string]any{"forwards": []any{map[string]any{"target": map[string]any{"port": int64(opts.ForwardPort), "address": "127.0.0.1"}}}}},
		{"kind": "ClusterAttach", "spec": map[string]any{"attaches": []any{map[string]any{"containers": []any{}, "logsFile": k.LogsFile}}}},
	} {
		u := &unstructured.Unstructured{Object: obj}
		u.SetAPIVersion("kwok.x-k8s.io/v1alpha1")
		u.SetName("sessiongate-test")
		if err := c.Client.Create(ctx, u); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating kwok %s: %w", u.GetKind(), err)
		}
	}

	kubeconfig, err := c.AdminKubeconfig()
	if err != nil {
		return nil, err
	}
	kubeconfigFile := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfigFile, kubeconfig, 0o600); err != nil {
		return nil, err
	}
	ca, err := NewCA("kwok")
	if err != nil {
		return nil, err
	}
	certFile, keyFile, err := ca.WriteServingCert(dir, "127.0.0.1")
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	stages := []string{"stage-node-initialize.yaml", "stage-pod-ready.yaml", "stage-pod-complete.yaml", "stage-pod-delete.yaml"}
	for i, s := range stages {
		stages[i] = filepath.Join(cfgDir, s)
	}
	k.cmd = exec.Command(filepath.Join(BinDir(), "kwok"),
		"-c", strings.Join(stages, ","),
		"--kubeconfig", kubeconfigFile,
		"--manage-all-nodes",
		"--node-ip", "127.0.0.1",
		"--node-port", strconv.Itoa(port),
		"--server-address", "127.0.0.1:"+strconv.Itoa(port),
		"--tls-cert-file", certFile,
		"--tls-private-key-file", keyFile,
		"--enable-crds=ClusterExec,ClusterLogs,ClusterPortForward,ClusterAttach",
	)
	out, err := os.Create(filepath.Join(dir, "kwok.log"))
	if err != nil {
		return nil, err
	}
	k.cmd.Stdout, k.cmd.Stderr = out, out
	k.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := k.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting kwok: %w", err)
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name:        NodeName,
		Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
		Labels:      map[string]string{"type": "kwok"},
	}}
	if err := c.Client.Create(ctx, node); err != nil && !apierrors.IsAlreadyExists(err) {
		k.Stop()
		return nil, err
	}
	return k, nil
}

// Stop ends kwok and whatever it started.
func (k *Kwok) Stop() {
	if k.cmd != nil && k.cmd.Process != nil {
		_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL)
		_ = k.cmd.Wait()
	}
}

// RunningPod creates a pod on the kwok node and waits until it runs.
func RunningPod(ctx context.Context, c *Cluster, namespace, name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if err := c.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: corev1.PodSpec{
			NodeName:   NodeName,
			Containers: []corev1.Container{{Name: "main", Image: "example.invalid/web:1", Ports: []corev1.ContainerPort{{ContainerPort: 80}}}},
		},
	}
	if err := c.Client.Create(ctx, pod); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if err := c.Client.Get(ctx, objectKey(namespace, name), pod); err == nil && pod.Status.Phase == corev1.PodRunning {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("pod %s/%s is not Running after 30s (phase %q)", namespace, name, pod.Status.Phase)
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
