//go:build e2e

package image

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/ignition"
	"kubeup.dev/kubeup/internal/machine"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/test/testenv"
)

// accel is KVM where it works, else TCG (this machine: KVM is there but hangs guests).
func accel() []string {
	if os.Getenv("KUBEUP_KVM") == "1" {
		return []string{"-accel", "kvm", "-cpu", "host"}
	}
	return []string{"-accel", "tcg,thread=multi", "-cpu", "qemu64"}
}

// etcdDisk is the blank disk the test master gets for its etcd data, as a master on AWS gets an
// EBS volume: its udev path is by the serial QEMU gives it.
const etcdDisk = "/dev/disk/by-id/virtio-kubeup-etcd"

// TestMasterBootsFromTheImage boots a master: besides phase 1, it waits for the master to
// bring up its own control plane from static pods and for its agent to bootstrap the cluster.
// The master keeps etcd's data on a second, blank disk (ignition.Options.EtcdDevice, what the
// AWS provider sets): afterwards that disk holds an ext4 filesystem with etcd's member
// directory.
func TestMasterBootsFromTheImage(t *testing.T) {
	img := testenv.ImageDir(t)
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Fatal("QEMU is not installed: apt-get install -y qemu-system-x86 qemu-utils (make e2e does it)")
	}
	dir := t.TempDir()
	cfg, err := cluster.Load("testdata/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := pki.Ensure(filepath.Join(dir, "state"), cfg, pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ignition.Generate(cfg, b, ignition.Options{OutDir: dir, EtcdDevice: etcdDisk}); err != nil {
		t.Fatal(err)
	}
	overlay := filepath.Join(dir, "overlay.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-b", filepath.Join(img, "disk.raw"), "-F", "raw", overlay).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v\n%s", err, out)
	}
	etcdImg := filepath.Join(dir, "etcd.img")
	if err := os.WriteFile(etcdImg, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(etcdImg, 1<<30); err != nil {
		t.Fatal(err)
	}
	serial := filepath.Join(dir, "serial.log")
	args := append(accel(), "-smp", "2", "-m", "2048", "-no-reboot", "-display", "none", "-monitor", "none",
		"-kernel", filepath.Join(img, "vmlinuz"), "-initrd", filepath.Join(img, "initrd.img"),
		"-append", "root=/dev/vda rw console=ttyS0 ignition.platform.id=qemu",
		"-drive", "file="+overlay+",if=virtio,format=qcow2",
		// The last PCI slot, so the root disk stays /dev/vda (the kernel names disks in probe order).
		"-drive", "file="+etcdImg+",if=none,id=etcd,format=raw", "-device", "virtio-blk-pci,drive=etcd,serial=kubeup-etcd,addr=0x1f",
		"-fw_cfg", "name=opt/com.coreos/config,file="+filepath.Join(dir, "master.ign"),
		// No network path to anything: whatever the machine needs is in the image.
		"-netdev", "user,id=n0,restrict=on", "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:10:00:10",
		// Entropy: qemu64 has no RDRAND, and early getrandom() calls stall a TCG guest without it.
		"-device", "virtio-rng-pci",
		"-serial", "file:"+serial)
	qemu := exec.Command("qemu-system-x86_64", args...)
	var qout bytes.Buffer
	qemu.Stdout, qemu.Stderr = &qout, &qout
	qemu.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := qemu.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		qemu.Process.Kill()
		qemu.Wait()
		if t.Failed() {
			data, _ := os.ReadFile(serial)
			lines := strings.Split(string(data), "\n")
			if len(lines) > 80 {
				lines = lines[len(lines)-80:]
			}
			t.Logf("qemu: %s\nlast serial lines:\n%s", qout.String(), strings.Join(lines, "\n"))
		}
	})

	// Poll the serial log for the agent's lines, with deadlines measured here: under TCG the
	// phase-1 report came ~25 s and the master's bootstrap ~90 s after power-on.
	var report machine.Phase1Report
	var ignitionOK, bootstrapped bool
	var bootstrapAt time.Duration
	scan := func() {
		f, err := os.Open(serial)
		if err != nil {
			return
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			ignitionOK = ignitionOK || strings.Contains(line, "kubeup: ignition: ok")
			if strings.Contains(line, "phase 3 Bootstrap ok") && !bootstrapped {
				bootstrapped, bootstrapAt = true, time.Since(start)
			}
			if i := strings.Index(line, machine.ReportPrefix); i >= 0 {
				if err := json.Unmarshal([]byte(line[i+len(machine.ReportPrefix):]), &report); err != nil {
					t.Fatalf("unparseable report %q: %v", line, err)
				}
			}
		}
	}
	wait := func(what string, timeout time.Duration, done func() bool) {
		deadline := time.Now().Add(timeout)
		for scan(); !done(); scan() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not seen on the serial console after %v (ignition ok: %v, phase-1 report: %v)",
					what, time.Since(start).Round(time.Second), ignitionOK, report.Machine != "")
			}
			if qemu.ProcessState != nil {
				t.Fatal("QEMU exited")
			}
			time.Sleep(2 * time.Second) // polling a file another process writes
		}
	}
	wait("the phase-1 report", 8*time.Minute, func() bool { return report.Machine != "" })
	t.Logf("phase-1 report %v after power-on (%.0f s after boot in the guest)", time.Since(start).Round(time.Second), report.Seconds)
	if !ignitionOK {
		t.Error("the initramfs never said Ignition applied the config")
	}
	want := []string{"module-overlay", "module-br_netfilter", "module-nf_conntrack", "sysctl-net.ipv4.ip_forward", "sysctl-net.bridge.bridge-nf-call-iptables",
		"cgroup-v2", "swap-off", "containerd", "images-preloaded", "test-container"}
	got := map[string]machine.Check{}
	for _, c := range report.Checks {
		got[c.Name] = c
	}
	for _, name := range want {
		if c, ok := got[name]; !ok || !c.Pass {
			t.Errorf("check %s: %+v", name, c)
		}
	}
	if report.Machine != "master" || !report.Pass {
		t.Errorf("report %+v", report)
	}
	wait("the master's control plane and bootstrap (phase 3)", 10*time.Minute, func() bool { return bootstrapped })
	t.Logf("master bootstrapped %v after power-on", bootstrapAt.Round(time.Second))

	// etcd wrote to the volume: stop the machine and read the disk from here.
	qemu.Process.Kill()
	qemu.Wait()
	out, err := exec.Command("debugfs", "-R", "ls -l /member", etcdImg).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "snap") || !strings.Contains(string(out), "wal") {
		t.Errorf("the etcd disk has no etcd member directory (debugfs: %v):\n%s", err, out)
	}
}

// TestEtcdVolumeKeepsData: the master's etcd volume is formatted by systemd-makefs, which the
// image's systemd (Debian 12's, the same as this host's) runs only on a device without a
// filesystem: a volume that holds a cluster's data is mounted as it is.
func TestEtcdVolumeKeepsData(t *testing.T) {
	const makefs = "/usr/lib/systemd/systemd-makefs"
	if _, err := os.Stat(makefs); err != nil {
		t.Fatal("no " + makefs + " here: apt-get install -y systemd e2fsprogs")
	}
	dir := t.TempDir()
	seed := filepath.Join(dir, "seed")
	os.MkdirAll(filepath.Join(seed, "member"), 0o700)
	if err := os.WriteFile(filepath.Join(seed, "member", "data"), []byte("the cluster"), 0o600); err != nil {
		t.Fatal(err)
	}
	used, blank := filepath.Join(dir, "used.img"), filepath.Join(dir, "blank.img")
	if out, err := exec.Command("mkfs.ext4", "-q", "-d", seed, used, "64M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	if err := os.WriteFile(blank, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Truncate(blank, 64<<20)
	for _, img := range []string{used, blank} {
		if out, err := exec.Command(makefs, "ext4", img).CombinedOutput(); err != nil {
			t.Fatalf("%s ext4 %s: %v\n%s", makefs, img, err, out)
		}
	}
	if out, _ := exec.Command("debugfs", "-R", "cat /member/data", used).Output(); string(out) != "the cluster" {
		t.Errorf("the volume with data was formatted again: /member/data is %q", out)
	}
	if out, err := exec.Command("blkid", "-o", "value", "-s", "TYPE", blank).Output(); err != nil || strings.TrimSpace(string(out)) != "ext4" {
		t.Errorf("the blank volume has no ext4 filesystem: %q %v", out, err)
	}
}
