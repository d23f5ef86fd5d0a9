# A kubeup AMI from Flatcar's official AMI. Flatcar runs Ignition itself, so kubeup-node puts
# no Ignition in it and installs under /opt (/usr is read-only); it re-arms Ignition for the
# image's first boot. Validated in `make test` (packer validate); built on AWS.

# The amazon builder is bundled in Packer 1.9.4, which kubeup pins (a required_plugins block
# would make 1.9.4 demand an installed copy). On Packer 1.10 and later install it first:
#   packer plugins install github.com/hashicorp/amazon

variable "region" {
  type    = string
  default = "eu-west-1"
}

variable "channel" {
  type    = string
  default = "stable"
}

variable "bundle" {
  type = string
}

variable "binaries" {
  type = string
}

source "amazon-ebs" "flatcar" {
  region        = var.region
  instance_type = "t3.medium"
  ami_name      = "kubeup-flatcar-${var.channel}-{{timestamp}}"
  source_ami_filter {
    filters = {
      name                = "Flatcar-${var.channel}-*-hvm"
      architecture        = "x86_64"
      virtualization-type = "hvm"
    }
    owners      = ["075585003325"] # Flatcar's AWS account
    most_recent = true
  }
  ssh_username = "core"
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }
  tags = {
    "kubeup.dev/image" = "flatcar"
  }
}

build {
  sources = ["source.amazon-ebs.flatcar"]

  provisioner "kubeup-node" {
    target   = "flatcar"
    bundle   = var.bundle
    binaries = var.binaries
  }

  post-processor "manifest" {
    output = "aws-flatcar.manifest.json"
  }
}
