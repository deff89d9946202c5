package gateway_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"sessiongate.dev/sessiongate/internal/testenv"
)

// Token edges that kube-apiserver itself draws: no grace past exp, iat not
// in the future, email only when verified, and an audience error that does
// not tell the caller which audiences would have worked.
func TestTokenEdgesAsKubeAPIServerDrawsThem(t *testing.T) {
	session(t, "token-edges", "alice@example.com")
	path := "/sessiongate/token-edges/kas/api/v1/namespaces/demo/pods"
	sign := func(mutate func(map[string]any)) http.Header {
		c := issuer.UserClaims("alice@example.com", nil, audience, time.Hour)
		mutate(c)
		tok, err := issuer.Sign(c)
		testenv.Must(t, err)
		return bearer(tok)
	}
	for _, c := range []struct {
		name    string
		headers http.Header
		code    int
		message string
	}{
		{"expired a second ago", sign(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Second).Unix() }), http.StatusUnauthorized, "token expired at"},
		{"issued a minute from now", sign(func(c map[string]any) { c["iat"] = time.Now().Add(time.Minute).Unix() }), http.StatusUnauthorized, "issued in the future"},
		{"not before a minute from now", sign(func(c map[string]any) { c["nbf"] = time.Now().Add(time.Minute).Unix() }), http.StatusUnauthorized, "not valid before"},
		{"not before 3s from now, inside the leeway", sign(func(c map[string]any) { c["nbf"] = time.Now().Add(3 * time.Second).Unix() }), http.StatusOK, ""},
		{"email not verified", sign(func(c map[string]any) { c["email_verified"] = false }), http.StatusNotFound, ""},
		{"email_verified as a string", sign(func(c map[string]any) { c["email_verified"] = "true" }), http.StatusNotFound, ""},
		{"email_verified absent", sign(func(c map[string]any) { delete(c, "email_verified") }), http.StatusNotFound, ""},
		{"email verified", sign(func(map[string]any) {}), http.StatusOK, ""},
		{"another audience", sign(func(c map[string]any) { c["aud"] = "kubernetes" }), http.StatusUnauthorized, "not accepted by this gateway"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := call(t, "GET", path, nil, c.headers)
			if r.code != c.code || !strings.Contains(r.st.Message, c.message) {
				t.Errorf("got %d %q, want %d %q", r.code, r.st.Message, c.code, c.message)
			}
			if strings.Contains(r.body, audience) {
				t.Errorf("the answer names the gateway's audience: %s", r.body)
			}
		})
	}
}

// A token that expires during use stops working at its exp, not 30s later,
// even though the gateway verified (and cached) it a moment before.
func TestATokenStopsWorkingAtItsExpiry(t *testing.T) {
	session(t, "short-token", "alice@example.com")
	path := "/sessiongate/short-token/kas/api/v1/namespaces/demo/pods"
	c := issuer.UserClaims("alice@example.com", nil, audience, time.Hour)
	exp := time.Now().Add(2 * time.Second).Truncate(time.Second)
	c["exp"] = exp.Unix()
	tok, err := issuer.Sign(c)
	testenv.Must(t, err)
	if r := call(t, "GET", path, nil, bearer(tok)); r.code != http.StatusOK {
		t.Fatalf("a fresh token is refused: %d %s", r.code, r.body)
	}
	// What is under test is the clock itself: wait for it to pass exp.
	testenv.Eventually(t, 10*time.Second, func() error {
		if time.Now().Before(exp.Add(100 * time.Millisecond)) {
			return fmt.Errorf("not past exp yet")
		}
		return nil
	})
	if r := call(t, "GET", path, nil, bearer(tok)); r.code != http.StatusUnauthorized || !strings.Contains(r.st.Message, "token expired at") {
		t.Errorf("just past its exp a token still works: %d %s", r.code, r.body)
	}
}
