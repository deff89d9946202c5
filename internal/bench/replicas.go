package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"syscall"

	"sessiongate.dev/sessiongate/internal/localkube"
)

// Namespace is where the run's Clusters and Sessions live.
const Namespace = namespace

// Management and Target are the run's clusters.
func (e *Env) Management() *localkube.Cluster { return e.mgmt }
func (e *Env) Target() *localkube.Cluster     { return e.target }

// Replicas is how many gateway processes the run started.
func (e *Env) Replicas() int { return len(e.replicas) }

// Alive reports whether replica i still runs.
func (e *Env) Alive(i int) bool {
	select {
	case <-e.replicas[i].exited:
		return false
	default:
		return true
	}
}

// Kill ends replica i at once, as a crash or a lost node would: no lease is
// released, nothing is flushed.
func (e *Env) Kill(i int) error {
	if err := e.replicas[i].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-e.replicas[i].exited
	return nil
}

// Leading reports whether replica i leads the control plane, from its
// leader_election_master_status metric.
func (e *Env) Leading(ctx context.Context, i int) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+e.replicas[i].metricsAddr+"/metrics", nil)
	if err != nil {
		return false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		if line := s.Text(); strings.HasPrefix(line, "leader_election_master_status{") {
			return strings.HasSuffix(line, " 1"), nil
		}
	}
	if err := s.Err(); err != nil {
		return false, err
	}
	return false, nil
}

// Leader returns the replica that leads, or -1 when none does.
func (e *Env) Leader(ctx context.Context) (int, error) {
	leader := -1
	for i := range e.replicas {
		if !e.Alive(i) {
			continue
		}
		ok, err := e.Leading(ctx, i)
		if err != nil {
			return -1, fmt.Errorf("replica %d: %w", i, err)
		}
		if ok {
			if leader >= 0 {
				return -1, fmt.Errorf("replicas %d and %d both lead", leader, i)
			}
			leader = i
		}
	}
	return leader, nil
}
