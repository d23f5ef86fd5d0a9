package qemu

import (
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"

	"kubeup.dev/kubeup/internal/cluster"
)

// Image is the baked machine image: a raw root disk and the kernel and initrd to boot it.
type Image struct {
	Disk   string `json:"disk"`
	Kernel string `json:"kernel"`
	Initrd string `json:"initrd"`
	// Kubernetes is the release the image was built for, when its directory says
	// (ImageReleaseFile).
	Kubernetes string `json:"kubernetes,omitempty"`
}

// ImageReleaseFile, in an image's directory, names the Kubernetes release the image holds.
const ImageReleaseFile = "kubernetes"

// DefaultImageDir is where hack/image.sh caches the image of a Kubernetes release, under the
// user's cache directory.
func DefaultImageDir(cache, k8s string) string {
	return filepath.Join(cache, "kubeup", "image", "qemu-debian-"+k8s)
}

// CheckRelease refuses an image (in dir) built for another Kubernetes release than want: its
// kubelet and preloaded images would not be the config's. An image that does not say passes.
func (img Image) CheckRelease(dir, want string) error {
	if img.Kubernetes != "" && img.Kubernetes != want {
		return fmt.Errorf("image %s holds Kubernetes %s, and the cluster config asks for %s (fix: KUBEUP_KUBERNETES=%s make image, then --image with the directory it prints)",
			dir, img.Kubernetes, want, want)
	}
	return nil
}

// ImageIn finds the image files in a directory made by `make image`.
func ImageIn(dir string) (Image, error) {
	img := Image{Disk: filepath.Join(dir, "disk.raw"), Kernel: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, "initrd.img")}
	for _, f := range []string{img.Disk, img.Kernel, img.Initrd} {
		if _, err := os.Stat(f); err != nil {
			return img, fmt.Errorf("image %s: %w (build it with `make image`)", dir, err)
		}
	}
	// hack/image.sh records the release whose kubelet and bundle the image holds; an image
	// built otherwise may not say.
	if b, err := os.ReadFile(filepath.Join(dir, ImageReleaseFile)); err == nil {
		img.Kubernetes = strings.TrimSpace(string(b))
	}
	return img, nil
}

// Machine is one VM.
type Machine struct {
	Name     string `json:"name"`
	Role     string `json:"role"`
	MAC      string `json:"mac"`
	Ignition string `json:"ignition"` // the config file handed over fw_cfg
	// Image, when set, is the image this machine boots instead of the cluster's: a machine
	// Replace gave another image (an upgrade to a new release) boots it from then on.
	Image *Image `json:"image,omitempty"`
}

// EtcdSerial is the serial number of the master's etcd disk, so the guest names it
// /dev/disk/by-id/virtio-<serial> whatever the order of the disks (EtcdDevice).
const EtcdSerial = "kubeup-etcd"

// EtcdDevice is the master's etcd disk as the guest sees it: the config renders a mount of it
// at etcd's data directory (ignition.Options.EtcdDevice).
const EtcdDevice = "/dev/disk/by-id/virtio-" + EtcdSerial

// etcdDiskSize is the etcd disk's virtual size: sparse, so it costs only what etcd writes
// (etcd's default backend quota is 2 GiB; the rest is room for its WAL and snapshots).
const etcdDiskSize = "8G"

// Spec is what Up makes.
type Spec struct {
	// Dir holds everything Up makes (overlays, serial logs, pid files, state.json); Down
	// removes it.
	Dir      string    `json:"dir"`
	Image    Image     `json:"image"`
	Memory   string    `json:"memory"` // per VM, QEMU syntax: 2G
	CPUs     int       `json:"cpus"`
	Machines []Machine `json:"machines"`
	// APIPort is the host port (on 127.0.0.1) forwarded to the master's port 6443.
	APIPort int `json:"apiPort"`
	// KVM selects hardware acceleration; otherwise QEMU emulates (TCG).
	KVM bool `json:"kvm"`
	// Netboot, when set, starts the machines with no disk and no config of their own: each boots
	// from the network with QEMU's iPXE ROM, over a tap device on a host bridge (the bridge, with
	// its DHCP and boot servers, is the caller's). No API port is forwarded: the host is on the
	// bridge and reaches the master at its address.
	Netboot *Netboot `json:"netboot,omitempty"`
	// HostForwards are services on this host's loopback that every machine reaches at a guest
	// address (cluster config: qemu.hostForwards).
	HostForwards []cluster.HostForward `json:"hostForwards,omitempty"`
	// Netcat is the nc (netcat-openbsd) QEMU runs for each connection to a host forward: a
	// guestfwd to a character device is one connection for the VM's whole life, which two
	// connections at once garble.
	Netcat string `json:"netcat,omitempty"`
}

// Netboot is the host side of network-booted machines.
type Netboot struct {
	Bridge string `json:"bridge"`
}

// mcast is the multicast group and port the VMs' private network uses: QEMU's socket
// networking needs no privileges, no bridge and no tap device. Derived from the directory, so
// two clusters on one host do not share a wire. 239.192/14 is organization-local scope, and
// QEMU sends with TTL 1 on loopback: nothing leaves the host.
func (s *Spec) mcast() string {
	h := fnv.New32a()
	h.Write([]byte(s.Dir))
	v := h.Sum32()
	return fmt.Sprintf("239.192.%d.%d:%d", v>>8&0xff, v&0xff, 20000+v>>16%20000)
}

func (s *Spec) serialLog(name string) string { return filepath.Join(s.Dir, name+".serial.log") }
func (s *Spec) pidFile(name string) string   { return filepath.Join(s.Dir, name+".pid") }
func (s *Spec) overlay(name string) string   { return filepath.Join(s.Dir, name+".qcow2") }
func (s *Spec) etcdDisk(name string) string  { return filepath.Join(s.Dir, name+".etcd.qcow2") }
func (s *Spec) qmpSocket(name string) string { return filepath.Join(s.Dir, name+".qmp") }
func (s *Spec) stateFile() string            { return filepath.Join(s.Dir, "state.json") }

// tap is machine name's tap device in netboot mode: named from the directory and the machine
// (interface names have 15 bytes), so two clusters never share one.
func (s *Spec) tap(name string) string {
	h := fnv.New32a()
	h.Write([]byte(s.Dir + "/" + name))
	return fmt.Sprintf("kup%08x", h.Sum32())
}

// Machine returns the machine called name.
func (s *Spec) Machine(name string) (Machine, bool) {
	for _, m := range s.Machines {
		if m.Name == name {
			return m, true
		}
	}
	return Machine{}, false
}

// imageOf is the image machine m boots.
func (s *Spec) imageOf(m Machine) Image {
	if m.Image != nil {
		return *m.Image
	}
	return s.Image
}

// SerialLog is the file machine name's serial console is written to.
func (s *Spec) SerialLog(name string) string { return s.serialLog(name) }
