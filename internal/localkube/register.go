package localkube

import (
	"bytes"
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/controlplane"
)

// RegisterTarget makes target a Cluster named name in namespace of the
// management cluster (creating the namespace if needed), minting with the
// rights config/target/rbac.yaml grants.
func RegisterTarget(ctx context.Context, mgmt, target *Cluster, namespace, name string) error {
	err := mgmt.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	kc, err := target.MinterKubeconfig(ctx)
	if err != nil {
		return err
	}
	secret := name + "-kubeconfig"
	if err := mgmt.Client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: secret},
		Data:       map[string][]byte{"kubeconfig": kc},
	}); err != nil {
		return err
	}
	return mgmt.Client.Create(ctx, &v1alpha1.Cluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: v1alpha1.ClusterSpec{
			Server: target.Config.Host, CABundle: target.Config.CAData,
			KubeconfigSecretRef: v1alpha1.SecretKeyRef{Name: secret},
		},
	})
}

// TrustAlso returns kubeconfig with ca (PEM) added to its current cluster's
// certificate-authority-data: what an operator does to let the credential be
// sent through that CA too.
func TrustAlso(kubeconfig, ca []byte) ([]byte, error) {
	kc, err := clientcmd.Load(kubeconfig)
	if err != nil {
		return nil, err
	}
	// The cluster the gateway sends the credential to, found by its rule.
	c, ok := kc.Clusters[controlplane.CurrentCluster(kc)]
	if !ok {
		return nil, fmt.Errorf("kubeconfig has no current cluster")
	}
	c.CertificateAuthorityData = append(append(bytes.TrimSpace(c.CertificateAuthorityData), '\n'), ca...)
	return clientcmd.Write(*kc)
}
