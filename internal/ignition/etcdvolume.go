package ignition

import (
	"fmt"

	"github.com/coreos/go-systemd/v22/unit"

	"kubeup.dev/kubeup/internal/manifests"
)

// EtcdMountUnit is the systemd mount unit of the etcd data volume (named for its mount point,
// as systemd requires).
const EtcdMountUnit = "var-lib-etcd.mount"

// EtcdMkfsUnit formats the etcd data volume on first boot if it has no filesystem.
const EtcdMkfsUnit = "kubeup-etcd-mkfs.service"

// etcdDeviceTimeout is how long systemd waits for the volume to appear: on AWS it is attached
// only once the instance is running (systemd's default for a device is 90 s).
const etcdDeviceTimeout = "10min"

// etcdVolume gives the master its etcd data volume on device. systemd does it all, after the
// switch to the real root, so it works the same on every image: Debian's first boot runs only
// Ignition's fetch and files stages (its initramfs has no systemd, which Ignition's disks stage
// needs), Flatcar and Fedora CoreOS run them all. systemd-makefs makes an ext4 filesystem only
// if the device has none, so a master made again over an existing volume keeps the cluster's
// data; the mount unit mounts it at /var/lib/etcd before the kubelet starts, and the kubelet (so
// the etcd static pod) does not start at all if it fails: etcd on the root disk would be a
// second, empty cluster state.
func etcdVolume(p *Plan, device string) {
	dev := unit.UnitNamePathEscape(device) + ".device"
	p.file("/etc/systemd/system/"+dev+".d/10-kubeup-timeout.conf", 0o644,
		fmt.Appendf(nil, "# The volume is attached after the instance starts.\n[Unit]\nJobRunningTimeoutSec=%s\n", etcdDeviceTimeout))
	p.Units = append(p.Units,
		Unit{Name: EtcdMkfsUnit, Contents: fmt.Sprintf(etcdMkfs, dev, dev, EtcdMountUnit, device)},
		Unit{Name: EtcdMountUnit, Enabled: true, Contents: fmt.Sprintf(etcdMount, EtcdMkfsUnit, EtcdMkfsUnit, device, manifests.EtcdDataDir)})
}

// etcdMkfs runs only as the mount's dependency; systemd-makefs leaves a device with any
// filesystem alone ("is not empty, exiting").
const etcdMkfs = `[Unit]
Description=Make a filesystem on the etcd data volume if it has none
DefaultDependencies=no
Requires=%s
After=%s
Before=%s

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/lib/systemd/systemd-makefs ext4 %s
`

const etcdMount = `[Unit]
Description=etcd data volume
Requires=%s
After=%s
Before=kubelet.service

[Mount]
What=%s
Where=%s
Type=ext4
Options=defaults,noatime

[Install]
RequiredBy=kubelet.service
`
