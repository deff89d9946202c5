package gateway_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/credentials"
	"sessiongate.dev/sessiongate/internal/testenv"
)

// gatewayClient speaks HTTPS to the replicas, trusting the gateway CA only.
func gatewayClient() *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(gwCA.CertPEM)
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

type response struct {
	code int
	body string
	st   metav1.Status
}

// call sends one request to replica 0 with the given raw path and headers.
func call(t *testing.T, method, path string, body []byte, headers http.Header) response {
	t.Helper()
	req, err := http.NewRequest(method, "https://"+replicas[0].Addr()+path, bytes.NewReader(body))
	testenv.Must(t, err)
	for k, vs := range headers {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := gatewayClient().Do(req)
	testenv.Must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := response{code: resp.StatusCode, body: string(b)}
	_ = json.Unmarshal(b, &r.st)
	return r
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestTokensThatMustNotAuthenticate(t *testing.T) {
	session(t, "authn", "alice@example.com")
	path := "/sessiongate/authn/kas/api/v1/namespaces/demo/pods"
	claims := func(mutate func(map[string]any)) map[string]any {
		c := issuer.UserClaims("alice@example.com", nil, audience, time.Hour)
		mutate(c)
		return c
	}
	sign := func(c map[string]any) string {
		tok, err := issuer.Sign(c)
		testenv.Must(t, err)
		return tok
	}
	valid := sign(claims(func(map[string]any) {}))
	if r := call(t, "GET", path, nil, bearer(valid)); r.code != http.StatusOK {
		t.Fatalf("a valid token is refused: %d %s", r.code, r.body)
	}

	parts := strings.Split(valid, ".")
	rsaPub, _ := issuer.SigningKey()
	pubDER, err := x509.MarshalPKIXPublicKey(&rsaPub.PublicKey)
	testenv.Must(t, err)
	_, kid := issuer.SigningKey()
	hs256 := func() string {
		head := b64(map[string]any{"alg": "HS256", "typ": "JWT", "kid": kid})
		payload := parts[1]
		mac := hmac.New(sha256.New, pubDER)
		mac.Write([]byte(head + "." + payload))
		return head + "." + payload + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	}
	unknownKey := func() string {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		testenv.Must(t, err)
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: k}, (&jose.SignerOptions{}).WithHeader("kid", "not-published"))
		testenv.Must(t, err)
		tok, err := jwt.Signed(s).Claims(claims(func(map[string]any) {})).Serialize()
		testenv.Must(t, err)
		return tok
	}
	cases := []struct {
		name    string
		headers http.Header
	}{
		{"no token", nil},
		{"not a bearer token", http.Header{"Authorization": {"Basic YWxpY2U6cGFzcw=="}}},
		{"expired", bearer(sign(claims(func(c map[string]any) { c["exp"] = time.Now().Add(-2 * time.Minute).Unix() })))},
		{"not yet valid", bearer(sign(claims(func(c map[string]any) { c["nbf"] = time.Now().Add(10 * time.Minute).Unix() })))},
		{"wrong issuer", bearer(sign(claims(func(c map[string]any) { c["iss"] = "https://issuer.invalid" })))},
		{"wrong audience", bearer(sign(claims(func(c map[string]any) { c["aud"] = "kubernetes" })))},
		{"alg none", bearer(b64(map[string]any{"alg": "none", "typ": "JWT"}) + "." + parts[1] + ".")},
		{"HS256 keyed with the RSA public key", bearer(hs256())},
		{"unknown kid", bearer(unknownKey())},
		{"tampered payload", bearer(parts[0] + "." + b64(claims(func(c map[string]any) { c["email"] = "root@example.com" })) + "." + parts[2])},
		{"garbage", bearer("not.a.jwt")},
		{"second Authorization header", http.Header{"Authorization": {"Bearer " + valid, "Bearer " + valid}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := call(t, "GET", path, nil, c.headers)
			if r.code != http.StatusUnauthorized || r.st.Kind != "Status" || r.st.Reason != metav1.StatusReasonUnauthorized {
				t.Errorf("got %d %s, want 401 with a Status body", r.code, r.body)
			}
		})
	}
}

func TestOnlyTheOwnerReachesASessionAndOthersLearnNothing(t *testing.T) {
	session(t, "alices", "alice@example.com")
	session(t, "sres", "nobody@example.com", func(s *v1alpha1.Session) {
		s.Spec.Owner = v1alpha1.Owner{Type: v1alpha1.OwnerGroup, Group: &v1alpha1.GroupPrincipal{Name: "sre"}}
	})
	pods := func(session string) string { return "/sessiongate/" + session + "/kas/api/v1/namespaces/demo/pods" }
	bob := token(t, "bob@example.com", "sre")
	carol := token(t, "carol@example.com", "dev")

	if r := call(t, "GET", pods("sres"), nil, bearer(bob)); r.code != http.StatusOK {
		t.Errorf("group member on a group session: %d %s", r.code, r.body)
	}
	theirs := call(t, "GET", pods("alices"), nil, bearer(bob))
	missing := call(t, "GET", pods("no-such-session"), nil, bearer(bob))
	if theirs.code != http.StatusNotFound || missing.code != http.StatusNotFound {
		t.Fatalf("another user's session: %d, a missing one: %d; want 404 for both", theirs.code, missing.code)
	}
	if strings.Replace(theirs.body, "alices", "X", 1) != strings.Replace(missing.body, "no-such-session", "X", 1) {
		t.Errorf("another user's session and a missing one answer differently:\n%s\n%s", theirs.body, missing.body)
	}
	if r := call(t, "GET", pods("sres"), nil, bearer(carol)); r.code != http.StatusNotFound {
		t.Errorf("non-member on a group session: %d %s, want 404", r.code, r.body)
	}
}

func TestCallerCannotImpersonateOrSmuggleCredentials(t *testing.T) {
	rec := recordedCluster(t)
	s := session(t, "hygiene", "alice@example.com", onRecorded)
	sec := &corev1.Secret{}
	testenv.Must(t, mgmt.Client.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: s.Status.CredentialsSecretRef}, sec))
	sessionToken := string(sec.Data[credentials.KeyToken])
	review, err := json.Marshal(&authenticationv1.SelfSubjectReview{TypeMeta: metav1.TypeMeta{APIVersion: "authentication.k8s.io/v1", Kind: "SelfSubjectReview"}})
	testenv.Must(t, err)
	callerToken := token(t, "alice@example.com")
	h := bearer(callerToken)
	h.Set("Content-Type", "application/json")
	h.Set("Proxy-Authorization", "Basic c211Z2dsZWQ=")
	h.Set("X-Remote-User", "system:admin")
	h.Set("Cookie", "sso=the-callers-session")
	h.Add("X-Remote-Group", "system:masters")
	h.Set("X-Remote-Extra-Scopes", "everything")
	h.Set("Connection", "X-Smuggled")
	h.Set("X-Smuggled", "yes")
	spoofForwarding(h)
	h.Set("Sec-WebSocket-Protocol", "base64url.bearer.authorization.k8s.io."+base64.RawURLEncoding.EncodeToString([]byte(callerToken))+", v5.channel.k8s.io")
	const path = "/sessiongate/hygiene/kas/apis/authentication.k8s.io/v1/selfsubjectreviews"
	r := call(t, "POST", path, review, h)
	if r.code != http.StatusCreated {
		t.Fatalf("self subject review through the gateway: %d %s", r.code, r.body)
	}
	var got authenticationv1.SelfSubjectReview
	testenv.Must(t, json.Unmarshal([]byte(r.body), &got))
	// The suite's gateway is named "test".
	want := "system:serviceaccount:sessiongate-sessions:sessiongate.test." + s.Name
	u := got.Status.UserInfo
	if _, smuggled := u.Extra["scopes"]; u.Username != want || smuggled || slices.Contains(u.Groups, "system:masters") {
		t.Errorf("the target saw %+v, want only %s", u, want)
	}

	// What reached the target: the session's credential and none of the
	// caller's.
	arrived := proxied(rec, "/apis/authentication.k8s.io/v1/selfsubjectreviews")
	if len(arrived) != 1 {
		t.Fatalf("%d self subject reviews reached the target, want 1", len(arrived))
	}
	sent := arrived[0].Header
	if a := sent.Values("Authorization"); len(a) != 1 || a[0] != "Bearer "+sessionToken {
		t.Errorf("the target got Authorization %q, want the session's token only", a)
	}
	for _, k := range []string{"Proxy-Authorization", "Cookie", "X-Remote-User", "X-Remote-Group", "X-Remote-Extra-Scopes", "X-Smuggled"} {
		if v := sent.Values(k); len(v) > 0 {
			t.Errorf("the target got %s: %q", k, v)
		}
	}
	onlyCallersAddress(t, sent)
	if p := sent.Values("Sec-WebSocket-Protocol"); len(p) != 1 || p[0] != "v5.channel.k8s.io" {
		// Not printed: it may hold the caller's token.
		t.Errorf("the target got %d Sec-WebSocket-Protocol values other than v5.channel.k8s.io alone", len(p))
	}
	for k, vs := range sent {
		for _, v := range vs {
			if strings.Contains(v, callerToken) || strings.Contains(v, base64.RawURLEncoding.EncodeToString([]byte(callerToken))) {
				t.Errorf("the caller's token reached the target in %s", k)
			}
		}
	}

	// Impersonation is refused, with a reason, before anything is sent.
	for _, header := range []string{"Impersonate-User", "Impersonate-Group", "Impersonate-Uid", "Impersonate-Extra-Scopes"} {
		h := bearer(callerToken)
		h.Set("Content-Type", "application/json")
		h.Set(header, "system:admin")
		r := call(t, "POST", path, review, h)
		if r.code != http.StatusForbidden || r.st.Reason != metav1.StatusReasonForbidden || !strings.Contains(r.st.Message, "impersonation through a session is not supported") {
			t.Errorf("%s: got %d %s, want 403 saying impersonation is not supported", header, r.code, r.body)
		}
	}
	if n := len(proxied(rec, "/apis/authentication.k8s.io/v1/selfsubjectreviews")); n != 1 {
		t.Errorf("%d self subject reviews reached the target, want only the first: impersonating requests must stop at the gateway", n)
	}
}

// An upgrade (port-forward) reaches the target with the caller's address as
// X-Forwarded-For, whatever forwarding headers the caller wrote: the
// target's audit log names who really asked.
func TestUpgradesCarryOnlyTheCallersAddress(t *testing.T) {
	rec := recordedCluster(t)
	session(t, "upgrade-fwd", "alice@example.com", onRecorded)
	h := bearer(token(t, "alice@example.com"))
	h.Set("Connection", "Upgrade")
	h.Set("Upgrade", "SPDY/3.1")
	h.Set("X-Stream-Protocol-Version", "portforward.k8s.io")
	spoofForwarding(h)
	// No such pod: the target answers without upgrading, after it has seen
	// the request.
	call(t, "POST", "/sessiongate/upgrade-fwd/kas/api/v1/namespaces/demo/pods/no-such-pod/portforward", nil, h)
	arrived := proxied(rec, "/pods/no-such-pod/portforward")
	if len(arrived) != 1 {
		t.Fatalf("%d port-forward upgrades reached the target, want 1", len(arrived))
	}
	sent := arrived[0].Header
	if !strings.EqualFold(sent.Get("Upgrade"), "SPDY/3.1") {
		t.Fatalf("the target got Upgrade %q: not the upgrade path", sent.Get("Upgrade"))
	}
	onlyCallersAddress(t, sent)
}

// spoofForwarding adds the headers a caller would write to pass for someone
// else in the target's audit log.
func spoofForwarding(h http.Header) {
	h.Set("X-Forwarded-For", "10.1.2.3")
	h.Set("X-Forwarded-Host", "trusted.example.com")
	h.Set("Forwarded", "for=10.1.2.3")
	h.Set("X-Real-Ip", "10.1.2.3")
}

// onlyCallersAddress: what reached the target names the caller's own
// address (the suite's clients are on 127.0.0.1), nothing the caller wrote.
func onlyCallersAddress(t *testing.T, sent http.Header) {
	t.Helper()
	if f := sent.Values("X-Forwarded-For"); len(f) != 1 || f[0] != "127.0.0.1" {
		t.Errorf("the target got X-Forwarded-For %q, want the caller's address 127.0.0.1 alone", f)
	}
	for _, k := range []string{"X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded", "X-Real-Ip"} {
		if v := sent.Values(k); len(v) > 0 {
			t.Errorf("the target got %s: %q", k, v)
		}
	}
}

// A target that answers with a redirect never sends the caller elsewhere:
// the gateway answers 502 itself, and no Location reaches the caller.
func TestTargetRedirectsAreNotPassedOn(t *testing.T) {
	rec := recordedCluster(t)
	session(t, "redirected", "alice@example.com", onRecorded)
	rec.RedirectOn("/configmaps/redirect-me", "https://elsewhere.example.com/steal")
	req, err := http.NewRequest(http.MethodGet, "https://"+replicas[0].Addr()+"/sessiongate/redirected/kas/api/v1/namespaces/demo/configmaps/redirect-me", nil)
	testenv.Must(t, err)
	req.Header = bearer(token(t, "alice@example.com"))
	c := *gatewayClient()
	// The caller's own client must not follow anything either: the answer
	// itself is what is checked.
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	testenv.Must(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || strings.Contains(string(body), "elsewhere") || resp.Header.Get("Location") != "" {
		t.Errorf("a redirecting target: got %d %q (Location %q), want 502 with no redirect", resp.StatusCode, body, resp.Header.Get("Location"))
	}
	if n := len(proxied(rec, "/configmaps/redirect-me")); n != 1 {
		t.Errorf("%d requests reached the target, want 1", n)
	}
}

func TestPathTricksNeverLeaveTheSession(t *testing.T) {
	session(t, "path-a", "alice@example.com")
	session(t, "path-b", "bob@example.com")
	alice := bearer(token(t, "alice@example.com"))
	for _, p := range []string{
		"/sessiongate/path-a/kas/../../path-b/kas/api/v1/namespaces/demo/pods",
		"/sessiongate/path-a/kas/%2e%2e/%2e%2e/path-b/kas/api/v1/namespaces/demo/pods",
		"/sessiongate/path-a/kas/api%2fv1/namespaces/demo/pods",
		"/sessiongate/path-a/kas//api/v1/namespaces/demo/pods",
		"/sessiongate/path-a/kas/./api/v1/namespaces/demo/pods",
		"/sessiongate/path-a%2fkas%2f..%2f..%2fpath-b/kas/api",
	} {
		r := call(t, "GET", p, nil, alice)
		if r.code != http.StatusBadRequest {
			t.Errorf("%s: got %d %s, want 400", p, r.code, r.body)
		}
	}
	if r := call(t, "GET", "/sessiongate/path-a/kas/api/v1/namespaces/demo/pods", nil, alice); r.code != http.StatusOK {
		t.Errorf("the plain path is refused: %d %s", r.code, r.body)
	}
}

func TestRotatedIssuerKeysAreFetched(t *testing.T) {
	session(t, "rotation", "alice@example.com")
	testenv.Must(t, issuer.Rotate())
	c := clientset(t, 0, "rotation", token(t, "alice@example.com"))
	if _, err := c.CoreV1().Pods("demo").List(context.Background(), metav1.ListOptions{}); err != nil {
		t.Errorf("a token signed with a rotated-in key is refused: %v", err)
	}
}

func TestTargetTLSIsAlwaysVerified(t *testing.T) {
	ctx := context.Background()
	other, err := testenv.NewCA("not-the-target")
	testenv.Must(t, err)
	c := &v1alpha1.Cluster{}
	testenv.Must(t, mgmt.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "target"}, c))
	wrong := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "wrong-ca"}, Spec: c.Spec}
	wrong.Spec.CABundle = other.CertPEM
	// Its kubeconfig Secret lets it try, through the other CA too: what
	// the target's TLS says shows.
	testenv.Must(t, allowServers(ctx, c.Spec.KubeconfigSecretRef.Name, c.Spec.Server, other.CertPEM))
	testenv.Must(t, mgmt.Client.Create(ctx, wrong))
	t.Cleanup(func() { _ = mgmt.Client.Delete(context.Background(), wrong) })

	// A Cluster whose CA does not match its server never mints: the session
	// waits and says why.
	s := &v1alpha1.Session{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "on-wrong-ca"}, Spec: v1alpha1.SessionSpec{
		TTL: metav1.Duration{Duration: time.Hour}, Cluster: "wrong-ca", AccessLevel: v1alpha1.AccessLevel{ClusterRole: "view"},
		Owner: v1alpha1.Owner{Type: v1alpha1.OwnerUser, UserPrincipal: &v1alpha1.UserPrincipal{Name: "alice@example.com", Claim: "email"}},
	}}
	testenv.Must(t, mgmt.Client.Create(ctx, s))
	t.Cleanup(func() { _ = mgmt.Client.Delete(context.Background(), s) })
	testenv.Eventually(t, 30*time.Second, func() error {
		testenv.Must(t, mgmt.Client.Get(ctx, client.ObjectKeyFromObject(s), s))
		r := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady)
		if s.Status.Phase != v1alpha1.PhasePending || r == nil || r.Reason != v1alpha1.ReasonTargetTLSFailed {
			return fmt.Errorf("session on a wrong CA is %s with Ready %+v, want Pending/TargetTLSFailed", s.Status.Phase, r)
		}
		return nil
	})

	// And the proxy verifies the target itself: a credentials Secret whose CA
	// was tampered with gets 502, never an unverified connection.
	good := session(t, "tampered-ca", "alice@example.com")
	sec := &corev1.Secret{}
	testenv.Must(t, mgmt.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: good.Status.CredentialsSecretRef}, sec))
	patch := client.MergeFrom(sec.DeepCopy())
	sec.Data["ca.crt"] = other.CertPEM
	testenv.Must(t, mgmt.Client.Patch(ctx, sec, patch))
	testenv.Eventually(t, 30*time.Second, func() error {
		r := call(t, "GET", "/sessiongate/tampered-ca/kas/api/v1/namespaces/demo/pods", nil, bearer(token(t, "alice@example.com")))
		if r.code != http.StatusBadGateway {
			return fmt.Errorf("a target whose certificate does not match the CA: got %d %s, want 502", r.code, r.body)
		}
		return nil
	})
}
