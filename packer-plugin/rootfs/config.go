//go:generate go tool packer-sdc mapstructure-to-hcl2 -type Config

package rootfs

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/common"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"
)

// Config is the builder's block in a template.
type Config struct {
	common.PackerConfig `mapstructure:",squash"`

	// The Debian release. Default `bookworm`.
	Suite string `mapstructure:"suite"`
	// The Debian mirror debootstrap reads. Default: the build host's own apt source
	// (/etc/apt/sources.list.d/debian.sources), else http://deb.debian.org/debian.
	Mirror string `mapstructure:"mirror"`
	// Packages debootstrap installs over its minbase variant. The default is what a kubeup
	// machine needs: systemd, udev, iproute2, ping, iptables (the portmap CNI plugin runs it for
	// hostPorts), Debian's containerd and runc (for their unit
	// and runc; kubeup-node replaces containerd's binaries), CA certificates, the cloud kernel,
	// kmod, procps, initramfs-tools and busybox (the initramfs's wget, for network boot).
	Packages []string `mapstructure:"packages"`
	// Where debootstrap's result is cached between builds. Default
	// `$XDG_CACHE_HOME/kubeup/image` (`~/.cache/kubeup/image`).
	CacheDirectory string `mapstructure:"cache_directory"`
	// Where the image is written: disk.raw, vmlinuz, initrd.img. Default `output-<build name>`.
	OutputDirectory string `mapstructure:"output_directory"`
	// The size of the (sparse) disk image, as truncate(1) takes it. Default `6G`.
	DiskSize string `mapstructure:"disk_size"`
	// The root filesystem's label. Default `kubeup-root`.
	VolumeLabel string `mapstructure:"volume_label"`
	// Also write rootfs.img, the same filesystem shrunk to its contents, for network boot
	// (the initramfs fetches it, grows it in RAM and mounts it).
	NetbootImage bool `mapstructure:"netboot_image"`
	// Filesystems mounted in the chroot while provisioners run, as [type, device, path]; `bind`
	// binds a host path, `rbind` with everything mounted below it. Default: proc, sysfs, the
	// host's cgroup hierarchy (kubeup-node runs a test container), /dev, devpts and a tmpfs on
	// /run.
	ChrootMounts [][]string `mapstructure:"chroot_mounts"`

	ctx interpolate.Context
}

// DefaultPackages is what debootstrap installs by default.
var DefaultPackages = []string{"systemd", "systemd-sysv", "udev", "iproute2", "iputils-ping", "iptables", "containerd", "runc",
	"ca-certificates", "linux-image-cloud-amd64", "kmod", "procps", "initramfs-tools", "busybox"}

var diskSize = regexp.MustCompile(`^[0-9]+[KMGT]?$`)

func (c *Config) prepare(raws ...any) error {
	if err := config.Decode(c, &config.DecodeOpts{PluginType: BuilderID, Interpolate: true, InterpolateContext: &c.ctx}, raws...); err != nil {
		return err
	}
	if c.Suite == "" {
		c.Suite = "bookworm"
	}
	if c.Mirror == "" {
		c.Mirror = hostMirror("/etc/apt/sources.list.d/debian.sources")
	}
	if len(c.Packages) == 0 {
		c.Packages = DefaultPackages
	}
	if c.CacheDirectory == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, _ := os.UserHomeDir()
			base = filepath.Join(home, ".cache")
		}
		c.CacheDirectory = filepath.Join(base, "kubeup", "image")
	}
	if c.OutputDirectory == "" {
		c.OutputDirectory = "output-" + c.PackerBuildName
	}
	if c.DiskSize == "" {
		c.DiskSize = "6G"
	}
	if c.VolumeLabel == "" {
		c.VolumeLabel = "kubeup-root"
	}
	if c.ChrootMounts == nil {
		c.ChrootMounts = [][]string{
			{"proc", "proc", "/proc"},
			{"sysfs", "sysfs", "/sys"},
			{"rbind", "/sys/fs/cgroup", "/sys/fs/cgroup"},
			{"bind", "/dev", "/dev"},
			{"devpts", "devpts", "/dev/pts"},
			{"tmpfs", "tmpfs", "/run"},
		}
	}
	var errs *packersdk.MultiError
	add := func(format string, args ...any) { errs = packersdk.MultiErrorAppend(errs, fmt.Errorf(format, args...)) }
	if !diskSize.MatchString(c.DiskSize) {
		add("disk_size: %q is not a size like 6G or 4096M", c.DiskSize)
	}
	if len(c.VolumeLabel) > 16 {
		add("volume_label: %q is longer than ext4's 16 bytes", c.VolumeLabel)
	}
	if !strings.HasPrefix(c.Mirror, "http://") && !strings.HasPrefix(c.Mirror, "https://") && !strings.HasPrefix(c.Mirror, "file:/") {
		add("mirror: %q is not an http(s):// or file:/ URL", c.Mirror)
	}
	for i, m := range c.ChrootMounts {
		if len(m) != 3 || !strings.HasPrefix(m[2], "/") {
			add("chroot_mounts[%d]: %q is not [type, device, absolute path]", i, m)
		}
	}
	if os.Geteuid() != 0 {
		add("kubeup-rootfs runs debootstrap, chroot and mount: run packer as root")
	}
	for tool, pkg := range map[string]string{"debootstrap": "debootstrap", "mkfs.ext4": "e2fsprogs", "chroot": "coreutils", "mount": "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			add("%s is not installed here: apt-get install -y %s", tool, pkg)
		}
	}
	if errs != nil && len(errs.Errors) > 0 {
		return errs
	}
	return nil
}

// hostMirror reads the Debian mirror from an apt deb822 sources file, so the build uses the
// mirror the host already reaches.
func hostMirror(sources string) string {
	data, _ := os.ReadFile(sources)
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "URIs:" && strings.HasSuffix(f[1], "/debian") {
			return f[1]
		}
	}
	return "http://deb.debian.org/debian"
}

// baseDir is the cached debootstrap result for this suite, mirror and package list.
func (c *Config) baseDir() string {
	key := sha256.Sum256([]byte(c.Suite + " " + c.Mirror + " " + strings.Join(c.Packages, ",")))
	return filepath.Join(c.CacheDirectory, fmt.Sprintf("rootfs-%s-%x", c.Suite, key[:6]))
}
