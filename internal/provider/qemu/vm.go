package qemu

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/fsutil"
)

// InstallHint is what to run when QEMU is missing.
const InstallHint = "apt-get install -y qemu-system-x86 qemu-utils"

// canStart checks that QEMU is installed and that no machine of dir still runs.
func canStart(dir string) error {
	for _, tool := range []string{"qemu-system-x86_64", "qemu-img"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed: %s", tool, InstallHint)
		}
	}
	if old, err := Load(dir); err == nil {
		for _, m := range old.Machines {
			if old.Running(m.Name) {
				return fmt.Errorf("%s is already up (machine %s runs): `kubeup status` shows it, `kubeup down` stops it", dir, m.Name)
			}
		}
	}
	return nil
}

// Up makes the directory, an overlay per machine and starts every machine. It refuses to
// start over a directory whose machines still run: `kubeup down` first.
func Up(s *Spec) error {
	if err := canStart(s.Dir); err != nil {
		return err
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return err
	}
	if s.APIPort == 0 && s.Netboot == nil {
		p, err := freePort()
		if err != nil {
			return err
		}
		s.APIPort = p
	}
	if err := s.save(); err != nil {
		return err
	}
	for _, m := range s.Machines {
		os.Remove(s.overlay(m.Name))
		os.Remove(s.etcdDisk(m.Name))
		os.Remove(s.serialLog(m.Name))
		if s.Netboot != nil {
			if err := s.addTap(m.Name); err != nil {
				return err
			}
		} else if err := s.newOverlay(m); err != nil {
			return err
		}
		if s.hasEtcdDisk(m) {
			if err := s.newEtcdDisk(m.Name); err != nil {
				return err
			}
		}
		if err := s.start(m); err != nil {
			return err
		}
	}
	return nil
}

// newOverlay makes machine m's root disk: a copy-on-write overlay of its image.
func (s *Spec) newOverlay(m Machine) error {
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-b", s.imageOf(m).Disk, "-F", "raw", s.overlay(m.Name)).CombinedOutput(); err != nil {
		return fmt.Errorf("overlay for %s: %v: %s", m.Name, err, bytes.TrimSpace(out))
	}
	return nil
}

// hasEtcdDisk says whether machine m has a disk of its own for etcd's data: the master of a
// cluster booted from disks. Its root can then be replaced (a new image, a new config) while
// etcd's data stays, as an upgrade needs. A network-booted machine has no disk at all.
func (s *Spec) hasEtcdDisk(m Machine) bool {
	return m.Role == cluster.RoleMaster && s.Netboot == nil
}

// newEtcdDisk makes machine name's empty etcd disk; its config formats it on first boot.
func (s *Spec) newEtcdDisk(name string) error {
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", s.etcdDisk(name), etcdDiskSize).CombinedOutput(); err != nil {
		return fmt.Errorf("etcd disk for %s: %v: %s", name, err, bytes.TrimSpace(out))
	}
	return nil
}

// start launches one machine's QEMU, which daemonizes once the VM runs: the machines outlive
// the command that started them, as a cluster should.
func (s *Spec) start(m Machine) error {
	args := s.args(m)
	os.Remove(s.pidFile(m.Name))
	nice := niceOf(m.Role)
	cmd := exec.Command("nice", append([]string{"-n", strconv.Itoa(nice), "qemu-system-x86_64"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("start %s: %v: %s", m.Name, err, bytes.TrimSpace(out))
	}
	return s.prioritize(m.Name, nice)
}

// args are machine m's QEMU arguments.
func (s *Spec) args(m Machine) []string {
	accel := []string{"-accel", "tcg,thread=multi", "-cpu", "qemu64"}
	// No tsc=reliable under TCG: a guest starved while it calibrates its TSC against the PIT
	// can take it for a tenth of its rate (seen: "Detected 283.233 MHz processor" for 2600), and
	// the kernel keeps such a value. Trusted, that TSC made the guest's clock run nine times too
	// fast: every timeout fired early, and the node never became Ready. Without the flag the
	// kernel's watchdog checks the TSC against the HPET and falls back to it.
	cmdline := "root=/dev/vda rw console=ttyS0 ignition.platform.id=qemu"
	if s.KVM {
		accel = []string{"-accel", "kvm", "-cpu", "host"}
	}
	args := append(accel,
		"-name", "kubeup-"+m.Name, "-smp", strconv.Itoa(s.CPUs), "-m", s.Memory,
		"-display", "none", "-monitor", "none", "-daemonize", "-pidfile", s.pidFile(m.Name),
		"-qmp", "unix:"+s.qmpSocket(m.Name)+",server=on,wait=off",
		// Entropy: qemu64 has no RDRAND, and early getrandom() calls stall a TCG guest without it.
		"-device", "virtio-rng-pci",
		// Appending keeps the log of earlier boots across a power cycle.
		"-chardev", "file,id=serial,path="+s.serialLog(m.Name)+",append=on", "-serial", "chardev:serial")
	if s.Netboot != nil {
		// No disk, no kernel, no config: the NIC's iPXE ROM asks DHCP on the bridge and boots
		// what the boot server says.
		args = append(args, "-boot", "n",
			"-netdev", "tap,id=cluster,ifname="+s.tap(m.Name)+",script=no,downscript=no",
			"-device", netbootNIC+",netdev=cluster,mac="+m.MAC+",romfile="+iPXEROM+",bootindex=1")
	} else {
		img := s.imageOf(m)
		args = append(args,
			"-kernel", img.Kernel, "-initrd", img.Initrd,
			"-append", cmdline,
			// The root disk as an explicit device, before the etcd disk's: QEMU adds if=virtio
			// drives after every -device, so a root given that way would come second, as vdb.
			// cache=unsafe: the guest's flushes do not reach the host disk. etcd flushes on every
			// write, and with three VMs on one host disk that made the API server time out for
			// minutes (a network-booted cluster, whose disk is RAM, came up in half the time).
			// The overlay is thrown away with the VM; only a host crash could lose what a flush
			// would have kept, and then the VM is gone too. Power cycles stop QEMU cleanly first.
			"-drive", "file="+s.overlay(m.Name)+",if=none,id=root,format=qcow2,cache=unsafe",
			"-device", "virtio-blk-pci,drive=root",
			"-fw_cfg", "name="+fwCfgName+",file="+m.Ignition,
			// The cluster's wire: every VM on one multicast group, on loopback only.
			"-netdev", "socket,id=cluster,mcast="+s.mcast()+",localaddr=127.0.0.1",
			"-device", "virtio-net-pci,netdev=cluster,mac="+m.MAC)
	}
	if s.hasEtcdDisk(m) {
		// cache=unsafe as the root disk: the disk outlives a replaced root, not the host.
		args = append(args, "-drive", "file="+s.etcdDisk(m.Name)+",if=none,id=etcd,format=qcow2,cache=unsafe",
			"-device", "virtio-blk-pci,drive=etcd,serial="+EtcdSerial)
	}
	if s.Netboot == nil && (m.Role == cluster.RoleMaster || len(s.HostForwards) > 0) {
		// A second NIC on QEMU's user network, restricted (no way out): on the master to
		// forward the API port to the host, and on every machine to reach the host services
		// the config names (a registry mirror), each at its guest address, on loopback only.
		user := "user,id=host,restrict=on"
		if m.Role == cluster.RoleMaster {
			user += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:6443", s.APIPort)
		}
		for _, f := range s.HostForwards {
			// A command per connection (cmd:), not a character device, which QEMU opens once
			// and every connection would share. -N closes the host side when the guest's does.
			host, port, _ := net.SplitHostPort(f.Host)
			user += ",guestfwd=tcp:" + f.Guest + "-cmd:" + cmp.Or(s.Netcat, "nc") + " -N " + host + " " + port
		}
		args = append(args, "-netdev", user, "-device", "virtio-net-pci,netdev=host,mac=52:54:00:ff:00:01")
	}
	return args
}

// Load reads the state of a directory Up made.
func Load(dir string) (*Spec, error) {
	data, err := os.ReadFile(dir + "/state.json")
	if err != nil {
		return nil, err
	}
	var s Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s/state.json: %w", dir, err)
	}
	return &s, nil
}

func (s *Spec) save() error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.ReplaceFile(s.stateFile(), append(data, '\n'), 0o600)
}

// pid is the process of machine name if it runs and is the QEMU this directory started (its
// command line names our pid file): a stale pid file never makes us signal someone else.
func (s *Spec) pid(name string) (int, bool) {
	data, err := os.ReadFile(s.pidFile(name))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte(s.pidFile(name))) {
		return 0, false
	}
	return pid, true
}

// Running says whether machine name's QEMU runs.
func (s *Spec) Running(name string) bool {
	_, ok := s.pid(name)
	return ok
}

// stop ends machine name's QEMU: the power is cut, as on a real machine's switch.
func (s *Spec) stop(name string) error {
	pid, ok := s.pid(name)
	if !ok {
		return nil
	}
	p, _ := os.FindProcess(pid)
	p.Signal(syscall.SIGTERM)
	kill := time.Now().Add(15 * time.Second) // SIGKILL from then on
	// Waiting for another process to exit.
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 25*time.Second, true, func(context.Context) (bool, error) {
		if !s.Running(name) {
			return true, nil
		}
		if time.Now().After(kill) {
			p.Signal(syscall.SIGKILL)
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("QEMU of %s (pid %d) does not exit", name, pid)
	}
	return nil
}

// PowerCycle cuts machine name's power and turns it on again with the same disk.
func (s *Spec) PowerCycle(name string) error {
	m, ok := s.Machine(name)
	if !ok {
		return fmt.Errorf("no machine %q in %s", name, s.Dir)
	}
	if err := s.stop(name); err != nil {
		return err
	}
	return s.start(m)
}

// Destroy cuts machine name's power and deletes its disks (its root and, on the master, its
// etcd disk): what a machine lost with its storage leaves behind. A test's fault; the
// machine stays in the state file, to be brought back (RestoreEtcd, Replace).
func (s *Spec) Destroy(name string) error {
	if _, ok := s.Machine(name); !ok {
		return fmt.Errorf("no machine %q in %s", name, s.Dir)
	}
	if err := s.stop(name); err != nil {
		return err
	}
	for _, f := range []string{s.overlay(name), s.etcdDisk(name)} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// newEtcdDiskFrom makes machine name's etcd disk holding dataDir's files at its root (an etcd
// data directory, restored from a snapshot) in place of the disk it has, if any. The
// filesystem is made on the host (mke2fs -d, no root needed), so the config's mkfs unit finds
// a filesystem and leaves it alone, as on a kept disk. The old disk is replaced only once the
// new one is whole.
func (s *Spec) newEtcdDiskFrom(name, dataDir string) error {
	raw := s.etcdDisk(name) + ".restore.raw"
	next := s.etcdDisk(name) + ".restore"
	defer os.Remove(raw)
	defer os.Remove(next)
	os.Remove(raw)
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-d", dataDir, raw, etcdDiskSize).CombinedOutput(); err != nil {
		return fmt.Errorf("etcd disk for %s from %s: mke2fs: %v: %s (fix: apt-get install e2fsprogs)", name, dataDir, err, bytes.TrimSpace(out))
	}
	if out, err := exec.Command("qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", raw, next).CombinedOutput(); err != nil {
		return fmt.Errorf("etcd disk for %s: %v: %s", name, err, bytes.TrimSpace(out))
	}
	return os.Rename(next, s.etcdDisk(name))
}

// Down stops every machine and removes the directory Up made, and nothing else.
func Down(dir string) error {
	s, err := Load(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	var errs []error
	for _, m := range s.Machines {
		errs = append(errs, s.stop(m.Name))
		if s.Netboot != nil {
			errs = append(errs, s.deleteTap(m.Name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
