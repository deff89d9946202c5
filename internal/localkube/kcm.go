package localkube

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// ControllerManager is a kube-controller-manager running only the
// controllers a test names, by default csrsigning: it issues the
// certificates of approved kubernetes.io/kube-apiserver-client requests with
// the target's client CA, as a real cluster's would.
type ControllerManager struct {
	cmd *exec.Cmd
	// Log is where its output goes.
	Log string
}

// StartControllerManager runs kube-controller-manager against c, which must
// have been started with a CA (StartTarget), until Stop, with the named
// controllers (default csrsigning; e.g. daemonset, deployment, replicaset,
// garbagecollector, namespace for workloads).
func StartControllerManager(c *Cluster, dir string, controllers ...string) (*ControllerManager, error) {
	if len(controllers) == 0 {
		controllers = []string{"csrsigning"}
	}
	if c.CA == nil {
		return nil, fmt.Errorf("the cluster has no client CA to sign with")
	}
	kc, err := c.AdminKubeconfig()
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{"kubeconfig": kc, "ca.crt": c.CA.CertPEM, "ca.key": c.CA.KeyPEM}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return nil, err
		}
	}
	log, err := os.Create(filepath.Join(dir, "kube-controller-manager.log"))
	if err != nil {
		return nil, err
	}
	defer log.Close()
	cmd := exec.Command(filepath.Join(BinDir(), "kube-controller-manager"),
		"--kubeconfig="+filepath.Join(dir, "kubeconfig"),
		"--controllers="+strings.Join(controllers, ","),
		"--cluster-signing-kube-apiserver-client-cert-file="+filepath.Join(dir, "ca.crt"),
		"--cluster-signing-kube-apiserver-client-key-file="+filepath.Join(dir, "ca.key"),
		"--leader-elect=false",
		"--secure-port=0",
		"-v=1",
	)
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group, so nothing it starts outlives Stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting kube-controller-manager (run make test-bins): %w", err)
	}
	return &ControllerManager{cmd: cmd, Log: log.Name()}, nil
}

// Stop ends kube-controller-manager and waits for it.
func (m *ControllerManager) Stop() {
	_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
	_ = m.cmd.Wait()
}
