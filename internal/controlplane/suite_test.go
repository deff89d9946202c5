package controlplane_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/controlplane"
	"sessiongate.dev/sessiongate/internal/gateway"
	"sessiongate.dev/sessiongate/internal/notify"
	"sessiongate.dev/sessiongate/internal/policy"
	"sessiongate.dev/sessiongate/internal/testenv"
)

// One management and one target cluster serve every test of the package; each
// test works in a namespace of its own with a gateway of its own.
var (
	mgmt   *testenv.Cluster
	target *testenv.Cluster
)

func TestMain(m *testing.M) {
	ctrl.SetLogger(klog.NewKlogr())
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if mgmt, err = testenv.StartManagement(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer mgmt.Stop()
	if target, err = testenv.StartTarget(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer target.Stop()
	defer stopDebugTarget()
	return m.Run()
}

// testPolicy is the default policy, with TTLs short enough to watch a session
// expire and one group a certificate may carry.
var testPolicy = func() policy.Policy {
	p := policy.Default()
	p.MinTTL = time.Second
	p.Groups = []string{"sre"}
	return p
}()

// env is one test's gateway namespace, with the target registered in it.
type env struct {
	t         *testing.T
	ctx       context.Context
	namespace string
	gw        *gateway.Gateway
	stopGW    context.CancelFunc
	gwDone    chan error
}

// newEnv makes a namespace, registers the target there as Cluster "target",
// and starts a gateway serving that namespace.
func newEnv(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, namespace: "gw-" + rand.String(6)}
	testenv.Must(t, mgmt.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.namespace}}))
	kubeconfig, err := target.MinterKubeconfig(ctx)
	testenv.Must(t, err)
	testenv.Must(t, mgmt.Client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.namespace, Name: "target-kubeconfig"},
		Data:       map[string][]byte{controlplane.DefaultKubeconfigKey: kubeconfig},
	}))
	e.registerCluster("target", "target-kubeconfig", v1alpha1.CredentialProvider{})
	e.startGateway()
	t.Cleanup(e.stopGateway)
	return e
}

func (e *env) registerCluster(name, kubeconfigSecret string, provider v1alpha1.CredentialProvider) {
	e.t.Helper()
	e.registerClusterAt(name, target.Config.Host, target.Config.CAData, kubeconfigSecret, provider)
}

func (e *env) registerClusterAt(name, server string, ca []byte, kubeconfigSecret string, provider v1alpha1.CredentialProvider) {
	e.t.Helper()
	testenv.Must(e.t, mgmt.Client.Create(e.ctx, &v1alpha1.Cluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.namespace, Name: name},
		Spec: v1alpha1.ClusterSpec{
			Server:              server,
			CABundle:            ca,
			KubeconfigSecretRef: v1alpha1.SecretKeyRef{Name: kubeconfigSecret},
			Provider:            provider,
		},
	}))
}

func (e *env) startGateway() {
	e.t.Helper()
	e.startGatewayWith(testPolicy)
}

// startGatewayWith starts the gateway with the RBAC config/rbac grants it,
// never as an administrator.
func (e *env) startGatewayWith(pol policy.Policy) {
	e.t.Helper()
	e.startGatewayOpts(func(o *controlplane.Options) { o.Policy = pol })
}

// startGatewayOpts starts the gateway with changed control plane options.
func (e *env) startGatewayOpts(mutate func(*controlplane.Options)) {
	e.t.Helper()
	cfg, err := mgmt.GatewayConfig(e.ctx, e.namespace)
	testenv.Must(e.t, err)
	cp := controlplane.Options{
		Namespace:      e.namespace,
		Gateway:        e.namespace,
		IngressBaseURL: "https://gateway.test",
		Policy:         testPolicy,
		// Quick retries, so a failing sink is given up on in a test.
		Notify: notify.Options{Attempts: 3, Backoff: 20 * time.Millisecond},
	}
	mutate(&cp)
	gw, err := gateway.New(cfg, gateway.Options{
		ControlPlane:           cp,
		LeaderElection:         true,
		LeaderElectionID:       "sessiongate",
		MetricsBindAddress:     "0",
		HealthProbeBindAddress: "0",
		SeveralPerProcess:      true,
	})
	testenv.Must(e.t, err)
	ctx, cancel := context.WithCancel(e.ctx)
	e.gw, e.stopGW, e.gwDone = gw, cancel, make(chan error, 1)
	go func() { e.gwDone <- gw.Start(ctx) }()
}

// stopGateway stops the gateway and waits until it has let go.
func (e *env) stopGateway() {
	if e.stopGW == nil {
		return
	}
	e.stopGW()
	if err := <-e.gwDone; err != nil {
		e.t.Errorf("gateway stopped with an error: %v", err)
	}
	e.stopGW = nil
}

// viewSession is a valid session of alice for the view ClusterRole.
func (e *env) viewSession(name string) *v1alpha1.Session {
	return &v1alpha1.Session{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.namespace, Name: name},
		Spec: v1alpha1.SessionSpec{
			TTL:         metav1.Duration{Duration: time.Hour},
			Cluster:     "target",
			AccessLevel: v1alpha1.AccessLevel{ClusterRole: "view"},
			Owner: v1alpha1.Owner{Type: v1alpha1.OwnerUser,
				UserPrincipal: &v1alpha1.UserPrincipal{Name: "alice@example.com", Claim: "email"}},
			Reason: "INC-1234",
		},
	}
}

func (e *env) create(s *v1alpha1.Session) {
	e.t.Helper()
	testenv.Must(e.t, mgmt.Client.Create(e.ctx, s))
}

// waitPhase polls until the session reaches phase and returns it.
func (e *env) waitPhase(name string, phase v1alpha1.SessionPhase, within time.Duration) *v1alpha1.Session {
	e.t.Helper()
	s := &v1alpha1.Session{}
	testenv.Eventually(e.t, within, func() error {
		if err := mgmt.Client.Get(e.ctx, client.ObjectKey{Namespace: e.namespace, Name: name}, s); err != nil {
			return err
		}
		if s.Status.Phase != phase {
			return fmt.Errorf("session %s is %q, want %q (conditions: %+v)", name, s.Status.Phase, phase, s.Status.Conditions)
		}
		return nil
	})
	return s
}
