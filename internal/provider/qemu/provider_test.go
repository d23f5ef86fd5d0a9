package qemu

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/ignition"
)

func TestProviderDeliversEachConfigToItsMachine(t *testing.T) {
	cfg := &cluster.Config{Name: "t", Machines: []cluster.Machine{
		{Name: "master", Role: cluster.RoleMaster, MAC: "52:54:00:aa:00:10"},
		{Name: "node-1", Role: cluster.RoleNode, MAC: "52:54:00:aa:00:11"}}}
	dir := filepath.Join(t.TempDir(), "qemu")
	p := &Provider{Config: cfg, Dir: dir}
	ctx := context.Background()
	if err := p.Deliver(ctx, nil); err == nil {
		t.Error("Deliver before Prepare: no error")
	}
	p.spec = &Spec{Dir: dir} // what Prepare makes, without a host check or an image
	configs := []ignition.Config{{Name: "master", Role: cluster.RoleMaster, Raw: []byte(`{"keys":1}`)}, {Name: "node-1", Role: cluster.RoleNode, Raw: []byte(`{}`)}}
	if err := p.Deliver(ctx, configs); err != nil {
		t.Fatal(err)
	}
	for i, m := range p.spec.Machines {
		if m.Name != cfg.Machines[i].Name || m.MAC != cfg.Machines[i].MAC || m.Ignition != filepath.Join(dir, "ignition", m.Name+".ign") {
			t.Errorf("machine %d: %+v", i, m)
		}
		fi, err := os.Stat(m.Ignition)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want 0600 (a master's config holds the CA keys)", m.Ignition, fi, err)
		}
	}
	if err := p.Deliver(ctx, []ignition.Config{{Name: "stranger"}}); err == nil || !strings.Contains(err.Error(), "names no machine") {
		t.Errorf("a config for no machine of the cluster: %v", err)
	}
}

func TestProviderReadsAClusterAnEarlierRunMade(t *testing.T) {
	dir := t.TempDir()
	s := &Spec{Dir: dir, APIPort: 40123, Machines: []Machine{{Name: "master", Role: cluster.RoleMaster}}}
	if err := s.save(); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(s.serialLog("master"), []byte("[    0.0] Linux version 6.1\nkubeup: ignition: ok\n"), 0o600)
	p := &Provider{Config: &cluster.Config{}, Dir: dir}
	ms, err := p.Machines(context.Background())
	if err != nil || len(ms) != 1 || ms[0].Running || ms[0].Console.Stage() != "config applied" {
		t.Errorf("machines: %+v %v", ms, err)
	}
	if ep, err := p.Endpoint(context.Background()); err != nil || ep != "https://127.0.0.1:40123" {
		t.Errorf("endpoint %q %v", ep, err)
	}
	if err := p.Replace(context.Background(), "node-9", ignition.Config{}); err == nil || !strings.Contains(err.Error(), `no machine "node-9"`) {
		t.Errorf("replace of an unknown machine: %v", err)
	}
	if _, err := (&Provider{Dir: filepath.Join(dir, "none")}).Machines(context.Background()); err == nil || !strings.Contains(err.Error(), "no cluster made by 'kubeup up'") {
		t.Errorf("no cluster: %v", err)
	}
}

// Replace refuses, before it stops anything, what would lose data or boot the wrong release:
// a master whose etcd data is on its root disk (made before the etcd disk), and an image of
// another release than the config's.
func TestReplaceRefusesBeforeItStopsAnything(t *testing.T) {
	dir := t.TempDir()
	s := &Spec{Dir: dir, Machines: []Machine{{Name: "master", Role: cluster.RoleMaster}, {Name: "node-1", Role: cluster.RoleNode}}}
	if err := s.save(); err != nil {
		t.Fatal(err)
	}
	cfg := &cluster.Config{KubernetesVersion: "v1.37.2"}
	p := &Provider{Config: cfg, Dir: dir}
	if err := p.Replace(context.Background(), "master", ignition.Config{}); err == nil || !strings.Contains(err.Error(), "keeps etcd's data on its root disk") {
		t.Errorf("a master without an etcd disk: %v", err)
	}
	img := t.TempDir()
	for _, f := range []string{"disk.raw", "vmlinuz", "initrd.img"} {
		os.WriteFile(filepath.Join(img, f), nil, 0o644)
	}
	os.WriteFile(filepath.Join(img, ImageReleaseFile), []byte("v1.36.3\n"), 0o644)
	p.ImageDir = img
	if err := p.Replace(context.Background(), "node-1", ignition.Config{}); err == nil || !strings.Contains(err.Error(), "holds Kubernetes v1.36.3") {
		t.Errorf("an image of another release: %v", err)
	}
	if _, err := os.Stat(s.overlay("node-1")); !os.IsNotExist(err) {
		t.Errorf("a refused Replace made a disk: %v", err)
	}
}
