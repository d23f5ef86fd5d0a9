#!/usr/bin/env bash
# Builds the offline component bundle from source into the cache and prints its directory:
#   $XDG_CACHE_HOME/kubeup/bundle/v1.37.2/{bundle.json,images/*.tar}
# for the default release, or for KUBEUP_KUBERNETES (a release in internal/versions/releases.txt).
# The Kubernetes and etcd binaries come from hack/toolchain.sh, the add-ons from
# hack/components.sh, the userlands (iptables, busybox) from hack/userland.sh, pause from
# upstream's pause.c; the flannel CNI plugin and the verify probe are kubeup's own. Rebuilding
# with unchanged binaries gives the same digests, and unchanged archives are not rewritten.
set -euo pipefail
cd "$(dirname "$0")/.."
. hack/lib.sh
read -r K8S_VERSION _ < <(release "${KUBEUP_KUBERNETES:-}") || exit 1
export KUBEUP_KUBERNETES=$K8S_VERSION
cache="${XDG_CACHE_HOME:-$HOME/.cache}/kubeup"
toolchain=$(hack/toolchain.sh)
components=$(hack/components.sh)
userland=$(hack/userland.sh)
bins="$cache/bundle-bins/$K8S_VERSION"
out="$cache/bundle/$K8S_VERSION"
mkdir -p "$bins" "$out"
# Upstream's pause: pause.c of the release's Kubernetes source, compiled statically with the
# flags and the tag of its build/pause/Makefile (internal/versions names the image by that tag).
k8s_src=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
pause_tag=$(sed -n 's/^TAG ?= //p' "$k8s_src/build/pause/Makefile")
gcc -Os -Wall -Werror -static -DVERSION="v$pause_tag-$K8S_VERSION" -o "$bins/pause.tmp" "$k8s_src/build/pause/linux/pause.c"
strip "$bins/pause.tmp"
mv "$bins/pause.tmp" "$bins/pause"
# kubeup's own components, under kubeup.dev names: the flannel CNI plugin and the verify probe.
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bins/flannel.tmp" ./flannel-cni
mv "$bins/flannel.tmp" "$bins/flannel"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bins/kubeup-probe.tmp" ./kubeup-probe
mv "$bins/kubeup-probe.tmp" "$bins/kubeup-probe"
go run ./kubeup bundle --kubernetes-version "$K8S_VERSION" --source build --bin-dir "$toolchain" --bin-dir "$components" --bin-dir "$bins" --userland-dir "$userland" --out "$out" >&2
echo "$out"
