package agent

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// NodeModules are the kernel modules every machine needs: overlay for containerd's snapshots,
// br_netfilter and nf_conntrack for Services over the pod bridge.
var NodeModules = []string{"overlay", "br_netfilter", "nf_conntrack"}

// ImageCheck runs, at image build time, the node-spec checks that an image (rather than a
// running machine) can fail: every installed kernel has the modules, no swap is configured, and
// the runtime runs a test container from the preloaded store. What only a booted machine can
// show (sysctls, which Ignition sets; the cgroup hierarchy of the running kernel; peers) is
// phase 1's job. The Packer provisioner fails the build when this report does not pass.
func (n *Node) ImageCheck(ctx context.Context, machine string) Phase1Report {
	r := Phase1Report{Machine: machine, Phase: "image", Pass: true}
	add := func(name string, pass bool, format string, args ...any) {
		r.Checks = append(r.Checks, Check{Name: name, Pass: pass, Evidence: fmt.Sprintf(format, args...)})
		r.Pass = r.Pass && pass
	}
	kernels, _ := filepath.Glob(filepath.Join(n.Root, "lib/modules/*/modules.dep"))
	if len(kernels) == 0 {
		add("kernel", false, "no kernel under /lib/modules (modules.dep missing)")
	}
	for _, dep := range kernels {
		dir := filepath.Dir(dep)
		have := kernelModules(dep, filepath.Join(dir, "modules.builtin"))
		var missing []string
		for _, m := range NodeModules {
			if !have[m] {
				missing = append(missing, m)
			}
		}
		add("modules-"+filepath.Base(dir), len(missing) == 0, "missing: %v", missing)
	}
	swap := fstabSwaps(filepath.Join(n.Root, "etc/fstab"))
	add("swap-off", len(swap) == 0, "swap in /etc/fstab: %v", swap)
	n.runtimeChecks(ctx, add)
	return r
}

// kernelModules lists the module names in modules.dep and modules.builtin
// ("kernel/fs/overlayfs/overlay.ko.xz: ..." → overlay).
func kernelModules(files ...string) map[string]bool {
	have := map[string]bool{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		s := bufio.NewScanner(fh)
		for s.Scan() {
			path, _, _ := strings.Cut(s.Text(), ":")
			name, _, _ := strings.Cut(filepath.Base(path), ".ko")
			have[strings.ReplaceAll(name, "-", "_")] = true
		}
		fh.Close()
	}
	return have
}

// fstabSwaps returns the swap entries of an fstab.
func fstabSwaps(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var swaps []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && !strings.HasPrefix(f[0], "#") && f[2] == "swap" {
			swaps = append(swaps, f[0])
		}
	}
	return swaps
}
