// Package sgctl is the user's command line: it talks to the gateway's REST
// API with the user's own OIDC token, and writes kubeconfigs that let vanilla
// kubectl use a session without ever storing a token in the file.
package sgctl

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/api"
)

// Environment variables that configure sgctl (flags win over them).
const (
	EnvServer       = "SESSIONGATE_SERVER"
	EnvCA           = "SESSIONGATE_CA"
	EnvToken        = "SESSIONGATE_TOKEN"
	EnvTokenFile    = "SESSIONGATE_TOKEN_FILE"
	EnvTokenCommand = "SESSIONGATE_TOKEN_COMMAND"
)

// Config is where the gateway is and how to get the user's token.
type Config struct {
	Server       string
	CAFile       string
	TokenFile    string
	TokenCommand string
}

// Token returns the user's OIDC token: $SESSIONGATE_TOKEN, else the token
// file, else the output of the token command.
func (c *Config) Token(ctx context.Context) (string, error) {
	if t := strings.TrimSpace(os.Getenv(EnvToken)); t != "" {
		return t, nil
	}
	if c.TokenFile != "" {
		b, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return "", fmt.Errorf("reading the token file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	if c.TokenCommand != "" {
		out, err := exec.CommandContext(ctx, "sh", "-c", c.TokenCommand).Output()
		if err != nil {
			return "", fmt.Errorf("running the token command %q: %w", c.TokenCommand, err)
		}
		return strings.TrimSpace(string(out)), nil
	}
	return "", fmt.Errorf("no token: set $%s, --token-file or --token-command", EnvToken)
}

// Client calls the gateway's REST API.
type Client struct {
	cfg  *Config
	http *http.Client
}

// NewClient checks the configuration and builds a client.
func NewClient(cfg *Config) (*Client, error) {
	if !strings.HasPrefix(cfg.Server, "https://") {
		return nil, fmt.Errorf("the gateway URL must be https:// (set --server or $%s), got %q", EnvServer, cfg.Server)
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		ca, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading the gateway CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, fmt.Errorf("%s holds no PEM certificate", cfg.CAFile)
		}
		tlsCfg.RootCAs = pool
	}
	return &Client{cfg: cfg, http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg, Proxy: http.ProxyFromEnvironment}}}, nil
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	return json.Unmarshal(data, out)
}

// send makes the call and returns a successful response, or the gateway's
// refusal as an error.
func (c *Client) send(ctx context.Context, method, path string, body any) (*http.Response, error) {
	tok, err := c.cfg.Token(ctx)
	if err != nil {
		return nil, err
	}
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.cfg.Server, "/")+path, r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("calling the gateway: %w", err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var st metav1.Status
		if json.Unmarshal(data, &st) == nil && st.Message != "" {
			return nil, fmt.Errorf("%s", st.Message)
		}
		return nil, fmt.Errorf("the gateway answered %s", resp.Status)
	}
	return resp, nil
}

// Request asks for a session for the caller.
func (c *Client) Request(ctx context.Context, req api.SessionRequest) (*v1alpha1.Session, error) {
	s := &v1alpha1.Session{}
	return s, c.do(ctx, http.MethodPost, "/api/v1/sessions", req, s)
}

// List returns the caller's sessions.
func (c *Client) List(ctx context.Context) (*v1alpha1.SessionList, error) {
	l := &v1alpha1.SessionList{}
	return l, c.do(ctx, http.MethodGet, "/api/v1/sessions", nil, l)
}

// Get returns one of the caller's sessions.
func (c *Client) Get(ctx context.Context, name string) (*v1alpha1.Session, error) {
	s := &v1alpha1.Session{}
	return s, c.do(ctx, http.MethodGet, "/api/v1/sessions/"+name, nil, s)
}

// Terminate ends one of the caller's sessions.
func (c *Client) Terminate(ctx context.Context, name string) (*v1alpha1.Session, error) {
	s := &v1alpha1.Session{}
	return s, c.do(ctx, http.MethodPost, "/api/v1/sessions/"+name+"/terminate", nil, s)
}

// Approve records the caller's approval of a request.
func (c *Client) Approve(ctx context.Context, name, comment string) (*v1alpha1.Session, error) {
	s := &v1alpha1.Session{}
	return s, c.do(ctx, http.MethodPost, "/api/v1/sessions/"+name+"/approve", api.DecisionRequest{Comment: comment}, s)
}

// Reject records the caller's rejection of a request.
func (c *Client) Reject(ctx context.Context, name, comment string) (*v1alpha1.Session, error) {
	s := &v1alpha1.Session{}
	return s, c.do(ctx, http.MethodPost, "/api/v1/sessions/"+name+"/reject", api.DecisionRequest{Comment: comment}, s)
}

// Approvals lists the requests the caller may decide.
func (c *Client) Approvals(ctx context.Context) (*v1alpha1.SessionList, error) {
	l := &v1alpha1.SessionList{}
	return l, c.do(ctx, http.MethodGet, "/api/v1/approvals", nil, l)
}

// Policies lists what the caller may request, per policy and cluster.
func (c *Client) Policies(ctx context.Context) (*api.PolicyViewList, error) {
	l := &api.PolicyViewList{}
	return l, c.do(ctx, http.MethodGet, "/api/v1/policies", nil, l)
}

// Renew asks to extend one of the caller's Active sessions by ttl ("" for
// the policy's maximum).
func (c *Client) Renew(ctx context.Context, name, ttl string) (*v1alpha1.Session, error) {
	s := &v1alpha1.Session{}
	return s, c.do(ctx, http.MethodPost, "/api/v1/sessions/"+name+"/renew", api.RenewRequest{TTL: ttl}, s)
}

// Revoke ends every session of a user or group (admin groups only).
func (c *Client) Revoke(ctx context.Context, req api.RevocationRequest) (*api.RevocationResult, error) {
	res := &api.RevocationResult{}
	return res, c.do(ctx, http.MethodPost, "/api/v1/revocations", req, res)
}

// Recordings lists a session's recordings.
func (c *Client) Recordings(ctx context.Context, session string) (*api.RecordingList, error) {
	l := &api.RecordingList{}
	return l, c.do(ctx, http.MethodGet, "/api/v1/sessions/"+url.PathEscape(session)+"/recordings", nil, l)
}

// Recording fetches a cast; the caller closes it.
func (c *Client) Recording(ctx context.Context, id string) (io.ReadCloser, error) {
	resp, err := c.send(ctx, http.MethodGet, "/api/v1/recordings/"+url.PathEscape(id), nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}
