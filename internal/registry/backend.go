package registry

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/rest"
)

// BackendConfig is what a session's credentials Secret holds.
type BackendConfig struct {
	Server          string
	CA              []byte
	Token           string
	CertPEM, KeyPEM []byte
	Version         string
}

// Transports shares one connection pool per target among the sessions that
// authenticate with a bearer token: the token travels in each request, so
// sessions on the same cluster need not each hold their own connections and
// TLS state. Sessions with a client certificate get a transport of their own.
type Transports struct {
	mu     sync.Mutex
	shared map[[sha256.Size]byte]sharedTarget
}

// sharedTarget is what the token sessions of one target share: the
// connection pool and the parsed server URL, which no one changes (a parsed
// URL per session was a twentieth of an idle session's memory).
type sharedTarget struct {
	transport *http.Transport
	url       *url.URL
}

// NewTransports returns an empty pool of shared transports.
func NewTransports() *Transports {
	return &Transports{shared: map[[sha256.Size]byte]sharedTarget{}}
}

// NewBackend is NewBackend, with token sessions sharing a transport per
// target server and CA.
func (t *Transports) NewBackend(c BackendConfig) (*Backend, error) {
	if len(c.CertPEM) > 0 || c.Token == "" {
		return NewBackend(c)
	}
	key := sha256.Sum256([]byte(c.Server + "\x00" + string(c.CA)))
	t.mu.Lock()
	defer t.mu.Unlock()
	if st, ok := t.shared[key]; ok {
		return &Backend{URL: st.url, Token: c.Token, Transport: st.transport, Version: c.Version, config: c, shared: true}, nil
	}
	b, err := NewBackend(c)
	if err != nil {
		return nil, err
	}
	b.shared = true
	// The shared URL outlives this session: it must not point into the
	// bytes of its Secret.
	b.URL, _ = url.Parse(strings.Clone(c.Server))
	t.shared[key] = sharedTarget{transport: b.Transport, url: b.URL}
	return b, nil
}

// closeIdle drops the idle connections of a transport no other session uses.
func (b *Backend) closeIdle() {
	if !b.shared {
		b.Transport.CloseIdleConnections()
	}
}

// NewBackend builds the transport to a target. The target's certificate is
// always verified against its CA: there is no way to skip it.
func NewBackend(c BackendConfig) (*Backend, error) {
	u, err := url.Parse(c.Server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("server %q is not an https:// URL", c.Server)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(c.CA) {
		return nil, fmt.Errorf("no PEM certificate in the target CA")
	}
	tlsCfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	switch {
	case len(c.CertPEM) > 0:
		cert, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		tlsCfg.Certificates = []tls.Certificate{cert}
	case c.Token == "":
		return nil, fmt.Errorf("neither a token nor a client certificate")
	}
	t := utilnet.SetTransportDefaults(&http.Transport{
		TLSClientConfig:     tlsCfg,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	})
	// Targets are reached directly, never through an environment proxy.
	t.Proxy = nil
	return &Backend{URL: u, Token: c.Token, Transport: t, Version: c.Version, config: c}, nil
}

// RestConfig is the same credential for client-go, which opens the exec and
// attach streams the gateway ends itself (see package streams). It is built
// per stream: an idle session keeps only what its Secret holds.
func (b *Backend) RestConfig() *rest.Config {
	c := b.config
	return &rest.Config{
		Host:        c.Server,
		BearerToken: c.Token,
		TLSClientConfig: rest.TLSClientConfig{
			CAData: c.CA, CertData: c.CertPEM, KeyData: c.KeyPEM,
		},
		// Targets are reached directly, never through an environment proxy.
		Proxy:     func(*http.Request) (*url.URL, error) { return nil, nil },
		UserAgent: "sessiongate",
	}
}
