package localkube

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// S3 is versitygw, an S3-compatible server, storing objects in a local
// directory (its POSIX backend), over TLS.
type S3 struct {
	// Endpoint is https://127.0.0.1:port.
	Endpoint             string
	AccessKey, SecretKey string
	// CA verifies the server.
	CA []byte
	// Root holds one directory per bucket.
	Root string
	Log  string

	cmd *exec.Cmd
}

// StartS3 runs versitygw (make test-bins) until Stop, serving dir.
func StartS3(dir string) (*S3, error) {
	ca, err := NewCA("sessiongate-s3")
	if err != nil {
		return nil, err
	}
	certFile, keyFile, err := ca.WriteServingCert(dir, "127.0.0.1")
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	s := &S3{
		Endpoint: "https://127.0.0.1:" + strconv.Itoa(port), AccessKey: "sessiongate", SecretKey: hex.EncodeToString(secret),
		CA: ca.CertPEM, Root: filepath.Join(dir, "buckets"), Log: filepath.Join(dir, "versitygw.log"),
	}
	for _, d := range []string{s.Root, filepath.Join(dir, "meta")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	log, err := os.Create(s.Log)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	s.cmd = exec.Command(filepath.Join(BinDir(), "versitygw"),
		"--port", "127.0.0.1:"+strconv.Itoa(port), "--cert", certFile, "--key", keyFile,
		"posix", "--sidecar", filepath.Join(dir, "meta"), s.Root)
	s.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	s.cmd.Stdout, s.cmd.Stderr = log, log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting versitygw (run make test-bins): %w", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := c.Get(s.Endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return s, nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			b, _ := os.ReadFile(s.Log)
			return nil, fmt.Errorf("versitygw not serving after 30s: %v\n%s", err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Bucket makes a bucket (a directory of the POSIX backend).
func (s *S3) Bucket(name string) error { return os.MkdirAll(filepath.Join(s.Root, name), 0o700) }

// Stop ends versitygw and waits for it.
func (s *S3) Stop() {
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	_ = s.cmd.Wait()
}
