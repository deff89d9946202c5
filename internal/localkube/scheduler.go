package localkube

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// Scheduler is a kube-scheduler placing a cluster's pods on its (kwok)
// nodes: without one, the pods of DaemonSets and Deployments never get a
// node.
type Scheduler struct {
	cmd *exec.Cmd
	// Log is where its output goes.
	Log string
}

// StartScheduler runs kube-scheduler against c until Stop. dir holds its
// kubeconfig and log.
func StartScheduler(c *Cluster, dir string) (*Scheduler, error) {
	kc, err := c.AdminKubeconfig()
	if err != nil {
		return nil, err
	}
	kubeconfig := filepath.Join(dir, "scheduler.kubeconfig")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, "kube-scheduler.log"))
	if err != nil {
		return nil, err
	}
	defer log.Close()
	cmd := exec.Command(filepath.Join(BinDir(), "kube-scheduler"),
		"--kubeconfig="+kubeconfig,
		// The authentication and authorization delegation kubeconfigs
		// serve its own endpoints, which nothing here calls.
		"--authentication-kubeconfig="+kubeconfig,
		"--authorization-kubeconfig="+kubeconfig,
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		"--secure-port=0",
		"-v=1",
	)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting kube-scheduler (run make test-bins): %w", err)
	}
	return &Scheduler{cmd: cmd, Log: log.Name()}, nil
}

// Stop ends kube-scheduler and waits for it.
func (s *Scheduler) Stop() {
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	_ = s.cmd.Wait()
}
