package images

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"kubeup.dev/kubeup/test/testenv"
)

// packerValidate runs the pinned Packer's validate on a template with this tree's plugin, and
// returns its output and error.
func packerValidate(t *testing.T, plugins, template string, vars map[string]string) (string, error) {
	args := []string{"validate"}
	for k, v := range vars {
		args = append(args, "-var", k+"="+v)
	}
	cmd := exec.Command(testenv.Packer(t), append(args, template)...)
	cmd.Env = append(os.Environ(), "PACKER_PLUGIN_PATH="+plugins, "CHECKPOINT_DISABLE=1", "PACKER_CONFIG_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// inputs makes the bundle and binaries directories kubeup-node checks in its Prepare.
func inputs(t *testing.T) (bundle, bins string) {
	dir := t.TempDir()
	bundle, bins = filepath.Join(dir, "bundle"), filepath.Join(dir, "bin")
	os.MkdirAll(filepath.Join(bundle, "images"), 0o755)
	os.WriteFile(filepath.Join(bundle, "bundle.json"), []byte(`{"images":[{"ref":"registry.k8s.io/pause:3.10","archive":"images/pause.tar"}]}`), 0o644)
	os.WriteFile(filepath.Join(bundle, "images/pause.tar"), nil, 0o644)
	os.MkdirAll(bins, 0o755)
	for _, b := range []string{"kubelet", "kubeadm", "kubeup-agent", "containerd", "ctr", "containerd-shim-runc-v2", "bridge", "host-local", "loopback", "portmap", "ignition"} {
		os.WriteFile(filepath.Join(bins, b), nil, 0o755)
	}
	return bundle, bins
}

// sshKey writes a fresh private key: vsphere-clone's Prepare reads the key file.
func sshKey(t *testing.T) string {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(f, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// Every template passes the real `packer validate` (not only -syntax-only): the amazon and
// vsphere builders bundled in Packer 1.9.4 and our plugin all check their blocks.
func TestTemplatesValidate(t *testing.T) {
	plugins := t.TempDir()
	testenv.Build(t, "./packer-plugin", filepath.Join(plugins, "packer-plugin-kubeup"))
	bundle, bins := inputs(t)
	common := map[string]string{"bundle": bundle, "binaries": bins}
	vars := map[string]map[string]string{
		"qemu-debian.pkr.hcl":     {"output": filepath.Join(t.TempDir(), "out")},
		"aws-debian.pkr.hcl":      {},
		"aws-flatcar.pkr.hcl":     {},
		"vsphere-flatcar.pkr.hcl": {"vcenter": "vcenter.example", "username": "builder", "password": "not-a-real-password", "datacenter": "dc", "cluster": "c", "ssh_private_key_file": sshKey(t), "build_ignition": "e30="},
	}
	templates, _ := filepath.Glob("*.pkr.hcl")
	if len(templates) != len(vars) {
		t.Errorf("templates %v, want one per target %v", templates, vars)
	}
	for _, tpl := range templates {
		v := map[string]string{}
		for k, x := range common {
			v[k] = x
		}
		for k, x := range vars[tpl] {
			v[k] = x
		}
		if out, err := packerValidate(t, plugins, tpl, v); err != nil {
			t.Errorf("packer validate %s: %v\n%s", tpl, err, out)
		}
	}
}

// A misspelt field and a missing input are errors that name the field.
func TestTemplateErrors(t *testing.T) {
	plugins := t.TempDir()
	testenv.Build(t, "./packer-plugin", filepath.Join(plugins, "packer-plugin-kubeup"))
	out, err := packerValidate(t, plugins, "testdata/typo.pkr.hcl", nil)
	if err == nil || !strings.Contains(out, `"taget"`) {
		t.Errorf("a misspelt field validated: %v\n%s", err, out)
	}
	_, bins := inputs(t)
	out, err = packerValidate(t, plugins, "qemu-debian.pkr.hcl", map[string]string{"bundle": t.TempDir(), "binaries": bins})
	if err == nil || !strings.Contains(out, "bundle: open ") || !strings.Contains(out, "make bundle") {
		t.Errorf("a bundle without bundle.json validated: %v\n%s", err, out)
	}
}
