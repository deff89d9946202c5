package authn_test

import (
	"context"
	"encoding/pem"
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
	// And past the token's expiry (and skew) the cache does not keep it alive.
	now = now.Add(time.Minute + authn.Skew)
	if _, err := a.Verify(context.Background(), tok); err == nil {
		t.Error("an expired token was accepted from the cache")
	}
}

func TestConfigurationIsChecked(t *testing.T) {
	for name, c := range map[string]authn.Config{
		"http issuer":    {IssuerURL: "http://issuer", Audiences: []string{"a"}},
		"no audience":    {IssuerURL: "https://issuer"},
		"HS256 allowed":  {IssuerURL: "https://issuer", Audiences: []string{"a"}, Algorithms: []string{"HS256"}},
		"none allowed":   {IssuerURL: "https://issuer", Audiences: []string{"a"}, Algorithms: []string{"none"}},
		"CA is not PEM":  {IssuerURL: "https://issuer", Audiences: []string{"a"}, CAData: []byte("x")},
		"CA file absent": {IssuerURL: "https://issuer", Audiences: []string{"a"}, CAFile: "/nonexistent"},
	} {
		if _, err := authn.New(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
