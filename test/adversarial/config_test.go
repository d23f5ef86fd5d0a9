package adversarial_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kubeup.dev/kubeup/internal/cli"
	"kubeup.dev/kubeup/test/testenv"
)

// base is a good config: the cases break one thing in it.
const base = `apiVersion: kubeup.dev/v1alpha1
kind: Cluster
name: adv
kubernetesVersion: %s
target: qemu
controlPlane:
  endpoint: 10.10.0.10:6443
  certSANs: [127.0.0.1]
network:
  podCIDR: 10.244.0.0/16
  serviceCIDR: 10.96.0.0/12
  dnsDomain: cluster.local
  cni: flannel
qemu:
  network: 10.10.0.0/24
machines:
  - name: master
    role: master
    mac: "52:54:00:10:00:10"
    address: 10.10.0.10/24
  - name: node-1
    role: node
    mac: "52:54:00:10:00:11"
    address: 10.10.0.11/24
`

// aliasBomb expands to about 10^9 strings if a decoder follows every alias.
const aliasBomb = `a: &a ["x","x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h,*h]
`

type configCase struct {
	name string
	// config is the whole file; want are what the error must say besides the file's path.
	config []byte
	want   []string
	// rendered: the config loads, and rendering refuses it. kubeup up renders only after the
	// provider's preparation (on QEMU the image must exist), so ignition-gen alone runs it.
	rendered bool
}

func configCases(good string) []configCase {
	edit := func(old, new string) []byte {
		if !strings.Contains(good, old) {
			panic("no " + old + " in the base config")
		}
		return []byte(strings.Replace(good, old, new, 1))
	}
	node1 := "  - name: node-1\n"
	garbage := make([]byte, 4096)
	for i := range garbage {
		garbage[i] = byte(i*7 + 3)
	}
	return []configCase{
		{"unknown top-level field", []byte(good + "bogus: 1\n"), []string{"bogus"}, false},
		{"unknown nested field", edit("  cni: flannel\n", "  cni: flannel\n  bogus: 1\n"), []string{"network.bogus"}, false},
		{"unknown machine field", edit("    address: 10.10.0.11/24\n", "    address: 10.10.0.11/24\n    bogus: 1\n"), []string{"machines[1].bogus"}, false},
		{"wrong type, string", edit("name: adv\n", "name: [adv]\n"), []string{"name"}, false},
		{"wrong type, number", edit("qemu:\n", "qemu:\n  cpus: two\n"), []string{"qemu.cpus"}, false},
		{"wrong type, list", edit("machines:\n", "machines: {}\nx:\n"), []string{"machines"}, false},
		{"service CIDR over the pod CIDR", edit("serviceCIDR: 10.96.0.0/12", "serviceCIDR: 10.244.0.0/20"), []string{"network.serviceCIDR"}, false},
		{"pod CIDR over the machines' network", edit("podCIDR: 10.244.0.0/16", "podCIDR: 10.10.0.0/16"), []string{"network.podCIDR"}, false},
		{"service CIDR over the machines' network", edit("serviceCIDR: 10.96.0.0/12", "serviceCIDR: 10.10.0.0/16"), []string{"network.serviceCIDR"}, false},
		{"duplicate name", edit("name: node-1", "name: master"), []string{"machines[1].name"}, false},
		{"duplicate MAC", edit(`mac: "52:54:00:10:00:11"`, `mac: "52:54:00:10:00:10"`), []string{"machines[1].mac"}, false},
		{"duplicate address", edit("address: 10.10.0.11/24", "address: 10.10.0.10/24"), []string{"machines[1].address"}, false},
		{"name with a path separator", edit(node1, "  - name: ../node-1\n"), []string{"machines[1].name"}, false},
		{"name that is a path", edit(node1, "  - name: ..\n"), []string{"machines[1].name"}, false},
		{"unicode name", edit(node1, "  - name: nöde-1\n"), []string{"machines[1].name"}, false},
		{"300-character name", edit(node1, "  - name: "+strings.Repeat("n", 300)+"\n"), []string{"machines[1].name"}, false},
		{"YAML alias bomb", []byte(aliasBomb), nil, false},
		{"50 MB file", append([]byte(good+"# "), []byte(strings.Repeat("x", 50<<20)+"\n")...), []string{"MiB"}, false},
		{"binary garbage", garbage, nil, false},
		{"invalid Butane", edit("    address: 10.10.0.11/24\n", "    address: 10.10.0.11/24\n    butane: \"storage: [\"\n"), []string{"machines[1].butane"}, false},
		{"Butane over kubeup's CA", edit("    address: 10.10.0.11/24\n", "    address: 10.10.0.11/24\n    butane: |\n      storage:\n        files:\n          - path: /etc/kubernetes/pki/ca.crt\n            contents: {inline: mine}\n"), []string{"node-1", "/etc/kubernetes/pki/ca.crt"}, true},
		{"Butane over kubeup's kubelet unit", edit("    address: 10.10.0.11/24\n", "    address: 10.10.0.11/24\n    butane: |\n      systemd:\n        units:\n          - name: kubelet.service\n            mask: true\n"), []string{"node-1", "kubelet.service"}, true},
	}
}

// TestBadConfigsChangeNothing runs ignition-gen, and kubeup up, on every bad config against the
// bundle and output directories of a good run.
func TestBadConfigsChangeNothing(t *testing.T) {
	dir := t.TempDir()
	ignitionGen := testenv.Build(t, "./ignition-gen", filepath.Join(dir, "ignition-gen"))
	kubeup := testenv.Build(t, "./kubeup", filepath.Join(dir, "kubeup"))
	good := fmt.Sprintf(base, testenv.Kubernetes(t))
	state, out := filepath.Join(dir, "state"), filepath.Join(dir, "out")
	goodFile := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(goodFile, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	if res := run(t, ignitionGen, "--config", goodFile, "--state", state, "--out", out); res.code != 0 {
		t.Fatalf("the good config: exit %d\n%s", res.code, res.stderr)
	}
	before := tree(t, state, out)
	for _, tc := range configCases(good) {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "cluster.yaml")
			if err := os.WriteFile(file, tc.config, 0o644); err != nil {
				t.Fatal(err)
			}
			cmds := [][]string{{ignitionGen, "--config", file, "--state", state, "--out", out}}
			if !tc.rendered {
				cmds = append(cmds, []string{kubeup, "up", "--config", file, "--state", state})
			}
			for _, cmd := range cmds {
				start := time.Now()
				res := run(t, cmd[0], cmd[1:]...)
				name := filepath.Base(cmd[0])
				if res.code != cli.ExitUsage {
					t.Errorf("%s: exit %d, want %d (bad input)\n%s", name, res.code, cli.ExitUsage, res.stderr)
				}
				for _, want := range append([]string{file}, tc.want...) {
					if !strings.Contains(res.stderr, want) {
						t.Errorf("%s: the error does not name %q:\n%s", name, want, clip(res.stderr))
					}
				}
				if took := time.Since(start); took > 20*time.Second {
					t.Errorf("%s took %v to refuse it", name, took.Round(time.Second))
				}
				if after := tree(t, state, out); after != before {
					t.Fatalf("%s changed the bundle or output directory:\nbefore:\n%s\nafter:\n%s", name, before, after)
				}
			}
		})
	}
}

type result struct {
	code   int
	stderr string
}

func run(t *testing.T, bin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = t.TempDir() // nothing the command writes by default lands in the repository
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return result{ee.ExitCode(), stderr.String()}
	} else if err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
	return result{0, stderr.String()}
}

// tree lists every file under the directories with its mode and the SHA-256 of its content.
func tree(t *testing.T, dirs ...string) string {
	t.Helper()
	var b strings.Builder
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := e.Info()
			if err != nil {
				return err
			}
			sum := ""
			if e.Type().IsRegular() {
				data, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				h := sha256.Sum256(data)
				sum = hex.EncodeToString(h[:8])
			}
			fmt.Fprintf(&b, "%s %v %s %s\n", path, info.Mode(), info.ModTime().UTC().Format(time.RFC3339Nano), sum)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

func clip(s string) string {
	if len(s) > 2000 {
		return s[:2000] + "..."
	}
	return s
}
