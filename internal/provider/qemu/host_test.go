package qemu

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestFitsRefusesAHostTooSmall(t *testing.T) {
	roomy := HostCheck{Cores: 2, MemAvailable: 20 << 30}
	if w, err := roomy.Fits(3, "2G", false); err != nil || len(w) != 0 {
		t.Errorf("2 cores, 20 GiB: %v %v", w, err)
	}
	for name, tc := range map[string]struct {
		h    HostCheck
		want string
	}{
		"memory":   {HostCheck{Cores: 2, MemAvailable: 5 << 30}, "lower qemu.memory"},
		"one core": {HostCheck{Cores: 1, MemAvailable: 20 << 30}, "at least 2"},
	} {
		if _, err := tc.h.Fits(3, "2G", false); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.want)
		}
	}
	busy := HostCheck{Cores: 2, MemAvailable: 20 << 30, Busy: 0.9}
	if w, err := busy.Fits(3, "2G", false); err != nil || len(w) != 1 || !strings.Contains(w[0], "90% busy") {
		t.Errorf("a busy host: %v %v", w, err)
	}
	if w, err := (HostCheck{Cores: 1, MemAvailable: 20 << 30, Busy: 0.9}).Fits(3, "2G", true); err != nil || len(w) != 0 {
		t.Errorf("KVM on one busy core: %v %v", w, err)
	}
	if _, err := roomy.Fits(1, "lots", false); err == nil {
		t.Error("a memory size that is not one was taken")
	}
}

func TestReadHost(t *testing.T) {
	h, err := ReadHost()
	if err != nil {
		t.Fatal(err)
	}
	if h.Cores < 1 || h.MemAvailable <= 0 || h.Busy < 0 || h.Busy > 1 {
		t.Errorf("%+v", h)
	}
}

func TestMemoryBytes(t *testing.T) {
	for in, want := range map[string]int64{"2G": 2 << 30, "512M": 512 << 20, "1.5g": 3 << 29, "2048": 2 << 30, "1T": 1 << 40} {
		if got, err := MemoryBytes(in); err != nil || got != want {
			t.Errorf("%q: %d %v, want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "G", "-1G", "two"} {
		if _, err := MemoryBytes(in); err == nil {
			t.Errorf("%q taken", in)
		}
	}
}

// A daemonized QEMU is the leader of its own session, so with autogroup scheduling it is its own
// scheduling group: prioritize must set the group's nice, or a node's nice counts for nothing
// against the master.
func TestPrioritizeSetsTheSessionsPriority(t *testing.T) {
	if niceOf("master") != 0 || niceOf("node") != nodeNice {
		t.Fatalf("master %d, node %d", niceOf("master"), niceOf("node"))
	}
	s := &Spec{Dir: t.TempDir(), Machines: []Machine{{Name: "node-1", Role: "node"}}}
	// A stand-in for QEMU: a session leader whose command line names the pid file, and which
	// writes the pid file itself once it runs, as QEMU does.
	cmd := exec.Command("sh", "-c", `echo $$ >"$0"; read x`, s.pidFile("node-1"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for !s.Running("node-1") {
		if time.Now().After(deadline) {
			t.Fatal("the stand-in did not write its pid file within 10s")
		}
		time.Sleep(10 * time.Millisecond) // polling for another process, with a deadline
	}
	if err := s.prioritize("node-1", nodeNice); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(autogroupFile(cmd.Process.Pid)); errors.Is(err, os.ErrNotExist) {
		t.Logf("this kernel has no autogroups: the threads' nice alone counts, and prioritize left it")
		return
	}
	if got := s.Priority("node-1"); !strings.HasSuffix(strings.TrimSpace(got), fmt.Sprintf("nice %d", nodeNice)) {
		t.Errorf("node-1's scheduling group: %q, want nice %d", got, nodeNice)
	}
	if err := s.prioritize("node-2", nodeNice); err == nil {
		t.Error("prioritize of a machine that does not run succeeded")
	}
}

func TestKVMUsableNeedsHardwareVirtualization(t *testing.T) {
	cpuinfo, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Fatal(err)
	}
	hw := strings.Contains(string(cpuinfo), " vmx") || strings.Contains(string(cpuinfo), " svm")
	if !hw && KVMUsable() {
		t.Error("KVM taken as usable on a CPU without vmx or svm")
	}
	t.Logf("this host: vmx/svm %v, KVM usable %v", hw, KVMUsable())
}
