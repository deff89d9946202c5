package bench_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/bench"
	"sessiongate.dev/sessiongate/internal/credentials"
	"sessiongate.dev/sessiongate/internal/testenv"
)

// Three gateway processes; the leader is killed (SIGKILL: no lease released)
// while it mints five sessions. A new leader finishes them without making
// anything twice, the survivors serve an Active session without a single
// failed request throughout, and with no leader at all a session's expiry
// still cuts its streams on every replica.
func TestFailoverWhileMintingAndExpiryWithoutALeader(t *testing.T) {
	bin := t.TempDir()
	cmd := exec.Command("make", "build", "BIN="+bin)
	cmd.Dir = testenv.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	testenv.Must(t, os.Symlink(filepath.Join(testenv.BinDir(), "kubectl"), filepath.Join(bin, "kubectl")))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env, err := bench.Start(ctx, bin, 3)
	defer env.Stop()
	testenv.Must(t, err)
	mgmt := env.Management().Client

	leader := -1
	testenv.Eventually(t, 30*time.Second, func() error {
		if leader, err = env.Leader(ctx); err != nil || leader < 0 {
			return fmt.Errorf("no single leader yet (%v)", err)
		}
		return nil
	})
	survivor := (leader + 1) % env.Replicas()

	// Requests through a survivor, all the way through the failover.
	var served, failed atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		p := env.GatewayPath(survivor, "bench")
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := p.Do(ctx, http.MethodGet, "/api/v1/namespaces/demo/pods")
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if err != nil || resp.StatusCode != http.StatusOK {
				failed.Add(1)
			} else {
				served.Add(1)
			}
		}
	}()

	names := []string{"fo-1", "fo-2", "fo-3", "fo-4", "fo-5"}
	for _, n := range names {
		_, err := env.CreateSession(ctx, n, false)
		testenv.Must(t, err)
	}
	// Kill it once minting has begun: the first ServiceAccount is there.
	testenv.Eventually(t, 30*time.Second, func() error {
		sas, err := env.Target().Kube.CoreV1().ServiceAccounts(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: credentials.LabelSessionName + " in (fo-1,fo-2,fo-3,fo-4,fo-5)"})
		if err != nil || len(sas.Items) == 0 {
			return fmt.Errorf("no minting yet (%v)", err)
		}
		return nil
	})
	killed := time.Now()
	testenv.Must(t, env.Kill(leader))
	var took time.Duration
	testenv.Eventually(t, 90*time.Second, func() error {
		for _, n := range names {
			s := &v1alpha1.Session{}
			testenv.Must(t, mgmt.Get(ctx, client.ObjectKey{Namespace: bench.Namespace, Name: n}, s))
			if s.Status.Phase != v1alpha1.PhaseActive {
				return fmt.Errorf("%s is %q", n, s.Status.Phase)
			}
		}
		took = time.Since(killed)
		return nil
	})
	close(stop)
	<-done
	t.Logf("failover: all sessions Active %s after the leader was killed; %d requests served by replica %d meanwhile", took.Round(100*time.Millisecond), served.Load(), survivor)
	if failed.Load() != 0 || served.Load() == 0 {
		t.Errorf("through the survivor: %d failed, %d served; want none failed", failed.Load(), served.Load())
	}

	// Nothing twice: one ServiceAccount and one binding per namespace each.
	kube := env.Target().Kube
	for _, n := range names {
		s := &v1alpha1.Session{}
		testenv.Must(t, mgmt.Get(ctx, client.ObjectKey{Namespace: bench.Namespace, Name: n}, s))
		sel := metav1.ListOptions{LabelSelector: labels.Set{credentials.LabelSessionUID: string(s.UID)}.String()}
		sas, err := kube.CoreV1().ServiceAccounts(metav1.NamespaceAll).List(ctx, sel)
		testenv.Must(t, err)
		rbs, err := kube.RbacV1().RoleBindings(metav1.NamespaceAll).List(ctx, sel)
		testenv.Must(t, err)
		if len(sas.Items) != 1 || len(rbs.Items) != len(s.Spec.AccessLevel.Namespaces) {
			t.Errorf("%s: %d ServiceAccounts and %d RoleBindings on the target, want 1 and %d", n, len(sas.Items), len(rbs.Items), len(s.Spec.AccessLevel.Namespaces))
		}
	}

	// No leader at all: someone else holds the lease. A session that was
	// Active before runs out meanwhile: every replica still cuts its streams
	// at expiresAt, though no control plane moves it.
	const ttl = 30 * time.Second
	expiring, err := env.CreateSessionFor(ctx, "fo-expiring", ttl, true)
	testenv.Must(t, err)
	lease := &coordinationv1.Lease{}
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := mgmt.Get(ctx, client.ObjectKey{Namespace: bench.Namespace, Name: "sessiongate-control-plane"}, lease); err != nil {
			return err
		}
		lease.Spec.HolderIdentity = ptr.To("thief")
		lease.Spec.LeaseDurationSeconds = ptr.To[int32](3600)
		lease.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
		return mgmt.Update(ctx, lease)
	})
	testenv.Eventually(t, 60*time.Second, func() error {
		if l, err := env.Leader(ctx); err != nil || l >= 0 {
			return fmt.Errorf("replica %d still leads (%v)", l, err)
		}
		return nil
	})
	testenv.Must(t, mgmt.Get(ctx, client.ObjectKeyFromObject(expiring), expiring))
	expiresAt := expiring.Status.ExpiresAt.Time
	if time.Until(expiresAt) < time.Second {
		t.Fatalf("losing the leader took past the session's expiry; raise ttl (%s)", ttl)
	}
	type cut struct {
		replica int
		at      time.Time
		err     error
	}
	cuts := make(chan cut, env.Replicas())
	open := 0
	for i := range env.Replicas() {
		if !env.Alive(i) {
			continue
		}
		open++
		w, err := env.GatewayPath(i, "fo-expiring").Do(ctx, http.MethodGet, "/api/v1/namespaces/demo/configmaps?watch=true")
		testenv.Must(t, err)
		if w.StatusCode != http.StatusOK {
			t.Fatalf("watch through replica %d: %s", i, w.Status)
		}
		go func() {
			_, err := io.Copy(io.Discard, w.Body)
			w.Body.Close()
			cuts <- cut{i, time.Now(), err}
		}()
	}
	for range open {
		select {
		case c := <-cuts:
			if late := c.at.Sub(expiresAt); late < -time.Second || late > 2*time.Second {
				t.Errorf("replica %d cut the watch %s from expiresAt", c.replica, late)
			}
		case <-time.After(ttl + 30*time.Second):
			t.Fatal("a watch outlived its session's expiry with no leader")
		}
	}
	testenv.Must(t, mgmt.Get(ctx, client.ObjectKeyFromObject(expiring), expiring))
	if expiring.Status.Phase != v1alpha1.PhaseActive {
		t.Logf("session phase %s: some control plane moved it", expiring.Status.Phase)
	}
}
