package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"kubeup.dev/kubeup/internal/machine"
)

// Node runs phase 1's checks on a machine. Root prefixes /proc, /sys and the image's files
// (tests point it at a scratch tree); Ctr is the ctr command to talk to containerd.
type Node struct {
	Root  string
	Ctr   []string
	Peers []Peer
	// PeerTimeout bounds how long peers may take to answer (they boot at the same time).
	PeerTimeout time.Duration
}

func (n *Node) read(p string) (string, error) {
	b, err := os.ReadFile(filepath.Join(n.Root, p))
	return strings.TrimSpace(string(b)), err
}

// Phase1 runs every check and returns the report.
func (n *Node) Phase1(ctx context.Context, name string) machine.Phase1Report {
	r := machine.Phase1Report{Machine: name, Phase: "1", Pass: true}
	add := func(name string, pass bool, format string, args ...any) {
		r.Checks = append(r.Checks, machine.Check{Name: name, Pass: pass, Evidence: fmt.Sprintf(format, args...)})
		r.Pass = r.Pass && pass
	}
	mods, _ := n.read("/proc/modules")
	for _, m := range machine.Modules {
		_, err := os.Stat(filepath.Join(n.Root, "/sys/module", m))
		loaded := err == nil || slices.ContainsFunc(strings.Split(mods, "\n"), func(l string) bool { return strings.HasPrefix(l, m+" ") })
		add("module-"+m, loaded, "loaded: %v", loaded)
	}
	// Every setting the machine's sysctl.d file makes, as the kernel has it now: the kubelet
	// refuses to start when one it checks differs (protectKernelDefaults), and this says which.
	for _, s := range machine.Sysctls {
		v, err := n.read("/proc/sys/" + strings.ReplaceAll(s.Name, ".", "/"))
		add("sysctl-"+s.Name, err == nil && v == s.Value, "%s = %q %v", s.Name, v, errOrEmpty(err))
	}
	_, err := os.Stat(filepath.Join(n.Root, "/sys/fs/cgroup/cgroup.controllers"))
	add("cgroup-v2", err == nil, "unified hierarchy: %v", err == nil)
	swaps, _ := n.read("/proc/swaps")
	lines := strings.Split(swaps, "\n")
	add("swap-off", len(lines) <= 1, "%d swap device(s)", max(len(lines)-1, 0))
	n.runtimeChecks(ctx, add)
	n.peerChecks(ctx, add)
	if up, err := n.read("/proc/uptime"); err == nil {
		fmt.Sscanf(up, "%f", &r.Seconds)
	}
	return r
}

func errOrEmpty(err error) string {
	if err != nil {
		return err.Error()
	}
	return ""
}

// runtimeChecks: containerd answers, every bundle image is preloaded, and a test container runs.
func (n *Node) runtimeChecks(ctx context.Context, add func(string, bool, string, ...any)) {
	ctr := func(args ...string) (string, error) {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(cctx, n.Ctr[0], append(append(n.Ctr[1:], "-n", "k8s.io"), args...)...)
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if out, err := ctr("version"); err != nil {
		add("containerd", false, "ctr version: %v: %s", err, out)
		return
	}
	add("containerd", true, "answers")
	var raw []byte
	var err error
	for _, p := range machine.BundleManifests() {
		if raw, err = os.ReadFile(filepath.Join(n.Root, p)); err == nil {
			break
		}
	}
	var m struct {
		Images []struct{ Ref, Archive string }
	}
	if err == nil {
		err = json.Unmarshal(raw, &m)
	}
	if err != nil || len(m.Images) == 0 {
		add("images-preloaded", false, "bundle manifest (%v): %v", machine.BundleManifests(), err)
		return
	}
	list, err := ctr("images", "ls", "-q")
	var missing []string
	testImage := ""
	for _, img := range m.Images {
		if !slices.Contains(strings.Split(list, "\n"), img.Ref) {
			missing = append(missing, img.Ref)
		}
		if strings.HasSuffix(img.Archive, "flannel-cni-plugin.tar") {
			testImage = img.Ref
		}
	}
	add("images-preloaded", err == nil && len(missing) == 0, "%d of %d images present; missing %v", len(m.Images)-len(missing), len(m.Images), missing)
	if testImage == "" {
		add("test-container", false, "no image with a shell in the bundle")
		return
	}
	// A container from the preloaded store, no network: proves the runtime, runc and the store.
	out, err := ctr("run", "--rm", testImage, fmt.Sprintf("kubeup-check-%d", os.Getpid()), "/bin/sh", "-c", "echo kubeup-test-container-ok")
	add("test-container", err == nil && strings.Contains(out, "kubeup-test-container-ok"), "%s: %s %v", testImage, out, errOrEmpty(err))
}

// peerChecks pings every peer until it answers or the timeout passes.
func (n *Node) peerChecks(ctx context.Context, add func(string, bool, string, ...any)) {
	for _, p := range n.Peers {
		deadline := time.Now().Add(n.PeerTimeout)
		var out []byte
		var err error
		for {
			out, err = exec.CommandContext(ctx, "ping", "-c", "1", "-W", "2", p.Address).CombinedOutput()
			if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
				break
			}
		}
		last := strings.TrimSpace(string(out))
		if i := strings.LastIndex(last, "\n"); i >= 0 {
			last = last[i+1:]
		}
		add("peer-"+p.Name, err == nil, "%s: %s", p.Address, last)
	}
}
