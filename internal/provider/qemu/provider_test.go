package qemu

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
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

func TestRestoreEtcdRefusesBeforeItStopsAnything(t *testing.T) {
	dir := t.TempDir()
	s := &Spec{Dir: dir, Machines: []Machine{{Name: "master", Role: cluster.RoleMaster}, {Name: "node-1", Role: cluster.RoleNode}}}
	if err := s.save(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.etcdDisk("master"), []byte("the cluster's data"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &Provider{Config: &cluster.Config{KubernetesVersion: "v1.37.2"}, Dir: dir}
	if has, err := p.HasEtcdData("master"); !has || err != nil {
		t.Errorf("HasEtcdData(master) = %v, %v; want true", has, err)
	}
	if has, err := p.HasEtcdData("node-1"); has || err != nil {
		t.Errorf("HasEtcdData(node-1) = %v, %v; want false", has, err)
	}
	if err := p.RestoreEtcd(context.Background(), "node-1", t.TempDir(), ignition.Config{}); err == nil || !strings.Contains(err.Error(), "no etcd disk") {
		t.Errorf("a restore onto a node: %v", err)
	}
	p.ImageDir = filepath.Join(t.TempDir(), "missing")
	if err := p.RestoreEtcd(context.Background(), "master", t.TempDir(), ignition.Config{}); err == nil {
		t.Errorf("a restore with a missing image was not refused")
	}
	if data, err := os.ReadFile(s.etcdDisk("master")); err != nil || string(data) != "the cluster's data" {
		t.Errorf("a refused restore touched the etcd disk: %q, %v", data, err)
	}
}

// The disk a restore makes holds the data directory's files at its root, in a qcow2 disk of
// the usual size: read back through qemu-img and debugfs, as the guest's mount would see it.
func TestEtcdDiskFromADataDirectory(t *testing.T) {
	for _, tool := range []string{"mke2fs", "debugfs", "qemu-img"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: run hack/tools.sh qemu and hack/tools.sh image-packages", tool)
		}
	}
	data := filepath.Join(t.TempDir(), "etcd")
	if err := os.MkdirAll(filepath.Join(data, "member", "snap"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "member", "snap", "db"), []byte("restored"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Spec{Dir: t.TempDir()}
	if err := os.WriteFile(s.etcdDisk("master"), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.newEtcdDiskFrom("master", data); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("qemu-img", "info", "--output=json", s.etcdDisk("master")).Output()
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Format      string `json:"format"`
		VirtualSize int64  `json:"virtual-size"`
	}
	if err := json.Unmarshal(out, &info); err != nil || info.Format != "qcow2" || info.VirtualSize != 8<<30 {
		t.Errorf("the new etcd disk: %s (%v); want a qcow2 disk of %s", out, err, etcdDiskSize)
	}
	raw := filepath.Join(t.TempDir(), "disk.raw")
	if out, err := exec.Command("qemu-img", "convert", "-O", "raw", s.etcdDisk("master"), raw).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	got, err := exec.Command("debugfs", "-R", "cat /member/snap/db", raw).Output()
	if err != nil || string(got) != "restored" {
		t.Errorf("the file on the new disk: %q, %v; want %q", got, err, "restored")
	}
	if left, _ := filepath.Glob(filepath.Join(s.Dir, "*.restore*")); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

func TestDeliveredConfigIsTheMachines(t *testing.T) {
	dir := t.TempDir()
	ign := filepath.Join(dir, "node-1.ign")
	if err := os.WriteFile(ign, []byte(`{"ignition":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Spec{Dir: dir, Machines: []Machine{{Name: "node-1", Role: cluster.RoleNode, Ignition: ign}}}
	if err := s.save(); err != nil {
		t.Fatal(err)
	}
	p := &Provider{Config: &cluster.Config{}, Dir: dir}
	if got, err := p.DeliveredConfig("node-1"); err != nil || string(got) != `{"ignition":{}}` {
		t.Errorf("DeliveredConfig(node-1) = %q, %v", got, err)
	}
	if _, err := p.DeliveredConfig("node-9"); err == nil {
		t.Error("a machine that does not exist has a config")
	}
}
