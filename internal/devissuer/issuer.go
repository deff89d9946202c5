// Package devissuer is a small OpenID Connect issuer for development and
// tests: discovery, a JWKS endpoint and token signing with RSA keys made at
// start. It is what `sessiongate dev` trusts; production gateways trust a
// real identity provider.
package devissuer

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"k8s.io/client-go/util/keyutil"
)

// Issuer signs tokens and serves the documents verifiers need.
type Issuer struct {
	mu   sync.RWMutex
	url  string
	keys []jose.JSONWebKey // private; the last one signs
}

// New makes an issuer with one fresh signing key. Call SetURL once it is served.
func New() (*Issuer, error) {
	i := &Issuer{}
	return i, i.Rotate()
}

// SetURL records the issuer URL (the iss claim and discovery base).
func (i *Issuer) SetURL(u string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.url = u
}

// URL is the issuer URL.
func (i *Issuer) URL() string {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.url
}

// Rotate adds a new signing key; tokens signed before stay verifiable.
func (i *Issuer) Rotate() error {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keys = append(i.keys, jose.JSONWebKey{Key: k, KeyID: fmt.Sprintf("dev-%d", len(i.keys)+1), Algorithm: string(jose.RS256), Use: "sig"})
	return nil
}

// SigningKey returns the current private key and its key ID.
func (i *Issuer) SigningKey() (*rsa.PrivateKey, string) {
	i.mu.RLock()
	defer i.mu.RUnlock()
	k := i.keys[len(i.keys)-1]
	return k.Key.(*rsa.PrivateKey), k.KeyID
}

// Sign signs arbitrary claims with the current key (RS256).
func (i *Issuer) Sign(claims any) (string, error) {
	key, kid := i.SigningKey()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), kid))
	if err != nil {
		return "", err
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}

// UserClaims are the claims of a token for user: sub and email carry the
// name, groups the groups.
func (i *Issuer) UserClaims(user string, groups []string, audience string, ttl time.Duration) map[string]any {
	now := time.Now()
	if groups == nil {
		groups = []string{}
	}
	return map[string]any{
		"iss":   i.URL(),
		"sub":   user,
		"email": user,
		// The development issuer vouches for every address it signs.
		"email_verified": true,
		"groups":         groups,
		"aud":            audience,
		"iat":            now.Unix(),
		"nbf":            now.Unix(),
		"exp":            now.Add(ttl).Unix(),
	}
}

// Token signs a token for user.
func (i *Issuer) Token(user string, groups []string, audience string, ttl time.Duration) (string, error) {
	return i.Sign(i.UserClaims(user, groups, audience, ttl))
}

// ServeHTTP serves discovery and the JWKS.
func (i *Issuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	base := i.URL()
	var body any
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		body = map[string]any{
			"issuer":                                base,
			"jwks_uri":                              base + "/keys",
			"authorization_endpoint":                base + "/authorize",
			"response_types_supported":              []string{"id_token"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{string(jose.RS256)},
		}
	case "/keys":
		i.mu.RLock()
		set := jose.JSONWebKeySet{}
		for _, k := range i.keys {
			set.Keys = append(set.Keys, k.Public())
		}
		i.mu.RUnlock()
		body = set
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

// KeyPEM returns the current signing key in PEM and its key ID, so that
// another process (`sessiongate dev token`) can sign for this issuer.
func (i *Issuer) KeyPEM() ([]byte, string, error) {
	key, kid := i.SigningKey()
	b, err := keyutil.MarshalPrivateKeyToPEM(key)
	return b, kid, err
}

// NewSigner returns an issuer that signs with an existing key (for tokens
// only: it serves no documents that others would trust).
func NewSigner(url string, keyPEM []byte, kid string) (*Issuer, error) {
	k, err := keyutil.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, err
	}
	rsaKey, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("the issuer key is not an RSA key")
	}
	return &Issuer{url: url, keys: []jose.JSONWebKey{{Key: rsaKey, KeyID: kid, Algorithm: string(jose.RS256), Use: "sig"}}}, nil
}
