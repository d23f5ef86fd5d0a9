package qemu

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadConsoleDescribesTheLatestBoot(t *testing.T) {
	s := &Spec{Dir: t.TempDir()}
	log := strings.Join([]string{
		"[    0.000000] Linux version 6.1.0-50-cloud-amd64",
		"kubeup: ignition: applying the config from platform qemu",
		"kubeup: ignition: ok",
		`[   44.7] kubeup-agent[283]: kubeup-report {"machine":"node-1","phase":"1","pass":true,"checks":[],"seconds":44.6}`,
		"[   44.8] kubeup-agent[283]: kubeup: node-1 phase 1 NodeSpec ok: 10 checks, failed: []",
		`[  190.1] kubeup-agent[283]: kubeup-timeline {"machine":"node-1","boot":"2026-12-05T10:00:00Z","steps":[{"name":"kernel","seconds":0},{"name":"ready","seconds":190}]}`,
		// A reboot: Ignition does not run again, and the old report no longer describes the boot.
		"[    0.000000] Linux version 6.1.0-50-cloud-amd64",
		"[    9.1] systemd[1]: Started kubelet.service",
	}, "\n")
	if err := os.WriteFile(s.serialLog("node-1"), []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := s.ReadConsole("node-1")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Booted || c.Boots != 2 || c.Ignition != "" || c.Phase1 != nil {
		t.Errorf("after a reboot: %+v", c)
	}
	if c.Timeline != nil {
		t.Errorf("after a reboot, the first boot's timeline: %+v", c.Timeline)
	}
	os.WriteFile(s.serialLog("node-1"), []byte(strings.Join(strings.Split(log, "\n")[:6], "\n")), 0o600)
	c, _ = s.ReadConsole("node-1")
	if c.Timeline == nil || c.Timeline.String() != "ready 190s" {
		t.Errorf("timeline: %+v", c.Timeline)
	}
	if c.Boots != 1 || c.Ignition != "ok" || c.Phase1 == nil || !c.Phase1.Pass || c.Phase1.Machine != "node-1" ||
		c.Last != "kubeup: node-1 phase 1 NodeSpec ok: 10 checks, failed: []" {
		t.Errorf("first boot: %+v", c)
	}
}

// A stale pid file must never make Down signal a process that is not this directory's QEMU.
func TestPidIgnoresOtherProcesses(t *testing.T) {
	s := &Spec{Dir: t.TempDir(), Machines: []Machine{{Name: "m"}}}
	os.WriteFile(s.pidFile("m"), []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o600)
	if s.Running("m") {
		t.Fatal("the test process was taken for machine m's QEMU")
	}
	if err := s.save(); err != nil {
		t.Fatal(err)
	}
	if err := Down(s.Dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Dir); !os.IsNotExist(err) {
		t.Errorf("Down left %s", s.Dir)
	}
	// Down of a directory Up never made does nothing, successfully.
	if err := Down(filepath.Join(t.TempDir(), "never")); err != nil {
		t.Error(err)
	}
}

func TestClustersGetTheirOwnWire(t *testing.T) {
	a, b := &Spec{Dir: "/x/.kubeup/local/qemu"}, &Spec{Dir: "/y/.kubeup/local/qemu"}
	if a.mcast() != (&Spec{Dir: a.Dir}).mcast() {
		t.Error("the multicast group is not a function of the directory")
	}
	if a.mcast() == b.mcast() {
		t.Errorf("two clusters share %s", a.mcast())
	}
	if !strings.HasPrefix(a.mcast(), "239.192.") {
		t.Errorf("group %s is not in the administratively scoped range kubeup uses", a.mcast())
	}
}

func TestImageInNamesTheMissingFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "disk.raw"), nil, 0o600)
	if _, err := ImageIn(dir); err == nil || !strings.Contains(err.Error(), "vmlinuz") || !strings.Contains(err.Error(), "make image") {
		t.Errorf("ImageIn: %v", err)
	}
}

func TestImageOfAnotherReleaseIsRefused(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"disk.raw", "vmlinuz", "initrd.img"} {
		os.WriteFile(filepath.Join(dir, f), nil, 0o600)
	}
	img, err := ImageIn(dir)
	if err != nil || img.Kubernetes != "" || img.CheckRelease(dir, "v1.37.2") != nil {
		t.Fatalf("an image that does not say its release: %+v, %v", img, err)
	}
	os.WriteFile(filepath.Join(dir, ImageReleaseFile), []byte("v1.36.3\n"), 0o644)
	if img, err = ImageIn(dir); err != nil || img.Kubernetes != "v1.36.3" {
		t.Fatalf("ImageIn: %+v, %v; want the release its directory names", img, err)
	}
	if err := img.CheckRelease(dir, "v1.36.3"); err != nil {
		t.Error(err)
	}
	err = img.CheckRelease(dir, "v1.37.2")
	if err == nil || !strings.Contains(err.Error(), "holds Kubernetes v1.36.3, and the cluster config asks for v1.37.2 (fix: KUBEUP_KUBERNETES=v1.37.2 make image") {
		t.Errorf("CheckRelease: %v", err)
	}
}
