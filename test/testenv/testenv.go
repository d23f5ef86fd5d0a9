// Package testenv finds the pinned tools the end-to-end tests run for real (the Ignition binary,
// Packer, the Kubernetes toolchain), applies Ignition configs with the real ignition-apply, and runs
// the project's commands, and makes requests as kubectl would (SteadyClient). A missing tool
// fails the test with the command that builds it.
package testenv

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"kubeup.dev/kubeup/internal/versions"
)

// RepoRoot is the repository's top directory (tests run in their package's directory).
func RepoRoot() string {
	dir, _ := os.Getwd()
	for d := dir; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
	}
	return dir
}

func cacheDir() string {
	if c := os.Getenv("XDG_CACHE_HOME"); c != "" {
		return c
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache")
}

// dirHolding returns dir if set, else the newest cache directory matching dirGlob, and fails
// the test with the command that builds it unless that directory holds file.
func dirHolding(t testing.TB, dir, dirGlob, file, build string) string {
	t.Helper()
	if dir == "" {
		if m, _ := filepath.Glob(filepath.Join(cacheDir(), dirGlob)); len(m) > 0 {
			dir = m[len(m)-1]
		}
	}
	if _, err := os.Stat(filepath.Join(dir, file)); dir == "" || err != nil {
		t.Fatalf("%s is not built: run `%s` (make test or make e2e does it for you)", file, build)
	}
	return dir
}

// IgnitionDir is the directory of the pinned Ignition build (ignition, ignition-apply,
// ignition-validate): $KUBEUP_IGNITION's directory (it names the binary), or the cache's.
func IgnitionDir(t testing.TB) string {
	t.Helper()
	dir := ""
	if bin := os.Getenv("KUBEUP_IGNITION"); bin != "" {
		dir = filepath.Dir(bin)
	}
	return dirHolding(t, dir, "kubeup/tools/ignition-*", "ignition-apply", "hack/tools.sh ignition")
}

// AEMM is the pinned amazon-ec2-metadata-mock binary: $KUBEUP_AEMM, or the cache's.
func AEMM(t testing.TB) string {
	t.Helper()
	dir := ""
	if bin := os.Getenv("KUBEUP_AEMM"); bin != "" {
		dir = filepath.Dir(bin)
	}
	return filepath.Join(dirHolding(t, dir, "kubeup/tools/aemm-*", "ec2-metadata-mock", "hack/tools.sh aemm"), "ec2-metadata-mock")
}

// Packer is the pinned Packer binary: $KUBEUP_PACKER, or the cache's.
func Packer(t testing.TB) string {
	t.Helper()
	return packerBin(t, "KUBEUP_PACKER", "v1.9.*", "packer")
}

// PackerInstall is the Packer that has `packer plugins install --path` (1.10 or later):
// $KUBEUP_PACKER_INSTALL, or the cache's build of hack/tools.sh packer-install.
func PackerInstall(t testing.TB) string {
	t.Helper()
	return packerBin(t, "KUBEUP_PACKER_INSTALL", "v1.1[0-9].*", "packer-install")
}

// packerBin finds one of the two pinned Packers: $env, or the cache's build whose version
// matches glob (both live side by side in the cache).
func packerBin(t testing.TB, env, glob, tool string) string {
	t.Helper()
	dir := ""
	if bin := os.Getenv(env); bin != "" {
		dir = filepath.Dir(bin)
	}
	return filepath.Join(dirHolding(t, dir, "kubeup/tools/packer-"+glob, "packer", "hack/tools.sh "+tool), "packer")
}

// Kubernetes is the release under test: $KUBEUP_KUBERNETES (as the build scripts read it), or
// the default release. A release kubeup does not bring up fails the test.
func Kubernetes(t testing.TB) string {
	t.Helper()
	v := os.Getenv("KUBEUP_KUBERNETES")
	if v == "" {
		return versions.Kubernetes
	}
	if _, ok := versions.ReleaseOf(v); !ok {
		t.Fatalf("KUBEUP_KUBERNETES=%s: not a release kubeup brings up (%v)", v, versions.Supported)
	}
	return v
}

// ToolchainDir is the directory of the Kubernetes and etcd binaries of the release under test:
// $KUBEUP_TOOLCHAIN, or the cache's.
func ToolchainDir(t testing.TB) string {
	t.Helper()
	k8s := Kubernetes(t)
	return dirHolding(t, os.Getenv("KUBEUP_TOOLCHAIN"), "kubeup/toolchain/"+k8s+"/bin", "kube-apiserver", "KUBEUP_KUBERNETES="+k8s+" hack/toolchain.sh")
}

// BundleDir is the offline bundle of the release under test: $KUBEUP_BUNDLE, or the cache's.
func BundleDir(t testing.TB) string {
	t.Helper()
	k8s := Kubernetes(t)
	return dirHolding(t, os.Getenv("KUBEUP_BUNDLE"), "kubeup/bundle/"+k8s, "bundle.json", "KUBEUP_KUBERNETES="+k8s+" hack/bundle.sh")
}

// ComponentsDir holds the add-on and host binaries (CNI plugins, ...): $KUBEUP_COMPONENTS, or
// the cache's.
func ComponentsDir(t testing.TB) string {
	t.Helper()
	return dirHolding(t, os.Getenv("KUBEUP_COMPONENTS"), "kubeup/components/bin", "bridge", "hack/components.sh")
}

// ImageDir is the QEMU machine image of the release under test: $KUBEUP_IMAGE, or the cache's.
func ImageDir(t testing.TB) string {
	t.Helper()
	return ImageDirOf(t, Kubernetes(t))
}

// ImageDirOf is the QEMU image of release k8s: $KUBEUP_IMAGE for the release under test, else
// the cache's.
func ImageDirOf(t testing.TB, k8s string) string {
	t.Helper()
	dir := ""
	if k8s == Kubernetes(t) {
		dir = os.Getenv("KUBEUP_IMAGE")
	}
	return dirHolding(t, dir, "kubeup/image/qemu-debian-"+k8s, "disk.raw", "KUBEUP_KUBERNETES="+k8s+" hack/image.sh")
}

// Build compiles one of the project's commands (pkg, relative to the repository, such as
// ./kubeup) into out and returns out, failing the test with the compiler's output. flags go to
// go build (such as -ldflags).
func Build(t testing.TB, pkg, out string, flags ...string) string {
	t.Helper()
	cmd := exec.Command("go", append(append([]string{"build"}, flags...), "-o", out, pkg)...)
	cmd.Dir = RepoRoot()
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, msg)
	}
	return out
}

// Apply validates config with the real ignition-validate, applies it with the real
// ignition-apply into a fresh directory, and returns that directory.
func Apply(t testing.TB, config string) string {
	t.Helper()
	dir := IgnitionDir(t)
	validate := exec.Command(filepath.Join(dir, "ignition-validate"), config)
	if out, err := validate.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("ignition-validate %s: %v\n%s", filepath.Base(config), err, out)
	}
	root := t.TempDir()
	cmd := exec.Command(filepath.Join(dir, "ignition-apply"), "--root", root, "--offline", config)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ignition-apply %s: %v\n%s", filepath.Base(config), err, out)
	}
	return root
}
