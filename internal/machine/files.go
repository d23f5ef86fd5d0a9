package machine

import "strings"

// The systemd units every machine runs. containerd's unit comes with the OS (Debian's package,
// Flatcar's image, pointed at kubeup's containerd by a drop-in); the config writes the others.
const (
	ContainerdUnit = "containerd.service"
	KubeletUnit    = "kubelet.service"
	AgentUnit      = "kubeup-agent.service"
)

// AgentMetricsPort is where every machine's agent serves its metrics (HTTPS, for clients the
// API server allows to get /metrics).
const AgentMetricsPort = 9477

// Files a config writes and the units read.
const (
	// UnitDir is where the config writes systemd units.
	UnitDir = "/etc/systemd/system"
	// AgentConfig is the agent's config.
	AgentConfig = "/etc/kubeup/agent.yaml"
	// KubeletEnv holds a named machine's extra kubelet flags (node IP, hostname).
	KubeletEnv = "/etc/kubernetes/kubelet.env"
	// ContainerdConfig is containerd's config; the image installs it.
	ContainerdConfig = "/etc/containerd/config.toml"
	// ContainerdCertsDir is where containerd looks for a registry's hosts.toml (its mirrors),
	// in a directory named for the registry: the config writes them (registries).
	ContainerdCertsDir = "/etc/containerd/certs.d"
	// RegistryHostsFile and RegistryCAFile are a registry's files in its directory there: its
	// mirrors (with their credentials on the master, and on a node once its agent wrote them)
	// and the CA they chain to.
	RegistryHostsFile = "hosts.toml"
	RegistryCAFile    = "ca.crt"
	// EtcdRestoreSnapshot is where a master's config puts an etcd snapshot to restore before
	// etcd starts (an upgrade's rollback to its snapshot), and EtcdRestoreUnit the one-shot
	// unit that restores it, which the kubelet requires.
	EtcdRestoreSnapshot = "/var/lib/kubeup/etcd-restore/snapshot.db"
	EtcdRestoreUnit     = "kubeup-etcd-restore.service"
)

// Modules are the kernel modules every machine needs: overlay for containerd's snapshots,
// br_netfilter and nf_conntrack for Services over the pod bridge.
var Modules = []string{"overlay", "br_netfilter", "nf_conntrack"}

// HostPrograms are the programs a machine's runtime runs from its own root rather than from a
// container: the portmap CNI plugin, which gives pods their hostPorts, runs iptables (the
// upstream suite's HostPort specs failed with "iptables: executable file not found" when the
// image had none).
var HostPrograms = []string{"iptables"}

// Sysctl is one kernel setting and the value a machine needs.
type Sysctl struct{ Name, Value string }

// Sysctls are the kernel settings every machine needs: bridged traffic seen by iptables and
// forwarding on, for Services and the pod network; and the settings the kubelet checks with
// protectKernelDefaults (its container manager's list: overcommit always, no panic on OOM so
// the OOM killer runs, reboot 10 s after a panic, panic on oops, root's key quotas).
var Sysctls = []Sysctl{
	{"net.bridge.bridge-nf-call-iptables", "1"},
	{"net.bridge.bridge-nf-call-ip6tables", "1"},
	{"net.ipv4.ip_forward", "1"},
	{"vm.overcommit_memory", "1"},
	{"vm.panic_on_oom", "0"},
	{"kernel.panic", "10"},
	{"kernel.panic_on_oops", "1"},
	{"kernel.keys.root_maxkeys", "1000000"},
	{"kernel.keys.root_maxbytes", "25000000"},
}

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
		b.WriteString(s.Name + " = " + s.Value + "\n")
	}
	return b.String()
}
