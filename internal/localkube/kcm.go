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
type ControllerManager struct{ daemon }

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
	d, err := startDaemon(dir, "kube-controller-manager",
		"--kubeconfig="+filepath.Join(dir, "kubeconfig"),
		"--controllers="+strings.Join(controllers, ","),
		"--cluster-signing-kube-apiserver-client-cert-file="+filepath.Join(dir, "ca.crt"),
		"--cluster-signing-kube-apiserver-client-key-file="+filepath.Join(dir, "ca.key"),
		"--leader-elect=false",
		"--secure-port=0",
		"-v=1",
	)
	if err != nil {
		return nil, err
	}
	return &ControllerManager{daemon: d}, nil
}

// daemon is a Kubernetes binary from bin/ running in its own process group
// until Stop, logging to a file.
type daemon struct {
	cmd *exec.Cmd
	// Log is where its output goes.
	Log string
}

// startDaemon runs bin/name with args, logging to dir/name.log.
func startDaemon(dir, name string, args ...string) (daemon, error) {
	log, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return daemon{}, err
	}
	defer log.Close()
	cmd := exec.Command(filepath.Join(BinDir(), name), args...)
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group, so nothing it starts outlives Stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return daemon{}, fmt.Errorf("starting %s (run make test-bins): %w", name, err)
	}
	return daemon{cmd: cmd, Log: log.Name()}, nil
}

// Stop ends the process and waits for it.
func (d daemon) Stop() {
	_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	_ = d.cmd.Wait()
}
