#!/usr/bin/env bash
# Builds the kubeup Debian machine image for QEMU with real Packer and kubeup's Packer plugin
# (images/qemu-debian.pkr.hcl: the kubeup-rootfs builder makes Debian bookworm with debootstrap,
# the kubeup-node provisioner makes it a kubeup machine), into the cache, and prints its
# directory: disk.raw (ext4 root filesystem), vmlinuz, initrd.img. The image holds the kubelet and
# the bundle of the default release, or of KUBEUP_KUBERNETES (a release in
# internal/versions/releases.txt); each release has its own directory in the cache.
# Its inputs are the cached builds (toolchain, components, bundle, Ignition, Packer) and this
# tree's agent and plugin; the image is rebuilt only when one of them changes.
# For the benchmark: KUBEUP_IMAGE_OUT=DIR builds into DIR whatever the cache holds, and
# KUBEUP_IMAGE_BASE=DIR keeps debootstrap's base there (an empty DIR: a cold build).
set -euo pipefail
cd "$(dirname "$0")/.."
. hack/lib.sh

cache="${XDG_CACHE_HOME:-$HOME/.cache}/kubeup/image"
read -r K8S_VERSION _ < <(release "${KUBEUP_KUBERNETES:-}") || exit 1
export KUBEUP_KUBERNETES=$K8S_VERSION

need_pkg debootstrap e2fsprogs binutils # binutils: strip
packer=$(hack/tools.sh packer)
ignition=$(hack/tools.sh ignition)
toolchain=$(hack/toolchain.sh)
components=$(hack/components.sh)
bundle=$(hack/bundle.sh)

mkdir -p "$cache"
work=$(mktemp -d "$cache/.image.XXXXXX")
trap 'rm -rf "$work"' EXIT
bins="$work/bin"
mkdir -p "$bins" "$work/plugins"
log "building kubeup-agent and packer-plugin-kubeup"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bins/kubeup-agent" ./kubeup-agent
CGO_ENABLED=0 go build -trimpath -o "$work/plugins/packer-plugin-kubeup" ./packer-plugin
for p in kubelet kubeadm; do ln -s "$toolchain/$p" "$bins/$p"; done
for p in containerd ctr containerd-shim-runc-v2 bridge host-local loopback portmap; do ln -s "$components/$p" "$bins/$p"; done
# Ignition is built with cgo and keeps its symbols (a third of it); nothing on the machine reads them.
cp "$ignition" "$bins/ignition" && strip "$bins/ignition"

# The image is a function of these inputs: reuse it while none has changed.
key=$(sha256sum "$bins"/* "$work/plugins/packer-plugin-kubeup" "$packer" images/qemu-debian.pkr.hcl hack/image.sh "$bundle/bundle.json" |
  cut -d' ' -f1 | sha256sum | cut -c1-12)
out="${KUBEUP_IMAGE_OUT:-$cache/qemu-debian-$K8S_VERSION}"
if [ -z "${KUBEUP_IMAGE_OUT:-}" ] && [ "$(cat "$out/key" 2>/dev/null)" = "$key" ]; then
  echo "$out"
  exit 0
fi

log "packer build images/qemu-debian.pkr.hcl (about 2 minutes; 5 with a cold debootstrap)"
rm -rf "$out.new"
PACKER_PLUGIN_PATH="$work/plugins" CHECKPOINT_DISABLE=1 PACKER_NO_COLOR=1 \
  "$packer" build -color=false -var "bundle=$bundle" -var "binaries=$bins" -var "output=$out.new" -var "cache=${KUBEUP_IMAGE_BASE:-$cache}" \
  images/qemu-debian.pkr.hcl >&2
echo "$key" >"$out.new/key"
echo "$K8S_VERSION" >"$out.new/kubernetes" # kubeup up refuses a config of another release
rm -rf "$out" && mv "$out.new" "$out"
echo "$out"
