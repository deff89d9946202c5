package registry

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"time"

	utilnet "k8s.io/apimachinery/pkg/util/net"
)

// BackendConfig is what a session's credentials Secret holds.
type BackendConfig struct {
	Server          string
	CA              []byte
	Token           string
	CertPEM, KeyPEM []byte
	Version         string
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
	return &Backend{URL: u, Token: c.Token, Transport: t, Version: c.Version}, nil
}
