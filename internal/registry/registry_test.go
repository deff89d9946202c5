package registry

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"sessiongate.dev/sessiongate/api/v1alpha1"
)

func backend(t *testing.T, version string) *Backend {
	t.Helper()
	b, err := NewBackend(BackendConfig{Server: "https://127.0.0.1:6443", CA: testCA, Token: "t", Version: version})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSessionLeavesAtItsOwnExpiryAndCutsItsContext(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	r := New(clk)
	r.Put(&Session{Name: "s", UID: "1", ExpiresAt: clk.Now().Add(time.Minute)}, backend(t, "1"))
	s, ok := r.Get("s")
	if !ok {
		t.Fatal("a fresh session is not served")
	}
	clk.Step(59 * time.Second)
	if _, ok := r.Get("s"); !ok {
		t.Fatal("session gone before its expiry")
	}
	clk.Step(time.Second)
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the expiry timer did not cut the session")
	}
	if !errors.Is(context.Cause(s.Context()), ErrExpired) {
		t.Errorf("cause = %v, want ErrExpired", context.Cause(s.Context()))
	}
	if _, ok := r.Get("s"); ok || r.Len() != 0 {
		t.Error("an expired session is still served")
	}
}

func TestRotationKeepsConnectionsAndReplacementCutsThem(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	r := New(clk)
	exp := clk.Now().Add(time.Hour)
	r.Put(&Session{Name: "s", UID: "1", ExpiresAt: exp}, backend(t, "1"))
	first, _ := r.Get("s")

	r.Put(&Session{Name: "s", UID: "1", ExpiresAt: exp}, backend(t, "2"))
	if first.Context().Err() != nil {
		t.Fatal("a rotated credential cut the session's connections")
	}
	if s, _ := r.Get("s"); s != first || s.Backend().Version != "2" {
		t.Fatalf("rotation did not swap the backend in place")
	}

	r.Put(&Session{Name: "s", UID: "2", ExpiresAt: exp}, backend(t, "3"))
	if !errors.Is(context.Cause(first.Context()), ErrReplaced) {
		t.Errorf("a new session of the same name left the old one's connections open")
	}
	r.Remove("s", ErrRevoked)
	if _, ok := r.Get("s"); ok {
		t.Error("a removed session is still served")
	}
}

func TestNewBackendRefusesWhatCannotBeVerified(t *testing.T) {
	for name, c := range map[string]BackendConfig{
		"http URL":       {Server: "http://127.0.0.1:6443", CA: testCA, Token: "t"},
		"no CA":          {Server: "https://127.0.0.1:6443", Token: "t"},
		"CA not PEM":     {Server: "https://127.0.0.1:6443", CA: []byte("nope"), Token: "t"},
		"no credential":  {Server: "https://127.0.0.1:6443", CA: testCA},
		"bad client key": {Server: "https://127.0.0.1:6443", CA: testCA, CertPEM: testCA, KeyPEM: []byte("x")},
	} {
		if _, err := NewBackend(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

var testCA = func() []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"}, NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}()

func TestTokenSessionsOnOneTargetShareATransport(t *testing.T) {
	ts := NewTransports()
	a, err := ts.NewBackend(BackendConfig{Server: "https://127.0.0.1:6443", CA: testCA, Token: "a"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := ts.NewBackend(BackendConfig{Server: "https://127.0.0.1:6443", CA: testCA, Token: "b"})
	other, _ := ts.NewBackend(BackendConfig{Server: "https://127.0.0.2:6443", CA: testCA, Token: "c"})
	if a.Transport != b.Transport {
		t.Error("two token sessions on one target hold two transports")
	}
	if a.Transport == other.Transport {
		t.Error("sessions on different targets share a transport")
	}
	if a.Token != "a" || b.Token != "b" {
		t.Error("sharing a transport mixed up the tokens")
	}
}

func TestRenewalMovesExpiryWithoutCuttingConnections(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	r := New(clk)
	r.Put(&Session{Name: "s", UID: "1", ExpiresAt: clk.Now().Add(time.Minute)}, backend(t, "1"))
	s, _ := r.Get("s")
	r.Put(&Session{Name: "s", UID: "1", ExpiresAt: clk.Now().Add(2 * time.Minute)}, backend(t, "1"))
	clk.Step(90 * time.Second)
	if got, ok := r.Get("s"); !ok || got != s || s.Context().Err() != nil {
		t.Fatal("a renewed session was cut or replaced at its old expiry")
	}
	clk.Step(30 * time.Second)
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the renewed session did not end at its new expiry")
	}
}

func TestLettingSomeoneOutCutsTheGuestsStreamsOnly(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	r := New(clk)
	exp := clk.Now().Add(time.Hour)
	bob := v1alpha1.Participant{User: "bob", Role: v1alpha1.RoleParticipant}
	carol := v1alpha1.Participant{User: "carol", Role: v1alpha1.RoleViewer}
	put := func(ps ...v1alpha1.Participant) {
		r.Put(&Session{Name: "s", UID: "1", ExpiresAt: exp, Participants: ps}, backend(t, "1"))
	}
	put(bob)
	s, _ := r.Get("s")
	g := s.GuestContext()
	// Letting someone in, or raising a viewer, takes nothing from anyone.
	put(bob, carol)
	put(bob, v1alpha1.Participant{User: "carol", Role: v1alpha1.RoleParticipant})
	if g.Err() != nil {
		t.Fatal("letting someone in cut the guests' streams")
	}
	// Lowering bob to a viewer cuts every guest's streams, not the owner's.
	put(v1alpha1.Participant{User: "bob", Role: v1alpha1.RoleViewer}, v1alpha1.Participant{User: "carol", Role: v1alpha1.RoleParticipant})
	if g.Err() == nil {
		t.Fatal("a participant lowered to a viewer keeps his open streams")
	}
	var ended *EndedError
	if !errors.As(context.Cause(g), &ended) || ended.Reason != "Unshared" {
		t.Errorf("cause = %v", context.Cause(g))
	}
	if s.Context().Err() != nil {
		t.Fatal("the owner's streams were cut")
	}
	g = s.GuestContext()
	if g.Err() != nil {
		t.Fatal("the guests' new streams start cut")
	}
	put(v1alpha1.Participant{User: "carol", Role: v1alpha1.RoleParticipant})
	if g.Err() == nil {
		t.Fatal("a participant let out keeps his open streams")
	}
	// The session's end ends the guests' streams too.
	g = s.GuestContext()
	r.Remove("s", ErrRevoked)
	if g.Err() == nil {
		t.Fatal("the guests' streams outlive the session")
	}
}
