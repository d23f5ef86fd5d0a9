package ignition

import (
	"os"
	"testing"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/pki"
)

// loadConfig reads a config from configs/, optionally edited, and fails the test on problems.
func loadConfig(t testing.TB, name string, edit func(string) string) *cluster.Config {
	t.Helper()
	src, err := os.ReadFile("../../configs/" + name)
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	if edit != nil {
		s = edit(s)
	}
	cfg, err := cluster.Parse(name, []byte(s))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

func newBundle(t testing.TB, cfg *cluster.Config) *pki.Bundle {
	t.Helper()
	b, err := pki.Ensure(t.TempDir(), cfg, pki.Options{})
	if err != nil {
		t.Fatalf("bundle: %v", err)
	}
	return b
}
