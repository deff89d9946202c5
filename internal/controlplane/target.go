package controlplane

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/credentials"
)

// DefaultKubeconfigKey is the key of a Cluster's kubeconfig Secret read when
// kubeconfigSecretRef.key is empty.
const DefaultKubeconfigKey = "kubeconfig"

// targetTimeout bounds each call to a target API server, so an unreachable
// target holds a worker for seconds, not minutes.
const targetTimeout = 15 * time.Second

// clusterError is a fault of a Cluster's own configuration, with the Cluster
// condition reason that names it. Sessions on such a Cluster wait (Pending,
// with the same reason) until the operator fixes it.
type clusterError struct {
	reason string
	msg    string
}

func (e *clusterError) Error() string { return e.msg }

func clusterFault(reason, format string, args ...any) error {
	return &clusterError{reason: reason, msg: fmt.Sprintf(format, args...)}
}

// targets loads Clusters and keeps one client per Cluster spec and kubeconfig
// Secret version. Secrets are read with an uncached reader: the gateway never
// caches every Secret of its namespace just to find the few kubeconfigs.
type targets struct {
	client    client.Client // cached: Clusters
	apiReader client.Reader // uncached: kubeconfig and CA Secrets
	namespace string
	gateway   string

	mu      sync.Mutex
	clients map[types.UID]cachedClient
}

type cachedClient struct {
	version string
	client  kubernetes.Interface
}

// get returns the target for the named Cluster.
func (t *targets) get(ctx context.Context, name string) (credentials.Target, error) {
	cluster, err := t.cluster(ctx, name)
	if err != nil {
		return credentials.Target{}, err
	}
	return t.forCluster(ctx, cluster)
}

// cluster reads the named Cluster.
func (t *targets) cluster(ctx context.Context, name string) (*v1alpha1.Cluster, error) {
	cluster := &v1alpha1.Cluster{}
	if err := t.client.Get(ctx, types.NamespacedName{Namespace: t.namespace, Name: name}, cluster); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("spec.cluster: %w: no Cluster %q in namespace %s", errClusterNotFound, name, t.namespace)
		}
		return nil, fmt.Errorf("reading Cluster %s: %w", name, err)
	}
	return cluster, nil
}

func (t *targets) forCluster(ctx context.Context, cluster *v1alpha1.Cluster) (credentials.Target, error) {
	ref := cluster.Spec.KubeconfigSecretRef
	key := ref.Key
	if key == "" {
		key = DefaultKubeconfigKey
	}
	sec := &corev1.Secret{}
	if err := t.apiReader.Get(ctx, types.NamespacedName{Namespace: cluster.Namespace, Name: ref.Name}, sec); err != nil {
		if apierrors.IsNotFound(err) {
			return credentials.Target{}, clusterFault(v1alpha1.ReasonKubeconfigInvalid, "cluster %s: kubeconfig Secret %s not found", cluster.Name, ref.Name)
		}
		return credentials.Target{}, fmt.Errorf("cluster %s: reading kubeconfig Secret %s: %w", cluster.Name, ref.Name, err)
	}
	target := credentials.Target{Cluster: cluster, Gateway: t.gateway}

	// The client depends on the Cluster's server and CA and on the Secret.
	version := fmt.Sprintf("%s/%s/%x", cluster.ResourceVersion, sec.ResourceVersion, sha256.Sum256([]byte(key)))
	t.mu.Lock()
	cached, ok := t.clients[cluster.UID]
	t.mu.Unlock()
	if ok && cached.version == version {
		target.Client = cached.client
	} else {
		data, ok := sec.Data[key]
		if !ok {
			return credentials.Target{}, clusterFault(v1alpha1.ReasonKubeconfigInvalid, "cluster %s: kubeconfig Secret %s has no key %q", cluster.Name, ref.Name, key)
		}
		cfg, err := RESTConfig(cluster, sec, data)
		if err != nil {
			return credentials.Target{}, err
		}
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return credentials.Target{}, clusterFault(v1alpha1.ReasonKubeconfigInvalid, "cluster %s: building a client: %v", cluster.Name, err)
		}
		t.mu.Lock()
		t.clients[cluster.UID] = cachedClient{version: version, client: cs}
		t.mu.Unlock()
		target.Client = cs
	}

	if cluster.Spec.Provider.Type == v1alpha1.ProviderSignedCertificate {
		sc := cluster.Spec.Provider.SignedCertificate
		if sc == nil {
			return credentials.Target{}, clusterFault(v1alpha1.ReasonCAInvalid, "cluster %s: spec.provider.signedCertificate.caSecretRef is required for the SignedCertificate provider", cluster.Name)
		}
		ca := &corev1.Secret{}
		if err := t.apiReader.Get(ctx, types.NamespacedName{Namespace: cluster.Namespace, Name: sc.CASecretRef.Name}, ca); err != nil {
			if apierrors.IsNotFound(err) {
				return credentials.Target{}, clusterFault(v1alpha1.ReasonCAInvalid, "cluster %s: signing CA Secret %s not found", cluster.Name, sc.CASecretRef.Name)
			}
			return credentials.Target{}, fmt.Errorf("cluster %s: reading CA Secret %s: %w", cluster.Name, sc.CASecretRef.Name, err)
		}
		if _, err := certutil.ParseCertsPEM(ca.Data[corev1.TLSCertKey]); err != nil {
			return credentials.Target{}, clusterFault(v1alpha1.ReasonCAInvalid, "cluster %s: signing CA Secret %s: %s is not a PEM certificate", cluster.Name, ca.Name, corev1.TLSCertKey)
		}
		if _, err := keyutil.ParsePrivateKeyPEM(ca.Data[corev1.TLSPrivateKeyKey]); err != nil {
			return credentials.Target{}, clusterFault(v1alpha1.ReasonCAInvalid, "cluster %s: signing CA Secret %s: %s is not a PEM private key", cluster.Name, ca.Name, corev1.TLSPrivateKeyKey)
		}
		target.CASecret = ca
	}
	return target, nil
}

// RESTConfig builds the client config the gateway mints with on a Cluster.
// The server and CA come from the Cluster spec alone — the same place the
// proxy takes them from — so minting and proxying can never reach different
// servers. From the kubeconfig only the current context's user is read, and
// only an inline token or client certificate: whoever can write that Secret
// must not be able to run code in the gateway (exec, auth-provider), read
// its files (tokenFile, client-certificate, ...), turn off TLS verification or
// impersonate; nor may whoever can write the Cluster send the credential
// where the Secret sec (holding kubeconfig) does not say (bound).
func RESTConfig(cluster *v1alpha1.Cluster, sec *corev1.Secret, kubeconfig []byte) (*rest.Config, error) {
	if !strings.HasPrefix(cluster.Spec.Server, "https://") {
		return nil, clusterFault(v1alpha1.ReasonCAInvalid, "cluster %s: spec.server must be an https:// URL", cluster.Name)
	}
	ours, err := certutil.ParseCertsPEM(cluster.Spec.CABundle)
	if err != nil {
		return nil, clusterFault(v1alpha1.ReasonCAInvalid, "cluster %s: spec.caBundle holds no PEM certificate", cluster.Name)
	}
	kc, err := clientcmd.Load(kubeconfig)
	if err != nil {
		return nil, clusterFault(v1alpha1.ReasonKubeconfigInvalid, "cluster %s: the kubeconfig Secret does not parse: %v", cluster.Name, err)
	}
	if err := checkKubeconfig(kc); err != nil {
		return nil, clusterFault(v1alpha1.ReasonKubeconfigUnsafe, "cluster %s: kubeconfig Secret %s: %v", cluster.Name, cluster.Spec.KubeconfigSecretRef.Name, err)
	}
	user, err := currentUser(kc)
	if err != nil {
		return nil, clusterFault(v1alpha1.ReasonKubeconfigInvalid, "cluster %s: kubeconfig Secret %s: %v", cluster.Name, cluster.Spec.KubeconfigSecretRef.Name, err)
	}
	if err := bound(cluster, ours, sec, kc); err != nil {
		return nil, err
	}
	cfg := &rest.Config{
		Host:            cluster.Spec.Server,
		TLSClientConfig: rest.TLSClientConfig{CAData: cluster.Spec.CABundle, CertData: user.ClientCertificateData, KeyData: user.ClientKeyData},
		BearerToken:     user.Token,
		Timeout:         targetTimeout,
		// client-go's default of 5 requests/s would let a burst of sessions
		// queue behind each other; a session takes about ten requests.
		QPS: 100, Burst: 200,
		// Targets are reached directly, never through an environment proxy.
		Proxy: func(*http.Request) (*url.URL, error) { return nil, nil },
	}
	return cfg, nil
}

// AnnotationServers on a kubeconfig Secret lists, comma-separated, the
// servers besides its own that its credential may be sent to.
const AnnotationServers = "sessiongate.dev/servers"

// bound says why the kubeconfig Secret sec (holding kc) may not serve
// cluster, whose spec.caBundle holds ours, or nil. Whoever may write Clusters need not be able to read
// Secrets: a Cluster that named another's Secret, with a server and CA of
// its writer's choosing, would have the gateway hand that credential to
// them. So the Secret says where its credential may go: to the server its
// current context names, or to a server its annotation lists; and, when it
// carries certificate-authority-data, through no CA but those (spec.caBundle
// may hold no other).
func bound(cluster *v1alpha1.Cluster, ours []*x509.Certificate, sec *corev1.Secret, kc *clientcmdapi.Config) error {
	entry := kc.Clusters[CurrentCluster(kc)]
	listed := false
	for _, server := range strings.Split(sec.Annotations[AnnotationServers], ",") {
		if server = strings.TrimSpace(server); server != "" && sameServer(server, cluster.Spec.Server) {
			listed = true
		}
	}
	if !listed {
		unbound := func(format string, args ...any) error {
			return clusterFault(v1alpha1.ReasonKubeconfigUnsafe, "cluster %s: kubeconfig Secret %s %s; if its credential is meant for %s, add that to the Secret's annotation %s",
				cluster.Name, sec.Name, fmt.Sprintf(format, args...), cluster.Spec.Server, AnnotationServers)
		}
		switch {
		case entry == nil || entry.Server == "":
			return unbound("names no server in its current context")
		case !sameServer(entry.Server, cluster.Spec.Server):
			return unbound("is for server %s, not %s", entry.Server, cluster.Spec.Server)
		}
	}
	if entry == nil || len(entry.CertificateAuthorityData) == 0 {
		return nil
	}
	theirs, err := certutil.ParseCertsPEM(entry.CertificateAuthorityData)
	if err != nil {
		return clusterFault(v1alpha1.ReasonKubeconfigInvalid, "cluster %s: kubeconfig Secret %s: certificate-authority-data does not parse: %v", cluster.Name, sec.Name, err)
	}
	for _, c := range ours {
		if !slices.ContainsFunc(theirs, c.Equal) {
			return clusterFault(v1alpha1.ReasonKubeconfigUnsafe, "cluster %s: spec.caBundle holds a CA (%s) that kubeconfig Secret %s does not trust: its credential is sent through no CA but those of its certificate-authority-data; add the CA there",
				cluster.Name, c.Subject, sec.Name)
		}
	}
	return nil
}

// CurrentCluster is the name of the cluster a kubeconfig's credential is
// for: the one its current context (or, without one, its only context)
// names, or else its only cluster; "" if none.
func CurrentCluster(kc *clientcmdapi.Config) string {
	if ctx := currentContext(kc); ctx != nil {
		return ctx.Cluster
	}
	return only(kc.Clusters)
}

// currentContext is the kubeconfig's current context or, without one, its
// only context; nil if neither.
func currentContext(kc *clientcmdapi.Config) *clientcmdapi.Context {
	if ctx, ok := kc.Contexts[kc.CurrentContext]; ok {
		return ctx
	}
	return kc.Contexts[only(kc.Contexts)]
}

// only is m's one key, or "".
func only[T any](m map[string]T) string {
	if len(m) == 1 {
		for k := range m {
			return k
		}
	}
	return ""
}

// sameServer: a and b are the same https URL, but for the case of the host,
// an explicit default port and a trailing slash.
func sameServer(a, b string) bool {
	ua, errA := url.Parse(a)
	ub, errB := url.Parse(b)
	if errA != nil || errB != nil || ua.Scheme != "https" || ub.Scheme != "https" || ua.User != nil || ub.User != nil ||
		ua.RawQuery != "" || ub.RawQuery != "" || ua.Fragment != "" || ub.Fragment != "" {
		return false
	}
	port := func(u *url.URL) string {
		if p := u.Port(); p != "" {
			return p
		}
		return "443"
	}
	return strings.EqualFold(ua.Hostname(), ub.Hostname()) && port(ua) == port(ub) &&
		strings.TrimSuffix(ua.EscapedPath(), "/") == strings.TrimSuffix(ub.EscapedPath(), "/")
}

// checkKubeconfig refuses everything in any cluster or user entry that would
// let the Secret's writer act through the gateway beyond its own credential.
func checkKubeconfig(kc *clientcmdapi.Config) error {
	var why []string
	for name, c := range kc.Clusters {
		if c.InsecureSkipTLSVerify {
			why = append(why, fmt.Sprintf("cluster %q sets insecure-skip-tls-verify (TLS to targets is always verified against spec.caBundle)", name))
		}
		if c.CertificateAuthority != "" {
			why = append(why, fmt.Sprintf("cluster %q names a file (certificate-authority); the CA comes from spec.caBundle", name))
		}
		if c.ProxyURL != "" {
			why = append(why, fmt.Sprintf("cluster %q sets proxy-url", name))
		}
	}
	for name, u := range kc.AuthInfos {
		switch {
		case u.Exec != nil:
			why = append(why, fmt.Sprintf("user %q runs an exec plugin", name))
		case u.AuthProvider != nil:
			why = append(why, fmt.Sprintf("user %q uses an auth-provider plugin", name))
		}
		if u.TokenFile != "" || u.ClientCertificate != "" || u.ClientKey != "" {
			why = append(why, fmt.Sprintf("user %q names a file (tokenFile, client-certificate or client-key); put the credential inline", name))
		}
		if u.Impersonate != "" || u.ImpersonateUID != "" || len(u.ImpersonateGroups) > 0 || len(u.ImpersonateUserExtra) > 0 {
			why = append(why, fmt.Sprintf("user %q impersonates", name))
		}
		if u.Username != "" || u.Password != "" {
			why = append(why, fmt.Sprintf("user %q uses basic authentication", name))
		}
	}
	if len(why) > 0 {
		return errors.New("refused: " + strings.Join(why, "; "))
	}
	return nil
}

// currentUser is the user of the kubeconfig's current context (or of its
// only context), or its only user when it has no context.
func currentUser(kc *clientcmdapi.Config) (*clientcmdapi.AuthInfo, error) {
	name := only(kc.AuthInfos)
	if ctx := currentContext(kc); ctx != nil {
		name = ctx.AuthInfo
	}
	u, ok := kc.AuthInfos[name]
	if !ok || u == nil {
		return nil, errors.New("no user: set current-context to a context whose user holds a token or an inline client certificate")
	}
	hasCert := len(u.ClientCertificateData) > 0 || len(u.ClientKeyData) > 0
	switch {
	case hasCert && (len(u.ClientCertificateData) == 0 || len(u.ClientKeyData) == 0):
		return nil, fmt.Errorf("user %q needs both client-certificate-data and client-key-data", name)
	case hasCert && u.Token != "":
		return nil, fmt.Errorf("user %q holds both a token and a client certificate; keep one", name)
	case !hasCert && u.Token == "":
		return nil, fmt.Errorf("user %q holds no token and no inline client certificate", name)
	}
	return u, nil
}

// x509Failure reports whether err is a failure to verify the target's
// serving certificate.
func x509Failure(err error) bool {
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var hostname x509.HostnameError
	var verify *tls.CertificateVerificationError
	return errors.As(err, &unknown) || errors.As(err, &invalid) || errors.As(err, &hostname) || errors.As(err, &verify)
}
