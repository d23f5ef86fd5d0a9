# The kubeup machine image for QEMU, made here with no cloud and no KVM: Debian bookworm from
# debootstrap in a chroot (kubeup-rootfs), made a kubeup machine by kubeup-node (runtime,
# kubelet, kubeup-agent, Ignition in the initramfs for the first boot, every bundle image in
# containerd's store, node-spec checks, sealed). `make image` (hack/image.sh) runs it with the
# cached builds as inputs:
#
#   PACKER_PLUGIN_PATH=<dir with packer-plugin-kubeup> packer build \
#     -var bundle=<make bundle's output> -var binaries=<dir of binaries> -var output=<dir> \
#     images/qemu-debian.pkr.hcl
#
# The result is what QEMU boots directly: disk.raw, vmlinuz, initrd.img; and rootfs.img, the same
# filesystem for network boot (kubeup pxe serve's assets/debian/).

variable "bundle" {
  type        = string
  description = "The offline bundle directory: bundle.json and images/*.tar (make bundle)."
}

variable "binaries" {
  type        = string
  description = "A directory with kubelet, kubeadm, kubeup-agent, containerd, ctr, containerd-shim-runc-v2, the CNI plugins and ignition."
}

variable "output" {
  type        = string
  default     = "output-qemu-debian"
  description = "Where the image is written."
}

variable "cache" {
  type        = string
  default     = ""
  description = "Where debootstrap's base is cached (default ~/.cache/kubeup/image)."
}

source "kubeup-rootfs" "debian" {
  suite            = "bookworm"
  output_directory = var.output
  cache_directory  = var.cache
  disk_size        = "6G"
  # rootfs.img too: the same image, network-booted by kubeup pxe serve.
  netboot_image = true
}

build {
  sources = ["source.kubeup-rootfs.debian"]

  provisioner "kubeup-node" {
    target   = "debian"
    platform = "qemu"
    bundle   = var.bundle
    binaries = var.binaries
  }
}
