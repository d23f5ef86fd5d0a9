package machine

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// The OS layouts a kubeup image can have.
const (
	// Debian: kubeup's image, built here. Ignition runs from the initramfs on the first boot;
	// kubeup's files go under /usr/local.
	Debian = "debian"
	// Flatcar: Flatcar Container Linux with its own Ignition. /usr is a read-only, signed
	// partition, so kubeup's files go under /opt.
	Flatcar = "flatcar"
)

// OSes are the layouts, in the order messages list them.
var OSes = []string{Debian, Flatcar}

// DefaultOS is the layout of the image `make image` builds.
const DefaultOS = Debian

// Layout is where one OS keeps kubeup's files.
type Layout struct {
	OS string
	// Bin holds kubelet, kubeadm and kubeup-agent.
	Bin string
	// Containerd holds containerd, ctr and the runc shim. On Debian kubeup's containerd replaces
	// the package's binaries in place, so the package's unit and runc stay as they are; on
	// Flatcar a drop-in points Flatcar's own unit at it.
	Containerd string
	// CNIBin holds the CNI plugins.
	CNIBin string
	// BundleManifest is the offline bundle's manifest: every image the image preloaded.
	BundleManifest string
	// Path is PATH for scripts run on the machine.
	Path string
	// Modprobe is the OS's own modprobe.
	Modprobe string
}

var layouts = []Layout{
	{OS: Debian, Bin: "/usr/local/bin", Containerd: "/usr/bin", CNIBin: "/opt/cni/bin",
		BundleManifest: "/usr/local/share/kubeup/bundle.json",
		Path:           "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", Modprobe: "/usr/sbin/modprobe"},
	{OS: Flatcar, Bin: "/opt/bin", Containerd: "/opt/bin", CNIBin: "/opt/cni/bin",
		BundleManifest: "/opt/kubeup/bundle.json",
		Path:           "/opt/bin:/usr/sbin:/usr/bin:/sbin:/bin", Modprobe: "/usr/sbin/modprobe"},
}

// LayoutOf returns the layout of os.
func LayoutOf(os string) (Layout, error) {
	i := slices.IndexFunc(layouts, func(l Layout) bool { return l.OS == os })
	if i < 0 {
		return Layout{}, fmt.Errorf("OS %q is not one of %v", os, OSes)
	}
	return layouts[i], nil
}

// Kubelet is the kubelet's path.
func (l Layout) Kubelet() string { return path.Join(l.Bin, "kubelet") }

// Kubeadm is kubeadm's path (the benchmark's peer runs it).
func (l Layout) Kubeadm() string { return path.Join(l.Bin, "kubeadm") }

// Agent is kubeup-agent's path.
func (l Layout) Agent() string { return path.Join(l.Bin, "kubeup-agent") }

// ProgramDirs are the directories of every layout's PATH, each once: where the image check
// looks for HostPrograms before it knows which OS it is on.
func ProgramDirs() []string {
	var dirs []string
	for _, l := range layouts {
		for _, d := range strings.Split(l.Path, ":") {
			if !slices.Contains(dirs, d) {
				dirs = append(dirs, d)
			}
		}
	}
	return dirs
}

// BundleManifests are where every layout keeps the bundle's manifest: the agent's image check
// runs before it knows which OS it is on.
func BundleManifests() []string {
	var ps []string
	for _, l := range layouts {
		ps = append(ps, l.BundleManifest)
	}
	return ps
}
