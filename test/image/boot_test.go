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

	"kubeup.dev/kubeup/internal/agent"
	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/ignition"
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

// TestMasterBootsFromTheImage boots a master: besides phase 1, it waits for the master to
// bring up its own control plane from static pods and for its agent to bootstrap the cluster.
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
	if _, err := ignition.Generate(cfg, b, ignition.Options{OutDir: dir}); err != nil {
		t.Fatal(err)
	}
	overlay := filepath.Join(dir, "overlay.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-b", filepath.Join(img, "disk.raw"), "-F", "raw", overlay).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v\n%s", err, out)
	}
	serial := filepath.Join(dir, "serial.log")
	args := append(accel(), "-smp", "2", "-m", "2048", "-no-reboot", "-display", "none", "-monitor", "none",
		"-kernel", filepath.Join(img, "vmlinuz"), "-initrd", filepath.Join(img, "initrd.img"),
		"-append", "root=/dev/vda rw console=ttyS0 ignition.platform.id=qemu",
		"-drive", "file="+overlay+",if=virtio,format=qcow2",
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
	var report agent.Phase1Report
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
			if i := strings.Index(line, agent.ReportPrefix); i >= 0 {
				if err := json.Unmarshal([]byte(line[i+len(agent.ReportPrefix):]), &report); err != nil {
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
	got := map[string]agent.Check{}
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
}
