# A kubeup vSphere template cloned from a Flatcar template (imported from Flatcar's OVA).
# kubeup-node installs under /opt and re-arms Ignition; `kubeup up --provider=vsphere` clones the
# result and hands each VM its config in guestinfo.ignition.config.data. Validated in `make test`
# (packer validate); built on vSphere.

# The vsphere builder is bundled in Packer 1.9.4, which kubeup pins (a required_plugins block
# would make 1.9.4 demand an installed copy). On Packer 1.10 and later install it first:
#   packer plugins install github.com/hashicorp/vsphere

variable "vcenter" {
  type = string
}

variable "username" {
  type = string
}

variable "password" {
  type      = string
  sensitive = true
}

variable "datacenter" {
  type = string
}

variable "cluster" {
  type = string
}

variable "flatcar_template" {
  type        = string
  default     = "flatcar-stable"
  description = "The VM template imported from Flatcar's OVA."
}

variable "ssh_private_key_file" {
  type        = string
  description = "The key whose public half the build VM's Ignition config (guestinfo) authorizes for core."
}

variable "build_ignition" {
  type        = string
  description = "Ignition config for the build VM, base64: authorizes the SSH key above for core."
}

variable "bundle" {
  type = string
}

variable "binaries" {
  type = string
}

source "vsphere-clone" "flatcar" {
  vcenter_server      = var.vcenter
  username            = var.username
  password            = var.password
  datacenter          = var.datacenter
  cluster             = var.cluster
  template            = var.flatcar_template
  vm_name             = "kubeup-flatcar-build"
  convert_to_template = true
  communicator        = "ssh"
  ssh_username        = "core"
  ssh_private_key_file = var.ssh_private_key_file
  configuration_parameters = {
    "guestinfo.ignition.config.data"          = var.build_ignition
    "guestinfo.ignition.config.data.encoding" = "base64"
  }
}

build {
  sources = ["source.vsphere-clone.flatcar"]

  provisioner "kubeup-node" {
    target   = "flatcar"
    bundle   = var.bundle
    binaries = var.binaries
  }

  post-processor "manifest" {
    output = "vsphere-flatcar.manifest.json"
  }
}
