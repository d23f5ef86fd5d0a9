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

// TestEtcdVolumeOnTheMaster: with an etcd device, the master's config has systemd make an ext4
// filesystem on it only if it has none (systemd-makefs, after waiting up to 10 minutes for the
// device) and mount it at /var/lib/etcd before the kubelet (and so the etcd static pod) starts.
// Ignition's parser and the real ignition-validate accept it; node configs and configs without
// a device have none of it. test/image boots it on a blank disk and on one with data.
func TestEtcdVolumeOnTheMaster(t *testing.T) {
	const device = "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0"
	const devUnit = `dev-disk-by\x2did-nvme\x2dAmazon_Elastic_Block_Store_vol0123456789abcdef0.device`
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
	if len(c.Storage.Filesystems) != 0 {
		t.Errorf("Ignition's disks stage does not run on every image: filesystems %+v", c.Storage.Filesystems)
	}
	units := map[string]types.Unit{}
	for _, u := range c.Systemd.Units {
		units[u.Name] = u
	}
	want := map[string][]string{
		EtcdMountUnit: {"What=" + device, "Where=" + manifests.EtcdDataDir, "Type=ext4", "Requires=" + EtcdMkfsUnit,
			"After=" + EtcdMkfsUnit, "Before=kubelet.service", "RequiredBy=kubelet.service"},
		EtcdMkfsUnit: {"Requires=" + devUnit, "After=" + devUnit, "Before=" + EtcdMountUnit,
			"ExecStart=/usr/lib/systemd/systemd-makefs ext4 " + device},
	}
	for name, lines := range want {
		u, ok := units[name]
		if !ok || u.Contents == nil {
			t.Errorf("no %s in the master's config", name)
			continue
		}
		for _, line := range lines {
			if !strings.Contains(*u.Contents, line+"\n") {
				t.Errorf("%s lacks %q:\n%s", name, line, *u.Contents)
			}
		}
	}
	if u := units[EtcdMountUnit]; u.Enabled == nil || !*u.Enabled {
		t.Errorf("%s is not enabled", EtcdMountUnit)
	}
	if timeout := string(files["/etc/systemd/system/"+devUnit+".d/10-kubeup-timeout.conf"]); !strings.Contains(timeout, "JobRunningTimeoutSec=10min\n") {
		t.Errorf("the device's wait is not 10 minutes: %q", timeout)
	}
	// The etcd static pod's data directory is the mount point.
	if !strings.Contains(string(files["/etc/kubernetes/manifests/etcd.yaml"]), "path: "+manifests.EtcdDataDir) {
		t.Error("the etcd static pod does not keep its data in " + manifests.EtcdDataDir)
	}

	nodes := generate(t, cfg, Options{OutDir: dir, EtcdDevice: device, Role: cluster.RoleNode})
	for _, o := range append(nodes, generate(t, cfg, Options{})...) {
		raw, _ := os.ReadFile(o.File)
		c, _ := testenv.IgnitionFiles(t, raw)
		for _, u := range c.Systemd.Units {
			if u.Name == EtcdMountUnit || u.Name == EtcdMkfsUnit {
				t.Errorf("%s (%s) has %s", o.Name, o.File, u.Name)
			}
		}
	}
}
