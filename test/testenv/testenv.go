// Package testenv finds the pinned tools the end-to-end tests run for real (the Ignition binary,
// the Kubernetes toolchain), applies Ignition configs with the real ignition-apply, and runs
// the project's commands. A missing tool fails the test with the command that builds it.
package testenv

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
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

// find returns env's value, or the newest cache entry matching glob, or fails with how to build it.
func find(t testing.TB, env, glob, build string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		if m, _ := filepath.Glob(filepath.Join(cacheDir(), glob)); len(m) > 0 {
			p = m[len(m)-1]
		}
	}
	if _, err := os.Stat(p); p == "" || err != nil {
		t.Fatalf("%s is not built: run `%s` (make test does it for you)", filepath.Base(glob), build)
	}
	return p
}

// IgnitionDir is the directory of the pinned Ignition build (ignition, ignition-apply,
// ignition-validate): $KUBEUP_IGNITION's directory, or the cache's.
func IgnitionDir(t testing.TB) string {
	t.Helper()
	return filepath.Dir(find(t, "KUBEUP_IGNITION", "kubeup/tools/ignition-*/ignition", "hack/tools.sh ignition"))
}

// ToolchainDir is the directory of the pinned Kubernetes and etcd binaries: $KUBEUP_TOOLCHAIN,
// or the cache's.
func ToolchainDir(t testing.TB) string {
	t.Helper()
	return find(t, "KUBEUP_TOOLCHAIN", "kubeup/toolchain/v*/bin", "hack/toolchain.sh")
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
