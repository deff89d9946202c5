package gateway

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// installationConfigMap holds the name this installation gives itself.
const (
	installationConfigMap = "sessiongate-installation"
	installationKey       = "gateway-name"
)

// +kubebuilder:rbac:groups="",namespace=sessiongate,resources=configmaps,verbs=get;create

// installationName is the name of this installation when --gateway-name is
// not set: the gateway namespace and a random suffix, chosen once and kept in
// a ConfigMap, so that two installations — even in same-named namespaces of
// different management clusters — never share a name on a target, and every
// replica and restart of one installation uses the same.
func installationName(ctx context.Context, reader client.Reader, cfg *rest.Config, ns string) (string, error) {
	cm := &corev1.ConfigMap{}
	err := reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: installationConfigMap}, cm)
	if err == nil && cm.Data[installationKey] != "" {
		return cm.Data[installationKey], nil
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return "", fmt.Errorf("reading ConfigMap %s/%s: %w", ns, installationConfigMap, err)
	}
	prefix := ns
	if len(prefix) > 40 {
		prefix = strings.TrimRight(prefix[:40], "-.")
	}
	name := prefix + "-" + utilrand.String(8)
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	_, err = kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: installationConfigMap, Namespace: ns},
		Data:       map[string]string{installationKey: name},
	}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// Another replica chose first: use its name.
		return installationName(ctx, reader, cfg, ns)
	}
	if err != nil {
		return "", fmt.Errorf("recording the installation name in ConfigMap %s/%s: %w", ns, installationConfigMap, err)
	}
	return name, nil
}
