// Package bench measures the gateway against the direct path to the target
// API server, with `kubectl proxy` as a familiar reference, in one run on one
// machine. Every figure is compared with the direct path measured side by
// side, in interleaved rounds, so machine noise hits all paths alike.
package bench

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/credentials"
	"sessiongate.dev/sessiongate/internal/devissuer"
	"sessiongate.dev/sessiongate/internal/localkube"
)

const (
	namespace = "sessiongate"
	audience  = "sessiongate-bench"
	benchNS   = "bench"
)

// Path is one way to reach the target API server.
type Path struct {
	Name   string
	Config *rest.Config
	HTTP   *http.Client
}

// URL joins the path's base URL and an API path.
func (p *Path) URL(apiPath string) string { return strings.TrimRight(p.Config.Host, "/") + apiPath }

// Do sends a request with the path's credentials.
func (p *Path) Do(ctx context.Context, method, apiPath string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, p.URL(apiPath), nil)
	if err != nil {
		return nil, err
	}
	if p.Config.BearerToken != "" {
		req.Header.Set("Authorization", "Bearer "+p.Config.BearerToken)
	}
	req.Header.Set("Accept", "application/json")
	return p.HTTP.Do(req)
}

// replica is one gateway process.
type replica struct {
	cmd         *exec.Cmd
	addr        string
	metricsAddr string
	exited      chan struct{}
}

// Env is everything a run needs.
type Env struct {
	dir       string
	mgmt      *localkube.Cluster
	target    *localkube.Cluster
	kwok      *localkube.Kwok
	issuer    *devissuer.Issuer
	issuerSrv *httptest.Server
	gwCA      *localkube.CA
	replicas  []*replica
	proxyCmd  *exec.Cmd
	token     string
	zeros     net.Listener

	Direct, Gateway, KubectlProxy *Path
	// GatewayUnrecorded is the gateway with a session whose policy turns
	// recording off; Gateway's session is recorded (best-effort).
	GatewayUnrecorded *Path
	// GatewayHTTP1 is Gateway's session with a caller that offers only
	// HTTP/1.1, as every caller speaks to a gateway run with --http2=false.
	GatewayHTTP1 *Path
	Versions     map[string]string
	// IdleCPU is the gateway processes' CPU use when idle, in cores, and
	// IdleWakeups their threads' wake-ups per second.
	IdleCPU, IdleWakeups float64
	// Log, if set, hears what a run noticed on the way (a slow session).
	Log io.Writer
	// Profiles, if set, is the directory for heap and CPU profiles
	// (Options); profiles counts the CPU profiles written.
	Profiles string
	profiles int
	// Settle, if set, is when after registering them the scale scenario
	// reads the heaps per idle session again (Options).
	Settle time.Duration
}

// Names of paths in results: GatewayUnrecorded, GatewayHTTP1 and
// KubectlProxy.
const (
	unrecorded   = "gateway, unrecorded"
	http1        = "gateway, HTTP/1.1 callers"
	kubectlProxy = "kubectl proxy"
	// http1Callers ends the names of GET scenarios on GatewayHTTP1.
	http1Callers = ", HTTP/1.1 callers"
)

// Start brings up a target with kwok, a management cluster, an OIDC issuer,
// n gateway processes and `kubectl proxy`, and one Active session.
func Start(ctx context.Context, binDir string, n int) (*Env, error) {
	dir, err := os.MkdirTemp("", "sessiongate-bench-")
	if err != nil {
		return nil, err
	}
	e := &Env{dir: dir, Versions: map[string]string{}}
	if e.mgmt, err = localkube.StartManagement(); err != nil {
		return e, err
	}
	if e.target, err = localkube.StartTarget(); err != nil {
		return e, err
	}
	zeros, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return e, err
	}
	e.zeros = zeros
	go serveZeros(zeros)
	if e.kwok, err = localkube.StartKwok(ctx, e.target, dir, localkube.KwokOptions{ForwardPort: zeros.Addr().(*net.TCPAddr).Port, Logs: []string{"bench"}}); err != nil {
		return e, err
	}
	if err := localkube.RunningPod(ctx, e.target, "demo", "web"); err != nil {
		return e, err
	}
	if err := e.target.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: benchNS}}); err != nil {
		return e, err
	}

	if e.issuer, err = devissuer.New(); err != nil {
		return e, err
	}
	e.issuerSrv = httptest.NewTLSServer(e.issuer)
	e.issuer.SetURL(e.issuerSrv.URL)
	issuerCA := filepath.Join(dir, "issuer-ca.crt")
	if err := os.WriteFile(issuerCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.issuerSrv.Certificate().Raw}), 0o600); err != nil {
		return e, err
	}
	if e.token, err = e.issuer.Token("alice@example.com", nil, audience, 24*time.Hour); err != nil {
		return e, err
	}
	if e.gwCA, err = localkube.NewCA("sessiongate-bench"); err != nil {
		return e, err
	}
	certFile, keyFile, err := e.gwCA.WriteServingCert(dir, "127.0.0.1")
	if err != nil {
		return e, err
	}
	mgmtKubeconfig := filepath.Join(dir, "mgmt.kubeconfig")
	kc, err := e.mgmt.AdminKubeconfig()
	if err != nil {
		return e, err
	}
	if err := os.WriteFile(mgmtKubeconfig, kc, 0o600); err != nil {
		return e, err
	}
	if err := localkube.RegisterTarget(ctx, e.mgmt, e.target, namespace, "target"); err != nil {
		return e, err
	}

	ports := make([]int, 2*n)
	for i := range ports {
		if ports[i], err = localkube.FreePort(); err != nil {
			return e, err
		}
	}
	for i := range n {
		r := &replica{addr: "127.0.0.1:" + strconv.Itoa(ports[2*i]), metricsAddr: "127.0.0.1:" + strconv.Itoa(ports[2*i+1]), exited: make(chan struct{})}
		r.cmd = exec.Command(filepath.Join(binDir, "sessiongate"), "serve",
			"--kubeconfig", mgmtKubeconfig, "--namespace", namespace, "--gateway-name", "bench",
			"--ingress-base-url", "https://127.0.0.1:"+strconv.Itoa(ports[0]),
			"--listen", r.addr, "--tls-cert-file", certFile, "--tls-key-file", keyFile,
			"--oidc-issuer-url", e.issuerSrv.URL, "--oidc-audience", audience, "--oidc-ca-file", issuerCA,
			"--min-ttl", "1s", "--metrics-bind-address", r.metricsAddr, "--metrics-secure=false", "--health-probe-bind-address", "0",
			"--enable-pprof", "--audit-log", filepath.Join(dir, "audit-"+strconv.Itoa(i)+".log"),
			"--recording-dir", filepath.Join(dir, "recordings"))
		log, err := os.Create(filepath.Join(dir, "gateway-"+strconv.Itoa(i)+".log"))
		if err != nil {
			return e, err
		}
		r.cmd.Stdout, r.cmd.Stderr = log, log
		r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := r.cmd.Start(); err != nil {
			return e, err
		}
		go func() { _ = r.cmd.Wait(); close(r.exited) }()
		e.replicas = append(e.replicas, r)
	}
	for _, r := range e.replicas {
		if err := waitHTTP(ctx, "http://"+r.metricsAddr+"/readyz", r.exited); err != nil {
			return e, fmt.Errorf("gateway at %s: %w (log in %s)", r.addr, err, dir)
		}
	}

	s, err := e.CreateSession(ctx, "bench", true)
	if err != nil {
		return e, err
	}
	sec := &corev1.Secret{}
	if err := e.mgmt.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: s.Status.CredentialsSecretRef}, sec); err != nil {
		return e, err
	}
	e.Direct = newPath("direct", &rest.Config{Host: e.target.Config.Host, BearerToken: string(sec.Data[credentials.KeyToken]),
		TLSClientConfig: rest.TLSClientConfig{CAData: e.target.Config.CAData}})
	e.Gateway = e.GatewayPath(0, "bench")
	h1 := rest.CopyConfig(e.Gateway.Config)
	h1.NextProtos = []string{"http/1.1"}
	e.GatewayHTTP1 = newPath(http1, h1)
	if err := e.unrecordedSession(ctx); err != nil {
		return e, err
	}
	e.GatewayUnrecorded = e.GatewayPath(0, "bench-unrecorded")
	e.GatewayUnrecorded.Name = unrecorded
	if e.KubectlProxy, err = e.startKubectlProxy(ctx, binDir, e.Direct.Config); err != nil {
		return e, err
	}
	e.Versions["kube-apiserver"] = "v1.37.2"
	e.measureIdle()
	return e, nil
}

func newPath(name string, cfg *rest.Config) *Path {
	cfg.QPS, cfg.Burst = -1, -1 // no client-side throttling: measure the servers
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		panic(err)
	}
	return &Path{Name: name, Config: cfg, HTTP: &http.Client{Transport: rt}}
}

// GatewayPath is the session on one replica.
func (e *Env) GatewayPath(replica int, session string) *Path {
	return newPath("gateway", &rest.Config{
		Host:            "https://" + e.replicas[replica].addr + "/sessiongate/" + session + "/kas",
		BearerToken:     e.token,
		TLSClientConfig: rest.TLSClientConfig{CAData: e.gwCA.CertPEM},
	})
}

// CreateSession creates a session for alice with edit in demo and bench,
// and with wait returns once replica 0 serves it.
func (e *Env) CreateSession(ctx context.Context, name string, wait bool) (*v1alpha1.Session, error) {
	return e.CreateSessionFor(ctx, name, 2*time.Hour, wait)
}

// CreateSessionFor is CreateSession with a TTL.
func (e *Env) CreateSessionFor(ctx context.Context, name string, ttl time.Duration, wait bool) (*v1alpha1.Session, error) {
	return e.createSession(ctx, name, ttl, wait, nil)
}

func (e *Env) createSession(ctx context.Context, name string, ttl time.Duration, wait bool, mutate func(*v1alpha1.Session)) (*v1alpha1.Session, error) {
	s := &v1alpha1.Session{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: v1alpha1.SessionSpec{
			TTL: metav1.Duration{Duration: ttl}, Cluster: "target",
			AccessLevel: v1alpha1.AccessLevel{ClusterRole: "edit", Namespaces: []string{"demo", benchNS}},
			Owner:       v1alpha1.Owner{Type: v1alpha1.OwnerUser, UserPrincipal: &v1alpha1.UserPrincipal{Name: "alice@example.com", Claim: "email"}},
			Reason:      "bench",
		},
	}
	if mutate != nil {
		mutate(s)
	}
	if err := e.mgmt.Client.Create(ctx, s); err != nil {
		return nil, err
	}
	if !wait {
		return s, nil
	}
	if _, err := e.firstOK(ctx, name, time.Minute); err != nil {
		return nil, err
	}
	return s, e.mgmt.Client.Get(ctx, client.ObjectKeyFromObject(s), s)
}

// unrecordedSession is alice's session "bench-unrecorded", requested under
// an AccessPolicy with recording off, served by replica 0.
func (e *Env) unrecordedSession(ctx context.Context) error {
	pol := &v1alpha1.AccessPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "bench-unrecorded"},
		Spec: v1alpha1.AccessPolicySpec{
			Requesters: v1alpha1.Subjects{Users: []string{"alice@example.com"}},
			Clusters:   v1alpha1.ClusterSelector{Names: []string{"target"}},
			AccessLevels: []v1alpha1.PolicyAccessLevel{{ClusterRole: "edit",
				Namespaces: &v1alpha1.NamespaceFilter{Allow: []string{"demo", benchNS}}}},
			MaxTTL:  metav1.Duration{Duration: 8 * time.Hour},
			Streams: &v1alpha1.StreamPolicy{Recording: v1alpha1.RecordingOff},
		},
	}
	if err := e.mgmt.Client.Create(ctx, pol); err != nil {
		return err
	}
	_, err := e.createSession(ctx, "bench-unrecorded", 2*time.Hour, true, func(s *v1alpha1.Session) {
		s.Spec.Requester = &v1alpha1.Requester{User: "alice@example.com"}
		s.Spec.Policy = pol.Name
	})
	return err
}

func (e *Env) startKubectlProxy(ctx context.Context, binDir string, direct *rest.Config) (*Path, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["t"] = &clientcmdapi.Cluster{Server: direct.Host, CertificateAuthorityData: direct.CAData}
	cfg.AuthInfos["t"] = &clientcmdapi.AuthInfo{Token: direct.BearerToken}
	cfg.Contexts["t"] = &clientcmdapi.Context{Cluster: "t", AuthInfo: "t"}
	cfg.CurrentContext = "t"
	path := filepath.Join(e.dir, "direct.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return nil, err
	}
	port, err := localkube.FreePort()
	if err != nil {
		return nil, err
	}
	// --disable-filter lets exec through, as the gateway does.
	e.proxyCmd = exec.Command(filepath.Join(binDir, "kubectl"), "proxy", "--kubeconfig", path, "--port", strconv.Itoa(port), "--disable-filter")
	e.proxyCmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := e.proxyCmd.Start(); err != nil {
		return nil, err
	}
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	if err := waitHTTP(ctx, url+"/version", nil); err != nil {
		return nil, fmt.Errorf("kubectl proxy: %w", err)
	}
	return newPath(kubectlProxy, &rest.Config{Host: url}), nil
}

func waitHTTP(ctx context.Context, url string, exited <-chan struct{}) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not ready within a minute", url)
}

// Stop ends every process of the run.
func (e *Env) Stop() {
	if e.proxyCmd != nil && e.proxyCmd.Process != nil {
		_ = e.proxyCmd.Process.Kill()
		_ = e.proxyCmd.Wait()
	}
	for _, r := range e.replicas {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.exited:
		case <-time.After(10 * time.Second):
			_ = r.cmd.Process.Kill()
		}
	}
	if e.issuerSrv != nil {
		e.issuerSrv.Close()
	}
	if e.zeros != nil {
		e.zeros.Close()
	}
	if e.kwok != nil {
		e.kwok.Stop()
	}
	for _, c := range []*localkube.Cluster{e.target, e.mgmt} {
		if c != nil {
			_ = c.Stop()
		}
	}
	_ = os.RemoveAll(e.dir)
}

func urlOf(s string) (*neturl.URL, error) { return neturl.Parse(s) }
