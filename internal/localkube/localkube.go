// Package localkube starts real kube-apiservers on this machine (envtest's
// process runner, with kube-apiserver, etcd and kwok from a binary
// directory): a management cluster with sessiongate's CRDs, and target
// clusters whose client CA the caller holds, so that certificates signed for
// sessions are accepted. `sessiongate dev` and the tests share it.
package localkube

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"sessiongate.dev/sessiongate/config"
	"sessiongate.dev/sessiongate/internal/gateway"
)

// Cluster is one running control plane.
type Cluster struct {
	Env    *envtest.Environment
	Config *rest.Config // admin
	Client client.Client
	Kube   kubernetes.Interface
	// CA signs client certificates the API server accepts; nil for the
	// management cluster.
	CA *CA
}

// BinDir holds kube-apiserver, etcd, kubectl and kwok: $KUBEBUILDER_ASSETS,
// else the directory of the running executable when they are there (make
// build puts sessiongate next to them in bin/), else bin/ of the source
// checkout this was built from.
func BinDir() string {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d
	}
	if exe, err := os.Executable(); err == nil {
		if d := filepath.Dir(exe); hasBinaries(d) {
			return d
		}
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		return filepath.Join(filepath.Dir(file), "..", "..", "bin")
	}
	return "bin"
}

func hasBinaries(dir string) bool {
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return false
		}
	}
	return true
}

// StartManagement starts a control plane with sessiongate's CRDs installed.
func StartManagement() (*Cluster, error) {
	crds, err := config.CRDs()
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{BinaryAssetsDirectory: BinDir(), CRDs: crds}
	return start(env, nil)
}

// StartTarget starts a control plane whose client CA is a fresh CA the
// caller holds (Cluster.CA).
func StartTarget() (*Cluster, error) {
	ca, err := NewCA("sessiongate-test-target-client-ca")
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{BinaryAssetsDirectory: BinDir()}
	env.ControlPlane.GetAPIServer().SecureServing.Authn = &caAuthn{ca: ca}
	c, err := start(env, ca)
	if err != nil {
		return nil, err
	}
	if err := AggregateClusterRoles(context.Background(), c.Kube); err != nil {
		_ = c.Stop()
		return nil, err
	}
	return c, nil
}

func start(env *envtest.Environment, ca *CA) (*Cluster, error) {
	// A test cluster's data is thrown away: without fsync, a busy shared
	// disk cannot stall etcd long enough to cost a leader its lease.
	if env.ControlPlane.Etcd == nil {
		env.ControlPlane.Etcd = &envtest.Etcd{}
	}
	env.ControlPlane.Etcd.Configure().Set("unsafe-no-fsync", "true")
	if !hasBinaries(env.BinaryAssetsDirectory) {
		return nil, fmt.Errorf("kube-apiserver and etcd are not in %s: run make test-bins, or set KUBEBUILDER_ASSETS to where they are", env.BinaryAssetsDirectory)
	}
	cfg, err := env.Start()
	if err != nil {
		// Whatever did start (etcd, the API server) must not outlive this.
		_ = env.Stop()
		return nil, fmt.Errorf("starting a local control plane from %s: %w", env.BinaryAssetsDirectory, err)
	}
	c, err := client.New(cfg, client.Options{Scheme: gateway.Scheme()})
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	return &Cluster{Env: env, Config: cfg, Client: c, Kube: kube, CA: ca}, nil
}

// Stop stops the control plane.
func (c *Cluster) Stop() error { return c.Env.Stop() }

// MinterKubeconfig grants the user "sessiongate" the target-side rights
// documented in config/target/rbac.yaml and returns a kubeconfig for it: tests
// mint with exactly what operators are told to grant.
func (c *Cluster) MinterKubeconfig(ctx context.Context) ([]byte, error) {
	rbac, err := config.File(config.TargetRBACPath)
	if err != nil {
		return nil, err
	}
	if err := Apply(ctx, c.Client, config.TargetRBACPath, rbac, ""); err != nil {
		return nil, err
	}
	u, err := c.Env.ControlPlane.AddUser(envtest.User{Name: "sessiongate"}, nil)
	if err != nil {
		return nil, err
	}
	return u.KubeConfig()
}

// AdminKubeconfig returns a kubeconfig for a system:masters user.
func (c *Cluster) AdminKubeconfig() ([]byte, error) {
	u, err := c.Env.ControlPlane.AddUser(envtest.User{Name: "sessiongate-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, err
	}
	return u.KubeConfig()
}

func objectKey(namespace, name string) client.ObjectKey {
	return client.ObjectKey{Namespace: namespace, Name: name}
}
