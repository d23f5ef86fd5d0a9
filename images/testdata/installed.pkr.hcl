# The qemu-debian build, declaring the plugin as Packer 1.10+ wants it: by source and version,
# found among the plugins `packer plugins install` put in place.
packer {
  required_plugins {
    kubeup = {
      source  = "github.com/kubeup/kubeup"
      version = ">= 0.1.0"
    }
  }
}

variable "bundle" { type = string }
variable "binaries" { type = string }
variable "output" { type = string }

source "kubeup-rootfs" "debian" {
  suite            = "bookworm"
  output_directory = var.output
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
