package machine

import "strings"

// The systemd units every machine runs. containerd's unit comes with the OS (Debian's package,
// Flatcar's image, pointed at kubeup's containerd by a drop-in); the config writes the others.
const (
	ContainerdUnit = "containerd.service"
	KubeletUnit    = "kubelet.service"
	AgentUnit      = "kubeup-agent.service"
)

// Files a config writes and the units read.
const (
	// AgentConfig is the agent's config.
	AgentConfig = "/etc/kubeup/agent.yaml"
	// KubeletEnv holds a named machine's extra kubelet flags (node IP, hostname).
	KubeletEnv = "/etc/kubernetes/kubelet.env"
	// ContainerdConfig is containerd's config; the image installs it.
	ContainerdConfig = "/etc/containerd/config.toml"
)

// Modules are the kernel modules every machine needs: overlay for containerd's snapshots,
// br_netfilter and nf_conntrack for Services over the pod bridge.
var Modules = []string{"overlay", "br_netfilter", "nf_conntrack"}

// Sysctls are the kernel settings every machine needs: bridged traffic seen by iptables,
// forwarding on. Each is set to 1.
var Sysctls = []string{"net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables", "net.ipv4.ip_forward"}

// Where a machine loads the modules and sets the sysctls at boot. Both the image and the
// Ignition config write them, so a kubeup image meets the node spec before its config is
// applied, and a machine from another image meets it once it is.
const (
	ModulesLoadFile = "/etc/modules-load.d/kubeup.conf"
	SysctlFile      = "/etc/sysctl.d/90-kubeup.conf"
)

// ModulesLoadConf is the modules-load.d file.
func ModulesLoadConf() string { return strings.Join(Modules, "\n") + "\n" }

// SysctlConf is the sysctl.d file.
func SysctlConf() string {
	var b strings.Builder
	for _, s := range Sysctls {
		b.WriteString(s + " = 1\n")
	}
	return b.String()
}
