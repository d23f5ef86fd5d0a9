# A kubeup AMI from Debian 12's official AMI: amazon-ebs boots it, kubeup-node installs and
# checks everything over SSH (sudo), and the image's first boot applies the EC2 user-data
# Ignition config from the initramfs. `kubeup up --provider=aws` reads the AMI id from the
# manifest post-processor's output. Validated in `make test` (packer validate); built on AWS.

# The amazon builder is bundled in Packer 1.9.4, which kubeup pins (a required_plugins block
# would make 1.9.4 demand an installed copy). On Packer 1.10 and later install it first:
#   packer plugins install github.com/hashicorp/amazon

variable "region" {
  type    = string
  default = "eu-west-1"
}

variable "bundle" {
  type = string
}

variable "binaries" {
  type = string
}

source "amazon-ebs" "debian" {
  region        = var.region
  instance_type = "t3.medium"
  ami_name      = "kubeup-debian-{{timestamp}}"
  source_ami_filter {
    filters = {
      name                = "debian-12-amd64-*"
      virtualization-type = "hvm"
      root-device-type    = "ebs"
    }
    owners      = ["136693071363"] # Debian's AWS account
    most_recent = true
  }
  ssh_username = "admin"
  # The build instance, like every kubeup machine, only answers IMDSv2.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }
  tags = {
    "kubeup.dev/image" = "debian"
  }
}

build {
  sources = ["source.amazon-ebs.debian"]

  # kubeup-node keeps Debian's containerd unit and runc and replaces containerd's binaries.
  provisioner "shell" {
    inline = ["sudo apt-get update -qq", "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq containerd runc initramfs-tools busybox"]
  }

  provisioner "kubeup-node" {
    target   = "debian"
    platform = "aws"
    bundle   = var.bundle
    binaries = var.binaries
  }

  post-processor "manifest" {
    output = "aws-debian.manifest.json"
  }
}
