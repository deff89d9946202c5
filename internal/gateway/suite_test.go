package gateway_test

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/authn"
	"sessiongate.dev/sessiongate/internal/controlplane"
	"sessiongate.dev/sessiongate/internal/devissuer"
	"sessiongate.dev/sessiongate/internal/gateway"
	"sessiongate.dev/sessiongate/internal/policy"
	"sessiongate.dev/sessiongate/internal/recording"
	"sessiongate.dev/sessiongate/internal/testenv"
)

const (
	namespace = "sessiongate"
	audience  = "sessiongate-test"
	// webReply is what a port-forward to the demo pod reaches.
	webReply = "hello from web"
)

// The whole package shares one world: a management cluster, a target with a
// kwok node and a running pod demo/web, an OIDC issuer, and two gateway
// replicas serving the same namespace (one of them leads the control plane).
var (
	mgmt, target *testenv.Cluster
	issuer       *devissuer.Issuer
	gwCA         *testenv.CA
	replicas     []*gateway.Gateway
	auditLog     = &syncBuffer{}
	workDir      string
	// recordings is where both replicas keep casts.
	recordings recording.Dir
	// metricsPort serves replica 0's /metrics, /healthz and /readyz.
	metricsPort int
	// replicaOptions configure a replica of the suite's gateway; a test may
	// start one of its own (startReplica) with another recording store.
	replicaOptions func(metricsAddr string, recordings recording.Sink) gateway.Options
	gwConfig       *rest.Config
)

func TestMain(m *testing.M) {
	ctrl.SetLogger(klog.NewKlogr())
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var err error
	if workDir, err = os.MkdirTemp("", "sessiongate-gateway-test-"); err != nil {
		return 0, err
	}
	defer os.RemoveAll(workDir)
	recordings = recording.Dir(filepath.Join(workDir, "recordings"))

	if mgmt, err = testenv.StartManagement(); err != nil {
		return 0, err
	}
	defer mgmt.Stop()
	if target, err = testenv.StartTarget(); err != nil {
		return 0, err
	}
	defer target.Stop()

	web, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	go func() {
		_ = http.Serve(web, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(webReply)) }))
	}()
	kwok, err := testenv.StartKwok(ctx, target, workDir, testenv.KwokOptions{
		ForwardPort: web.Addr().(*net.TCPAddr).Port,
		Logs:        []string{"web started", "GET / 200"},
	})
	if err != nil {
		return 0, err
	}
	defer kwok.Stop()
	if err := testenv.RunningPod(ctx, target, "demo", "web"); err != nil {
		return 0, err
	}
	// Debug sessions deploy DaemonSets and Deployments, which need their
	// controllers and the scheduler; their cleanup relies on the garbage
	// collector and the namespace controller.
	kcmDir := filepath.Join(workDir, "kube-controller-manager")
	if err := os.Mkdir(kcmDir, 0o700); err != nil {
		return 0, err
	}
	kcm, err := testenv.StartControllerManager(target, kcmDir, "daemonset", "deployment", "replicaset", "garbagecollector", "namespace")
	if err != nil {
		return 0, err
	}
	defer kcm.Stop()
	sched, err := testenv.StartScheduler(target, kcmDir)
	if err != nil {
		return 0, err
	}
	defer sched.Stop()

	if issuer, err = devissuer.New(); err != nil {
		return 0, err
	}
	issuerSrv := httptest.NewUnstartedServer(issuer)
	issuerSrv.StartTLS()
	defer issuerSrv.Close()
	issuer.SetURL(issuerSrv.URL)
	issuerCA := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: issuerSrv.Certificate().Raw})

	if err := testenv.RegisterTarget(ctx, mgmt, target, namespace, "target"); err != nil {
		return 0, err
	}
	if gwCA, err = testenv.NewCA("sessiongate-test-gateway"); err != nil {
		return 0, err
	}
	certFile, keyFile, err := gwCA.WriteServingCert(workDir, "127.0.0.1", "localhost")
	if err != nil {
		return 0, err
	}
	if metricsPort, err = testenv.FreePort(); err != nil {
		return 0, err
	}
	// The replicas run with exactly the RBAC that config/rbac grants.
	if gwConfig, err = mgmt.GatewayConfig(ctx, namespace); err != nil {
		return 0, err
	}
	replicaOptions = func(metricsAddr string, recordings recording.Sink) gateway.Options {
		return gateway.Options{
			ControlPlane: controlplane.Options{
				Namespace: namespace, Gateway: "test", IngressBaseURL: "https://gateway.test",
				Policy: testPolicy(),
			},
			Serve: &gateway.ServeOptions{
				Listen: "127.0.0.1:0", TLSCertFile: certFile, TLSKeyFile: keyFile,
				OIDC:        authn.Config{IssuerURL: issuerSrv.URL, Audiences: []string{audience}, CAData: issuerCA},
				AuditWriter: auditLog,
				AdminGroups: []string{"sessiongate-admins"},
				Recordings:  recordings, AuditorGroups: []string{"auditors"},
				// Idle expiry is tested in seconds, not minutes.
				ActivityReportInterval: 500 * time.Millisecond,
			},
			LeaderElection: true, LeaderElectionID: "sessiongate",
			MetricsBindAddress: metricsAddr, HealthProbeBindAddress: "0",
			SeveralPerProcess: true,
		}
	}
	for i := range 2 {
		metricsAddr := "0"
		if i == 0 {
			metricsAddr = "127.0.0.1:" + strconv.Itoa(metricsPort)
		}
		gw, err := gateway.New(gwConfig, replicaOptions(metricsAddr, recordings))
		if err != nil {
			return 0, err
		}
		done := make(chan error, 1)
		go func() { done <- gw.Start(ctx) }()
		defer func() { cancel(); <-done }()
		replicas = append(replicas, gw)
	}
	return m.Run(), nil
}

// testPolicy is the default policy with TTLs short enough to watch expire.
func testPolicy() policy.Policy {
	p := policy.Default()
	p.MinTTL = time.Second
	return p
}

// session creates a session owned by the user with that email, with edit
// rights in namespace demo, and waits until every replica serves it.
func session(t testing.TB, name, email string, mutate ...func(*v1alpha1.Session)) *v1alpha1.Session {
	t.Helper()
	ctx := context.Background()
	s := &v1alpha1.Session{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: v1alpha1.SessionSpec{
			TTL:         metav1.Duration{Duration: time.Hour},
			Cluster:     "target",
			AccessLevel: v1alpha1.AccessLevel{ClusterRole: "edit", Namespaces: []string{"demo"}},
			Owner:       v1alpha1.Owner{Type: v1alpha1.OwnerUser, UserPrincipal: &v1alpha1.UserPrincipal{Name: email, Claim: "email"}},
			Reason:      t.Name(),
		},
	}
	for _, m := range mutate {
		m(s)
	}
	testenv.Must(t, mgmt.Client.Create(ctx, s))
	t.Cleanup(func() { _ = mgmt.Client.Delete(context.Background(), s) })
	testenv.Eventually(t, 30*time.Second, func() error {
		for i, gw := range replicas {
			if _, ok := gw.Registry.Get(name); !ok {
				return fmt.Errorf("replica %d does not serve session %s yet", i, name)
			}
		}
		return nil
	})
	testenv.Must(t, mgmt.Client.Get(ctx, client.ObjectKeyFromObject(s), s))
	return s
}

func token(t testing.TB, email string, groups ...string) string {
	t.Helper()
	tok, err := issuer.Token(email, groups, audience, time.Hour)
	testenv.Must(t, err)
	return tok
}

// endpoint is the session's URL on one replica.
func endpoint(replica int, session string) string {
	return "https://" + replicas[replica].Addr() + "/sessiongate/" + session + "/kas"
}

// restConfig is what vanilla client-go needs to use a session.
func restConfig(replica int, session, tok string) *rest.Config {
	return &rest.Config{
		Host:            endpoint(replica, session),
		BearerToken:     tok,
		TLSClientConfig: rest.TLSClientConfig{CAData: gwCA.CertPEM},
	}
}

func clientset(t *testing.T, replica int, session, tok string) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(restConfig(replica, session, tok))
	testenv.Must(t, err)
	return c
}

// kubeconfig writes a kubeconfig file for a session on one replica.
func kubeconfig(t *testing.T, replica int, session, tok string) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["gw"] = &clientcmdapi.Cluster{Server: endpoint(replica, session), CertificateAuthorityData: gwCA.CertPEM}
	cfg.AuthInfos["me"] = &clientcmdapi.AuthInfo{Token: tok}
	cfg.Contexts["s"] = &clientcmdapi.Context{Cluster: "gw", AuthInfo: "me"}
	cfg.CurrentContext = "s"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	testenv.Must(t, clientcmd.WriteToFile(*cfg, path))
	return path
}

// kubectl prepares the real kubectl from bin/ against a kubeconfig.
func kubectl(ctx context.Context, kubeconfigPath string, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(testenv.BinDir(), "kubectl"), append([]string{"--kubeconfig", kubeconfigPath}, args...)...)
	cmd.Env = append(append(os.Environ(), "HOME="+workDir), env...)
	return cmd
}

// runKubectl runs kubectl to completion and returns its combined output.
func runKubectl(t *testing.T, kubeconfigPath string, env []string, stdin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := kubectl(ctx, kubeconfigPath, env, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// syncBuffer collects audit records from both replicas.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// cmdHandle is a running command whose exit can be awaited.
type cmdHandle struct {
	*exec.Cmd
	exited chan struct{}
}
