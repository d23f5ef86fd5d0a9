package ignition

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coreos/ignition/v2/config/v3_4/types"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/manifests"
	"kubeup.dev/kubeup/test/testenv"
)

// TestEtcdVolumeOnTheMaster: with an etcd device, the master's config makes an ext4 filesystem
// labelled etcd on it without ever wiping one that is there, and mounts it at /var/lib/etcd
// before the kubelet (and so the etcd static pod) starts. Ignition's parser and the real
// ignition-validate accept it; node configs and configs without a device have no filesystem.
func TestEtcdVolumeOnTheMaster(t *testing.T) {
	const device = "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0"
	cfg := loadConfig(t, "aws.yaml", nil)
	dir := t.TempDir()
	outs := generate(t, cfg, Options{OutDir: dir, EtcdDevice: device})
	raw, err := os.ReadFile(outs[0].File)
	if err != nil {
		t.Fatal(err)
	}
	c, files := testenv.IgnitionFiles(t, raw) // Ignition's v3_4 parser: no error, no warning
	validate := exec.Command(filepath.Join(testenv.IgnitionDir(t), "ignition-validate"), outs[0].File)
	if out, err := validate.CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("ignition-validate: %v\n%s", err, out)
	}

	if len(c.Storage.Filesystems) != 1 {
		t.Fatalf("master filesystems %+v, want one", c.Storage.Filesystems)
	}
	fs := c.Storage.Filesystems[0]
	if fs.Device != device || deref(fs.Format) != "ext4" || deref(fs.Label) != EtcdLabel || fs.WipeFilesystem == nil || *fs.WipeFilesystem ||
		fs.Path != nil {
		t.Errorf("filesystem %+v: want ext4 labelled %s on %s, wipeFilesystem false, not mounted by Ignition", fs, EtcdLabel, device)
	}
	var mount *types.Unit
	for i, u := range c.Systemd.Units {
		if u.Name == EtcdMountUnit {
			mount = &c.Systemd.Units[i]
		}
	}
	if mount == nil || mount.Enabled == nil || !*mount.Enabled || mount.Contents == nil {
		t.Fatalf("no enabled %s in the master's config: %+v", EtcdMountUnit, c.Systemd.Units)
	}
	for _, line := range []string{"What=/dev/disk/by-label/" + EtcdLabel, "Where=" + manifests.EtcdDataDir, "Type=ext4",
		"Before=kubelet.service", "RequiredBy=kubelet.service"} {
		if !strings.Contains(*mount.Contents, line+"\n") {
			t.Errorf("%s lacks %q:\n%s", EtcdMountUnit, line, *mount.Contents)
		}
	}
	// The etcd static pod's data directory is the mount point.
	if !strings.Contains(string(files["/etc/kubernetes/manifests/etcd.yaml"]), "path: "+manifests.EtcdDataDir) {
		t.Error("the etcd static pod does not keep its data in " + manifests.EtcdDataDir)
	}

	nodes := generate(t, cfg, Options{OutDir: dir, EtcdDevice: device, Role: cluster.RoleNode})
	for _, o := range append(nodes, generate(t, cfg, Options{})...) {
		raw, _ := os.ReadFile(o.File)
		if c, _ := testenv.IgnitionFiles(t, raw); len(c.Storage.Filesystems) > 0 {
			t.Errorf("%s (%s) has filesystems %+v", o.Name, o.File, c.Storage.Filesystems)
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
