// Package images holds the Packer templates of kubeup's machine images, one per target:
// qemu-debian (built and boot-tested here by make image and make e2e), aws-debian, aws-flatcar
// and vsphere-flatcar (built on their platforms). Its test validates every template with the
// pinned Packer and this tree's plugin.
package images
