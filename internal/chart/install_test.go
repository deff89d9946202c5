package chart_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/localkube"
	"sessiongate.dev/sessiongate/internal/testenv"
)

// install does what `helm install --namespace <prefix>-<random>` with these
// values does on the management cluster — the chart's CRDs first, then every
// rendered manifest — after creating the namespace and the Secrets the values
// name. edit, when set, changes the rendered objects before they are applied.
func install(t *testing.T, prefix string, vals map[string]any, edit func(ns string, objs []client.Object)) *appsv1.Deployment {
	t.Helper()
	ctx := context.Background()
	ns := prefix + "-" + utilrand.String(5)
	r := render(t, ns, vals)
	crdDir := t.TempDir()
	for _, f := range r.CRDs {
		testenv.Must(t, os.WriteFile(filepath.Join(crdDir, filepath.Base(f.Name)), f.Data, 0o600))
	}
	_, err := envtest.InstallCRDs(mgmt.Config, envtest.CRDInstallOptions{Paths: []string{crdDir}, ErrorIfPathMissing: true})
	testenv.Must(t, err)

	testenv.Must(t, mgmt.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	cert, key, err := gwCA.ServingCert("127.0.0.1", "localhost")
	testenv.Must(t, err)
	for _, s := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Name: "sessiongate-serving"}, Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": cert, "tls.key": key}},
		{ObjectMeta: metav1.ObjectMeta{Name: "oidc-ca"}, Data: map[string][]byte{"ca.crt": issuerCA}},
	} {
		s.Namespace = ns
		testenv.Must(t, mgmt.Client.Create(ctx, s))
	}

	manifests := r.YAML()
	if edit != nil {
		objs := objects(t, r)
		edit(ns, objs)
		var b strings.Builder
		for _, o := range objs {
			y, err := yaml.Marshal(o)
			testenv.Must(t, err)
			b.WriteString("---\n" + string(y))
		}
		manifests = []byte(b.String())
	}
	testenv.Must(t, localkube.Apply(ctx, mgmt.Client, "rendered chart", manifests, ""))

	d := only[*appsv1.Deployment](t, objects(t, r))
	testenv.Must(t, mgmt.Client.Get(ctx, client.ObjectKeyFromObject(d), d))
	return d
}

// installValues point the chart at this test's issuer.
func installValues(t *testing.T) map[string]any {
	return values(t, fmt.Sprintf("oidc: {issuerURL: %q, audiences: [%s], caSecret: oidc-ca}", issuerURL, audience))
}

// TestInstalledChartServesSessions installs the chart on a real API
// server, runs the replicas its Deployment describes with nothing but its
// ServiceAccount's token, and uses them: their probes pass, one leads, a
// Session becomes Active and is served by every replica, and a scraper
// bound to the chart's metrics-reader ClusterRole reads the metrics. It
// runs with http2: false, so the replicas speak HTTP/1.1 to every caller
// (the gateway's suite covers HTTP/2, the default).
func TestInstalledChartServesSessions(t *testing.T) {
	ctx := context.Background()
	vals := installValues(t)
	vals["http2"] = false
	d := install(t, "sessiongate", vals, nil)
	ns := d.Namespace
	testenv.Must(t, testenv.RegisterTarget(ctx, mgmt, target, ns, "target"))

	var pods []*pod
	for range *d.Spec.Replicas {
		pods = append(pods, startPod(t, ns, d.Spec.Template.Spec))
	}
	c := d.Spec.Template.Spec.Containers[0]
	for i, p := range pods {
		testenv.Eventually(t, 30*time.Second, func() error {
			for _, pr := range []*corev1.Probe{c.StartupProbe, c.LivenessProbe, c.ReadinessProbe} {
				if err := p.probe(t, pr); err != nil {
					return fmt.Errorf("replica %d: %w", i, err)
				}
			}
			return nil
		})
	}
	leaseID, _ := flagValue(c.Args, "leader-election-id")
	testenv.Eventually(t, 30*time.Second, func() error {
		l := &coordinationv1.Lease{}
		if err := mgmt.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: leaseID}, l); err != nil {
			return err
		}
		if ptr.Deref(l.Spec.HolderIdentity, "") == "" {
			return fmt.Errorf("lease %s has no holder", leaseID)
		}
		return nil
	})

	s := &v1alpha1.Session{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "alice-chart"},
		Spec: v1alpha1.SessionSpec{
			TTL:         metav1.Duration{Duration: time.Hour},
			Cluster:     "target",
			AccessLevel: v1alpha1.AccessLevel{ClusterRole: "view"},
			Owner:       v1alpha1.Owner{Type: v1alpha1.OwnerUser, UserPrincipal: &v1alpha1.UserPrincipal{Name: "alice@example.com", Claim: "email"}},
			Reason:      t.Name(),
		},
	}
	testenv.Must(t, mgmt.Client.Create(ctx, s))
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := mgmt.Client.Get(ctx, client.ObjectKeyFromObject(s), s); err != nil {
			return err
		}
		if s.Status.Phase != v1alpha1.PhaseActive {
			return fmt.Errorf("session %s is %q", s.Name, s.Status.Phase)
		}
		return nil
	})
	tok, err := issuer.Token("alice@example.com", nil, audience, time.Hour)
	testenv.Must(t, err)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(gwCA.CertPEM)
	for i, p := range pods {
		conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p.port(t, "https")), &tls.Config{RootCAs: roots, NextProtos: []string{"h2", "http/1.1"}})
		testenv.Must(t, err)
		if got := conn.ConnectionState().NegotiatedProtocol; got != "http/1.1" {
			t.Errorf("replica %d agreed to %q with a caller offering h2 and http/1.1, want http/1.1 (http2: false)", i, got)
		}
		conn.Close()
		kube, err := kubernetes.NewForConfig(&rest.Config{
			Host:            fmt.Sprintf("https://127.0.0.1:%d/sessiongate/%s/kas", p.port(t, "https"), s.Name),
			BearerToken:     tok,
			TLSClientConfig: rest.TLSClientConfig{CAData: gwCA.CertPEM},
		})
		testenv.Must(t, err)
		testenv.Eventually(t, 30*time.Second, func() error {
			if _, err := kube.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
				return fmt.Errorf("replica %d: %w", i, err)
			}
			return nil
		})
	}

	// What the chart's ServiceMonitor would do, as a Prometheus bound to
	// the metrics-reader ClusterRole.
	scraper := scraperToken(t, ns, d.Name+"-"+ns+"-metrics-reader")
	metrics := fmt.Sprintf("https://127.0.0.1:%d/metrics", pods[0].port(t, "metrics"))
	testenv.Eventually(t, 30*time.Second, func() error {
		body, err := scrape(metrics, scraper)
		if err != nil {
			return err
		}
		if !strings.Contains(body, "sessiongate_active_sessions 1") {
			return fmt.Errorf("metrics do not count the session:\n%.2000s", body)
		}
		return nil
	})
}

// scraperToken is a token of a new ServiceAccount bound to clusterRole.
func scraperToken(t *testing.T, ns, clusterRole string) string {
	t.Helper()
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "prometheus"}}
	testenv.Must(t, mgmt.Client.Create(ctx, sa))
	testenv.Must(t, mgmt.Client.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "prometheus-" + ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: sa.Name}},
	}))
	tok, err := mgmt.Kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa.Name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	testenv.Must(t, err)
	return tok.Status.Token
}

// scrape GETs the metrics as the ServiceMonitor's default tlsConfig
// (insecureSkipVerify: the metrics certificate is self-signed) would.
func scrape(url, token string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // as the ServiceMonitor's default
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return string(b), nil
}

// TestGatewayFailsWithoutAnyOneOfTheseVerbs: the gateway runs with exactly
// the chart's RBAC, so taking one verb out of the rendered Role fails it.
func TestGatewayFailsWithoutAnyOneOfTheseVerbs(t *testing.T) {
	for _, tc := range []struct {
		resource, verb string
		// fails waits for the failure the missing verb causes.
		fails func(t *testing.T, p *pod, ns string)
	}{
		// Without --gateway-name, every replica reads (or records) the
		// installation's name before it starts: it cannot start.
		{"configmaps", "get", func(t *testing.T, p *pod, _ string) {
			select {
			case <-p.exited:
			case <-time.After(30 * time.Second):
				t.Fatal("the gateway still runs after 30s")
			}
			if p.cmd.ProcessState.Success() {
				t.Fatal("the gateway exited 0")
			}
		}},
		// The first list fills the cache and every watch after it is
		// refused: the replica must not call itself ready, since it would
		// never see a change.
		{"sessions", "watch", func(t *testing.T, p *pod, _ string) {
			c := p.spec.Containers[0]
			url := fmt.Sprintf("http://127.0.0.1:%d/readyz?verbose=1", p.port(t, c.ReadinessProbe.HTTPGet.Port.String()))
			testenv.Eventually(t, 60*time.Second, func() error {
				resp, err := http.Get(url)
				if err != nil {
					return err
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK || !strings.Contains(string(b), "[-]watches failed") || !strings.Contains(string(b), "[+]informers ok") {
					return fmt.Errorf("/readyz answers %d:\n%s", resp.StatusCode, b)
				}
				return nil
			})
		}},
		// The leader cannot keep a session's credentials: no session
		// becomes Active.
		{"secrets", "create", func(t *testing.T, p *pod, ns string) {
			testenv.Must(t, testenv.RegisterTarget(context.Background(), mgmt, target, ns, "target"))
			s := &v1alpha1.Session{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bob-chart"},
				Spec: v1alpha1.SessionSpec{
					TTL: metav1.Duration{Duration: time.Hour}, Cluster: "target", AccessLevel: v1alpha1.AccessLevel{ClusterRole: "view"},
					Owner:  v1alpha1.Owner{Type: v1alpha1.OwnerUser, UserPrincipal: &v1alpha1.UserPrincipal{Name: "bob@example.com", Claim: "email"}},
					Reason: t.Name(),
				},
			}
			testenv.Must(t, mgmt.Client.Create(context.Background(), s))
			waitForLog(t, p, `cannot create resource \"secrets\"`)
			// The session says the gateway's own Role is short, not that
			// the target refused.
			testenv.Eventually(t, 30*time.Second, func() error {
				testenv.Must(t, mgmt.Client.Get(context.Background(), client.ObjectKeyFromObject(s), s))
				if s.Status.Phase == v1alpha1.PhaseActive {
					t.Fatal("the session is Active without create on secrets")
				}
				if c := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionCredentialsAvailable); c == nil || c.Reason != "GatewayForbidden" {
					return fmt.Errorf("CredentialsAvailable condition %+v, want reason GatewayForbidden; the gateway logged:\n%s", c, lines(p.logs(), "bob-chart"))
				}
				return nil
			})
		}},
	} {
		t.Run(tc.resource+"/"+tc.verb, func(t *testing.T) {
			d := install(t, "without-"+tc.resource+"-"+tc.verb, installValues(t), func(ns string, objs []client.Object) {
				for _, o := range objs {
					if role, ok := o.(*rbacv1.Role); ok && role.Namespace == ns {
						removeVerb(t, role, tc.resource, tc.verb)
					}
				}
			})
			p := startPod(t, d.Namespace, d.Spec.Template.Spec)
			tc.fails(t, p, d.Namespace)
			waitForLog(t, p, fmt.Sprintf(`cannot %s resource \"%s\"`, tc.verb, tc.resource))
		})
	}
}

// removeVerb takes verb on resource out of role, and fails if it was not
// there.
func removeVerb(t *testing.T, role *rbacv1.Role, resource, verb string) {
	t.Helper()
	for i, r := range role.Rules {
		if slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb) {
			// The resource leaves its rule and gets one of its own,
			// without the verb: the rule's other resources keep theirs.
			role.Rules[i].Resources = slices.DeleteFunc(slices.Clone(r.Resources), func(s string) bool { return s == resource })
			own := *r.DeepCopy()
			own.Resources = []string{resource}
			own.Verbs = slices.DeleteFunc(slices.Clone(r.Verbs), func(v string) bool { return v == verb })
			role.Rules = append(role.Rules, own)
			if len(role.Rules[i].Resources) == 0 {
				role.Rules = slices.Delete(role.Rules, i, i+1)
			}
			return
		}
	}
	t.Fatalf("the rendered Role does not grant %s on %s", verb, resource)
}

// waitForLog waits until the replica has logged text.
func waitForLog(t *testing.T, p *pod, text string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		if !strings.Contains(p.logs(), text) {
			return fmt.Errorf("the gateway has not logged %s:\n%s", text, p.logs())
		}
		return nil
	})
}

// lines are the lines of log that mention s.
func lines(log, s string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
