package qemu

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// minTCGCores is the fewest host cores an emulated (TCG) cluster comes up on. Each vCPU is a
// host thread; with one core the master alone starves (its API server fails its own health
// checks and is restarted over and over). Measured here: a master and two nodes, 2 vCPUs each,
// pass every phase on 2 cores with the nodes at a lower priority.
const minTCGCores = 2

// HostCheck is what the host offers the machines of a Spec, read before any is started.
type HostCheck struct {
	Cores        int     // cores this process may run on
	MemAvailable int64   // bytes, /proc/meminfo MemAvailable
	Busy         float64 // share of the host's CPU time used by others, over the last second
}

// ReadHost reads the host's cores, free memory and load.
func ReadHost() (HostCheck, error) {
	h := HostCheck{Cores: runtime.NumCPU()}
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return h, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return h, fmt.Errorf("/proc/meminfo: MemAvailable: %w", err)
			}
			h.MemAvailable = kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		return h, err
	}
	// The load average would still count the build that just made this binary: what matters
	// is what the CPU does now.
	before, err := cpuTimes()
	if err != nil {
		return h, err
	}
	time.Sleep(time.Second) // the window over which the host's CPU use is measured
	after, err := cpuTimes()
	if err != nil {
		return h, err
	}
	if total := after.total - before.total; total > 0 {
		h.Busy = 1 - float64(after.idle-before.idle)/float64(total)
	}
	return h, nil
}

type cpuTime struct{ idle, total uint64 }

// cpuTimes reads the first line of /proc/stat: the CPU time of every core, in ticks.
func cpuTimes() (cpuTime, error) {
	var t cpuTime
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return t, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line)
	if len(fields) < 5 || fields[0] != "cpu" {
		return t, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	for i, f := range fields[1:] {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return t, fmt.Errorf("/proc/stat: %q: %w", line, err)
		}
		t.total += v
		if i == 3 || i == 4 { // idle, iowait
			t.idle += v
		}
	}
	return t, nil
}

// Fits says whether the host can run machines VMs of memory each (QEMU syntax): an error with
// the reason when it cannot (so `kubeup up` stops before writing anything rather than timing
// out half an hour later), and warnings when it can but something on the host is likely to slow
// them down.
func (h HostCheck) Fits(machines int, memory string, kvm bool) (warnings []string, err error) {
	perVM, err := MemoryBytes(memory)
	if err != nil {
		return nil, err
	}
	need := perVM * int64(machines)
	if h.MemAvailable > 0 && need > h.MemAvailable {
		return nil, fmt.Errorf("the host has %s of memory available and %d machines of %s each need %s: free memory, lower qemu.memory (at least 1G) or start fewer nodes (--num-nodes)",
			gib(h.MemAvailable), machines, memory, gib(need))
	}
	if !kvm && h.Cores < minTCGCores {
		return nil, fmt.Errorf("the host has %d core(s): an emulated (TCG) cluster needs at least %d, or the master starves and its API server is restarted again and again; use a host with more cores, or --kvm where KVM works", h.Cores, minTCGCores)
	}
	if !kvm && h.Busy > 0.25 {
		warnings = append(warnings, fmt.Sprintf("the host's CPU is %.0f%% busy with other work: the machines will share it, and an emulated control plane may be slow or fail its health checks; let that work finish first if you can", 100*h.Busy))
	}
	return warnings, nil
}

// MemoryBytes reads a QEMU memory size (-m): a number with an optional K, M, G or T suffix,
// binary units, megabytes without one.
func MemoryBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	unit := int64(1 << 20)
	if n := len(t); n > 0 {
		switch strings.ToUpper(t[n-1:]) {
		case "K":
			unit, t = 1<<10, t[:n-1]
		case "M":
			unit, t = 1<<20, t[:n-1]
		case "G":
			unit, t = 1<<30, t[:n-1]
		case "T":
			unit, t = 1<<40, t[:n-1]
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("memory size %q: want a number with K, M, G or T, e.g. 2G", s)
	}
	return int64(v * float64(unit)), nil
}

func gib(b int64) string { return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30)) }

// KVMUsable says whether this host can run the machines under KVM: /dev/kvm opens for
// reading and writing, and the CPU has hardware virtualization (vmx or svm). The second
// matters: a nested guest can have a /dev/kvm on which guests hang at boot (this project's
// own build machines do).
func KVMUsable() bool {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(data)) {
		if name, flags, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "flags" {
			for _, f := range strings.Fields(flags) {
				if f == "vmx" || f == "svm" {
					return true
				}
			}
		}
	}
	return false
}
