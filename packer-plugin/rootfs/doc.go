// Package rootfs is the kubeup-rootfs Packer builder, for targets with no cloud and no KVM: it
// makes a Debian root filesystem with debootstrap (the base is cached, keyed by suite, mirror
// and packages), provisions it through the SDK's chroot communicator with /proc, /sys, the host's
// cgroup hierarchy, /dev and /run mounted, and writes what QEMU boots directly: an ext4 disk image (disk.raw),
// the kernel (vmlinuz) and the initramfs (initrd.img). QEMU is only needed to boot the result.
package rootfs
