// Package image holds the image boot test (make e2e): the Debian image boots under QEMU with a
// generated Ignition config handed over fw_cfg, the real Ignition applies it from the
// initramfs on first boot, and the machine's agent reports phase 1 on the serial console as one
// JSON line: node spec, containerd, every bundle image preloaded, a test container run. No SSH.
package image
