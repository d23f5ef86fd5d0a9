package rootfs

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/chroot"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"k8s.io/apimachinery/pkg/util/wait"

	"kubeup.dev/kubeup/internal/machine"
)

// halt records err for Run and stops the build.
func halt(state multistep.StateBag, err error) multistep.StepAction {
	state.Put("error", err)
	state.Get("ui").(packersdk.Ui).Error(err.Error())
	return multistep.ActionHalt
}

// stepRootfs makes the working root filesystem: a copy of the cached debootstrap base, which
// is made first when missing.
type stepRootfs struct {
	config *Config
	work   string
	root   string // bound onto itself
}

func (s *stepRootfs) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	base := s.config.baseDir()
	if _, err := os.Stat(filepath.Join(base, ".done")); err != nil {
		ui.Say(fmt.Sprintf("debootstrap %s from %s into %s (2-3 minutes; cached after)", s.config.Suite, s.config.Mirror, base))
		if err := debootstrap(ctx, s.config, base); err != nil {
			return halt(state, err)
		}
	} else {
		ui.Say("using the cached debootstrap base " + base)
	}
	work, err := os.MkdirTemp(s.config.CacheDirectory, ".work-")
	if err != nil {
		return halt(state, err)
	}
	s.work = work
	root := filepath.Join(work, "rootfs")
	if err := command(ctx, "cp", "-a", base, root); err != nil {
		return halt(state, err)
	}
	os.Remove(filepath.Join(root, ".done"))
	// The root is made a mount point of its own: runc makes a container's root private with
	// mount("/", MS_REC|MS_SLAVE), which fails with EINVAL where / is a plain directory.
	if err := command(ctx, "mount", "--bind", root, root); err != nil {
		return halt(state, err)
	}
	s.root = root
	state.Put("mount_path", root)
	return multistep.ActionContinue
}

// Cleanup removes the working tree, unless something is still mounted in it: removing a tree
// with the host's /dev bound inside would remove the host's device nodes.
func (s *stepRootfs) Cleanup(state multistep.StateBag) {
	if s.work == "" {
		return
	}
	ui := state.Get("ui").(packersdk.Ui)
	if s.root != "" {
		if err := killChrootProcesses(s.root); err != nil {
			ui.Error(err.Error())
		}
		if err := command(context.Background(), "umount", s.root); err != nil {
			ui.Error(err.Error())
		}
	}
	if m := mountsUnder(s.work); len(m) > 0 {
		ui.Error(fmt.Sprintf("not removing %s: still mounted there: %v", s.work, m))
		return
	}
	if err := os.RemoveAll(s.work); err != nil {
		ui.Error(err.Error())
	}
}

// debootstrap makes the base in a temporary directory next to dir and renames it into place,
// so an interrupted run leaves nothing that looks finished.
func debootstrap(ctx context.Context, c *Config, dir string) error {
	if err := os.MkdirAll(c.CacheDirectory, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(c.CacheDirectory, ".base-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "rootfs")
	var log bytes.Buffer
	cmd := exec.CommandContext(ctx, "debootstrap", "--variant=minbase", "--include="+strings.Join(c.Packages, ","), c.Suite, out, c.Mirror)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("debootstrap %s %s: %w; its last lines:\n%s", c.Suite, c.Mirror, err, tail(log.String(), 30))
	}
	// Downloaded packages and apt's lists: not needed on a machine that never runs apt.
	for _, g := range []string{"var/cache/apt/archives/*.deb", "var/lib/apt/lists/*"} {
		m, _ := filepath.Glob(filepath.Join(out, g))
		for _, f := range m {
			os.RemoveAll(f)
		}
	}
	if err := os.WriteFile(filepath.Join(out, ".done"), nil, 0o644); err != nil {
		return err
	}
	os.RemoveAll(dir)
	return os.Rename(out, dir)
}

// stepUnmount unmounts the chroot's filesystems before the disk image is written, so none of
// /proc, /sys or /dev ends up in it.
type stepUnmount struct{ mounts *stepMount }

func (s *stepUnmount) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	root := state.Get("mount_path").(string)
	if err := killChrootProcesses(root); err != nil {
		return halt(state, err)
	}
	if err := s.mounts.unmount(); err != nil {
		return halt(state, err)
	}
	if m := mountsUnder(root + "/"); len(m) > 0 {
		return halt(state, fmt.Errorf("still mounted in the root filesystem after unmounting: %v", m))
	}
	return multistep.ActionContinue
}

func (s *stepUnmount) Cleanup(multistep.StateBag) {}

// stepMount mounts the chroot's filesystems (Config.ChrootMounts) in order and unmounts them in
// reverse. Type bind binds a host path, rbind binds it with everything mounted below it (the
// host's cgroup hierarchy, v1 or v2, whose controllers a freshly mounted cgroup2 may not have),
// anything else is a filesystem type.
type stepMount struct {
	mounts [][]string
	done   []string
}

func (s *stepMount) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	root := state.Get("mount_path").(string)
	for _, m := range s.mounts {
		typ, dev, at := m[0], m[1], filepath.Join(root, m[2])
		if err := os.MkdirAll(at, 0o755); err != nil {
			return halt(state, err)
		}
		args := []string{"-t", typ, dev, at}
		switch typ {
		case "bind", "rbind":
			args = []string{"--" + typ, dev, at}
		}
		ui.Say(fmt.Sprintf("mounting %s (%s %s)", m[2], typ, dev))
		if err := command(ctx, "mount", args...); err != nil {
			return halt(state, err)
		}
		s.done = append(s.done, at)
	}
	return multistep.ActionContinue
}

// unmount takes the mounts down, last first, with everything below each.
func (s *stepMount) unmount() error {
	for len(s.done) > 0 {
		at := s.done[len(s.done)-1]
		if len(mountsUnder(at)) > 0 {
			if err := command(context.Background(), "umount", "-R", at); err != nil {
				return err
			}
		}
		s.done = s.done[:len(s.done)-1]
	}
	return nil
}

func (s *stepMount) Cleanup(state multistep.StateBag) {
	if err := s.unmount(); err != nil {
		state.Get("ui").(packersdk.Ui).Error(err.Error())
	}
}

// stepProvision runs the template's provisioners in the chroot (the SDK's step) and, whether
// they succeed or fail, stops whatever they left running in it (a containerd shim, a daemon a
// package started), so the chroot's filesystems can be unmounted.
type stepProvision struct{ chroot.StepChrootProvision }

func (s *stepProvision) Cleanup(state multistep.StateBag) {
	if err := killChrootProcesses(state.Get("mount_path").(string)); err != nil {
		state.Get("ui").(packersdk.Ui).Error(err.Error())
	}
}

// killChrootProcesses kills every process whose root directory is root or below it, and
// waits for them to be gone.
func killChrootProcesses(root string) error {
	var left []string
	// Every 100 ms for 10 s: kill what is left and see whether anything still is.
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		left = nil
		procs, _ := filepath.Glob("/proc/[0-9]*")
		for _, p := range procs {
			r, err := os.Readlink(filepath.Join(p, "root"))
			if err != nil || (r != root && !strings.HasPrefix(r, root+"/")) {
				continue
			}
			pid, _ := strconv.Atoi(filepath.Base(p))
			syscall.Kill(pid, syscall.SIGKILL)
			left = append(left, filepath.Base(p))
		}
		return len(left) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("processes still running in %s after SIGKILL: %v", root, left)
	}
	return nil
}

// stepDisk writes the kernel, the initramfs and the ext4 disk image made from the tree.
type stepDisk struct{ config *Config }

func (s *stepDisk) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	ui := state.Get("ui").(packersdk.Ui)
	root := state.Get("mount_path").(string)
	out := s.config.OutputDirectory
	for name, src := range map[string]string{"vmlinuz": "vmlinuz", "initrd.img": "initrd.img"} {
		p, err := machine.ResolveIn(root, src)
		if err == nil {
			err = copyFile(p, filepath.Join(out, name))
		}
		if err != nil {
			return halt(state, fmt.Errorf("%s from the root filesystem: %w (is a kernel package in packages?)", name, err))
		}
	}
	ui.Say(fmt.Sprintf("writing the ext4 disk image (%s, sparse)", s.config.DiskSize))
	disk := filepath.Join(out, "disk.raw")
	if err := command(ctx, "truncate", "-s", s.config.DiskSize, disk); err != nil {
		return halt(state, err)
	}
	if err := command(ctx, "mkfs.ext4", "-q", "-L", s.config.VolumeLabel, "-d", root, disk); err != nil {
		return halt(state, fmt.Errorf("%w (is disk_size %s big enough?)", err, s.config.DiskSize))
	}
	files := []string{disk, filepath.Join(out, "vmlinuz"), filepath.Join(out, "initrd.img")}
	if s.config.NetbootImage {
		ui.Say("writing rootfs.img for network boot (an ext4 image sized to its contents)")
		img := filepath.Join(out, "rootfs.img")
		if err := netbootImage(ctx, root, img, s.config.VolumeLabel); err != nil {
			return halt(state, err)
		}
		files = append(files, img)
	}
	state.Put("image_files", files)
	return multistep.ActionContinue
}

// netbootImage writes the tree as a second ext4 image sized to its contents (a tenth spare, and
// room for its inodes): what a network-booted machine downloads into RAM and grows there.
// Shrinking the 6G disk image instead (resize2fs -M) keeps twice the size: its inode tables and
// journal are sized for 6G.
func netbootImage(ctx context.Context, root, img, label string) error {
	out, err := exec.CommandContext(ctx, "du", "-s", "-B1", "--one-file-system", root).Output()
	if err != nil {
		return fmt.Errorf("du %s: %w", root, err)
	}
	used, _ := strconv.ParseInt(strings.Fields(string(out))[0], 10, 64)
	out, err = exec.CommandContext(ctx, "du", "-s", "--inodes", "--one-file-system", root).Output()
	if err != nil {
		return fmt.Errorf("du --inodes %s: %w", root, err)
	}
	inodes, _ := strconv.ParseInt(strings.Fields(string(out))[0], 10, 64)
	size := (used + used/10 + inodes*256 + 64<<20) >> 20 << 20
	for range 3 { // mkfs -d says when it runs out of space: then a quarter more
		os.Remove(img)
		if err := command(ctx, "truncate", "-s", strconv.FormatInt(size, 10), img); err != nil {
			return err
		}
		err = command(ctx, "mkfs.ext4", "-q", "-L", label, "-N", strconv.FormatInt(inodes+inodes/5+1024, 10), "-J", "size=32", "-d", root, img)
		if err == nil {
			return nil
		}
		size += size / 4
	}
	return err
}

func (s *stepDisk) Cleanup(multistep.StateBag) {}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// command runs a host command, its output in the error when it fails.
func command(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, tail(string(out), 20))
	}
	return nil
}

// mountsUnder lists the mount points at or below dir.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return nil
	}
	defer f.Close()
	var m []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fields := strings.Fields(s.Text()); len(fields) > 1 && (fields[1] == dir || strings.HasPrefix(fields[1], dir+"/")) {
			m = append(m, fields[1])
		}
	}
	return m
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
