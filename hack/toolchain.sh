#!/usr/bin/env bash
# Builds the pinned Kubernetes toolchain from source through the Go module proxy, into a cache
# outside the repo keyed by version, and prints the directory holding the binaries:
#
#   hack/toolchain.sh            -> $XDG_CACHE_HOME/kubeup/toolchain/v1.37.2
#                                   (kube-apiserver kube-controller-manager kube-scheduler kubelet
#                                    kube-proxy kubectl kubeadm etcd etcdctl)
#
# Reused when present. Each part is built in a temp dir and renamed into place, so an
# interrupted build leaves nothing half-built. Cold: ~12 min for Kubernetes (peak RSS ~2.6 GB),
# ~1 min for etcd. Versions must match internal/versions.
set -euo pipefail

K8S_VERSION=v1.37.2
STAGING_VERSION=v0.37.2
ETCD_VERSION=v3.6.16

cache="${XDG_CACHE_HOME:-$HOME/.cache}/kubeup/toolchain"
out="$cache/$K8S_VERSION"
mkdir -p "$cache"
log() { printf 'toolchain: %s\n' "$*" >&2; }

k8s_bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl kubeadm)

build_kubernetes() {
  local dir="$out/kubernetes"
  [ -x "$dir/kubeadm" ] && return 0
  log "building Kubernetes $K8S_VERSION (${k8s_bins[*]}) from source: about 12 minutes cold"
  local tmp; tmp=$(mktemp -d "$cache/.k8s.XXXXXX")
  (
    cd "$tmp"
    cat > go.mod <<MOD
module kubeup.dev/toolchain/kubernetes

go 1.26

require k8s.io/kubernetes $K8S_VERSION
MOD
    # k8s.io/kubernetes points its staging modules at ./staging: pin each to its release instead.
    gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    {
      echo "replace ("
      sed -n 's|^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*|\t\1 => \1 '"$STAGING_VERSION"'|p' "$gomod"
      echo ")"
    } >> go.mod
    local pkgs=()
    for b in "${k8s_bins[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
    GOFLAGS=-mod=mod go get "${pkgs[@]}" >/dev/null 2>&1 || GOFLAGS=-mod=mod go get "${pkgs[@]}"
    local v=k8s.io/component-base/version c=k8s.io/client-go/pkg/version minor
    minor=$(echo "$K8S_VERSION" | cut -d. -f2)
    local ld="-s -w"
    for p in $v $c; do
      ld+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
      ld+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
    done
    mkdir -p bin
    CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "$ld" -o bin/ "${pkgs[@]}"
  )
  mkdir -p "$out"
  rm -rf "$dir"
  mv "$tmp/bin" "$dir"
  rm -rf "$tmp"
}

build_etcd() {
  local dir="$out/etcd-$ETCD_VERSION"
  [ -x "$dir/etcdctl" ] && return 0
  log "building etcd $ETCD_VERSION from source: about 1 minute cold"
  local tmp; tmp=$(mktemp -d "$cache/.etcd.XXXXXX")
  (
    cd "$tmp"
    # go install pkg@version refuses etcd (its go.mod has replace lines): a throwaway module.
    cat > go.mod <<MOD
module kubeup.dev/toolchain/etcd

go 1.26
MOD
    GOFLAGS=-mod=mod go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" "go.etcd.io/etcd/etcdctl/v3@$ETCD_VERSION" >/dev/null 2>&1 ||
      GOFLAGS=-mod=mod go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" "go.etcd.io/etcd/etcdctl/v3@$ETCD_VERSION"
    mkdir -p bin
    CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "-s -w" -o bin/etcd go.etcd.io/etcd/server/v3
    CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "-s -w" -o bin/etcdctl go.etcd.io/etcd/etcdctl/v3
  )
  mkdir -p "$out"
  rm -rf "$dir"
  mv "$tmp/bin" "$dir"
  rm -rf "$tmp"
}

build_etcd
build_kubernetes
# One directory with every binary, for PATH and tests.
mkdir -p "$out/bin"
for f in "$out/kubernetes/"* "$out/etcd-$ETCD_VERSION/"*; do ln -sfn "$f" "$out/bin/$(basename "$f")"; done
echo "$out/bin"
