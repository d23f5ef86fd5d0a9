package images

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"kubeup.dev/kubeup/test/testenv"
)

// The plugin installs as its docs say, `packer plugins install --path BINARY
// github.com/kubeup/kubeup`, with a Packer that has that command (1.10+, built by hack/tools.sh
// packer-install), and that Packer then finds it by source and version for a template that
// declares it in required_plugins.
func TestPluginInstall(t *testing.T) {
	packer := testenv.PackerInstall(t)
	bin := testenv.Build(t, "./packer-plugin", filepath.Join(t.TempDir(), "packer-plugin-kubeup"))
	plugins := t.TempDir()
	run := func(args ...string) (string, error) {
		cmd := exec.Command(packer, args...)
		cmd.Env = append(os.Environ(), "PACKER_PLUGIN_PATH="+plugins, "CHECKPOINT_DISABLE=1", "PACKER_CONFIG_DIR="+t.TempDir())
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	// Before the install, the template's required plugin is missing: the check below can fail.
	bundle, bins := inputs(t)
	vars := []string{"-var", "bundle=" + bundle, "-var", "binaries=" + bins, "-var", "output=" + filepath.Join(t.TempDir(), "out")}
	if out, err := run(append(append([]string{"validate"}, vars...), "testdata/installed.pkr.hcl")...); err == nil {
		t.Fatalf("validate passed before the plugin was installed:\n%s", out)
	}

	if out, err := run("plugins", "install", "--path", bin, "github.com/kubeup/kubeup"); err != nil {
		t.Fatalf("packer plugins install --path: %v\n%s", err, out)
	}
	out, err := run("plugins", "installed")
	if err != nil {
		t.Fatalf("packer plugins installed: %v\n%s", err, out)
	}
	// Packer names the installed binary by source, version and plugin API version.
	want := filepath.Join(plugins, "github.com/kubeup/kubeup", "packer-plugin-kubeup_v0.1.0_x5")
	if !strings.Contains(out, want) {
		t.Errorf("packer plugins installed does not list %s*:\n%s", want, out)
	}
	if out, err := run(append(append([]string{"validate"}, vars...), "testdata/installed.pkr.hcl")...); err != nil {
		t.Errorf("validate with the installed plugin: %v\n%s", err, out)
	}
	// The shipped template (no required_plugins: Packer 1.9.4 runs it) works with it too.
	if out, err := run(append(append([]string{"validate"}, vars...), "qemu-debian.pkr.hcl")...); err != nil {
		t.Errorf("validate qemu-debian.pkr.hcl with the installed plugin: %v\n%s", err, out)
	}
}
