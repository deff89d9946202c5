package controlplane_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sessiongate.dev/sessiongate/config"
	"sessiongate.dev/sessiongate/internal/localkube"
	"sessiongate.dev/sessiongate/internal/testenv"
)

// The debug tests need what the other tests of the package do not: nodes
// whose pods run (kwok), the controllers that turn DaemonSets and
// Deployments into pods and delete a namespace's content
// (kube-controller-manager), kube-scheduler to place pods on nodes, and the
// opt-in rbac-debug.yaml for the gateway's identity. The first debug test
// starts them, once, and the suite stops them.
var (
	debugTargetOnce sync.Once
	debugTargetErr  error
	debugTargetStop []func()
	// debugTargetLogs are kwok's and kube-controller-manager's, for a test
	// that failed.
	debugTargetLogs []string
)

// debugNodes are the kwok nodes debug pods run on.
var debugNodes = []string{testenv.NodeName, testenv.NodeName + "-2"}

func debugTarget(t *testing.T) {
	t.Helper()
	debugTargetOnce.Do(func() { debugTargetErr = startDebugTarget() })
	if debugTargetErr != nil {
		t.Fatalf("starting kwok and kube-controller-manager on the target: %v", debugTargetErr)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, f := range debugTargetLogs {
			b, _ := os.ReadFile(f)
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("%s (the end):\n%s", filepath.Base(f), b)
		}
	})
}

func startDebugTarget() error {
	ctx := context.Background()
	rbac, err := config.File(config.TargetDebugRBACPath)
	if err != nil {
		return err
	}
	if err := localkube.Apply(ctx, target.Client, config.TargetDebugRBACPath, rbac, ""); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "sessiongate-controlplane-debug-")
	if err != nil {
		return err
	}
	debugTargetStop = append(debugTargetStop, func() { _ = os.RemoveAll(dir) })
	kwok, err := testenv.StartKwok(ctx, target, dir, testenv.KwokOptions{Logs: []string{"debug pod started"}})
	if err != nil {
		return err
	}
	debugTargetStop = append(debugTargetStop, kwok.Stop)
	for _, name := range debugNodes[1:] {
		err := target.Client.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
			Labels:      map[string]string{"type": "kwok", corev1.LabelHostname: name},
		}})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	if err := untaintNodes(ctx); err != nil {
		return err
	}
	kcm, err := testenv.StartControllerManager(target, dir, "daemonset", "deployment", "replicaset", "garbagecollector", "namespace")
	if err != nil {
		return err
	}
	debugTargetStop = append(debugTargetStop, kcm.Stop)
	debugTargetLogs = []string{filepath.Join(dir, "kwok.log"), kcm.Log}
	sched, err := testenv.StartScheduler(target, dir)
	if err != nil {
		return err
	}
	debugTargetStop = append(debugTargetStop, sched.Stop)
	debugTargetLogs = append(debugTargetLogs, sched.Log)
	return nil
}

// untaintNodes removes the not-ready taint the API server puts on a new
// node, as kube-controller-manager's node lifecycle controller does once
// the node is Ready (kwok makes it Ready; the suite does not run that
// controller, which would also evict pods from nodes it judges gone).
func untaintNodes(ctx context.Context) error {
	for _, name := range debugNodes {
		for attempt := 0; ; attempt++ {
			n, err := target.Kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			n.Spec.Taints = slices.DeleteFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == corev1.TaintNodeNotReady })
			_, err = target.Kube.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
			if err == nil {
				break
			}
			if !apierrors.IsConflict(err) || attempt > 20 {
				return fmt.Errorf("untainting node %s: %w", name, err)
			}
		}
	}
	return nil
}

// stopDebugTarget stops what debugTarget started, if it did.
func stopDebugTarget() {
	for i := len(debugTargetStop) - 1; i >= 0; i-- {
		debugTargetStop[i]()
	}
}

// kubectl runs the real kubectl with kubeconfig and returns its output.
func kubectl(ctx context.Context, kubeconfig, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(testenv.BinDir(), "kubectl"), append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// adminKubeconfig is a kubeconfig file for an administrator of the
// management cluster, to apply YAML as an operator would.
func adminKubeconfig(t *testing.T) string {
	t.Helper()
	kc, err := mgmt.AdminKubeconfig()
	testenv.Must(t, err)
	f := filepath.Join(t.TempDir(), "admin.kubeconfig")
	testenv.Must(t, os.WriteFile(f, kc, 0o600))
	return f
}

// waitGone polls until get says NotFound.
func waitGone(t *testing.T, within time.Duration, what string, get func() error) {
	t.Helper()
	testenv.Eventually(t, within, func() error {
		if err := get(); !apierrors.IsNotFound(err) {
			return fmt.Errorf("%s is still there (err=%v)", what, err)
		}
		return nil
	})
}
