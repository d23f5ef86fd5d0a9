package machine_test

import (
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/ignition/v2/config/v3_4/types"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/ignition"
	"kubeup.dev/kubeup/internal/machine"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/packer-plugin/node"
	"kubeup.dev/kubeup/test/testenv"
)

// osProvides is what each OS brings itself, outside the Packer plugin's plan: the containerd
// unit (Debian's package, which the plan's script requires; Flatcar's image) and modprobe.
func osProvides(l machine.Layout) []string {
	return []string{l.Modprobe, "unit:" + machine.ContainerdUnit}
}

// TestContract renders every role for every OS layout and checks it against what the Packer
// plugin's plan for that OS installs: every program a unit runs is installed by the plan or
// comes with the OS, and every file a unit or a static pod needs is written by the config or
// installed by the image.
func TestContract(t *testing.T) {
	for _, osName := range machine.OSes {
		t.Run(osName, func(t *testing.T) {
			l, err := machine.LayoutOf(osName)
			if err != nil {
				t.Fatal(err)
			}
			image := installed(t, osName)
			image = append(image, osProvides(l)...)
			for _, role := range []string{cluster.RoleMaster, cluster.RoleNode} {
				cfg, contents := renderRole(t, osName, role)
				written := map[string]bool{}
				for _, f := range cfg.Storage.Files {
					written[f.Path] = true
				}
				for _, d := range cfg.Storage.Directories {
					written[d.Path] = true
				}
				has := func(p string) bool { return written[p] || slices.Contains(image, p) }
				for _, u := range cfg.Systemd.Units {
					// A unit's text is in the systemd section, or in a file the config writes
					// (the kubelet's, for its mode), or the image has the unit.
					var text string
					switch file := machine.UnitDir + "/" + u.Name; {
					case u.Contents != nil:
						text = *u.Contents
					case written[file]:
						text = string(contents[file])
					case slices.Contains(image, "unit:"+u.Name):
						continue
					default:
						t.Errorf("%s: %s enables %s, which neither the config nor the image has", role, osName, u.Name)
						continue
					}
					for _, need := range unitNeeds(text) {
						if !slices.ContainsFunc(need, has) {
							t.Errorf("%s on %s: %s needs %s, which neither the config writes nor the %s plan installs",
								role, osName, u.Name, strings.Join(need, " or "), osName)
						}
					}
				}
				for _, f := range cfg.Storage.Files {
					if path.Dir(f.Path) != "/etc/kubernetes/manifests" {
						continue
					}
					for _, p := range staticPodNeeds(t, f.Path, contents[f.Path]) {
						if !has(p) {
							t.Errorf("%s on %s: static pod %s mounts %s, which must exist and is neither written nor installed", role, osName, f.Path, p)
						}
					}
				}
			}
		})
	}
}

// installed is every path the Packer plugin's plan for osName installs.
func installed(t *testing.T, osName string) []string {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "images"), 0o755)
	os.WriteFile(filepath.Join(dir, "images", "pause.tar"), []byte("tar"), 0o644)
	os.WriteFile(filepath.Join(dir, "bundle.json"), []byte(`{"kubernetes":"v1.37.2","images":[{"ref":"registry.k8s.io/pause:3.10.1","archive":"images/pause.tar"}]}`), 0o644)
	plan, err := node.NewPlan(&node.Config{Target: osName, Bundle: dir, Binaries: dir})
	if err != nil {
		t.Fatal(err)
	}
	var ps []string
	for _, f := range plan.Files {
		ps = append(ps, f.Dest)
	}
	return ps
}

// renderRole renders the role's config of a metal cluster (no delivery files) whose machines
// boot osName.
func renderRole(t *testing.T, osName, role string) (types.Config, map[string][]byte) {
	t.Helper()
	src, err := os.ReadFile("../../configs/metal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := cluster.Parse("metal.yaml", []byte(strings.Replace(string(src), "\nos: debian\n", "\nos: "+osName+"\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if c.OS != osName {
		t.Fatalf("configs/metal.yaml has no top-level os: debian to replace (os is %q)", c.OS)
	}
	b, err := pki.Ensure(t.TempDir(), c, pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := ignition.Generate(c, b, ignition.Options{OutDir: t.TempDir(), Role: role})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(outs[0].File)
	if err != nil {
		t.Fatal(err)
	}
	return testenv.IgnitionFiles(t, raw)
}

// unitNeeds lists what a unit needs to start, each as alternatives: the program of every
// Exec line (the prefixes "-", "@", "+", "!" and ":" only change how it is run), every
// EnvironmentFile without "-", and every absolute path given as a --flag=value. The kubelet's
// --kubeconfig is written by its TLS bootstrap when --bootstrap-kubeconfig is there instead.
func unitNeeds(unit string) [][]string {
	var needs [][]string
	for _, line := range strings.Split(unit, "\n") {
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch {
		case key == "EnvironmentFile" && !strings.HasPrefix(value, "-"):
			needs = append(needs, []string{value})
		case strings.HasPrefix(key, "Exec"):
			args := strings.Fields(value)
			if len(args) == 0 {
				continue
			}
			needs = append(needs, []string{strings.TrimLeft(args[0], "-@+!:")})
			flags := map[string]string{}
			for _, a := range args[1:] {
				if f, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(f, "--") && strings.HasPrefix(v, "/") {
					flags[f] = v
				}
			}
			for f, v := range flags {
				switch {
				case f == "--bootstrap-kubeconfig":
				case f == "--kubeconfig" && flags["--bootstrap-kubeconfig"] != "":
					needs = append(needs, []string{v, flags["--bootstrap-kubeconfig"]})
				default:
					needs = append(needs, []string{v})
				}
			}
		}
	}
	return needs
}

// staticPodNeeds lists the host paths a static pod mounts that must already exist.
func staticPodNeeds(t *testing.T, file string, data []byte) []string {
	t.Helper()
	var pod corev1.Pod
	if err := yaml.Unmarshal(data, &pod); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var ps []string
	for _, v := range pod.Spec.Volumes {
		if hp := v.HostPath; hp != nil && hp.Type != nil && (*hp.Type == corev1.HostPathFile || *hp.Type == corev1.HostPathDirectory) {
			ps = append(ps, hp.Path)
		}
	}
	return ps
}

// TestConsoleLinesMatchTheImage checks that the Debian image's first boot prints the lines the
// host's console reader looks for.
func TestConsoleLinesMatchTheImage(t *testing.T) {
	script, err := os.ReadFile("../../packer-plugin/node/files/ignition-local-bottom")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{machine.IgnitionOK, machine.IgnitionFailed} {
		if !strings.Contains(string(script), `echo "`+line) {
			t.Errorf("the image's first boot never prints %q", line)
		}
	}
}
