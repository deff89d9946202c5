package localkube

import (
	"os"
	"path/filepath"
)

// Scheduler is a kube-scheduler placing a cluster's pods on its (kwok)
// nodes: without one, the pods of DaemonSets and Deployments never get a
// node.
type Scheduler struct{ daemon }

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
	d, err := startDaemon(dir, "kube-scheduler",
		"--kubeconfig="+kubeconfig,
		// The delegation kubeconfigs serve its own endpoints, which
		// nothing here calls.
		"--authentication-kubeconfig="+kubeconfig,
		"--authorization-kubeconfig="+kubeconfig,
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		"--secure-port=0",
		"-v=1",
	)
	if err != nil {
		return nil, err
	}
	return &Scheduler{daemon: d}, nil
}
