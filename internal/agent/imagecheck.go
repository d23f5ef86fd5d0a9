package agent

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"kubeup.dev/kubeup/internal/machine"
)

// ImageCheck runs, at image build time, the node-spec checks as an image (rather than a running
// machine) can pass them: every installed kernel has the modules and the image loads them at
// boot, the image sets the sysctls at boot, systemd mounts the unified cgroup hierarchy, no
// swap is configured, the programs the runtime runs from the host are there, and the runtime
// runs a test container from the preloaded store. The running kernel's values and the peers are
// phase 1's, on the booted machine. The Packer provisioner fails the build when this report
// does not pass.
func (n *Node) ImageCheck(ctx context.Context, name string) machine.Phase1Report {
	r := machine.Phase1Report{Machine: name, Phase: "image", Pass: true}
	add := func(name string, pass bool, format string, args ...any) {
		r.Checks = append(r.Checks, machine.Check{Name: name, Pass: pass, Evidence: fmt.Sprintf(format, args...)})
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
		for _, m := range machine.Modules {
			if !have[m] {
				missing = append(missing, m)
			}
		}
		add("modules-"+filepath.Base(dir), len(missing) == 0, "missing: %v", missing)
	}
	loads, _ := n.read(machine.ModulesLoadFile)
	var unloaded []string
	for _, m := range machine.Modules {
		if !slices.Contains(strings.Fields(loads), m) {
			unloaded = append(unloaded, m)
		}
	}
	add("modules-load", len(unloaded) == 0, "%s does not load %v", machine.ModulesLoadFile, unloaded)
	conf, _ := n.read(machine.SysctlFile)
	var unset []string
	for _, s := range machine.Sysctls {
		if !slices.ContainsFunc(strings.Split(conf, "\n"), func(l string) bool { return strings.ReplaceAll(l, " ", "") == s.Name+"="+s.Value }) {
			unset = append(unset, s.Name+"="+s.Value)
		}
	}
	add("sysctls", len(unset) == 0, "%s does not set %v", machine.SysctlFile, unset)
	// systemd mounts the unified (v2) cgroup hierarchy unless built or told otherwise.
	out, err := exec.CommandContext(ctx, filepath.Join(n.Root, "bin/systemctl"), "--version").CombinedOutput()
	add("cgroup-v2", err == nil && strings.Contains(string(out), "default-hierarchy=unified"), "systemctl --version: %s %v",
		lastLine(string(out)), errOrEmpty(err))
	swap := fstabSwaps(filepath.Join(n.Root, "etc/fstab"))
	add("swap-off", len(swap) == 0, "swap in /etc/fstab: %v", swap)
	var absent []string
	dirs := machine.ProgramDirs()
	for _, p := range machine.HostPrograms {
		if !slices.ContainsFunc(dirs, func(d string) bool {
			full, err := machine.ResolveIn(n.Root, filepath.Join(d, p)) // Debian's alternatives are links
			if err != nil {
				return false
			}
			st, err := os.Stat(full)
			return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
		}) {
			absent = append(absent, p)
		}
	}
	add("host-programs", len(absent) == 0, "not in %v: %v", dirs, absent)
	n.runtimeChecks(ctx, add)
	return r
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
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
