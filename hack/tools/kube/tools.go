//go:build tools

// Package tools pins the Kubernetes binaries that tests run against
// (kube-apiserver, etcd, kubectl, kube-controller-manager), built from the Go module proxy.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
