package authn_test

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"sessiongate.dev/sessiongate/internal/authn"
	"sessiongate.dev/sessiongate/internal/devissuer"
)

func TestVerifiedTokensAreCachedNoLongerThanTheyLive(t *testing.T) {
	iss, err := devissuer.New()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(iss)
	defer srv.Close()
	iss.SetURL(srv.URL)
	now := time.Now()
	a, err := authn.New(authn.Config{
		IssuerURL: srv.URL, Audiences: []string{"gw"},
		CAData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}),
		Now:    func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	claims := iss.UserClaims("alice", []string{"sre"}, "gw", time.Minute)
	tok, err := iss.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	id, err := a.Verify(context.Background(), tok)
	if err != nil || id.Username != "alice" || id.Groups[0] != "sre" {
		t.Fatalf("Verify = %+v, %v", id, err)
	}

	// With the issuer gone, a cached token still verifies for CacheTTL...
	srv.Close()
	now = now.Add(authn.CacheTTL / 2)
	if _, err := a.Verify(context.Background(), tok); err != nil {
		t.Errorf("a token verified a moment ago is refused: %v", err)
	}
	// ...but a tampered one is never answered from the cache.
	parts := strings.Split(tok, ".")
	if _, err := a.Verify(context.Background(), parts[0]+"."+parts[1]+"x."+parts[2]); err == nil {
		t.Error("a tampered token was accepted")
	}
	// And past the token's expiry the cache does not keep it alive.
	now = now.Add(time.Minute)
	if _, err := a.Verify(context.Background(), tok); err == nil {
		t.Error("an expired token was accepted from the cache")
	}
}

func TestConfigurationIsChecked(t *testing.T) {
	for name, c := range map[string]authn.Config{
		"http issuer":           {IssuerURL: "http://issuer", Audiences: []string{"a"}},
		"no audience":           {IssuerURL: "https://issuer"},
		"HS256 allowed":         {IssuerURL: "https://issuer", Audiences: []string{"a"}, Algorithms: []string{"HS256"}},
		"none allowed":          {IssuerURL: "https://issuer", Audiences: []string{"a"}, Algorithms: []string{"none"}},
		"CA is not PEM":         {IssuerURL: "https://issuer", Audiences: []string{"a"}, CAData: []byte("x")},
		"CA file absent":        {IssuerURL: "https://issuer", Audiences: []string{"a"}, CAFile: "/nonexistent"},
		"iss owns":              {IssuerURL: "https://issuer", Audiences: []string{"a"}, OwnerClaims: []string{"sub", "iss"}},
		"aud owns":              {IssuerURL: "https://issuer", Audiences: []string{"a"}, OwnerClaims: []string{"sub", "aud"}},
		"empty owner":           {IssuerURL: "https://issuer", Audiences: []string{"a"}, OwnerClaims: []string{"sub", ""}},
		"username owns nothing": {IssuerURL: "https://issuer", Audiences: []string{"a"}, UsernameClaim: "upn", OwnerClaims: []string{"sub"}},
		"negative grace":        {IssuerURL: "https://issuer", Audiences: []string{"a"}, ExpiryGrace: -time.Second},
		"an hour's grace":       {IssuerURL: "https://issuer", Audiences: []string{"a"}, ExpiryGrace: time.Hour},
	} {
		if _, err := authn.New(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// issuer serves a development issuer over TLS and returns an authenticator
// for it with a settable clock.
func issuer(t *testing.T, cfg authn.Config) (*devissuer.Issuer, *authn.Authenticator, *time.Time) {
	t.Helper()
	iss, err := devissuer.New()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(iss)
	t.Cleanup(srv.Close)
	iss.SetURL(srv.URL)
	now := time.Now()
	cfg.IssuerURL, cfg.Audiences = srv.URL, []string{"gw"}
	cfg.CAData = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	cfg.Now = func() time.Time { return now }
	a, err := authn.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return iss, a, &now
}

func TestNoGraceOnExpiryUnlessConfigured(t *testing.T) {
	for _, grace := range []time.Duration{0, 30 * time.Second} {
		iss, a, now := issuer(t, authn.Config{ExpiryGrace: grace})
		tok, err := iss.Sign(iss.UserClaims("alice", nil, "gw", 2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Verify(context.Background(), tok); err != nil {
			t.Fatalf("grace %s: a fresh token is refused: %v", grace, err)
		}
		*now = now.Add(4 * time.Second)
		_, err = a.Verify(context.Background(), tok)
		if grace == 0 && (err == nil || !strings.Contains(err.Error(), "token expired at")) {
			t.Errorf("a 2-second token works 4 seconds later: %v", err)
		}
		if grace > 0 && err != nil {
			t.Errorf("with %s of grace a token 2 seconds past exp is refused: %v", grace, err)
		}
	}
}

func TestClockLeewayOnNotBeforeAndIssuedAt(t *testing.T) {
	iss, a, now := issuer(t, authn.Config{})
	for name, c := range map[string]struct {
		claim string
		at    time.Duration
		ok    bool
	}{
		"nbf inside the leeway": {"nbf", authn.Leeway / 2, true},
		"nbf past the leeway":   {"nbf", 2 * authn.Leeway, false},
		"iat inside the leeway": {"iat", authn.Leeway / 2, true},
		"iat in the future":     {"iat", 2 * authn.Leeway, false},
	} {
		claims := iss.UserClaims("alice", nil, "gw", time.Hour)
		claims[c.claim] = now.Add(c.at).Unix()
		tok, err := iss.Sign(claims)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Verify(context.Background(), tok); (err == nil) != c.ok {
			t.Errorf("%s: Verify = %v", name, err)
		}
	}
}

func TestOnlyOwnerClaimsAndOnlyAVerifiedEmail(t *testing.T) {
	iss, a, _ := issuer(t, authn.Config{})
	verify := func(mutate func(map[string]any)) (*authn.Identity, error) {
		c := iss.UserClaims("alice", nil, "gw", time.Hour)
		c["email"] = "alice@example.com"
		c["upn"] = "alice@corp"
		mutate(c)
		tok, err := iss.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		return a.Verify(context.Background(), tok)
	}
	id, err := verify(func(map[string]any) {})
	if err != nil {
		t.Fatal(err)
	}
	if len(id.Claims) != 2 || id.Claims["sub"] != "alice" || id.Claims["email"] != "alice@example.com" {
		t.Errorf("claims %v, want sub and email only (never iss, aud or unlisted upn)", id.Claims)
	}
	for name, v := range map[string]any{"false": false, "the string true": "true", "absent": nil} {
		id, err := verify(func(c map[string]any) {
			if v == nil {
				delete(c, "email_verified")
			} else {
				c["email_verified"] = v
			}
		})
		if err != nil {
			t.Fatalf("email_verified %s: %v", name, err)
		}
		if _, ok := id.Claims["email"]; ok {
			t.Errorf("email_verified %s: the email is trusted", name)
		}
	}

	// With email as the username, an unverified address is no identity.
	iss, a, _ = issuer(t, authn.Config{UsernameClaim: "email"})
	c := iss.UserClaims("alice@example.com", nil, "gw", time.Hour)
	c["email_verified"] = false
	tok, err := iss.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(context.Background(), tok); err == nil || !strings.Contains(err.Error(), "not verified") {
		t.Errorf("an unverified email username: %v", err)
	}
}

func TestAudienceErrorKeepsTheConfiguredAudiencesToItself(t *testing.T) {
	iss, a, _ := issuer(t, authn.Config{})
	tok, err := iss.Sign(iss.UserClaims("alice", nil, "kubernetes", time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Verify(context.Background(), tok)
	if err == nil || strings.Contains(err.Error(), "gw") {
		t.Errorf("Verify = %v, want a refusal that does not name the accepted audience", err)
	}
}

// While one caller waits for a slow issuer, others are told at once that
// the issuer cannot be reached instead of queueing behind it.
func TestSlowDiscoveryBlocksNoOneElse(t *testing.T) {
	iss, err := devissuer.New()
	if err != nil {
		t.Fatal(err)
	}
	asked := make(chan struct{}, 16)
	release := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/openid-configuration") {
			asked <- struct{}{}
			<-release
		}
		iss.ServeHTTP(w, r)
	}))
	defer srv.Close()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	iss.SetURL(srv.URL)
	a, err := authn.New(authn.Config{IssuerURL: srv.URL, Audiences: []string{"gw"},
		CAData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := iss.Token("alice", nil, "gw", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() { _, err := a.Verify(context.Background(), tok); first <- err }()
	<-asked // the first caller is inside discovery
	if _, err := a.Verify(context.Background(), tok); err == nil || !strings.Contains(err.Error(), "cannot reach its OIDC issuer") {
		t.Errorf("a second caller during discovery: %v", err)
	}
	select {
	case err := <-first:
		t.Fatalf("the first caller finished before the issuer answered: %v", err)
	default:
	}
	close(release)
	if err := <-first; err != nil {
		t.Errorf("the first caller, once the issuer answered: %v", err)
	}
	if _, err := a.Verify(context.Background(), tok); err != nil {
		t.Errorf("after discovery: %v", err)
	}
	if len(asked) != 0 {
		t.Errorf("discovery ran %d more time(s)", len(asked))
	}
}

func TestBearerTokenTakesExactlyOneCredential(t *testing.T) {
	proto := func(tok string) string {
		return authn.BearerProtocolPrefix + base64.RawURLEncoding.EncodeToString([]byte(tok))
	}
	upgrade := http.Header{"Connection": {"keep-alive, Upgrade"}, "Upgrade": {"websocket"}}
	for name, c := range map[string]struct {
		header http.Header
		want   string // "" means refused
	}{
		"header":                      {http.Header{"Authorization": {"Bearer abc"}}, "abc"},
		"subprotocol on an upgrade":   {merge(upgrade, http.Header{"Sec-Websocket-Protocol": {proto("abc") + ", v5.channel.k8s.io"}}), "abc"},
		"subprotocol without upgrade": {http.Header{"Sec-Websocket-Protocol": {proto("abc")}}, ""},
		"header and subprotocol":      {merge(upgrade, http.Header{"Authorization": {"Bearer abc"}, "Sec-Websocket-Protocol": {proto("xyz")}}), ""},
		"two subprotocols":            {merge(upgrade, http.Header{"Sec-Websocket-Protocol": {proto("abc"), proto("xyz")}}), ""},
		"subprotocol not base64url":   {merge(upgrade, http.Header{"Sec-Websocket-Protocol": {authn.BearerProtocolPrefix + "a+b/"}}), ""},
		"empty subprotocol token":     {merge(upgrade, http.Header{"Sec-Websocket-Protocol": {authn.BearerProtocolPrefix}}), ""},
		"two Authorization headers":   {http.Header{"Authorization": {"Bearer abc", "Bearer abc"}}, ""},
		"basic":                       {http.Header{"Authorization": {"Basic YTpi"}}, ""},
		"none":                        {http.Header{}, ""},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header = c.header
		got, err := authn.BearerToken(r)
		if (c.want == "" && err == nil) || (c.want != "" && got != c.want) {
			t.Errorf("%s: BearerToken = %q, %v", name, got, err)
		}
	}
}

func merge(hs ...http.Header) http.Header {
	out := http.Header{}
	for _, h := range hs {
		for k, vs := range h {
			out[k] = append(out[k], vs...)
		}
	}
	return out
}
