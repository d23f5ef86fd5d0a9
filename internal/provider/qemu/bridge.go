package qemu

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
)

// Network-booted machines have a vmxnet3 NIC with the iPXE option ROM of Debian's ipxe-qemu
// (which qemu-system-x86 depends on). Not virtio-net: SeaBIOS here never runs that package's
// virtio ROM (no "iPXE" banner, boots no device); not e1000: its ROM runs, but the cloud kernel
// of the image has no e1000 driver. vmxnet3 has both.
const (
	netbootNIC = "vmxnet3"
	iPXEROM    = "/usr/lib/ipxe/qemu/pxe-vmxnet3.rom"
)

func ipLink(args ...string) error {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %v: %v: %s (network boot needs root: tap devices and a bridge)", args, err, bytes.TrimSpace(out))
	}
	return nil
}

// EnsureBridge makes a host bridge with address cidr (10.30.0.1/24), up, for network-booted
// machines; an existing bridge of that name is kept.
func EnsureBridge(name, cidr string) error {
	if _, err := net.InterfaceByName(name); err != nil {
		if err := ipLink("link", "add", name, "type", "bridge"); err != nil {
			return err
		}
	}
	if err := ipLink("addr", "replace", cidr, "dev", name); err != nil {
		return err
	}
	return ipLink("link", "set", name, "up")
}

// DeleteBridge removes a bridge EnsureBridge made.
func DeleteBridge(name string) error {
	if _, err := net.InterfaceByName(name); err != nil {
		return nil
	}
	return ipLink("link", "del", name)
}

func (s *Spec) addTap(name string) error {
	tap := s.tap(name)
	if _, err := net.InterfaceByName(tap); err == nil {
		ipLink("link", "del", tap)
	}
	if err := ipLink("tuntap", "add", "dev", tap, "mode", "tap"); err != nil {
		return err
	}
	if err := ipLink("link", "set", tap, "master", s.Netboot.Bridge); err != nil {
		return err
	}
	return ipLink("link", "set", tap, "up")
}

func (s *Spec) deleteTap(name string) error {
	if _, err := net.InterfaceByName(s.tap(name)); err != nil {
		return nil
	}
	return ipLink("link", "del", s.tap(name))
}
