package cluster

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func exampleConfigs(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob("../../configs/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func readFile(t testing.TB, file string) []byte {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// Every example config loads without a problem, and its name is its file name.
func TestExampleConfigs(t *testing.T) {
	files := exampleConfigs(t)
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".yaml"))
	}
	if want := []string{"aws", "local", "metal", "vsphere"}; !slices.Equal(names, want) {
		t.Errorf("configs/ holds %q, want %q", names, want)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			c, err := Load(file)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.Name != name || c.Target != name && !(name == "local" && c.Target == TargetQEMU) {
				t.Errorf("name %q, target %q", c.Name, c.Target)
			}
			if probs := c.Validate(file); len(probs) > 0 {
				t.Errorf("re-validation: %v", probs)
			}
			if c.Master() == nil || !c.Master().IP().IsValid() {
				t.Errorf("no master with an address")
			}
		})
	}
}

func TestExampleConfigValues(t *testing.T) {
	load := func(name string) *Config {
		c, err := Load("../../configs/" + name + ".yaml")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return c
	}
	local := load("local")
	if local.EndpointURL() != "https://10.10.0.10:6443" || len(local.Machines) != 3 || local.QEMU.Network != "10.10.0.0/24" {
		t.Errorf("local: %+v", local)
	}
	metal := load("metal")
	if metal.EndpointURL() != "https://k8s.example.internal:6443" || metal.OS != "debian" {
		t.Errorf("metal: %+v", metal)
	}
	if cfg, err := TranslateButane(metal.Butane.Node); err != nil || len(cfg.Storage.Files) != 1 || cfg.Storage.Files[0].Path != "/etc/motd" {
		t.Errorf("metal node snippet: %v, %+v", err, cfg.Storage.Files)
	}
	aws := load("aws")
	if aws.QEMU != nil || aws.AWS.Region != "eu-west-1" || !strings.HasPrefix(aws.AWS.ConfigURL, "s3://") {
		t.Errorf("aws: %+v %+v", aws, aws.AWS)
	}
	if vs := load("vsphere"); vs.VSphere.Template != "kubeup-debian" || vs.QEMU != nil {
		t.Errorf("vsphere: %+v", vs)
	}
}
