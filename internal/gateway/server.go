package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"

	"sessiongate.dev/sessiongate/internal/audit"
	"sessiongate.dev/sessiongate/internal/authn"
	"sessiongate.dev/sessiongate/internal/proxy"
	"sessiongate.dev/sessiongate/internal/recording"
	"sessiongate.dev/sessiongate/internal/streams"
)

// ServeOptions configure the data plane's HTTPS server.
type ServeOptions struct {
	// Listen is the address of the HTTPS server, e.g. 127.0.0.1:8443.
	Listen string
	// TLSCertFile and TLSKeyFile are the serving certificate; they are
	// reloaded when they change.
	TLSCertFile, TLSKeyFile string
	OIDC                    authn.Config
	// AuditLog is where audit records go: "-" for stdout, or a file path.
	AuditLog string
	// AuditWriter, when set, receives audit records instead of AuditLog.
	AuditWriter io.Writer
	// AdminGroups may revoke every session of a user or group at once.
	AdminGroups []string
	// ActivityReportInterval is how often, at most, this replica reports a
	// session's last request for idle expiry (default 30s).
	ActivityReportInterval time.Duration
	// Recordings stores exec and attach casts; nil records nothing.
	Recordings recording.Sink
	// AuditorGroups may list and fetch every session's recordings.
	AuditorGroups []string
	// HTTP1Only serves callers HTTP/1.1 only, never HTTP/2: a small request
	// costs the gateway less CPU, but each request in flight and each watch
	// takes a connection of its own.
	HTTP1Only bool
}

// server is the HTTPS front door of one replica.
type server struct {
	listener net.Listener
	handler  http.Handler
	certs    *certwatcher.CertWatcher
	closer   io.Closer
	// protocols are what callers may speak; nil: HTTP/1.1 and HTTP/2.
	protocols *http.Protocols
}

func newServer(opts *ServeOptions, h http.Handler) (*server, error) {
	certs, err := certwatcher.New(opts.TLSCertFile, opts.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("loading the serving certificate (--tls-cert-file, --tls-key-file): %w", err)
	}
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("listening on --listen %s: %w", opts.Listen, err)
	}
	// The exec relay gathers each message's TLS records into one write.
	srv := &server{listener: streams.GatherListener(ln), handler: h, certs: certs}
	if opts.HTTP1Only {
		srv.protocols = new(http.Protocols)
		srv.protocols.SetHTTP1(true)
	}
	return srv, nil
}

// routes sends session paths to the proxy before any mux can clean (and so
// redirect) them; the proxy judges raw paths itself.
func routes(p *proxy.Handler, mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.EscapedPath(), proxy.Prefix) || strings.HasPrefix(r.URL.Path, proxy.Prefix) {
			p.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func (s *server) Start(ctx context.Context) error {
	go func() {
		if err := s.certs.Start(ctx); err != nil {
			klog.ErrorS(err, "Watching the serving certificate")
		}
	}()
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		// A keep-alive connection with nothing in flight is closed after
		// this, as kube-apiserver closes its own: with HTTP/1.1 a client
		// keeps many (client-go up to 25 per host).
		IdleTimeout: 90 * time.Second,
		// ALPN offers what Protocols allows (net/http adds h2 and http/1.1).
		TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.certs.GetCertificate},
		ErrorLog:  nil,
		Protocols: s.protocols,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	klog.V(2).InfoS("Serving sessions", "address", s.listener.Addr().String())
	err := srv.ServeTLS(s.listener, "", "")
	<-done
	if s.closer != nil {
		_ = s.closer.Close()
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// NeedLeaderElection: every replica serves.
func (s *server) NeedLeaderElection() bool { return false }

func openAudit(opts *ServeOptions) (*audit.Logger, io.Closer, error) {
	if opts.AuditWriter != nil {
		return audit.New(opts.AuditWriter), nil, nil
	}
	return audit.Open(opts.AuditLog)
}
