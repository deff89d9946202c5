// Package authn verifies the caller's OIDC bearer token in-process: discovery
// and JWKS (with key rotation) through coreos/go-oidc, issuer, audience,
// expiry (no grace unless configured), not-before and issued-at (with a small
// leeway for clock skew), and only the allowed algorithms.
package authn

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"k8s.io/klog/v2"
)

// Leeway is how far the gateway's clock may run behind the issuer's when
// checking nbf and iat. It never extends a token past its exp: that takes
// Config.ExpiryGrace, zero by default as in kube-apiserver.
const Leeway = 10 * time.Second

// DefaultOwnerClaims are the claims a session's owner may be matched on
// unless configured.
var DefaultOwnerClaims = []string{"sub", "email"}

// registeredClaims say who issued a token, for whom and when; they name no
// one. An owner matched on one of them would be every token holder.
var registeredClaims = []string{"iss", "aud", "exp", "nbf", "iat", "jti", "azp", "nonce", "at_hash", "c_hash", "auth_time", "acr", "amr", "sid", "typ", "email_verified"}

// DefaultAlgorithms are the signing algorithms accepted unless configured:
// asymmetric only, so a public key can never be used as an HMAC secret.
var DefaultAlgorithms = []string{oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512, oidc.PS256, oidc.PS384, oidc.PS512, oidc.EdDSA}

// Config says which tokens to accept.
type Config struct {
	// IssuerURL is the issuer; its discovery document is at
	// IssuerURL/.well-known/openid-configuration.
	IssuerURL string
	// Audiences: a token must name at least one.
	Audiences []string
	// CAFile verifies the issuer's TLS certificate; empty means system roots.
	CAFile string
	// CAData is the same as CAFile, in memory.
	CAData []byte
	// UsernameClaim names the caller in audit records (default "sub").
	UsernameClaim string
	// GroupsClaim holds the caller's groups (default "groups").
	GroupsClaim string
	// OwnerClaims are the claims a session's owner may be matched on
	// (default DefaultOwnerClaims); Identity.Claims holds only these.
	OwnerClaims []string
	// ExpiryGrace accepts a token this long past its exp (default 0).
	ExpiryGrace time.Duration
	// Algorithms allowed; default DefaultAlgorithms.
	Algorithms []string
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Identity is a verified caller.
type Identity struct {
	// Username is the value of the username claim.
	Username string
	// Groups from the groups claim.
	Groups []string
	// Claims holds the configured owner claims the token carries, for
	// matching a session's owner (sub, email, upn, ...). email is there
	// only when the token says email_verified: true.
	Claims map[string]string
}

// Error is an authentication failure; its message is safe to show the caller.
type Error struct{ msg string }

func (e *Error) Error() string { return e.msg }

func fail(format string, args ...any) error { return &Error{msg: fmt.Sprintf(format, args...)} }

// Authenticator verifies bearer tokens.
type Authenticator struct {
	cfg    Config
	client *http.Client

	mu          sync.Mutex
	verifier    *oidc.IDTokenVerifier
	discovering bool      // one discovery at a time; other callers fail fast
	failedAt    time.Time // the last failed discovery
	failure     error

	lastSweep time.Time
	cache     sync.Map // sha256 of a token → cachedIdentity
}

// CacheTTL is how long a verified token is trusted without verifying its
// signature again; never past the token's own expiry. kube-apiserver caches
// token authentication the same way.
const CacheTTL = 10 * time.Second

type cachedIdentity struct {
	id      *Identity
	expires time.Time
}

// New checks the configuration; discovery happens on first use and is
// retried until it succeeds, so the gateway can start before its issuer.
func New(cfg Config) (*Authenticator, error) {
	if !strings.HasPrefix(cfg.IssuerURL, "https://") {
		return nil, fmt.Errorf("--oidc-issuer-url must be an https:// URL, got %q", cfg.IssuerURL)
	}
	if len(cfg.Audiences) == 0 {
		return nil, fmt.Errorf("--oidc-audience must name at least one audience")
	}
	if cfg.UsernameClaim == "" {
		cfg.UsernameClaim = "sub"
	}
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = "groups"
	}
	if len(cfg.OwnerClaims) == 0 {
		cfg.OwnerClaims = DefaultOwnerClaims
	}
	for _, c := range cfg.OwnerClaims {
		if c == "" || slices.Contains(registeredClaims, c) {
			return nil, fmt.Errorf("--oidc-owner-claims: %q cannot name a session's owner: it is the same for every token of the issuer, or not a name", c)
		}
	}
	if !slices.Contains(cfg.OwnerClaims, cfg.UsernameClaim) {
		return nil, fmt.Errorf("--oidc-username-claim %q must be one of --oidc-owner-claims %v: it owns the sessions callers request", cfg.UsernameClaim, cfg.OwnerClaims)
	}
	if cfg.ExpiryGrace < 0 || cfg.ExpiryGrace > 5*time.Minute {
		return nil, fmt.Errorf("--oidc-expiry-grace must be between 0 and 5m, got %s", cfg.ExpiryGrace)
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = DefaultAlgorithms
	}
	for _, a := range cfg.Algorithms {
		if !slices.Contains(DefaultAlgorithms, a) {
			return nil, fmt.Errorf("signing algorithm %q is not allowed; choose from %s", a, strings.Join(DefaultAlgorithms, ", "))
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	ca := cfg.CAData
	if cfg.CAFile != "" {
		b, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading --oidc-ca-file: %w", err)
		}
		ca = b
	}
	if len(ca) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, fmt.Errorf("the OIDC issuer CA holds no PEM certificate")
		}
		tlsCfg.RootCAs = pool
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg, Proxy: http.ProxyFromEnvironment}}
	return &Authenticator{cfg: cfg, client: client}, nil
}

// discoveryBackoff is how long callers are told the issuer is unreachable
// after a failed discovery before the next attempt.
const discoveryBackoff = 2 * time.Second

// getVerifier returns the verifier, discovering the issuer on first use. The
// lock is never held across the network: while one caller discovers, or
// shortly after a failure, others fail fast instead of queueing behind it.
func (a *Authenticator) getVerifier() (*oidc.IDTokenVerifier, error) {
	a.mu.Lock()
	switch {
	case a.verifier != nil:
		defer a.mu.Unlock()
		return a.verifier, nil
	case a.discovering:
		a.mu.Unlock()
		return nil, errors.New("OIDC discovery in progress")
	case a.failure != nil && a.cfg.Now().Before(a.failedAt.Add(discoveryBackoff)):
		defer a.mu.Unlock()
		return nil, a.failure
	}
	a.discovering = true
	a.mu.Unlock()

	v, err := a.discover()

	a.mu.Lock()
	defer a.mu.Unlock()
	a.discovering = false
	if err != nil {
		a.failure, a.failedAt = err, a.cfg.Now()
		return nil, err
	}
	a.verifier, a.failure = v, nil
	return v, nil
}

func (a *Authenticator) discover() (*oidc.IDTokenVerifier, error) {
	// The provider keeps this context to fetch keys later, on key rotation:
	// it must outlive the request.
	pctx := oidc.ClientContext(context.Background(), a.client)
	dctx, cancel := context.WithTimeout(pctx, 10*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(dctx, a.cfg.IssuerURL)
	if err != nil {
		return nil, fmt.Errorf("OIDC discovery at %s: %w", a.cfg.IssuerURL, err)
	}
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, err
	}
	keys := oidc.NewRemoteKeySet(pctx, meta.JWKSURI)
	v := oidc.NewVerifier(a.cfg.IssuerURL, keys, &oidc.Config{
		// Audiences are checked below, against a list.
		SkipClientIDCheck:    true,
		SupportedSigningAlgs: a.cfg.Algorithms,
		// exp is checked below, with the configured grace.
		SkipExpiryCheck: true,
		Now:             a.cfg.Now,
	})
	klog.V(2).InfoS("OIDC issuer discovered", "issuer", a.cfg.IssuerURL, "jwksURI", meta.JWKSURI)
	return v, nil
}

// Ready reports whether discovery has succeeded (trying it if not).
func (a *Authenticator) Ready(ctx context.Context) error {
	_, err := a.getVerifier()
	return err
}

// BearerProtocolPrefix marks a bearer token carried in Sec-WebSocket-Protocol,
// the only header a browser's WebSocket can set; kube-apiserver reads the
// same.
const BearerProtocolPrefix = "base64url.bearer.authorization.k8s.io."

// BearerToken returns the request's one credential: an Authorization bearer
// token, or, on a WebSocket upgrade only, a bearer subprotocol. Two
// credentials are refused rather than one picked.
func BearerToken(r *http.Request) (string, error) {
	var tokens []string
	for _, v := range r.Header.Values("Authorization") {
		scheme, token, ok := strings.Cut(v, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			return "", fail("the Authorization header is not a bearer token")
		}
		tokens = append(tokens, strings.TrimSpace(token))
	}
	if isWebSocket(r) {
		for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
			for _, p := range strings.Split(v, ",") {
				enc, ok := strings.CutPrefix(strings.TrimSpace(p), BearerProtocolPrefix)
				if !ok {
					continue
				}
				b, err := base64.RawURLEncoding.DecodeString(enc)
				if err != nil || len(b) == 0 {
					return "", fail("the WebSocket bearer subprotocol is not a base64url token")
				}
				tokens = append(tokens, string(b))
			}
		}
	}
	switch len(tokens) {
	case 0:
		return "", fail("no bearer token: send Authorization: Bearer <OIDC token>")
	case 1:
		return tokens[0], nil
	}
	return "", fail("more than one credential (Authorization headers or WebSocket bearer subprotocols)")
}

func isWebSocket(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
		slices.ContainsFunc(strings.Split(r.Header.Get("Connection"), ","), func(t string) bool { return strings.EqualFold(strings.TrimSpace(t), "upgrade") })
}

// Authenticate verifies the request's bearer token.
func (a *Authenticator) Authenticate(r *http.Request) (*Identity, error) {
	raw, err := BearerToken(r)
	if err != nil {
		return nil, err
	}
	return a.Verify(r.Context(), raw)
}

// Verify verifies a raw token and extracts the identity. A token verified in
// the last CacheTTL is answered from memory, keyed by its SHA-256.
func (a *Authenticator) Verify(ctx context.Context, raw string) (*Identity, error) {
	key := sha256.Sum256([]byte(raw))
	now := a.cfg.Now()
	if c, ok := a.cache.Load(key); ok {
		if ci := c.(cachedIdentity); now.Before(ci.expires) {
			return ci.id, nil
		}
		a.cache.Delete(key)
	}
	id, exp, err := a.verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	expires := now.Add(CacheTTL)
	if exp.Before(expires) {
		expires = exp
	}
	a.cache.Store(key, cachedIdentity{id: id, expires: expires})
	a.sweepCache(now)
	return id, nil
}

// sweepCache drops expired entries now and then, so the cache stays small.
func (a *Authenticator) sweepCache(now time.Time) {
	a.mu.Lock()
	due := now.After(a.lastSweep.Add(CacheTTL))
	if due {
		a.lastSweep = now
	}
	a.mu.Unlock()
	if !due {
		return
	}
	a.cache.Range(func(k, v any) bool {
		if !now.Before(v.(cachedIdentity).expires) {
			a.cache.Delete(k)
		}
		return true
	})
}

func (a *Authenticator) verify(ctx context.Context, raw string) (*Identity, time.Time, error) {
	id, exp, err := a.verifyToken(ctx, raw)
	if err != nil {
		return nil, time.Time{}, err
	}
	return id, exp.Add(a.cfg.ExpiryGrace), nil
}

func (a *Authenticator) verifyToken(ctx context.Context, raw string) (*Identity, time.Time, error) {
	v, err := a.getVerifier()
	if err != nil {
		// Not the caller's fault, but no token can be trusted without it.
		klog.ErrorS(err, "Cannot verify tokens")
		return nil, time.Time{}, fail("the gateway cannot reach its OIDC issuer")
	}
	tok, err := v.Verify(ctx, raw)
	if err != nil {
		klog.V(4).InfoS("Token refused", "reason", err.Error())
		return nil, time.Time{}, fail("invalid token")
	}
	now := a.cfg.Now()
	switch {
	case tok.Expiry.IsZero():
		return nil, time.Time{}, fail("token has no exp claim")
	case !now.Before(tok.Expiry.Add(a.cfg.ExpiryGrace)):
		return nil, time.Time{}, fail("token expired at %s", tok.Expiry.UTC().Format(time.RFC3339))
	case tok.IssuedAt.After(now.Add(Leeway)):
		return nil, time.Time{}, fail("token issued in the future, at %s", tok.IssuedAt.UTC().Format(time.RFC3339))
	}
	if !slices.ContainsFunc(tok.Audience, func(aud string) bool { return slices.Contains(a.cfg.Audiences, aud) }) {
		// The configured audiences are not the caller's business.
		return nil, time.Time{}, fail("token audience %v is not accepted by this gateway", tok.Audience)
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return nil, time.Time{}, fail("invalid token claims")
	}
	if nbf, ok := claims["nbf"].(float64); ok && now.Add(Leeway).Before(time.Unix(int64(nbf), 0)) {
		return nil, time.Time{}, fail("token not valid before %s", time.Unix(int64(nbf), 0).UTC().Format(time.RFC3339))
	}
	id := &Identity{Claims: map[string]string{}}
	for _, c := range a.cfg.OwnerClaims {
		if s, ok := claims[c].(string); ok && s != "" {
			id.Claims[c] = s
		}
	}
	// An unverified address names whoever typed it, as kube-apiserver holds.
	if _, ok := id.Claims["email"]; ok && claims["email_verified"] != true {
		delete(id.Claims, "email")
		if a.cfg.UsernameClaim == "email" {
			return nil, time.Time{}, fail("token's email is not verified (email_verified is not true)")
		}
	}
	id.Username = id.Claims[a.cfg.UsernameClaim]
	if id.Username == "" {
		return nil, time.Time{}, fail("token has no %q claim", a.cfg.UsernameClaim)
	}
	switch g := claims[a.cfg.GroupsClaim].(type) {
	case []any:
		for _, v := range g {
			if s, ok := v.(string); ok {
				id.Groups = append(id.Groups, s)
			}
		}
	case string:
		id.Groups = []string{g}
	}
	return id, tok.Expiry, nil
}
