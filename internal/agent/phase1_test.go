package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kubeup.dev/kubeup/internal/machine"
)

// A scratch root with the /proc and /sys files phase 1 reads.
func nodeRoot(t *testing.T, files map[string]string) string {
	root := t.TempDir()
	for p, c := range files {
		os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(root, p), []byte(c), 0o644)
	}
	return root
}

func checks(r machine.Phase1Report) map[string]bool {
	m := map[string]bool{}
	for _, c := range r.Checks {
		m[c.Name] = c.Pass
	}
	return m
}

func TestPhase1NodeSpec(t *testing.T) {
	good := map[string]string{
		"/proc/modules":                     "overlay 151552 0 - Live 0x0\nbr_netfilter 32768 0 - Live 0x0\nnf_conntrack 188416 1 br_netfilter, Live 0x0\n",
		"/sys/fs/cgroup/cgroup.controllers": "cpuset cpu io memory pids\n",
		"/proc/swaps":                       "Filename\tType\tSize\tUsed\tPriority\n",
		"/proc/uptime":                      "42.5 80.0\n",
	}
	for _, s := range machine.Sysctls {
		good["/proc/sys/"+strings.ReplaceAll(s.Name, ".", "/")] = s.Value + "\n"
	}
	n := &Node{Root: nodeRoot(t, good), Ctr: []string{"false"}}
	r := n.Phase1(context.Background(), "node-1")
	c := checks(r)
	for _, name := range []string{"module-overlay", "module-br_netfilter", "module-nf_conntrack", "sysctl-net.ipv4.ip_forward", "sysctl-net.bridge.bridge-nf-call-iptables",
		"sysctl-vm.overcommit_memory", "sysctl-kernel.panic", "sysctl-kernel.keys.root_maxbytes", "cgroup-v2", "swap-off"} {
		if !c[name] {
			t.Errorf("%s failed on a good node: %+v", name, r.Checks)
		}
	}
	// ctr is `false` here: the runtime check must fail, and with it the phase.
	if c["containerd"] || r.Pass {
		t.Errorf("containerd check passed without containerd: %+v", r)
	}
	if r.Seconds != 42.5 || !strings.HasPrefix(r.Line(), machine.ReportPrefix+`{"machine":"node-1","phase":"1","pass":false`) {
		t.Errorf("report line %s", r.Line())
	}

	bad := map[string]string{
		"/proc/modules":                 "overlay 151552 0 - Live 0x0\n",
		"/proc/sys/net/ipv4/ip_forward": "0\n",
		"/proc/sys/kernel/panic":        "0\n", // Debian's default; the kubelet wants 10
		"/proc/swaps":                   "Filename\tType\tSize\tUsed\tPriority\n/swapfile file 1048572 0 -2\n",
	}
	c = checks((&Node{Root: nodeRoot(t, bad), Ctr: []string{"false"}}).Phase1(context.Background(), "n"))
	for _, name := range []string{"module-br_netfilter", "module-nf_conntrack", "sysctl-net.ipv4.ip_forward", "sysctl-net.bridge.bridge-nf-call-iptables",
		"sysctl-kernel.panic", "sysctl-vm.overcommit_memory", "cgroup-v2", "swap-off"} {
		if c[name] {
			t.Errorf("%s passed on a bad node", name)
		}
	}
}

func TestImageCheck(t *testing.T) {
	good := map[string]string{
		"/lib/modules/6.1.0-1-cloud-amd64/modules.dep":     "kernel/fs/overlayfs/overlay.ko.xz:\nkernel/net/bridge/br_netfilter.ko.xz: kernel/net/bridge/bridge.ko.xz\n",
		"/lib/modules/6.1.0-1-cloud-amd64/modules.builtin": "kernel/net/netfilter/nf_conntrack.ko\n",
		"/etc/fstab":                  "# none\nLABEL=kubeup-root / ext4 defaults 0 1\n",
		machine.ModulesLoadFile:       machine.ModulesLoadConf(),
		machine.SysctlFile:            machine.SysctlConf(),
		"/bin/systemctl":              "#!/bin/sh\necho 'systemd 252 (252.39-1~deb12u1)'\necho '+PAM +AUDIT default-hierarchy=unified'\n",
		"/usr/sbin/xtables-nft-multi": "",
	}
	root := nodeRoot(t, good)
	os.Chmod(filepath.Join(root, "bin/systemctl"), 0o755)
	os.Chmod(filepath.Join(root, "usr/sbin/xtables-nft-multi"), 0o755)
	// Debian's iptables is a link, through the alternatives, to xtables-nft-multi.
	os.MkdirAll(filepath.Join(root, "etc/alternatives"), 0o755)
	os.Symlink("/usr/sbin/xtables-nft-multi", filepath.Join(root, "etc/alternatives/iptables"))
	os.Symlink("/etc/alternatives/iptables", filepath.Join(root, "usr/sbin/iptables"))
	c := checks((&Node{Root: root, Ctr: []string{"false"}}).ImageCheck(context.Background(), "image"))
	if !c["modules-6.1.0-1-cloud-amd64"] || !c["modules-load"] || !c["sysctls"] || !c["cgroup-v2"] || !c["swap-off"] || !c["host-programs"] || c["containerd"] {
		t.Errorf("good image: %v (containerd must fail: ctr is false)", c)
	}
	bad := map[string]string{
		"/lib/modules/6.1.0-1-cloud-amd64/modules.dep": "kernel/fs/overlayfs/overlay.ko.xz:\n",
		"/etc/fstab":            "/swapfile none swap sw 0 0\n",
		machine.ModulesLoadFile: "overlay\n",
		machine.SysctlFile:      "net.ipv4.ip_forward = 0\n",
		"/bin/systemctl":        "#!/bin/sh\necho 'default-hierarchy=hybrid'\n",
	}
	root = nodeRoot(t, bad)
	os.Chmod(filepath.Join(root, "bin/systemctl"), 0o755)
	r := (&Node{Root: root, Ctr: []string{"false"}}).ImageCheck(context.Background(), "image")
	c = checks(r)
	if c["modules-6.1.0-1-cloud-amd64"] || c["modules-load"] || c["sysctls"] || c["cgroup-v2"] || c["swap-off"] || c["host-programs"] || r.Pass {
		t.Errorf("bad image passed: %+v", r.Checks)
	}
	if !strings.Contains(r.Checks[0].Evidence, "br_netfilter nf_conntrack") {
		t.Errorf("evidence does not name the missing modules: %q", r.Checks[0].Evidence)
	}
	if c := checks((&Node{Root: t.TempDir(), Ctr: []string{"false"}}).ImageCheck(context.Background(), "image")); c["kernel"] {
		t.Errorf("an image without a kernel passed: %v", c)
	}
}
