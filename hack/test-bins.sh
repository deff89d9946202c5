#!/usr/bin/env bash
# Builds the binaries that tests run against — kube-apiserver, etcd, kubectl
# and kwok — from the Go module proxy into the given directory (default bin/).
# Nothing is downloaded from anywhere else. A stamp file per binary records the
# version it was built from, so a second run is a no-op.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/bin}
mkdir -p "$bin"
export GOFLAGS=-buildvcs=false

KUBE_VERSION=v1.37.2 # k8s.io/kubernetes; hack/tools/kube/go.mod pins it and its etcd
KWOK_VERSION=v0.8.0

# build NAME VERSION COMMAND...: runs COMMAND unless bin/NAME exists and was
# built from VERSION.
build() {
  local name=$1 version=$2; shift 2
  local stamp="$bin/.$name.version"
  if [[ -x "$bin/$name" && -f "$stamp" && "$(cat "$stamp")" == "$version" ]]; then
    return
  fi
  echo "test-bins: building $name $version (the first build of kube-apiserver takes about 5 minutes)" >&2
  local start=$SECONDS
  "$@"
  echo "$version" >"$stamp"
  echo "test-bins: built $name in $((SECONDS - start))s" >&2
}

cd "$root/hack/tools/kube"
build etcd "$KUBE_VERSION" go build -o "$bin/etcd" go.etcd.io/etcd/server/v3
build kube-apiserver "$KUBE_VERSION" go build -o "$bin/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
build kubectl "$KUBE_VERSION" go build -o "$bin/kubectl" k8s.io/kubernetes/cmd/kubectl
