#!/usr/bin/env bash
# Builds the kubeup Debian machine image for QEMU, into the cache, and prints its directory:
#   disk.raw (ext4 root filesystem), vmlinuz, initrd.img, bundle.json
# Debian bookworm from Debian's mirror (debootstrap), runc from Debian, containerd 2.x built from
# source over Debian's 1.6 (kubelet 1.37 needs the newer CRI), the kubelet from the pinned toolchain, the CNI plugins built from source, kubeup-agent, the real
# Ignition run from the initramfs on first boot, and every bundle image preloaded into
# containerd's store. The machine is sealed for first boot: machine-id uninitialized, no SSH,
# no password, nothing to download at boot.
set -euo pipefail
cd "$(dirname "$0")/.."
. hack/lib.sh

cache="${XDG_CACHE_HOME:-$HOME/.cache}/kubeup/image"
mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
mirror=${mirror:-http://deb.debian.org/debian}
packages=systemd,systemd-sysv,udev,iproute2,iputils-ping,containerd,runc,ca-certificates,linux-image-cloud-amd64,kmod,procps,initramfs-tools

need_pkg debootstrap e2fsprogs binutils # binutils: strip
ignition=$(hack/tools.sh ignition)
toolchain=$(hack/toolchain.sh)
components=$(hack/components.sh)
bundle=$(hack/bundle.sh)

build_rootfs() {
  log "debootstrap bookworm from $mirror (about 2-3 minutes)"
  debootstrap --variant=minbase --include="$packages" bookworm out "$mirror" >debootstrap.log 2>&1 ||
    { tail -n 30 debootstrap.log >&2; return 1; }
  rm -rf out/var/cache/apt/archives/*.deb out/var/lib/apt/lists/*
}
base="$cache/rootfs-$(echo "$packages $mirror" | sha256sum | cut -c1-12)"
cached "$base" build_rootfs

work=$(mktemp -d "$cache/.image.XXXXXX")
trap 'rm -rf "$work"' EXIT
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/kubeup-agent" ./kubeup-agent

# The image is a function of these inputs: reuse it while none has changed.
key=$( { echo "$base"; sha256sum "$toolchain/kubelet" "$toolchain/kubeadm" "$ignition" "$work/kubeup-agent" \
  "$components"/{bridge,host-local,loopback,portmap,containerd,ctr,containerd-shim-runc-v2} images/debian/* hack/image.sh "$bundle/bundle.json" |
  cut -d' ' -f1; } | sha256sum | cut -c1-12)
out="$cache/qemu-debian"
if [ "$(cat "$out/key" 2>/dev/null)" = "$key" ]; then
  echo "$out"
  exit 0
fi

root="$work/rootfs"
log "customizing a copy of the base root filesystem"
cp -a "$base" "$root"
rm -f "$root/.done"

# kubeadm is there for its tools on a kubeup machine (`kubeadm certs check-expiration` reads our
# kubeadm-compatible layout) and for the kubeadm peer that `make bench` measures kubeup against.
for p in kubelet kubeadm; do install -D -m 0755 "$toolchain/$p" "$root/usr/local/bin/$p"; done
install -D -m 0755 "$ignition" "$root/usr/local/lib/kubeup/ignition"
# Ignition is built with cgo and keeps its symbols (a third of it); nothing on the machine reads them.
strip "$root/usr/local/lib/kubeup/ignition"
install -D -m 0755 "$work/kubeup-agent" "$root/usr/local/bin/kubeup-agent"
for p in bridge host-local loopback portmap; do install -D -m 0755 "$components/$p" "$root/opt/cni/bin/$p"; done
# Over Debian's package files, so its unit and paths stay as they are.
for p in containerd ctr containerd-shim-runc-v2; do install -m 0755 "$components/$p" "$root/usr/bin/$p"; done
install -D -m 0644 images/debian/containerd-config.toml "$root/etc/containerd/config.toml"
install -D -m 0644 images/debian/dhcp.network "$root/etc/systemd/network/99-dhcp.network"
install -D -m 0755 images/debian/ignition-hook "$root/etc/initramfs-tools/hooks/kubeup-ignition"
install -D -m 0755 images/debian/ignition-local-bottom "$root/etc/initramfs-tools/scripts/local-bottom/kubeup-ignition"
install -D -m 0644 "$bundle/bundle.json" "$root/usr/local/share/kubeup/bundle.json"

log "rebuilding the initramfs with Ignition in it"
chroot "$root" update-initramfs -u -k all >/dev/null

log "preloading $(grep -c '"ref"' "$bundle/bundle.json") images into the image's containerd store"
state=$(mktemp -d)
cat >"$work/containerd.toml" <<TOML
version = 2
root = "$root/var/lib/containerd"
state = "$state"
[grpc]
  address = "$state/containerd.sock"
TOML
# The image's own containerd writes its store, so the machine finds it in its own format.
"$components/containerd" --config "$work/containerd.toml" >"$work/containerd.log" 2>&1 &
ctrd=$!
for _ in $(seq 1 100); do "$components/ctr" -a "$state/containerd.sock" version >/dev/null 2>&1 && break; sleep 0.2; done
ctr() { "$components/ctr" -a "$state/containerd.sock" -n k8s.io "$@"; }
for a in "$bundle"/images/*.tar; do ctr images import "$a" >/dev/null; done
# Import unpacked every image into snapshots, which is what containers run from; the compressed
# layers are then only needed to push or pull, so they go (as containerd's CRI does with
# discard_unpacked_layers): a quarter of the image. Manifests and configs (JSON) stay, so the
# kubelet and `ctr images` still see every image.
for d in $(ctr content ls -q); do
  if [ "$(ctr content get "$d" | head -c 2 | od -An -tx1 | tr -d ' ')" = 1f8b ]; then ctr content rm "$d" >/dev/null; fi
done
kill "$ctrd"; wait "$ctrd" || true
rm -rf "$state"

log "sealing for first boot"
echo uninitialized >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
echo kubeup >"$root/etc/hostname"
# debootstrap's minbase has no /etc/hosts, and containerd copies it into every pod sandbox.
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
mkdir -p "$root/etc/kubeup" && touch "$root/etc/kubeup/ignition-firstboot"
for u in systemd-firstboot.service serial-getty@ttyS0.service getty@tty1.service e2scrub_all.timer e2scrub_reap.service apt-daily.timer apt-daily-upgrade.timer; do
  ln -sf /dev/null "$root/etc/systemd/system/$u"
done
chroot "$root" systemctl enable systemd-networkd.service >/dev/null 2>&1
passwd -R "$root" -l root >/dev/null
rm -rf "$root/var/log/"*.log "$root/var/cache/"* "$root/tmp/"*

rm -rf "$out.new" && mkdir -p "$out.new"
cp -L "$root/vmlinuz" "$out.new/vmlinuz"
cp -L "$root/initrd.img" "$out.new/initrd.img"
cp "$bundle/bundle.json" "$out.new/bundle.json"
log "writing the ext4 disk image"
truncate -s 6G "$out.new/disk.raw"
mkfs.ext4 -q -L kubeup-root -d "$root" "$out.new/disk.raw"
echo "$key" >"$out.new/key"
rm -rf "$out" && mv "$out.new" "$out"
echo "$out"
