package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/pki"
)

// kubeup registry login keeps a mirror's credentials in the bundle, read from standard input;
// a host the config does not name, or a password on no input, is refused and changes nothing;
// logout drops them.
func TestRegistryLoginLogout(t *testing.T) {
	src, err := os.ReadFile("../configs/local.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(src), "\nmachines:\n", "\nregistries:\n  - registry: docker.io\n    mirrors: [https://mirror.example.internal:5000]\nmachines:\n", 1)
	path := filepath.Join(t.TempDir(), "local.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := cluster.Load(path)
	if err != nil || len(cfg.Registries) != 1 {
		t.Fatalf("the config with a mirror: %v", err)
	}
	state := filepath.Join(t.TempDir(), "state")
	if _, err := pki.Ensure(state, cfg, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	run := func(stdin string, args ...string) (string, error) {
		var out bytes.Buffer
		cmd := newRootCmd()
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetIn(strings.NewReader(stdin))
		cmd.SetArgs(append(args, "--config", path, "--state", state))
		err := cmd.ExecuteContext(t.Context())
		return out.String(), err
	}
	file := filepath.Join(state, pki.RegistryAuthFile)
	for _, bad := range [][]string{
		{"registry", "login", "other.example.internal", "-u", "puller", "--password-stdin"},
		{"registry", "login", "mirror.example.internal:5000", "-u", "puller"},
		{"registry", "login", "mirror.example.internal:5000", "--password-stdin"},
	} {
		if out, err := run("s3cret\n", bad...); err == nil {
			t.Errorf("%v: no error\n%s", bad, out)
		}
	}
	if out, err := run("", "registry", "login", "mirror.example.internal:5000", "-u", "puller", "--password-stdin"); err == nil || !strings.Contains(err.Error(), "no password") {
		t.Errorf("login with nothing on standard input: %v\n%s", err, out)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("refused logins wrote %s", file)
	}

	out, err := run("s3cret\n", "registry", "login", "mirror.example.internal:5000", "-u", "puller", "--password-stdin")
	if err != nil || !strings.Contains(out, "kubeup upgrade --to "+cfg.KubernetesVersion) {
		t.Fatalf("login: %v\n%s", err, out)
	}
	b, err := pki.Load(state, cfg)
	if err != nil || b.RegistryAuth["mirror.example.internal:5000"] != (pki.RegistryCredential{Username: "puller", Password: "s3cret"}) {
		t.Fatalf("the bundle after login: %v, %+v", err, b)
	}
	if out, err := run("s3cret\n", "registry", "logout", "mirror.example.internal:5000"); err != nil || !strings.Contains(out, "dropped") {
		t.Fatalf("logout: %v\n%s", err, out)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("logout of the only mirror left %s", file)
	}
}
