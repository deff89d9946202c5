#!/usr/bin/env bash
# Builds the binaries that tests run against — kube-apiserver, etcd, kubectl,
# kube-controller-manager, kube-scheduler, kwok and versitygw — from the Go module proxy into the given directory (default bin/).
# Nothing is downloaded from anywhere else. A stamp file per binary records the
# version it was built from, so a second run is a no-op.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/bin}
mkdir -p "$bin"
export GOFLAGS=-buildvcs=false

KUBE_VERSION=v1.37.2 # k8s.io/kubernetes; hack/tools/kube/go.mod pins it and its etcd
KWOK_VERSION=v0.8.0
VERSITYGW_VERSION=v1.8.0

# build NAME VERSION COMMAND...: runs COMMAND unless bin/NAME exists and was
# built from VERSION.
build() {
  local name=$1 version=$2; shift 2
  local stamp="$bin/.$name.version"
  if [[ -x "$bin/$name" && -f "$stamp" && "$(cat "$stamp")" == "$version" ]]; then
    return
  fi
  echo "test-bins: building $name $version" >&2
  local start=$SECONDS
  "$@"
  echo "$version" >"$stamp"
  echo "test-bins: built $name in $((SECONDS - start))s" >&2
}

cd "$root/hack/tools/kube"
# The first kube-apiserver build takes about 4 minutes on 2 cores.
build etcd "$KUBE_VERSION" go build -o "$bin/etcd" go.etcd.io/etcd/server/v3
build kube-apiserver "$KUBE_VERSION" go build -o "$bin/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
build kubectl "$KUBE_VERSION" go build -o "$bin/kubectl" k8s.io/kubernetes/cmd/kubectl
# kube-controller-manager signs approved CertificateSigningRequests for the
# CSR provider's tests (its csrsigning controller, nothing else).
build kube-controller-manager "$KUBE_VERSION" go build -o "$bin/kube-controller-manager" k8s.io/kubernetes/cmd/kube-controller-manager
# kube-scheduler places the pods of the DaemonSets and Deployments that debug
# sessions deploy on kwok's nodes, as a real cluster's would.
build kube-scheduler "$KUBE_VERSION" go build -o "$bin/kube-scheduler" k8s.io/kubernetes/cmd/kube-scheduler

# kwok fakes nodes and pods on a test target, with real exec, logs and
# port-forward. Its CRDs and stage definitions come from the same module.
kwok_dir=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
build kwok "$KWOK_VERSION" env GOBIN="$bin" go install "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
if [[ ! -f "$bin/kwok-config/.version" || "$(cat "$bin/kwok-config/.version")" != "$KWOK_VERSION" ]]; then
  rm -rf "$bin/kwok-config" && mkdir -p "$bin/kwok-config"
  for crd in clusterexecs clusterlogs clusterportforwards clusterattaches; do
    cp "$kwok_dir/kustomize/crd/bases/kwok.x-k8s.io_$crd.yaml" "$bin/kwok-config/"
  done
  cp "$kwok_dir/kustomize/stage/node/fast/node-initialize.yaml" "$bin/kwok-config/stage-node-initialize.yaml"
  for s in ready complete delete; do
    cp "$kwok_dir/kustomize/stage/pod/fast/pod-$s.yaml" "$bin/kwok-config/stage-pod-$s.yaml"
  done
  chmod -R u+w "$bin/kwok-config"
  echo "$KWOK_VERSION" >"$bin/kwok-config/.version"
fi

# versitygw is the S3-compatible server (POSIX backend) the recording sink's
# tests store casts in.
build versitygw "$VERSITYGW_VERSION" env GOBIN="$bin" go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
