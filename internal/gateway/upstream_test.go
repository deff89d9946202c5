package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/internal/credentials"
	"sessiongate.dev/sessiongate/internal/registry"
	"sessiongate.dev/sessiongate/internal/testenv"
)

// The way to a target is HTTP/2 where the target speaks it (kube-apiserver
// does), and the sessions of one target share one connection: no TLS
// handshake per request or per session.
func TestUpstreamIsHTTP2AndSessionsShareAConnection(t *testing.T) {
	ctx := context.Background()
	transports := registry.NewTransports()
	var backends []*registry.Backend
	for _, name := range []string{"upstream-a", "upstream-b"} {
		s := session(t, name, "alice@example.com")
		sec := &corev1.Secret{}
		testenv.Must(t, mgmt.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: s.Status.CredentialsSecretRef}, sec))
		b, err := transports.NewBackend(registry.BackendConfig{
			Server: string(sec.Data[credentials.KeyServer]), CA: sec.Data[credentials.KeyCA], Token: string(sec.Data[credentials.KeyToken]),
		})
		testenv.Must(t, err)
		backends = append(backends, b)
	}
	var dialed atomic.Int32
	trace := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(c httptrace.GotConnInfo) {
		if !c.Reused {
			dialed.Add(1)
		}
	}})
	for i := range 20 {
		b := backends[i%len(backends)]
		req, err := http.NewRequestWithContext(trace, http.MethodGet, strings.TrimSuffix(b.URL.String(), "/")+"/api", nil)
		testenv.Must(t, err)
		req.Header.Set("Authorization", "Bearer "+b.Token)
		resp, err := b.Transport.RoundTrip(req)
		testenv.Must(t, err)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
			t.Fatalf("request %d: %s over %s, want 200 over HTTP/2", i, resp.Status, resp.Proto)
		}
	}
	if n := dialed.Load(); n != 1 {
		t.Errorf("20 requests of two sessions opened %d connections to the target, want 1", n)
	}
}
