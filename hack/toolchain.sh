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
  throwaway_module kubernetes
  echo "require k8s.io/kubernetes $K8S_VERSION" >> go.mod
  # k8s.io/kubernetes points its staging modules at ./staging: pin each to its release instead.
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  {
    echo "replace ("
    sed -n 's|^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*|\t\1 => \1 '"$STAGING_VERSION"'|p' "$gomod"
    echo ")"
  } >> go.mod
  local pkgs=() b
  for b in "${k8s_bins[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  # At the release: a bare package path means @upgrade, the newest Kubernetes, whose imports the
  # older release's staging modules do not have.
  go_get "${pkgs[@]/%/@$K8S_VERSION}" || return 1
  # Without these the binaries call themselves v0.0.0-master; a fixed build date keeps them reproducible.
  local ld="-s -w" p minor
  minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ld+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "$ld" -o out/ "${pkgs[@]}"
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
