package ignition

import (
	"fmt"

	"kubeup.dev/kubeup/internal/manifests"
)

// EtcdLabel is the filesystem label of the master's etcd data volume: the mount unit finds the
// filesystem by it, whatever name the kernel gave the disk on this boot.
const EtcdLabel = "etcd"

// EtcdMountUnit is the systemd mount unit of the etcd data volume (named for its mount point,
// as systemd requires).
const EtcdMountUnit = "var-lib-etcd.mount"

// Filesystem is one filesystem Ignition makes on a block device (disks stage).
type Filesystem struct {
	Device string
	Format string
	Label  string
}

// etcdVolume gives the master its etcd data volume: Ignition makes an ext4 filesystem on device
// only if the device has none (wipeFilesystem false, so a master made again over an existing
// volume keeps the cluster's data), and a mount unit mounts it at /var/lib/etcd before the
// kubelet starts, so the etcd static pod never writes to the root disk. Ignition waits for the
// device to appear: on AWS the volume is attached only once the instance is running.
func etcdVolume(p *Plan, device string) {
	p.Filesystems = append(p.Filesystems, Filesystem{Device: device, Format: "ext4", Label: EtcdLabel})
	p.Units = append(p.Units, Unit{Name: EtcdMountUnit, Enabled: true, Contents: etcdMount})
}

// etcdMount is found by label, not by device path: the label is Ignition's and stable, the
// path depends on the hypervisor (nvme1n1 on Nitro, xvdf on Xen). RequiredBy makes the kubelet,
// and so etcd, wait for it, and not start at all if it fails: etcd on the root disk would be a
// second, empty cluster state.
var etcdMount = fmt.Sprintf(`[Unit]
Description=etcd data volume
Before=kubelet.service

[Mount]
What=/dev/disk/by-label/%s
Where=%s
Type=ext4
Options=defaults,noatime

[Install]
RequiredBy=kubelet.service
`, EtcdLabel, manifests.EtcdDataDir)
