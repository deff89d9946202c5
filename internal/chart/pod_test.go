package chart_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"

	"sessiongate.dev/sessiongate/internal/testenv"
)

// pod runs one replica of a rendered pod template as a kubelet would, on
// this machine: the built sessiongate binary (the image's entrypoint) with
// the container's args, its Secret and emptyDir volumes written to a
// directory and their mount paths pointed there, its declared ports mapped
// to free loopback ports, its env resolved from the API server, and the
// ServiceAccount's token (a TokenRequest) as its only credential.
type pod struct {
	spec   corev1.PodSpec
	ports  map[int32]int // container port -> loopback port
	log    string
	cmd    *exec.Cmd
	exited chan struct{}
}

func startPod(t *testing.T, namespace string, spec corev1.PodSpec) *pod {
	t.Helper()
	ctx := context.Background()
	if len(spec.Containers) != 1 || len(spec.InitContainers) > 0 {
		t.Fatalf("want one container and no init containers, got %d and %d", len(spec.Containers), len(spec.InitContainers))
	}
	c := spec.Containers[0]
	if len(c.Command) > 0 {
		t.Fatalf("container %s overrides the image's entrypoint with %v", c.Name, c.Command)
	}
	dir := t.TempDir()
	p := &pod{spec: spec, ports: map[int32]int{}, log: filepath.Join(dir, "sessiongate.log"), exited: make(chan struct{})}

	mounts := map[string]string{} // mount path -> directory here
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = filepath.Join(dir, "volumes", m.Name)
		writeVolume(t, namespace, volume(t, spec, m.Name), mounts[m.MountPath])
	}
	for _, cp := range c.Ports {
		port, err := testenv.FreePort()
		testenv.Must(t, err)
		p.ports[cp.ContainerPort] = port
	}
	args := make([]string, len(c.Args))
	for i, a := range c.Args {
		args[i] = p.rewrite(a, mounts)
	}

	env := []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH")}
	if ptr.Deref(spec.AutomountServiceAccountToken, true) {
		env = append(env, "KUBECONFIG="+serviceAccountKubeconfig(t, namespace, spec.ServiceAccountName, dir))
	}
	for _, from := range c.EnvFrom {
		if from.SecretRef == nil {
			t.Fatalf("envFrom %+v: only Secrets are supported here", from)
		}
		for k, v := range secret(t, namespace, from.SecretRef.Name).Data {
			env = append(env, from.Prefix+k+"="+string(v))
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			t.Fatalf("env %s: valueFrom is not supported here", e.Name)
		}
		env = append(env, e.Name+"="+e.Value)
	}

	log, err := os.Create(p.log)
	testenv.Must(t, err)
	defer log.Close()
	p.cmd = exec.CommandContext(ctx, binary, args...)
	p.cmd.Env, p.cmd.Dir = env, dir
	p.cmd.Stdout, p.cmd.Stderr = log, log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	testenv.Must(t, p.cmd.Start())
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(p.stop)
	return p
}

// stop ends the replica as a kubelet would: SIGTERM, then SIGKILL after
// the grace period.
func (p *pod) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	grace := time.Duration(ptr.Deref(p.spec.TerminationGracePeriodSeconds, 30)) * time.Second
	select {
	case <-p.exited:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

var portSuffix = regexp.MustCompile(`^(?:[0-9.]*|localhost):([0-9]+)$`)

// rewrite points a --flag=value argument at this machine: a path under a
// mount into the volume's directory, an address on a declared port to its
// loopback port.
func (p *pod) rewrite(arg string, mounts map[string]string) string {
	flag, value, ok := strings.Cut(arg, "=")
	if !ok {
		return arg
	}
	paths := make([]string, 0, len(mounts))
	for m := range mounts {
		paths = append(paths, m)
	}
	sort.Slice(paths, func(i, j int) bool { return len(paths[i]) > len(paths[j]) })
	for _, m := range paths {
		if value == m || strings.HasPrefix(value, m+"/") {
			return flag + "=" + mounts[m] + strings.TrimPrefix(value, m)
		}
	}
	if sm := portSuffix.FindStringSubmatch(value); sm != nil {
		if n, err := strconv.Atoi(sm[1]); err == nil {
			if port, ok := p.ports[int32(n)]; ok {
				return flag + "=127.0.0.1:" + strconv.Itoa(port)
			}
		}
	}
	return arg
}

// port is the loopback port of a container port, by name or number.
func (p *pod) port(t testing.TB, name string) int {
	t.Helper()
	c := p.spec.Containers[0]
	for _, cp := range c.Ports {
		if cp.Name == name || strconv.Itoa(int(cp.ContainerPort)) == name {
			return p.ports[cp.ContainerPort]
		}
	}
	t.Fatalf("container %s declares no port %s", c.Name, name)
	return 0
}

// probe runs an HTTP probe of the container once, as a kubelet would.
func (p *pod) probe(t testing.TB, pr *corev1.Probe) error {
	t.Helper()
	select {
	case <-p.exited:
		b, _ := os.ReadFile(p.log)
		t.Fatalf("sessiongate exited: %v\n%s", p.cmd.ProcessState, b)
	default:
	}
	if pr == nil || pr.HTTPGet == nil || pr.HTTPGet.Scheme == corev1.URISchemeHTTPS {
		t.Fatalf("want an HTTP GET probe, got %+v", pr)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d%s", p.port(t, pr.HTTPGet.Port.String()), pr.HTTPGet.Path)
	c := &http.Client{Timeout: time.Duration(max(pr.TimeoutSeconds, 1)) * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("GET %s: %s", pr.HTTPGet.Path, resp.Status)
	}
	return nil
}

// logs is what the replica wrote so far.
func (p *pod) logs() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

func volume(t testing.TB, spec corev1.PodSpec, name string) corev1.Volume {
	t.Helper()
	for _, v := range spec.Volumes {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("volume %s is mounted but not declared", name)
	return corev1.Volume{}
}

// writeVolume makes dir hold what the volume holds.
func writeVolume(t testing.TB, namespace string, v corev1.Volume, dir string) {
	t.Helper()
	testenv.Must(t, os.MkdirAll(dir, 0o700))
	switch {
	case v.EmptyDir != nil:
	case v.Secret != nil:
		s := secret(t, namespace, v.Secret.SecretName)
		files := map[string][]byte{}
		for k, b := range s.Data {
			files[k] = b
		}
		if len(v.Secret.Items) > 0 {
			files = map[string][]byte{}
			for _, it := range v.Secret.Items {
				b, ok := s.Data[it.Key]
				if !ok {
					t.Fatalf("volume %s: Secret %s has no key %s", v.Name, s.Name, it.Key)
				}
				files[it.Path] = b
			}
		}
		for name, b := range files {
			testenv.Must(t, os.WriteFile(filepath.Join(dir, name), b, 0o600))
		}
	default:
		t.Fatalf("volume %s: only emptyDir and secret volumes are supported here", v.Name)
	}
}

func secret(t testing.TB, namespace, name string) *corev1.Secret {
	t.Helper()
	s, err := mgmt.Kube.CoreV1().Secrets(namespace).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the pod needs Secret %s/%s: %v", namespace, name, err)
	}
	return s
}

// serviceAccountKubeconfig writes a kubeconfig holding a token of the
// ServiceAccount from the API server's TokenRequest API: the credential a
// kubelet projects into the pod.
func serviceAccountKubeconfig(t testing.TB, namespace, name, dir string) string {
	t.Helper()
	tok, err := mgmt.Kube.CoreV1().ServiceAccounts(namespace).CreateToken(context.Background(), name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("a token for ServiceAccount %s/%s: %v", namespace, name, err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["in-cluster"] = &clientcmdapi.Cluster{Server: mgmt.Config.Host, CertificateAuthorityData: mgmt.Config.CAData}
	cfg.AuthInfos["sa"] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
	cfg.Contexts["in-cluster"] = &clientcmdapi.Context{Cluster: "in-cluster", AuthInfo: "sa", Namespace: namespace}
	cfg.CurrentContext = "in-cluster"
	path := filepath.Join(dir, "kubeconfig")
	testenv.Must(t, clientcmd.WriteToFile(*cfg, path))
	return path
}
