#!/usr/bin/env bash
# Builds a Kubernetes release's toolchain from source through the Go module proxy, into a cache
# outside the repo keyed by version, and prints the directory holding the binaries:
#
#   hack/toolchain.sh                            -> $XDG_CACHE_HOME/kubeup/toolchain/v1.37.2/bin
#   KUBEUP_KUBERNETES=v1.36.3 hack/toolchain.sh  -> $XDG_CACHE_HOME/kubeup/toolchain/v1.36.3/bin
#     (kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl kubeadm
#      etcd etcdctl)
#
# The release (default: the newest) and its staging and etcd versions come from
# internal/versions/releases.txt. Reused when present; an interrupted build leaves nothing
# half-built. Cold here: ~7-12 min for Kubernetes (peak RSS ~2.6 GB), ~1 min for etcd.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

read -r K8S_VERSION STAGING_VERSION ETCD_VERSION < <(release "${KUBEUP_KUBERNETES:-}") || exit 1
ETCD_VERSION=v$ETCD_VERSION

out="${XDG_CACHE_HOME:-$HOME/.cache}/kubeup/toolchain/$K8S_VERSION"
k8s_bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl kubeadm)

build_kubernetes() {
  log "building Kubernetes $K8S_VERSION (${k8s_bins[*]}) from source: about 10 minutes cold"
  local pkgs=() b
  for b in "${k8s_bins[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  kubernetes_module "$K8S_VERSION" "$STAGING_VERSION" "${pkgs[@]}" || return 1
  CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "$(kubernetes_ldflags "$K8S_VERSION")" -o out/ "${pkgs[@]}"
}

build_etcd() {
  log "building etcd $ETCD_VERSION from source: about 1 minute cold"
  # go install pkg@version refuses etcd (its go.mod has replace lines): a throwaway module.
  throwaway_module etcd
  go_get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" "go.etcd.io/etcd/etcdctl/v3@$ETCD_VERSION" || return 1
  CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "-s -w" -o out/etcd go.etcd.io/etcd/server/v3
  CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "-s -w" -o out/etcdctl go.etcd.io/etcd/etcdctl/v3
}

cached "$out/etcd-$ETCD_VERSION" build_etcd
cached "$out/kubernetes" build_kubernetes
# One directory with every binary, for PATH and tests.
mkdir -p "$out/bin"
for f in "$out/kubernetes/"* "$out/etcd-$ETCD_VERSION/"*; do ln -sfn "$f" "$out/bin/$(basename "$f")"; done
echo "$out/bin"
