package kubeadm

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/manifests"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/test/testenv"
)

// The configs, with kubeadm's defaults and tuned, are checked by the real kubeadm at the pinned
// version (`kubeadm config validate`), and the machines' files are where kubeadm and the image
// expect them.
func TestConfigsAreValidForKubeadm(t *testing.T) {
	kubeadm := filepath.Join(testenv.ToolchainDir(t), "kubeadm")
	cfg, err := cluster.Load("../../configs/local.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := pki.Ensure(t.TempDir(), cfg, pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	token := "abcdef.0123456789abcdef"
	hash, _ := caHash(b.File("pki/ca.crt"))
	for _, tuning := range []Tuning{Defaults, Tuned} {
		out, err := Configs(cfg, b.File("pki/ca.crt"), b.File("pki/ca.key"), token, tuning)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != len(cfg.Machines) {
			t.Fatalf("%d configs for %d machines", len(out), len(cfg.Machines))
		}
		for _, m := range cfg.Machines {
			_, files := testenv.IgnitionFiles(t, out[m.Name])
			doc := string(files[configPath])
			path := filepath.Join(t.TempDir(), "kubeadm.yaml")
			os.WriteFile(path, []byte(doc), 0o600)
			if msg, err := exec.Command(kubeadm, "config", "validate", "--config", path).CombinedOutput(); err != nil {
				t.Errorf("%s, %s: kubeadm config validate: %v\n%s\n%s", tuning, m.Name, err, msg, doc)
			}
			_, hasKey := files["/etc/kubernetes/pki/ca.key"]
			switch m.Role {
			case cluster.RoleMaster:
				if !hasKey || !strings.Contains(doc, "kind: InitConfiguration") || !strings.Contains(doc, token) {
					t.Errorf("%s, master: CA key %v, config:\n%s", tuning, hasKey, doc)
				}
				// Tuned: kubeup's leader election for both components, a startup patch per
				// static pod, the kubelet's runtime request timeout; defaults: none of it.
				tuned := tuning == Tuned
				if strings.Contains(doc, "leader-elect-lease-duration") != tuned ||
					strings.Contains(doc, "runtimeRequestTimeout: "+manifests.EmulatedRuntimeRequestTimeout.String()+"\n") != tuned ||
					strings.Count(doc, "extraArgs:") != map[bool]int{true: 2}[tuned] ||
					strings.Contains(doc, patchDir) != tuned {
					t.Errorf("%s, master: config:\n%s", tuning, doc)
				}
				for _, c := range controlPlane {
					patch, ok := files[patchDir+"/"+c+"+strategic.yaml"]
					if ok != tuned || (tuned && !strings.Contains(string(patch), "name: "+c+"\n")) {
						t.Errorf("%s, master: patch of %s: %v %q", tuning, c, ok, patch)
					}
				}
			default:
				if hasKey || !strings.Contains(doc, hash) || !strings.Contains(doc, "value: "+m.IP().String()) {
					t.Errorf("%s, %s: CA key %v, config:\n%s", tuning, m.Name, hasKey, doc)
				}
			}
		}
	}
}
