package node

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"kubeup.dev/kubeup/internal/bundle"
	"kubeup.dev/kubeup/internal/machine"
	"kubeup.dev/kubeup/internal/versions"
)

// fixture makes a bundle directory with two images and a binaries directory with every binary
// the target needs, and returns a Config for them.
func fixture(t *testing.T, target string) Config {
	t.Helper()
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle")
	os.MkdirAll(filepath.Join(bundle, "images"), 0o755)
	os.WriteFile(filepath.Join(bundle, "bundle.json"), []byte(`{"kubernetes":"v1.37.2","images":[
		{"ref":"registry.k8s.io/pause:3.10","archive":"images/pause.tar"},
		{"ref":"registry.k8s.io/etcd:3.6.0","archive":"images/etcd.tar"}]}`), 0o644)
	for _, a := range []string{"pause.tar", "etcd.tar"} {
		os.WriteFile(filepath.Join(bundle, "images", a), []byte("tar"), 0o644)
	}
	bins := filepath.Join(dir, "bin")
	os.MkdirAll(bins, 0o755)
	for _, b := range binaries("debian") {
		os.WriteFile(filepath.Join(bins, b), []byte("#!/bin/sh\n"), 0o755)
	}
	return Config{Target: target, Bundle: bundle, Binaries: bins}
}

func prepare(t *testing.T, c Config) (*Provisioner, error) {
	p := new(Provisioner)
	raw := map[string]any{"target": c.Target, "bundle": c.Bundle, "binaries": c.Binaries}
	if c.Platform != "" {
		raw["platform"] = c.Platform
	}
	return p, p.Prepare(raw)
}

func dests(p *Plan) map[string]Install {
	m := map[string]Install{}
	for _, f := range p.Files {
		m[f.Dest] = f
	}
	return m
}

// shellSyntax runs sh -n on the script: it must at least parse.
func shellSyntax(t *testing.T, script string) {
	t.Helper()
	cmd := exec.Command("sh", "-n")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the script does not parse: %v: %s\n%s", err, out, script)
	}
}

func TestPlanDebian(t *testing.T) {
	c := fixture(t, "")
	c.Platform = "aws"
	p, err := prepare(t, c)
	if err != nil {
		t.Fatal(err)
	}
	plan := p.plan
	d := dests(plan)
	for dest, mode := range map[string]string{
		"/usr/local/bin/kubelet": "0755", "/usr/local/bin/kubeadm": "0755", "/usr/local/bin/kubeup-agent": "0755",
		"/usr/bin/containerd": "0755", "/usr/bin/containerd-shim-runc-v2": "0755", "/opt/cni/bin/bridge": "0755",
		"/usr/local/lib/kubeup/ignition":                            "0755",
		"/etc/initramfs-tools/hooks/kubeup-ignition":                "0755",
		"/etc/initramfs-tools/scripts/local-bottom/kubeup-ignition": "0755",
		"/etc/containerd/config.toml":                               "0644",
		"/usr/local/share/kubeup/bundle.json":                       "0644",
		"/etc/kubeup/platform":                                      "0644",
	} {
		if f, ok := d[dest]; !ok || f.Mode != mode {
			t.Errorf("%s: %+v, want mode %s", dest, f, mode)
		}
	}
	if d["/etc/kubeup/platform"].Content != "aws\n" {
		t.Errorf("platform file %q, want aws", d["/etc/kubeup/platform"].Content)
	}
	if len(plan.Images) != 2 || filepath.Base(plan.Images[1]) != "etcd.tar" {
		t.Errorf("images %v, want the bundle's two archives", plan.Images)
	}
	for _, want := range []string{"update-initramfs -u -k all", "/usr/local/bin/kubeup-agent --image-check", "ctr images import",
		"echo uninitialized >/etc/machine-id", "touch /etc/kubeup/ignition-firstboot", "passwd -l root", `rm -rf "$stage"`} {
		if !strings.Contains(plan.Script, want) {
			t.Errorf("the Debian script lacks %q", want)
		}
	}
	shellSyntax(t, plan.Script)
	// Every embedded file the plan names exists in the binary.
	for _, f := range plan.Files {
		if f.Embedded != "" {
			if _, err := files.ReadFile("files/" + f.Embedded); err != nil {
				t.Errorf("embedded %s: %v", f.Embedded, err)
			}
		}
	}
}

func TestPlanFlatcar(t *testing.T) {
	p, err := prepare(t, fixture(t, "flatcar"))
	if err != nil {
		t.Fatal(err)
	}
	plan := p.plan
	d := dests(plan)
	for _, dest := range []string{"/opt/bin/kubelet", "/opt/bin/kubeadm", "/opt/bin/kubeup-agent", "/opt/bin/containerd", "/opt/bin/ctr",
		"/opt/cni/bin/portmap", "/etc/containerd/config.toml", "/etc/systemd/system/containerd.service.d/10-kubeup.conf", "/opt/kubeup/bundle.json", machine.SysctlFile, machine.ModulesLoadFile} {
		if _, ok := d[dest]; !ok {
			t.Errorf("Flatcar plan does not install %s", dest)
		}
	}
	for dest := range d {
		if strings.HasPrefix(dest, "/usr/") {
			t.Errorf("Flatcar plan writes %s under the read-only /usr", dest)
		}
		if strings.Contains(dest, "ignition") || strings.Contains(dest, "initramfs") {
			t.Errorf("Flatcar has its own Ignition, the plan installs %s", dest)
		}
	}
	if !strings.Contains(d["/etc/systemd/system/containerd.service.d/10-kubeup.conf"].Content, "ExecStart=/opt/bin/containerd") {
		t.Error("the containerd drop-in does not run /opt/bin/containerd")
	}
	for _, bad := range []string{"update-initramfs", "passwd", "/usr/local"} {
		if strings.Contains(plan.Script, bad) {
			t.Errorf("the Flatcar script runs %q", bad)
		}
	}
	for _, want := range []string{"/opt/bin/kubeup-agent --image-check", "touch /boot/flatcar/first_boot", "rm -f /etc/machine-id", "/opt/bin/containerd --config"} {
		if !strings.Contains(plan.Script, want) {
			t.Errorf("the Flatcar script lacks %q", want)
		}
	}
	shellSyntax(t, plan.Script)
}

// Bad input: every error names the field and what to do.
func TestPrepareErrors(t *testing.T) {
	good := fixture(t, "debian")
	os.Remove(filepath.Join(good.Binaries, "ignition"))
	cases := map[string]struct {
		c    Config
		want []string
	}{
		"nothing":          {Config{}, []string{"bundle: required", "binaries: required"}},
		"target":           {Config{Target: "ubuntu", Bundle: good.Bundle, Binaries: good.Binaries}, []string{`target: "ubuntu" is not one of [debian flatcar]`}},
		"platform":         {Config{Platform: "gce", Bundle: good.Bundle, Binaries: good.Binaries}, []string{`platform: "gce" is not one of`}},
		"flatcar/platform": {Config{Target: "flatcar", Platform: "aws", Bundle: good.Bundle, Binaries: good.Binaries}, []string{"leave platform out"}},
		"no ignition":      {Config{Bundle: good.Bundle, Binaries: good.Binaries}, []string{"binaries: " + good.Binaries + " has no file ignition"}},
		"bundle":           {Config{Bundle: good.Binaries, Binaries: good.Binaries}, []string{"bundle: open " + filepath.Join(good.Binaries, "bundle.json")}},
	}
	for name, tc := range cases {
		_, err := prepare(t, tc.c)
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", name, err, w)
			}
		}
	}
	// A bundle whose manifest names a missing archive is caught before any machine is touched.
	c := fixture(t, "flatcar")
	os.Remove(filepath.Join(c.Bundle, "images", "etcd.tar"))
	if _, err := prepare(t, c); err == nil || !strings.Contains(err.Error(), "images[1] (registry.k8s.io/etcd:3.6.0)") {
		t.Errorf("missing archive: %v", err)
	}
}

func TestFailedChecks(t *testing.T) {
	pass := machine.Phase1Report{Machine: "image", Phase: "image", Pass: true, Checks: []machine.Check{{Name: "swap-off", Pass: true}}}
	fail := machine.Phase1Report{Machine: "image", Phase: "image", Checks: []machine.Check{
		{Name: "swap-off", Pass: true}, {Name: "test-container", Evidence: "runc: exit 1"}, {Name: "modules-6.1", Evidence: "missing: [br_netfilter]"}}}
	out := "kubeup-node: checking\n" + pass.Line() + "\n"
	if got := failedChecks(out); got != "" {
		t.Errorf("a passing report gave %q", got)
	}
	out = "kubeup-node: checking\n    " + fail.Line() + "\n"
	if got := failedChecks(out); got != "test-container (runc: exit 1); modules-6.1 (missing: [br_netfilter])" {
		t.Errorf("failed checks %q", got)
	}
	if got := failedChecks("no report here"); got != "" {
		t.Errorf("no report gave %q", got)
	}
	if !slices.Contains(machine.OSes, "flatcar") {
		t.Error("flatcar is not a target")
	}
}

// The machine image's containerd must use the bundle's own pause image as its sandbox, or the
// kubelet's first pod would need a registry.
func TestContainerdUsesTheBundlesPause(t *testing.T) {
	var pause string
	for _, c := range bundle.Components(versions.Kubernetes) {
		if c.Name == "pause" {
			pause = c.Ref
		}
	}
	if want := `sandbox_image = "` + pause + `"`; pause == "" || !strings.Contains(containerdConfig(), want) {
		t.Fatalf("the image's containerd config lacks %s:\n%s", want, containerdConfig())
	}
	// The registries' mirrors, where the machine's config writes them.
	if want := `config_path = "` + machine.ContainerdCertsDir + `"`; !strings.Contains(containerdConfig(), want) || strings.Contains(containerdConfig(), "@") {
		t.Fatalf("the image's containerd config lacks %s, or keeps a placeholder:\n%s", want, containerdConfig())
	}
}
