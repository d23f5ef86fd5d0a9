# A template with a misspelt kubeup-node field: validation must name it.
source "kubeup-rootfs" "debian" {
  output_directory = "out"
}

build {
  sources = ["source.kubeup-rootfs.debian"]
  provisioner "kubeup-node" {
    taget    = "debian"
    bundle   = "b"
    binaries = "b"
  }
}
