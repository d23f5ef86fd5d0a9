package pxe

import (
	"fmt"
	"strings"
)

// OSes the server writes iPXE scripts for, with the files each needs under assets/<os>/.
var OSes = map[string][]string{
	// The Debian image built here, network-booted: its kernel and initramfs (with Ignition), and
	// its root filesystem fetched by the initramfs.
	"debian": {"vmlinuz", "initrd.img", "rootfs.img"},
	// Flatcar's PXE kernel and image (flatcar-website: booting-with-ipxe.md).
	"flatcar": {"flatcar_production_pxe.vmlinuz", "flatcar_production_pxe_image.cpio.gz"},
	// Fedora CoreOS live PXE artifacts (fedora-coreos-docs: live-booting).
	"fcos": {"kernel", "initramfs.img", "rootfs.img"},
}

// chainScript is /boot.ipxe: every machine asks for its own script with what it knows of itself.
func chainScript(base string) string {
	return "#!ipxe\n" +
		"# kubeup pxe: ask for this machine's own script.\n" +
		"chain --autofree " + base + "/ipxe?mac=${mac:hexhyp}&uuid=${uuid}&hostname=${hostname}&serial=${serial} || shell\n"
}

// machineScript boots os with Ignition pointed at pointer (kernel arguments from
// reference/ignition-delivery.md).
func machineScript(os, base, pointer, machine string) (string, error) {
	a := base + "/assets/" + os + "/"
	var b strings.Builder
	fmt.Fprintf(&b, "#!ipxe\n# kubeup pxe: %s boots %s.\n", machine, os)
	switch os {
	case "debian":
		fmt.Fprintf(&b, "kernel %svmlinuz initrd=initrd.img console=ttyS0 boot=kubeup-net ip=dhcp ignition.platform.id=metal ignition.config.url=%s kubeup.rootfs_url=%srootfs.img\n", a, pointer, a)
		fmt.Fprintf(&b, "initrd %sinitrd.img\n", a)
	case "flatcar":
		fmt.Fprintf(&b, "kernel %sflatcar_production_pxe.vmlinuz initrd=flatcar_production_pxe_image.cpio.gz console=ttyS0 flatcar.first_boot=1 ignition.config.url=%s\n", a, pointer)
		fmt.Fprintf(&b, "initrd %sflatcar_production_pxe_image.cpio.gz\n", a)
	case "fcos":
		fmt.Fprintf(&b, "kernel %skernel initrd=main console=ttyS0 coreos.live.rootfs_url=%srootfs.img ignition.firstboot ignition.platform.id=metal ignition.config.url=%s\n", a, a, pointer)
		fmt.Fprintf(&b, "initrd --name main %sinitramfs.img\n", a)
	default:
		return "", fmt.Errorf("metal.os %q: the PXE server boots debian, flatcar or fcos", os)
	}
	b.WriteString("boot\n")
	return b.String(), nil
}
