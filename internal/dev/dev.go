// Package dev runs a complete sessiongate on one machine, all on loopback: a
// management and a target cluster (kube-apiserver and etcd from bin/), kwok
// with a running pod on the target, a development OIDC issuer, and the
// gateway itself. It is what `make demo` starts.
package dev

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/klog/v2"

	"sessiongate.dev/sessiongate/config"
	"sessiongate.dev/sessiongate/internal/authn"
	"sessiongate.dev/sessiongate/internal/controlplane"
	"sessiongate.dev/sessiongate/internal/devissuer"
	"sessiongate.dev/sessiongate/internal/gateway"
	"sessiongate.dev/sessiongate/internal/localkube"
	"sessiongate.dev/sessiongate/internal/policy"
	"sessiongate.dev/sessiongate/internal/recording"
)

// Names of the sandbox.
const (
	Namespace   = "sessiongate"
	ClusterName = "dev-target"
	Audience    = "sessiongate"
	ReadyLine   = "sessiongate dev: ready"
	// AdminGroup may revoke every session of a user or group.
	AdminGroup = "sessiongate-admins"
	// WebReply is what a port-forward to demo/web answers.
	WebReply = "hello from the demo pod\n"
)

// dirMarker says a directory is the sandbox's own, so it may be emptied.
const dirMarker = ".sessiongate-dev"

// emptyDir empties dir for a new sandbox, but only a directory an earlier
// sandbox made (or an empty one): --dir . must never wipe a checkout.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("--dir %s: %w", dir, err)
	case len(entries) == 0:
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, dirMarker)); err != nil {
		return fmt.Errorf("--dir %s holds files sessiongate dev did not make (it has no %s); refusing to empty it: choose another directory or remove it yourself", dir, dirMarker)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("clearing the old state in %s: %w", dir, err)
	}
	return nil
}

// Options configure the sandbox.
type Options struct {
	// Dir holds the sandbox's files; it is emptied at start, if an earlier
	// sandbox made it.
	Dir string
	// Listen is the first replica's address; replica i listens on port+i.
	Listen   string
	Replicas int
	// Out receives the ready line and the walkthrough.
	Out io.Writer
}

// issuerFile lets `sessiongate dev token` sign for the running issuer.
type issuerFile struct {
	URL      string `json:"url"`
	Audience string `json:"audience"`
	KeyID    string `json:"kid"`
	KeyPEM   []byte `json:"key"`
}

// Run starts the sandbox and blocks until ctx ends, then stops everything it
// started.
func Run(ctx context.Context, opts Options) error {
	if opts.Replicas < 1 {
		return fmt.Errorf("--replicas must be at least 1")
	}
	listens, err := replicaAddresses(opts.Listen, opts.Replicas)
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return err
	}
	if err := emptyDir(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "kwok"), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, dirMarker), []byte("made by sessiongate dev; emptied at its next start\n"), 0o600); err != nil {
		return err
	}
	var stops []func()
	defer func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}()
	step := func(msg string) { fmt.Fprintf(opts.Out, "sessiongate dev: %s\n", msg) }

	step("starting the management and target clusters")
	mgmt, err := localkube.StartManagement()
	if err != nil {
		return err
	}
	stops = append(stops, func() { _ = mgmt.Stop() })
	target, err := localkube.StartTarget()
	if err != nil {
		return err
	}
	stops = append(stops, func() { _ = target.Stop() })

	step("starting kwok and the demo pod")
	web, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	webSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, WebReply) }), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = webSrv.Serve(web) }()
	stops = append(stops, func() { _ = webSrv.Close() })
	kwok, err := localkube.StartKwok(ctx, target, filepath.Join(dir, "kwok"), localkube.KwokOptions{
		ForwardPort: web.Addr().(*net.TCPAddr).Port,
		Logs:        []string{"demo web server started", "GET / 200"},
	})
	if err != nil {
		return err
	}
	stops = append(stops, kwok.Stop)
	if err := localkube.RunningPod(ctx, target, "demo", "web"); err != nil {
		return err
	}
	step("starting kube-controller-manager and kube-scheduler for debug workloads")
	kcmDir := filepath.Join(dir, "kube-controller-manager")
	if err := os.MkdirAll(kcmDir, 0o700); err != nil {
		return err
	}
	kcm, err := localkube.StartControllerManager(target, kcmDir, "daemonset", "deployment", "replicaset", "garbagecollector", "namespace")
	if err != nil {
		return err
	}
	stops = append(stops, kcm.Stop)
	sched, err := localkube.StartScheduler(target, kcmDir)
	if err != nil {
		return err
	}
	stops = append(stops, sched.Stop)

	ca, err := localkube.NewCA("sessiongate-dev")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), ca.CertPEM, 0o644); err != nil {
		return err
	}
	certFile, keyFile, err := ca.WriteServingCert(dir, "127.0.0.1", "localhost")
	if err != nil {
		return err
	}

	step("starting the OIDC issuer")
	issuerURL, stopIssuer, err := startIssuer(dir, certFile, keyFile)
	if err != nil {
		return err
	}
	stops = append(stops, stopIssuer)

	if err := writeKubeconfigs(dir, mgmt, target); err != nil {
		return err
	}
	if err := localkube.RegisterTarget(ctx, mgmt, target, Namespace, ClusterName); err != nil {
		return err
	}
	policies, err := config.File(config.DevPoliciesPath)
	if err != nil {
		return err
	}
	if err := localkube.Apply(ctx, mgmt.Client, "config/"+config.DevPoliciesPath, policies, Namespace); err != nil {
		return fmt.Errorf("applying the sandbox's access policies: %w", err)
	}
	if err := applyDebug(ctx, mgmt, target); err != nil {
		return err
	}
	step("starting the notification receiver")
	stopReceiver, err := startReceiver(ctx, mgmt.Client, dir, certFile, keyFile, ca.CertPEM, opts.Out)
	if err != nil {
		return err
	}
	stops = append(stops, stopReceiver)

	step(fmt.Sprintf("starting %d gateway replica(s)", opts.Replicas))
	gwCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, opts.Replicas)
	started := 0
	stops = append(stops, func() {
		cancel()
		for range started {
			<-done
		}
	})
	// The sandbox's gateway holds exactly the generated Role, as in production.
	gwConfig, err := mgmt.GatewayConfig(ctx, Namespace)
	if err != nil {
		return err
	}
	for i, listen := range listens {
		gw, err := gateway.New(gwConfig, gateway.Options{
			ControlPlane: controlplane.Options{
				Namespace: Namespace, Gateway: "sessiongate-dev",
				IngressBaseURL: "https://" + listens[0],
				Policy:         policy.Default(),
				SweepInterval:  time.Minute,
			},
			Serve: &gateway.ServeOptions{
				Listen: listen, TLSCertFile: certFile, TLSKeyFile: keyFile,
				OIDC:        authn.Config{IssuerURL: issuerURL, Audiences: []string{Audience}, CAData: ca.CertPEM},
				AuditLog:    filepath.Join(dir, "audit-"+strconv.Itoa(i)+".log"),
				AdminGroups: []string{AdminGroup},
				Recordings:  recording.Dir(filepath.Join(dir, "recordings")),
			},
			LeaderElection: true, LeaderElectionID: "sessiongate-dev",
			MetricsBindAddress: "0", HealthProbeBindAddress: "0",
			SeveralPerProcess: true,
		})
		if err != nil {
			return fmt.Errorf("replica %d: %w", i, err)
		}
		started++
		go func() { done <- gw.Start(gwCtx) }()
	}
	if err := waitServing(ctx, listens, ca.CertPEM); err != nil {
		return err
	}

	fmt.Fprintf(opts.Out, "%s — gateway https://%s, state in %s\n%s", ReadyLine, listens[0], dir, walkthrough(dir, listens[0]))
	select {
	case <-ctx.Done():
	case err := <-done:
		started--
		if err != nil {
			return fmt.Errorf("gateway stopped: %w", err)
		}
	}
	step("stopping")
	return nil
}

func replicaAddresses(listen string, n int) ([]string, error) {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("--listen %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 {
		return nil, fmt.Errorf("--listen %q needs a port number", listen)
	}
	var out []string
	for i := range n {
		addr := net.JoinHostPort(host, strconv.Itoa(port+i))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("%s is in use (is another sessiongate dev running?): %w", addr, err)
		}
		_ = l.Close()
		out = append(out, addr)
	}
	return out, nil
}

func startIssuer(dir, certFile, keyFile string) (string, func(), error) {
	iss, err := devissuer.New()
	if err != nil {
		return "", nil, err
	}
	addr, stop, err := serveTLS(iss, certFile, keyFile)
	if err != nil {
		return "", nil, err
	}
	url := "https://" + addr
	iss.SetURL(url)
	keyPEM, kid, err := iss.KeyPEM()
	if err != nil {
		stop()
		return "", nil, err
	}
	b, err := json.Marshal(issuerFile{URL: url, Audience: Audience, KeyID: kid, KeyPEM: keyPEM})
	if err != nil {
		return "", nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "issuer.json"), b, 0o600); err != nil {
		stop()
		return "", nil, err
	}
	return url, stop, nil
}

// serveTLS serves h on a loopback port with the sandbox's serving
// certificate.
func serveTLS(h http.Handler, certFile, keyFile string) (addr string, stop func(), err error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return "", nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
	go func() { _ = srv.ServeTLS(l, "", "") }()
	return l.Addr().String(), func() { _ = srv.Close() }, nil
}

func writeKubeconfigs(dir string, mgmt, target *localkube.Cluster) error {
	for file, c := range map[string]*localkube.Cluster{"admin.kubeconfig": mgmt, "target-admin.kubeconfig": target} {
		kc, err := c.AdminKubeconfig()
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, file), kc, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// waitServing returns once every replica answers on its port.
func waitServing(ctx context.Context, listens []string, ca []byte) error {
	deadline := time.Now().Add(time.Minute)
	for _, addr := range listens {
		for {
			c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // only checks that the port answers
			if err == nil {
				_ = c.Close()
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("replica at %s does not answer: %w", addr, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	klog.V(2).InfoS("Sandbox ready", "replicas", len(listens))
	return nil
}

// applyDebug lets the sandbox's gateway run debug sessions on the target
// (config/target/rbac-debug.yaml) and applies the debug session templates.
func applyDebug(ctx context.Context, mgmt, target *localkube.Cluster) error {
	rbac, err := config.File(config.TargetDebugRBACPath)
	if err != nil {
		return err
	}
	if err := localkube.Apply(ctx, target.Client, "config/"+config.TargetDebugRBACPath, rbac, ""); err != nil {
		return fmt.Errorf("applying the target's debug RBAC: %w", err)
	}
	templates, err := config.File(config.DevDebugPath)
	if err != nil {
		return err
	}
	if err := localkube.Apply(ctx, mgmt.Client, "config/"+config.DevDebugPath, templates, Namespace); err != nil {
		return fmt.Errorf("applying the sandbox's debug templates: %w", err)
	}
	return nil
}

func walkthrough(dir, listen string) string {
	return fmt.Sprintf(`
Try it (in another shell, from the repository):

  export SESSIONGATE_SERVER=https://%[2]s SESSIONGATE_CA=%[1]s/ca.crt
  export SESSIONGATE_TOKEN=$(bin/sessiongate dev token alice@example.com --groups dev --dir %[1]s)
  bin/sgctl policies
  S=$(bin/sgctl request --cluster dev-target --access edit --namespace demo --ttl 30m --reason "first try")
  SESSIONGATE_TOKEN=$(bin/sessiongate dev token bob@example.com --groups sre --dir %[1]s) bin/sgctl approve $S --comment "go ahead"
  bin/sgctl wait $S
  bin/sgctl kubeconfig $S > alice.kubeconfig
  bin/kubectl --kubeconfig alice.kubeconfig get pods -n demo
  bin/kubectl --kubeconfig alice.kubeconfig exec -n demo web -- echo hello through sessiongate

Debug a node:    S=$(bin/sgctl request --cluster dev-target --template debug-pods --reason "node check" --wait)
                 (as bob, group sre; alice, group dev, waits for an SRE) then kubectl exec into a pod of: bin/sgctl get $S
Policies:        config/dev/policies.yaml (dev-view, dev-edit, sre-admin)
Debug templates: config/dev/debug.yaml (debug-pods, ephemeral-debug)
Incident button: SESSIONGATE_TOKEN=$(bin/sessiongate dev token irene@example.com --groups sessiongate-admins --dir %[1]s) bin/sgctl revoke --user alice@example.com
Operator's view: bin/kubectl --kubeconfig %[1]s/admin.kubeconfig -n sessiongate get sessions
The target:      bin/kubectl --kubeconfig %[1]s/target-admin.kubeconfig get sa -A
Audit records:   %[1]s/audit-0.log
Stop with Ctrl-C.
`, dir, listen)
}

// Token signs a token for user with the running sandbox's issuer.
func Token(dir, user string, groups []string, ttl time.Duration) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "issuer.json"))
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("no sandbox in %s: start one with `sessiongate dev --dir %s`", dir, dir)
	}
	if err != nil {
		return "", err
	}
	var f issuerFile
	if err := json.Unmarshal(b, &f); err != nil {
		return "", fmt.Errorf("%s/issuer.json: %w", dir, err)
	}
	iss, err := devissuer.NewSigner(f.URL, f.KeyPEM, f.KeyID)
	if err != nil {
		return "", err
	}
	return iss.Token(user, groups, f.Audience, ttl)
}
