package controlplane_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/credentials"
	"sessiongate.dev/sessiongate/internal/testenv"
)

// sessionClient talks to the target with the credential the gateway stored.
func (e *env) sessionClient(s *v1alpha1.Session) (kubernetes.Interface, *corev1.Secret) {
	e.t.Helper()
	sec := &corev1.Secret{}
	testenv.Must(e.t, mgmt.Client.Get(e.ctx, client.ObjectKey{Namespace: e.namespace, Name: s.Status.CredentialsSecretRef}, sec))
	cfg := &rest.Config{
		Host:            string(sec.Data[credentials.KeyServer]),
		TLSClientConfig: rest.TLSClientConfig{CAData: sec.Data[credentials.KeyCA], CertData: sec.Data[credentials.KeyClientCert], KeyData: sec.Data[credentials.KeyClientKey]},
		BearerToken:     string(sec.Data[credentials.KeyToken]),
	}
	kube, err := kubernetes.NewForConfig(cfg)
	testenv.Must(e.t, err)
	return kube, sec
}

func whoami(ctx context.Context, kube kubernetes.Interface) (authenticationv1.UserInfo, error) {
	r, err := kube.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return authenticationv1.UserInfo{}, err
	}
	return r.Status.UserInfo, nil
}

// onTarget reports whether anything of session s is left on the target.
func (e *env) onTarget(s *v1alpha1.Session) bool {
	e.t.Helper()
	found, err := credentials.SessionsOnTarget(e.ctx, credentials.Target{Client: target.Kube, Gateway: e.namespace})
	testenv.Must(e.t, err)
	_, ok := found[s.UID]
	return ok
}

func targetNamespace(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	err := target.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

func configMap(ns, name string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
}

func TestActiveViewSessionGrantsReadOnlyClusterWide(t *testing.T) {
	e := newEnv(t)
	targetNamespace(t, e.ctx, "team-a")
	e.create(e.viewSession("view"))
	s := e.waitPhase("view", v1alpha1.PhaseActive, 20*time.Second)

	if want := "https://gateway.test/sessiongate/view/kas"; s.Status.Endpoint != want {
		t.Errorf("endpoint = %q, want %q", s.Status.Endpoint, want)
	}
	if s.Status.BackendKASURL != target.Config.Host {
		t.Errorf("backendKASURL = %q, want %q", s.Status.BackendKASURL, target.Config.Host)
	}
	if s.Status.ActivatedAt == nil || s.Status.ExpiresAt == nil || s.Status.ExpiresAt.Sub(s.Status.ActivatedAt.Time) != time.Hour {
		t.Errorf("expiresAt %v is not activatedAt %v + ttl 1h", s.Status.ExpiresAt, s.Status.ActivatedAt)
	}
	if !meta.IsStatusConditionTrue(s.Status.Conditions, v1alpha1.ConditionCredentialsAvailable) {
		t.Errorf("CredentialsAvailable is not True: %+v", s.Status.Conditions)
	}

	kube, sec := e.sessionClient(s)
	if !metav1.IsControlledBy(sec, s) {
		t.Errorf("credentials Secret is not owned by the session: %+v", sec.OwnerReferences)
	}
	user, err := whoami(e.ctx, kube)
	testenv.Must(t, err)
	if want := "system:serviceaccount:sessiongate-sessions:sessiongate." + e.namespace + ".view"; user.Username != want {
		t.Errorf("target sees %q, want %q", user.Username, want)
	}
	if _, err := kube.CoreV1().Pods("team-a").List(e.ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("view session cannot list pods: %v", err)
	}
	if _, err := kube.CoreV1().Namespaces().List(e.ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("view session cannot list namespaces: %v", err)
	}
	_, err = kube.CoreV1().ConfigMaps("team-a").Create(e.ctx, configMap("team-a", "x"), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("view session creating a ConfigMap: got %v, want 403 Forbidden", err)
	}
	if _, err := kube.CoreV1().Secrets("team-a").List(e.ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("view session listing Secrets: got %v, want 403 Forbidden", err)
	}
}

func TestEditSessionIsBoundOnlyInItsNamespaces(t *testing.T) {
	e := newEnv(t)
	targetNamespace(t, e.ctx, "team-a")
	targetNamespace(t, e.ctx, "team-b")
	s := e.viewSession("edit-a")
	s.Spec.AccessLevel = v1alpha1.AccessLevel{ClusterRole: "edit", Namespaces: []string{"team-a"}}
	e.create(s)
	s = e.waitPhase("edit-a", v1alpha1.PhaseActive, 20*time.Second)
	kube, _ := e.sessionClient(s)

	if _, err := kube.CoreV1().ConfigMaps("team-a").Create(e.ctx, configMap("team-a", "edit-a"), metav1.CreateOptions{}); err != nil {
		t.Errorf("edit session cannot create a ConfigMap in its namespace: %v", err)
	}
	if _, err := kube.CoreV1().ConfigMaps("team-b").Create(e.ctx, configMap("team-b", "edit-a"), metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("edit session creating a ConfigMap in another namespace: got %v, want 403", err)
	}
	if _, err := kube.CoreV1().Pods(metav1.NamespaceAll).List(e.ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("namespaced edit session listing pods cluster-wide: got %v, want 403", err)
	}
}

// ended checks that nothing of s is left: not on the target, not in the
// gateway's namespace, and the old token no longer works.
func (e *env) assertRevoked(s *v1alpha1.Session, kube kubernetes.Interface) {
	e.t.Helper()
	if e.onTarget(s) {
		e.t.Errorf("objects of session %s are left on the target", s.Name)
	}
	err := mgmt.Client.Get(e.ctx, client.ObjectKey{Namespace: e.namespace, Name: s.Name + "-credentials"}, &corev1.Secret{})
	if !apierrors.IsNotFound(err) {
		e.t.Errorf("credentials Secret of %s: got %v, want NotFound", s.Name, err)
	}
	// The API server caches successful token authentications for ~10s.
	testenv.Eventually(e.t, 30*time.Second, func() error {
		_, err := whoami(e.ctx, kube)
		if apierrors.IsUnauthorized(err) {
			return nil
		}
		return fmt.Errorf("old credential still authenticates (err=%v)", err)
	})
}

func TestExpiredSessionLeavesNothingBehind(t *testing.T) {
	e := newEnv(t)
	s := e.viewSession("short")
	s.Spec.TTL = metav1.Duration{Duration: 3 * time.Second}
	e.create(s)
	s = e.waitPhase("short", v1alpha1.PhaseActive, 20*time.Second)
	kube, _ := e.sessionClient(s)
	if _, err := whoami(e.ctx, kube); err != nil {
		t.Fatalf("token does not work while Active: %v", err)
	}

	s = e.waitPhase("short", v1alpha1.PhaseExpired, 20*time.Second)
	testenv.Eventually(t, 30*time.Second, func() error {
		testenv.Must(t, mgmt.Client.Get(e.ctx, client.ObjectKeyFromObject(s), s))
		if c := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionCredentialsAvailable); c == nil || c.Reason != v1alpha1.ReasonRevoked {
			return fmt.Errorf("CredentialsAvailable = %+v, want reason Revoked", c)
		}
		return nil
	})
	e.assertRevoked(s, kube)
}

func TestTerminatedSessionLeavesNothingBehind(t *testing.T) {
	e := newEnv(t)
	e.create(e.viewSession("stop-me"))
	s := e.waitPhase("stop-me", v1alpha1.PhaseActive, 20*time.Second)
	kube, _ := e.sessionClient(s)

	patch := client.MergeFrom(s.DeepCopy())
	s.Spec.Terminated = true
	testenv.Must(t, mgmt.Client.Patch(e.ctx, s, patch))
	s = e.waitPhase("stop-me", v1alpha1.PhaseTerminated, 20*time.Second)
	e.assertRevoked(s, kube)

	// terminated is one-way, and the rest of the spec is immutable.
	patch = client.MergeFrom(s.DeepCopy())
	s.Spec.Terminated = false
	if err := mgmt.Client.Patch(e.ctx, s, patch); err == nil || !strings.Contains(err.Error(), "terminated cannot be set back to false") {
		t.Errorf("un-terminating: got %v, want a validation error", err)
	}
	testenv.Must(t, mgmt.Client.Get(e.ctx, client.ObjectKeyFromObject(s), s))
	patch = client.MergeFrom(s.DeepCopy())
	s.Spec.TTL = metav1.Duration{Duration: 2 * time.Hour}
	if err := mgmt.Client.Patch(e.ctx, s, patch); err == nil || !strings.Contains(err.Error(), "immutable") {
		t.Errorf("changing ttl: got %v, want an immutability error", err)
	}
}

func TestDeletedSessionLeavesNothingBehind(t *testing.T) {
	e := newEnv(t)
	e.create(e.viewSession("delete-me"))
	s := e.waitPhase("delete-me", v1alpha1.PhaseActive, 20*time.Second)
	kube, _ := e.sessionClient(s)

	testenv.Must(t, mgmt.Client.Delete(e.ctx, s))
	testenv.Eventually(t, 30*time.Second, func() error {
		err := mgmt.Client.Get(e.ctx, client.ObjectKeyFromObject(s), &v1alpha1.Session{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("session still there (err=%v)", err)
	})
	e.assertRevoked(s, kube)
}

func TestInvalidSessionsFailWithAMessageNamingTheField(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name   string
		mutate func(*v1alpha1.Session)
		want   string
	}{
		{"unknown-cluster", func(s *v1alpha1.Session) { s.Spec.Cluster = "nope" }, `spec.cluster: cluster not found: no Cluster "nope"`},
		{"under-min-ttl", func(s *v1alpha1.Session) { s.Spec.TTL.Duration = 500 * time.Millisecond }, "spec.ttl: Invalid value: \"500ms\": must be at least 1s"},
		{"over-max-ttl", func(s *v1alpha1.Session) { s.Spec.TTL.Duration = 9 * time.Hour }, "spec.ttl: Invalid value: \"9h0m0s\": must be at most the gateway maximum of 8h0m0s"},
		{"unknown-role", func(s *v1alpha1.Session) { s.Spec.AccessLevel.ClusterRole = "cluster-admin" }, `spec.accessLevel.clusterRole: Unsupported value: "cluster-admin"`},
		{"edit-cluster-wide", func(s *v1alpha1.Session) { s.Spec.AccessLevel.ClusterRole = "edit" }, `a cluster-wide grant of "edit" is break-glass`},
		{"edit-in-kube-system", func(s *v1alpha1.Session) {
			s.Spec.AccessLevel = v1alpha1.AccessLevel{ClusterRole: "edit", Namespaces: []string{"kube-system"}}
		}, `spec.accessLevel.namespaces[0]: Forbidden: namespace "kube-system" may never be granted`},
		{"edit-in-session-namespace", func(s *v1alpha1.Session) {
			s.Spec.AccessLevel = v1alpha1.AccessLevel{ClusterRole: "edit", Namespaces: []string{v1alpha1.DefaultSessionNamespace}}
		}, `namespace "sessiongate-sessions" may never be granted`},
		{"system-masters", func(s *v1alpha1.Session) { s.Spec.AccessLevel = v1alpha1.AccessLevel{Group: "system:masters"} }, `"system:masters" is a system: group`},
		{"owner-claim-iss", func(s *v1alpha1.Session) { s.Spec.Owner.UserPrincipal.Claim = "iss" }, `spec.owner.userPrincipal.claim: Unsupported value: "iss"`},
		{"group-on-token-provider", func(s *v1alpha1.Session) { s.Spec.AccessLevel = v1alpha1.AccessLevel{Group: "sre"} }, "spec.accessLevel.group needs a Cluster with a certificate provider"},
		{"owner-without-principal", func(s *v1alpha1.Session) { s.Spec.Owner.UserPrincipal = nil }, "spec.owner.userPrincipal: Required value"},
		{"owner-without-claim", func(s *v1alpha1.Session) { s.Spec.Owner.UserPrincipal.Claim = "" }, "spec.owner.userPrincipal.claim: Required value"},
		{"group-owner-without-group", func(s *v1alpha1.Session) { s.Spec.Owner = v1alpha1.Owner{Type: v1alpha1.OwnerGroup} }, "spec.owner.group.name: Required value"},
	}
	for _, c := range cases {
		s := e.viewSession(c.name)
		c.mutate(s)
		e.create(s)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := e.waitPhase(c.name, v1alpha1.PhaseFailed, 20*time.Second)
			ready := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady)
			if ready == nil || !strings.Contains(ready.Message, c.want) {
				t.Errorf("Ready condition %+v does not say %q", ready, c.want)
			}
			if e.onTarget(s) {
				t.Errorf("a Failed session left objects on the target")
			}
			if s.Status.CredentialsSecretRef != "" || s.Status.Endpoint != "" {
				t.Errorf("a Failed session has an endpoint or credentials: %+v", s.Status)
			}
		})
	}
}

func TestAdmissionRejectsMalformedSessions(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name   string
		mutate func(*v1alpha1.Session)
		want   string
	}{
		{"both", func(s *v1alpha1.Session) { s.Spec.AccessLevel.Group = "sre" }, "set exactly one of clusterRole or group"},
		{"zero-ttl", func(s *v1alpha1.Session) { s.Spec.TTL.Duration = 0 }, "must be a positive duration such as 30m or 1h"},
		{"negative-ttl", func(s *v1alpha1.Session) { s.Spec.TTL.Duration = -time.Minute }, "must be a positive duration"},
		// Names are carried in labels on the target: 64 characters would
		// mint and then fail forever.
		{strings.Repeat("n", 64), func(*v1alpha1.Session) {}, "metadata.name must be at most 63 characters"},
	}
	for _, c := range cases {
		s := e.viewSession(c.name)
		c.mutate(s)
		err := mgmt.Client.Create(e.ctx, s)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want a validation error containing %q", c.name, err, c.want)
		}
	}
	// 63 is fine.
	e.create(e.viewSession(strings.Repeat("n", 63)))
	e.waitPhase(strings.Repeat("n", 63), v1alpha1.PhaseActive, 20*time.Second)
}

func TestUnreachableTargetKeepsSessionPendingAndSaysWhy(t *testing.T) {
	e := newEnv(t)
	// The Cluster's kubeconfig points at a port nothing listens on.
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: e.namespace, Name: "down-kubeconfig"},
		Data: map[string][]byte{"kubeconfig": []byte(`apiVersion: v1
kind: Config
clusters: [{name: down, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: down, user: u}}]
current-context: c
`)}}
	testenv.Must(t, mgmt.Client.Create(e.ctx, sec))
	e.registerClusterAt("down", "https://127.0.0.1:1", target.Config.CAData, "down-kubeconfig", v1alpha1.CredentialProvider{})

	s := e.viewSession("waiting")
	s.Spec.Cluster = "down"
	e.create(s)
	testenv.Eventually(t, 30*time.Second, func() error {
		testenv.Must(t, mgmt.Client.Get(e.ctx, client.ObjectKeyFromObject(s), s))
		ready := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady)
		if s.Status.Phase != v1alpha1.PhasePending || ready == nil || ready.Reason != v1alpha1.ReasonTargetUnreachable {
			return fmt.Errorf("phase %q, Ready %+v; want Pending with reason TargetUnreachable", s.Status.Phase, ready)
		}
		return nil
	})
}

// The samples are applied as users apply them — YAML through kubectl, with
// durations like "30m" that Go would never write — and must go Active.
func TestSamplesApplyWithKubectlAndGoActive(t *testing.T) {
	e := newEnv(t)
	e.registerCluster("prod-eu", "target-kubeconfig", v1alpha1.CredentialProvider{})
	targetNamespace(t, e.ctx, "checkout")
	targetNamespace(t, e.ctx, "payments")
	kc, err := mgmt.AdminKubeconfig()
	testenv.Must(t, err)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	testenv.Must(t, os.WriteFile(kubeconfig, kc, 0o600))

	files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "config", "samples", "*.yaml"))
	testenv.Must(t, err)
	if len(files) == 0 {
		t.Fatal("no samples found")
	}
	var sessions []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		testenv.Must(t, err)
		doc := strings.ReplaceAll(string(data), "namespace: sessiongate\n", "namespace: "+e.namespace+"\n")
		args := []string{"--kubeconfig", kubeconfig, "apply", "-f", "-"}
		if strings.Contains(doc, "kind: Cluster\n") {
			// Its server is an example; check that it applies, not that it works.
			args = append(args, "--dry-run=server")
		} else {
			for _, line := range strings.Split(doc, "\n") {
				if name, ok := strings.CutPrefix(line, "  name: "); ok && strings.Contains(doc, "kind: Session\n") {
					sessions = append(sessions, name)
					break
				}
			}
		}
		cmd := exec.CommandContext(e.ctx, filepath.Join(testenv.BinDir(), "kubectl"), args...)
		cmd.Stdin = strings.NewReader(doc)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("kubectl apply -f %s: %v\n%s", filepath.Base(f), err, out)
		}
	}
	if len(sessions) == 0 {
		t.Fatal("no Session among the samples")
	}
	for _, name := range sessions {
		s := e.waitPhase(name, v1alpha1.PhaseActive, 30*time.Second)
		if s.Status.ExpiresAt.Sub(s.Status.ActivatedAt.Time) != s.Spec.TTL.Duration {
			t.Errorf("session %s: expiresAt - activatedAt = %s, want its ttl %s", name, s.Status.ExpiresAt.Sub(s.Status.ActivatedAt.Time), s.Spec.TTL.Duration)
		}
		// What an operator sees: kubectl describe shows the activation as
		// one Normal Event that also says how it was granted and where it
		// minted.
		testenv.Eventually(t, 30*time.Second, func() error {
			out, err := exec.CommandContext(e.ctx, filepath.Join(testenv.BinDir(), "kubectl"), "--kubeconfig", kubeconfig,
				"describe", "session", name, "-n", e.namespace).CombinedOutput()
			if err != nil {
				return fmt.Errorf("kubectl describe session %s: %v\n%s", name, err, out)
			}
			_, events, _ := strings.Cut(string(out), "\nEvents:")
			var active int
			for _, line := range strings.Split(events, "\n") {
				if f := strings.Fields(line); len(f) > 1 && f[0] == "Normal" && f[1] == v1alpha1.ReasonActive {
					active++
					for _, want := range []string{"session active on cluster prod-eu until ", "(admin path; no AccessPolicy applies)", "minted credentials on cluster prod-eu for "} {
						if !strings.Contains(line, want) {
							return fmt.Errorf("the Active Event of session %s does not say %q:\n%s", name, want, out)
						}
					}
				}
			}
			if active != 1 {
				return fmt.Errorf("kubectl describe session %s shows %d Normal %s Events, want 1:\n%s", name, active, v1alpha1.ReasonActive, out)
			}
			return nil
		})
	}
}

func TestDeploymentManifestsApply(t *testing.T) {
	ctx := context.Background()
	for _, f := range []string{"config/deploy/gateway.yaml", "config/rbac/role.yaml"} {
		if err := testenv.ApplyFile(ctx, mgmt.Client, filepath.Join(testenv.RepoRoot(), f), ""); err != nil {
			t.Errorf("%s does not apply: %v", f, err)
		}
	}
}

// A pass over an Active session whose credentials are fresh does not read
// the target's kubeconfig Secret (an uncached read): with the Secret gone,
// the session is decided again as Active. At 10,000 sessions, those reads
// held a new session up for as many GETs.
func TestAPassOverAFreshSessionLeavesTheTargetAlone(t *testing.T) {
	e := newEnv(t)
	s := e.viewSession("fresh")
	e.create(s)
	e.waitPhase(s.Name, v1alpha1.PhaseActive, 30*time.Second)

	testenv.Must(t, mgmt.Client.Delete(e.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: e.namespace, Name: "target-kubeconfig"}}))
	// Clearing the conditions brings a pass that must write them again.
	cur := &v1alpha1.Session{}
	testenv.Must(t, mgmt.Client.Get(e.ctx, client.ObjectKeyFromObject(s), cur))
	patch := client.MergeFrom(cur.DeepCopy())
	cur.Status.Conditions = nil
	testenv.Must(t, mgmt.Client.Status().Patch(e.ctx, cur, patch))
	testenv.Eventually(t, 30*time.Second, func() error {
		testenv.Must(t, mgmt.Client.Get(e.ctx, client.ObjectKeyFromObject(s), cur))
		ready := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionReady)
		if ready == nil || ready.Status != metav1.ConditionTrue || cur.Status.Phase != v1alpha1.PhaseActive {
			return fmt.Errorf("phase %s, Ready %+v", cur.Status.Phase, ready)
		}
		return nil
	})
}

// sessionConflicts is how many writes to Sessions the management API server
// has refused with a conflict, from its own metrics.
func sessionConflicts(t *testing.T) int {
	t.Helper()
	raw, err := mgmt.Kube.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	testenv.Must(t, err)
	n := 0
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "apiserver_request_total{") && strings.Contains(line, `code="409"`) &&
			strings.Contains(line, `group="sessiongate.dev"`) && strings.Contains(line, `resource="sessions"`) {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			testenv.Must(t, err)
			n += int(v)
		}
	}
	return n
}

// A pass that reads a session from the cache before the leader's own last
// write has come back through the watch waits for it: it would decide again
// on a version the leader has moved on from, then meet a conflict.
func TestTheLeaderDoesNotDecideAgainOnAVersionItHasWrittenPast(t *testing.T) {
	e := newEnv(t)
	before := sessionConflicts(t)
	for i := range 16 {
		e.create(e.viewSession("burst-" + strconv.Itoa(i)))
	}
	for i := range 16 {
		e.waitPhase("burst-"+strconv.Itoa(i), v1alpha1.PhaseActive, 30*time.Second)
	}
	testenv.Holds(t, 2*time.Second, func() error {
		if n := sessionConflicts(t) - before; n > 0 {
			return fmt.Errorf("the API server refused %d write(s) to sessions with a conflict", n)
		}
		return nil
	})
}
