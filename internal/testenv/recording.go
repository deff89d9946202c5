package testenv

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Recorder is a TLS reverse proxy in front of a target's API server that
// records every request as it arrived: a test asserts on what reached the
// target, not on what the caller was told. Register a Cluster with URL as
// its server and CAPEM as its caBundle to put it between the gateway and
// the target.
//
// A TLS proxy cannot pass a client certificate on, so a caller's certificate
// is replaced by one the recorder signs with the target's client CA for the
// same subject (CN and O): the target sees the same user and groups.
type Recorder struct {
	// URL is the recorder's https:// address.
	URL string
	// CAPEM verifies the recorder's serving certificate.
	CAPEM []byte

	srv      *httptest.Server
	upstream *url.URL
	target   *Cluster
	roots    *x509.CertPool

	mu         sync.Mutex
	requests   []Recorded
	transports map[string]http.RoundTripper
	redirects  map[string]string
}

// RedirectOn makes the recorder answer requests whose path contains
// pathPart with a redirect to location, as a hostile or misconfigured
// target would, instead of passing them on.
func (rec *Recorder) RedirectOn(pathPart, location string) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.redirects == nil {
		rec.redirects = map[string]string{}
	}
	rec.redirects[pathPart] = location
}

// Recorded is one request as the recorder received it.
type Recorded struct {
	Method string
	// Path is the escaped path, with the query.
	Path   string
	Header http.Header
	// ClientCertCN is the CN of the caller's client certificate, if any.
	ClientCertCN string
}

// StartRecorder starts a recorder in front of target, which must have a
// client CA the test holds (StartTarget).
func StartRecorder(target *Cluster) (*Recorder, error) {
	if target.CA == nil {
		return nil, errors.New("the recorder needs a target whose client CA the test holds")
	}
	upstream, err := url.Parse(target.Config.Host)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(target.Config.CAData) {
		return nil, errors.New("the target's CA holds no certificate")
	}
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(target.CA.Cert)
	rec := &Recorder{upstream: upstream, target: target, roots: roots, transports: map[string]http.RoundTripper{}}
	rec.srv = httptest.NewUnstartedServer(http.HandlerFunc(rec.serve))
	rec.srv.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: clientCAs}
	rec.srv.StartTLS()
	rec.URL = rec.srv.URL
	rec.CAPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rec.srv.Certificate().Raw})
	return rec, nil
}

// Close stops the recorder.
func (rec *Recorder) Close() { rec.srv.Close() }

// Requests returns the recorded requests whose path contains pathPart.
func (rec *Recorder) Requests(pathPart string) []Recorded {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out []Recorded
	for _, r := range rec.requests {
		if strings.Contains(r.Path, pathPart) {
			out = append(out, r)
		}
	}
	return out
}

func (rec *Recorder) serve(w http.ResponseWriter, r *http.Request) {
	got := Recorded{Method: r.Method, Path: r.URL.RequestURI(), Header: r.Header.Clone()}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		got.ClientCertCN = r.TLS.PeerCertificates[0].Subject.CommonName
	}
	rec.mu.Lock()
	rec.requests = append(rec.requests, got)
	redirect := ""
	for part, loc := range rec.redirects {
		if strings.Contains(got.Path, part) {
			redirect = loc
		}
	}
	rec.mu.Unlock()
	if redirect != "" {
		http.Redirect(w, r, redirect, http.StatusFound)
		return
	}

	rt, err := rec.transport(r)
	if err != nil {
		http.Error(w, "recorder: "+err.Error(), http.StatusBadGateway)
		return
	}
	p := &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(rec.upstream) },
		Transport:     rt,
		FlushInterval: -1, // watches and logs -f stream through
	}
	p.ServeHTTP(w, r)
}

// transport is the way to the target for this caller: with a client
// certificate for the caller's subject, or with none.
func (rec *Recorder) transport(r *http.Request) (http.RoundTripper, error) {
	key, user, groups := "", "", []string(nil)
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		s := r.TLS.PeerCertificates[0].Subject
		key, user, groups = s.String(), s.CommonName, s.Organization
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rt, ok := rec.transports[key]; ok {
		return rt, nil
	}
	cfg := &tls.Config{RootCAs: rec.roots, MinVersion: tls.VersionTLS12}
	if key != "" {
		certPEM, keyPEM, err := rec.target.CA.ClientCert(user, groups, 24*time.Hour)
		if err != nil {
			return nil, err
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	// HTTP/1.1 only, so that upgrades (exec, port-forward) pass as well.
	rt := &http.Transport{TLSClientConfig: cfg, IdleConnTimeout: 30 * time.Second}
	rec.transports[key] = rt
	return rt, nil
}
