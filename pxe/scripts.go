package pxe

import (
	"fmt"
	"strings"

	"kubeup.dev/kubeup/internal/machine"
)

// OSes the server writes iPXE scripts for, with the files each needs under assets/<os>/.
var OSes = map[string][]string{
	// The Debian image built here, network-booted: its kernel and initramfs (with Ignition), and
	// its root filesystem fetched by the initramfs.
	machine.Debian: {"vmlinuz", "initrd.img", "rootfs.img"},
	// Flatcar's PXE kernel and image (flatcar-website: booting-with-ipxe.md).
	machine.Flatcar: {"flatcar_production_pxe.vmlinuz", "flatcar_production_pxe_image.cpio.gz"},
}

// chainScript is /boot.ipxe: every machine asks for its own script with what it knows of itself.
func chainScript(base string) string {
	return "#!ipxe\n" +
		"# kubeup pxe: ask for this machine's own script.\n" +
		"chain --autofree " + base + "/ipxe?mac=${mac:hexhyp}&uuid=${uuid}&hostname=${hostname}&serial=${serial} || shell\n"
}

// machineScript boots os with Ignition pointed at pointer: ignition.config.url on the kernel
// command line, with the platform (metal) and first-boot flag each OS's Ignition reads.
func machineScript(os, base, pointer, name string) (string, error) {
	a := base + "/assets/" + os + "/"
	var b strings.Builder
	fmt.Fprintf(&b, "#!ipxe\n# kubeup pxe: %s boots %s.\n", name, os)
	switch os {
	case machine.Debian:
		fmt.Fprintf(&b, "kernel %svmlinuz initrd=initrd.img console=ttyS0 boot=kubeup-net ip=dhcp ignition.platform.id=metal ignition.config.url=%s kubeup.rootfs_url=%srootfs.img\n", a, pointer, a)
		fmt.Fprintf(&b, "initrd %sinitrd.img\n", a)
	case machine.Flatcar:
		fmt.Fprintf(&b, "kernel %sflatcar_production_pxe.vmlinuz initrd=flatcar_production_pxe_image.cpio.gz console=ttyS0 flatcar.first_boot=1 ignition.config.url=%s\n", a, pointer)
		fmt.Fprintf(&b, "initrd %sflatcar_production_pxe_image.cpio.gz\n", a)
	default:
		return "", fmt.Errorf("os %q: the PXE server boots %s", os, strings.Join(machine.OSes, " or "))
	}
	b.WriteString("boot\n")
	return b.String(), nil
}
