#!/usr/bin/env bash
# Builds the add-on and host binaries of the offline bundle from source through the Go module
# proxy, each into the cache keyed by its version, and prints the directory that holds them all:
#   coredns, metrics-server, flanneld, and the CNI reference plugins (bridge, host-local, ...).
# Reused when present; each is built in a temp dir and moved into place. Cold, about 20 minutes
# in all (CoreDNS ~8.5, flannel ~5, metrics-server ~4, CNI plugins ~1.5). Versions must match
# internal/versions.
set -euo pipefail

COREDNS_VERSION=v1.15.0
METRICS_SERVER_VERSION=v0.8.0
FLANNEL_VERSION=v0.28.10
CNI_PLUGINS_VERSION=v1.9.1

cache="${XDG_CACHE_HOME:-$HOME/.cache}/kubeup/components"
mkdir -p "$cache"
log() { printf 'components: %s\n' "$*" >&2; }

# build NAME VERSION: runs the body (build_NAME) in a throwaway module dir, output into ./bin.
build() {
  local name=$1 version=$2 dir="$cache/$1-$2"
  [ -f "$dir/.done" ] && return 0
  log "building $name $version from source"
  local tmp; tmp=$(mktemp -d "$cache/.$name.XXXXXX")
  (cd "$tmp" && mkdir bin && "build_$name" "$version")
  touch "$tmp/bin/.done"
  rm -rf "$dir"
  mv "$tmp/bin" "$dir"
  rm -rf "$tmp"
}

module() { printf 'module kubeup.dev/components/%s\n\ngo 1.26\n' "$1" > go.mod; }

build_coredns() {
  GOBIN="$PWD/bin" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$1"
}

build_metrics_server() {
  module metrics-server
  GOFLAGS=-mod=mod go get "sigs.k8s.io/metrics-server@$1" >/dev/null 2>&1 || GOFLAGS=-mod=mod go get "sigs.k8s.io/metrics-server@$1"
  CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "-s -w -X sigs.k8s.io/metrics-server/pkg/version.gitVersion=$1" \
    -o bin/metrics-server sigs.k8s.io/metrics-server/cmd/metrics-server
}

build_flannel() {
  module flannel
  # The tencentcloud VPC module at the version flannel pins is refused by the proxy.
  printf 'replace github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc => github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc v1.3.75\n' >> go.mod
  GOFLAGS=-mod=mod go get "github.com/flannel-io/flannel@$1" >/dev/null 2>&1 || GOFLAGS=-mod=mod go get "github.com/flannel-io/flannel@$1"
  # cgo: flannel's UDP backend needs it.
  CGO_ENABLED=1 go build -mod=mod -trimpath -ldflags "-s -w -X github.com/flannel-io/flannel/pkg/version.Version=$1" \
    -o bin/flanneld github.com/flannel-io/flannel
}

build_cni_plugins() {
  GOBIN="$PWD/bin" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "github.com/containernetworking/plugins/plugins/...@$1"
}

build coredns "$COREDNS_VERSION"
build metrics_server "$METRICS_SERVER_VERSION"
build cni_plugins "$CNI_PLUGINS_VERSION"
build flannel "$FLANNEL_VERSION"

# One directory with every binary, for kubeup bundle --bin-dir.
all="$cache/bin"
mkdir -p "$all"
for d in "$cache/coredns-$COREDNS_VERSION" "$cache/metrics_server-$METRICS_SERVER_VERSION" \
         "$cache/cni_plugins-$CNI_PLUGINS_VERSION" "$cache/flannel-$FLANNEL_VERSION"; do
  for f in "$d"/*; do ln -sfn "$f" "$all/$(basename "$f")"; done
done
echo "$all"
