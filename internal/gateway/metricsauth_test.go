package gateway_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/internal/controlplane"
	"sessiongate.dev/sessiongate/internal/gateway"
	"sessiongate.dev/sessiongate/internal/testenv"
)

// startControlPlane starts a gateway without a data plane in a namespace of
// its own, with the generated RBAC.
func startControlPlane(t *testing.T, ns string, opts gateway.Options) *gateway.Gateway {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if err := mgmt.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	cfg, err := mgmt.GatewayConfig(ctx, ns)
	testenv.Must(t, err)
	opts.ControlPlane.Namespace = ns
	opts.ControlPlane.IngressBaseURL = "https://gateway.test"
	opts.ControlPlane.Policy = testPolicy()
	opts.LeaderElection, opts.LeaderElectionID = true, "sessiongate"
	opts.SeveralPerProcess = true
	if opts.MetricsBindAddress == "" {
		opts.MetricsBindAddress = "0"
	}
	opts.HealthProbeBindAddress = "0"
	gw, err := gateway.New(cfg, opts)
	testenv.Must(t, err)
	done := make(chan error, 1)
	go func() { done <- gw.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway stopped with an error: %v", err)
		}
	})
	return gw
}

// Metrics describe sessions: served only to callers the management cluster
// authenticates and allows to get /metrics, or on loopback.
func TestMetricsNeedAuthentication(t *testing.T) {
	ctx := context.Background()
	_, err := gateway.New(mgmt.Config, gateway.Options{
		ControlPlane:       controlplane.Options{Namespace: "x", Gateway: "x", Policy: testPolicy()},
		MetricsBindAddress: ":8080", HealthProbeBindAddress: "0",
	})
	if err == nil || !strings.Contains(err.Error(), "--metrics-bind-address \":8080\" is not loopback") {
		t.Errorf("plain-HTTP metrics on all interfaces: got %v, want a refusal", err)
	}

	port, err := testenv.FreePort()
	testenv.Must(t, err)
	startControlPlane(t, "metrics-auth", gateway.Options{
		MetricsBindAddress: "127.0.0.1:" + strconv.Itoa(port), MetricsSecure: true, Pprof: true,
		ControlPlane: controlplane.Options{Gateway: "metrics-auth"},
	})

	// A ServiceAccount that may get /metrics, and one that may not.
	tokenFor := func(name string, allowed bool) string {
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "metrics-auth", Name: name}}
		testenv.Must(t, mgmt.Client.Create(ctx, sa))
		if allowed {
			testenv.Must(t, mgmt.Client.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "metrics-reader-test"},
				Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}}))
			testenv.Must(t, mgmt.Client.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "metrics-reader-test"},
				RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "metrics-reader-test"},
				Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: "metrics-auth", Name: name}}}))
		}
		tr := &authenticationv1.TokenRequest{}
		testenv.Must(t, mgmt.Client.SubResource("token").Create(ctx, sa, tr))
		return tr.Status.Token
	}
	scraper, stranger := tokenFor("scraper", true), tokenFor("stranger", false)

	// The serving certificate is self-signed: this test checks who may read,
	// not the certificate.
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	get := func(path, tok string) int {
		req, _ := http.NewRequest("GET", "https://127.0.0.1:"+strconv.Itoa(port)+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if code := get("/metrics", scraper); code != http.StatusOK {
			return fmt.Errorf("scraper: /metrics %d, want 200", code)
		}
		return nil
	})
	for _, c := range []struct {
		path, tok string
		want      int
	}{
		{"/metrics", "", http.StatusUnauthorized},
		{"/metrics", stranger, http.StatusForbidden},
		{"/debug/pprof/", "", http.StatusUnauthorized},
		{"/debug/pprof/", scraper, http.StatusForbidden},
	} {
		if code := get(c.path, c.tok); code != c.want {
			t.Errorf("GET %s with token %t: %d, want %d", c.path, c.tok != "", code, c.want)
		}
	}
}

// Without --gateway-name, an installation names itself once, and every
// replica and restart uses that name.
func TestInstallationNameIsChosenOnceAndShared(t *testing.T) {
	ctx := context.Background()
	first := startControlPlane(t, "named-once", gateway.Options{})
	second := startControlPlane(t, "named-once", gateway.Options{})
	elsewhere := startControlPlane(t, "named-once-b", gateway.Options{})
	cm := &corev1.ConfigMap{}
	testenv.Must(t, mgmt.Client.Get(ctx, client.ObjectKey{Namespace: "named-once", Name: "sessiongate-installation"}, cm))
	name := cm.Data["gateway-name"]
	if !strings.HasPrefix(name, "named-once-") || len(name) != len("named-once-")+8 {
		t.Errorf("installation name %q, want named-once-<8 random characters>", name)
	}
	if first.Name() != name || second.Name() != name {
		t.Errorf("replicas of one installation use %q and %q, want %q", first.Name(), second.Name(), name)
	}
	if elsewhere.Name() == name || !strings.HasPrefix(elsewhere.Name(), "named-once-b-") {
		t.Errorf("another installation chose %q beside %q", elsewhere.Name(), name)
	}
}
