package qemu

import (
	"errors"
	"fmt"
	"os"
	"strconv"
)

// Nodes run at a lower CPU priority than the master. On a host with fewer cores than the VMs
// have vCPUs (TCG here: 6 vCPUs on 2 cores) the control plane that every node waits for must
// get the CPU first: a starved API server fails its etcd health checks, the kubelet restarts
// it, the controller-manager and scheduler lose their leases and crash-loop, and the cluster
// falls over (a fresh `make up` did, at phase 4.2, with every VM at the same priority).
//
// How low is a trade, measured on a day this host ran slowly (docs/build-notes.md): the master
// of a 3-machine cluster uses 1.1-1.7 host cores all along under TCG, so at nice 10 (a weight of
// 110 against its 1024) each node gets 0.15-0.4 of a core, boots slowly and starts its pods
// slowly. At nice 5 (weight 335: a busy master is held to 60 % of the host) one run had every
// machine Ready two to four minutes sooner, and the next lost its API server to its own probes
// while it started (four restarts, the controller-manager crash-looping). A starved node is
// slow; a starved master falls over, so the nodes stay at 10.
const nodeNice = 10

func niceOf(role string) int {
	if role == "master" {
		return 0
	}
	return nodeNice
}

// prioritize gives machine name's QEMU its CPU priority among the host's processes.
//
// A nice value alone does not do it. QEMU's -daemonize calls setsid(), and with the kernel's
// autogroup scheduling (sched_autogroup_enabled, on by default in Debian's kernels) every
// session is its own scheduling group with its own nice: the CPU is shared between the groups
// first, so each VM got an equal share whatever its threads' nice. The group's nice is set
// through /proc/PID/autogroup; on a kernel without autogroups (no such file) the threads' nice,
// set when QEMU was started, is the one that counts.
func (s *Spec) prioritize(name string, nice int) error {
	pid, ok := s.pid(name)
	if !ok {
		return fmt.Errorf("start %s: QEMU exited at once (see %s)", name, s.serialLog(name))
	}
	err := os.WriteFile(autogroupFile(pid), []byte(strconv.Itoa(nice)), 0)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("set the CPU priority of %s (pid %d): %w", name, pid, err)
	}
	return nil
}

func autogroupFile(pid int) string { return fmt.Sprintf("/proc/%d/autogroup", pid) }

// Priority reports machine name's QEMU scheduling group as the kernel shows it
// (/proc/PID/autogroup: "/autogroup-N nice K"), or "" if it does not run or the kernel has no
// autogroups.
func (s *Spec) Priority(name string) string {
	pid, ok := s.pid(name)
	if !ok {
		return ""
	}
	data, err := os.ReadFile(autogroupFile(pid))
	if err != nil {
		return ""
	}
	return string(data)
}
