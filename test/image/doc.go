// Package image holds the image boot test (make e2e): the Debian image boots under QEMU with a
// generated master config handed over fw_cfg, the real Ignition applies it from the initramfs
// on first boot, the machine's agent reports phase 1 on the serial console as one JSON line
// (node spec, containerd, every bundle image preloaded, a test container run), and the master
// then brings up its control plane from static pods and bootstraps the cluster. No SSH, and a
// restricted network: nothing can be pulled.
package image
