#!/usr/bin/env bash
# Builds the add-on and host binaries of the offline bundle from source through the Go module
# proxy, each into the cache keyed by its version, and prints the directory that holds them all:
#   coredns, metrics-server, flanneld, the CNI reference plugins (bridge, host-local, ...) and
#   containerd 2.x (containerd, ctr, containerd-shim-runc-v2) for the machine image.
# Reused when present. Cold, about 7 minutes in all here. Versions must match internal/versions.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

COREDNS_VERSION=v1.15.0
METRICS_SERVER_VERSION=v0.8.0
FLANNEL_VERSION=v0.28.10
CNI_PLUGINS_VERSION=v1.9.1
CONTAINERD_VERSION=v2.2.9

cache="${XDG_CACHE_HOME:-$HOME/.cache}/kubeup/components"

build_coredns() {
  log "building CoreDNS $COREDNS_VERSION"
  GOBIN="$PWD/out" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION"
}

build_metrics_server() {
  log "building metrics-server $METRICS_SERVER_VERSION"
  throwaway_module metrics-server
  go_get "sigs.k8s.io/metrics-server@$METRICS_SERVER_VERSION"
  CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "-s -w -X sigs.k8s.io/metrics-server/pkg/version.gitVersion=$METRICS_SERVER_VERSION" \
    -o out/metrics-server sigs.k8s.io/metrics-server/cmd/metrics-server
}

build_flannel() {
  log "building flannel $FLANNEL_VERSION"
  throwaway_module flannel
  # The tencentcloud VPC module at the version flannel pins is refused by the proxy.
  printf 'replace github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc => github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc v1.3.75\n' >> go.mod
  go_get "github.com/flannel-io/flannel@$FLANNEL_VERSION"
  # cgo: flannel's UDP backend needs it.
  CGO_ENABLED=1 go build -mod=mod -trimpath -ldflags "-s -w -X github.com/flannel-io/flannel/pkg/version.Version=$FLANNEL_VERSION" \
    -o out/flanneld github.com/flannel-io/flannel
}

# Debian bookworm's containerd is 1.6, which lacks the CRI RuntimeConfig call kubelet 1.37 makes.
build_containerd() {
  log "building containerd $CONTAINERD_VERSION"
  throwaway_module containerd
  go_get "github.com/containerd/containerd/v2@$CONTAINERD_VERSION"
  CGO_ENABLED=0 go build -mod=mod -trimpath -tags "no_btrfs no_devmapper no_zfs" \
    -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION" -o out/ \
    github.com/containerd/containerd/v2/cmd/containerd github.com/containerd/containerd/v2/cmd/ctr \
    github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2
}

build_cni_plugins() {
  log "building the CNI plugins $CNI_PLUGINS_VERSION"
  GOBIN="$PWD/out" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "github.com/containernetworking/plugins/plugins/...@$CNI_PLUGINS_VERSION"
}

dirs=("$cache/coredns-$COREDNS_VERSION" "$cache/metrics-server-$METRICS_SERVER_VERSION"
      "$cache/cni-plugins-$CNI_PLUGINS_VERSION" "$cache/flannel-$FLANNEL_VERSION"
      "$cache/containerd-$CONTAINERD_VERSION")
cached "${dirs[0]}" build_coredns
cached "${dirs[1]}" build_metrics_server
cached "${dirs[2]}" build_cni_plugins
cached "${dirs[3]}" build_flannel
cached "${dirs[4]}" build_containerd

# One directory with every binary, for kubeup bundle --bin-dir.
all="$cache/bin"
mkdir -p "$all"
for d in "${dirs[@]}"; do
  for f in "$d"/*; do ln -sfn "$f" "$all/$(basename "$f")"; done
done
echo "$all"
