package controlplane

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
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

// targets loads Clusters and keeps one client per kubeconfig Secret version.
// Secrets are read with an uncached reader: the gateway never caches every
// Secret of its namespace just to find the few kubeconfigs.
type targets struct {
	client    client.Client // cached: Clusters
	apiReader client.Reader // uncached: kubeconfig and CA Secrets
	namespace string
	gateway   string

	mu      sync.Mutex
	clients map[types.UID]cachedClient
}

type cachedClient struct {
	secretVersion string
	client        kubernetes.Interface
}

// get returns the target for the named Cluster.
func (t *targets) get(ctx context.Context, name string) (credentials.Target, error) {
	cluster := &v1alpha1.Cluster{}
	if err := t.client.Get(ctx, types.NamespacedName{Namespace: t.namespace, Name: name}, cluster); err != nil {
		if apierrors.IsNotFound(err) {
			return credentials.Target{}, fmt.Errorf("spec.cluster: %w: no Cluster %q in namespace %s", errClusterNotFound, name, t.namespace)
		}
		return credentials.Target{}, fmt.Errorf("reading Cluster %s: %w", name, err)
	}
	return t.forCluster(ctx, cluster)
}

func (t *targets) forCluster(ctx context.Context, cluster *v1alpha1.Cluster) (credentials.Target, error) {
	ref := cluster.Spec.KubeconfigSecretRef
	key := ref.Key
	if key == "" {
		key = DefaultKubeconfigKey
	}
	sec := &corev1.Secret{}
	if err := t.apiReader.Get(ctx, types.NamespacedName{Namespace: cluster.Namespace, Name: ref.Name}, sec); err != nil {
		return credentials.Target{}, fmt.Errorf("cluster %s: reading kubeconfig Secret %s: %w", cluster.Name, ref.Name, err)
	}
	target := credentials.Target{Cluster: cluster, Gateway: t.gateway}

	t.mu.Lock()
	cached, ok := t.clients[cluster.UID]
	t.mu.Unlock()
	if ok && cached.secretVersion == sec.ResourceVersion {
		target.Client = cached.client
	} else {
		data, ok := sec.Data[key]
		if !ok {
			return credentials.Target{}, fmt.Errorf("cluster %s: kubeconfig Secret %s has no key %q", cluster.Name, ref.Name, key)
		}
		cfg, err := clientcmd.RESTConfigFromKubeConfig(data)
		if err != nil {
			return credentials.Target{}, fmt.Errorf("cluster %s: kubeconfig Secret %s/%s: %w", cluster.Name, ref.Name, key, err)
		}
		cfg.Timeout = targetTimeout
		// client-go's default of 5 requests/s would let a burst of sessions
		// queue behind each other; a session takes about ten requests.
		cfg.QPS, cfg.Burst = 100, 200
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return credentials.Target{}, fmt.Errorf("cluster %s: building a client: %w", cluster.Name, err)
		}
		t.mu.Lock()
		t.clients[cluster.UID] = cachedClient{secretVersion: sec.ResourceVersion, client: cs}
		t.mu.Unlock()
		target.Client = cs
	}

	if sc := cluster.Spec.Provider.SignedCertificate; sc != nil && cluster.Spec.Provider.Type == v1alpha1.ProviderSignedCertificate {
		ca := &corev1.Secret{}
		if err := t.apiReader.Get(ctx, types.NamespacedName{Namespace: cluster.Namespace, Name: sc.CASecretRef.Name}, ca); err != nil {
			return credentials.Target{}, fmt.Errorf("cluster %s: reading CA Secret %s: %w", cluster.Name, sc.CASecretRef.Name, err)
		}
		target.CASecret = ca
	}
	return target, nil
}
