package rootfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPrepareDefaultsAndErrors(t *testing.T) {
	cache := t.TempDir()
	var c Config
	err := c.prepare(map[string]any{"cache_directory": cache, "packer_build_name": "qemu"})
	if os.Geteuid() != 0 {
		if err == nil || !strings.Contains(err.Error(), "run packer as root") {
			t.Errorf("not root and no error: %v", err)
		}
		t.Fatal("the defaults and the field errors are checked as root only (the builder refuses to prepare without it): run `sudo make test` (CI runs it as root)")
	}
	if err != nil && !strings.Contains(err.Error(), "is not installed here: apt-get install -y") {
		t.Fatal(err)
	}
	if c.Suite != "bookworm" || c.DiskSize != "6G" || c.OutputDirectory != "output-qemu" || len(c.Packages) != len(DefaultPackages) || len(c.ChrootMounts) != 6 {
		t.Errorf("defaults: %+v", c)
	}
	var bad Config
	err = bad.prepare(map[string]any{"cache_directory": cache, "disk_size": "6 gigs", "volume_label": "a-label-longer-than-16",
		"mirror": "deb.debian.org", "chroot_mounts": [][]string{{"proc", "/proc"}}})
	for _, want := range []string{`disk_size: "6 gigs"`, "volume_label:", `mirror: "deb.debian.org"`, "chroot_mounts[0]:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

func TestBaseDirKey(t *testing.T) {
	a := Config{Suite: "bookworm", Mirror: "http://m/debian", Packages: DefaultPackages, CacheDirectory: "/c"}
	b := a
	b.Packages = append([]string{"vim"}, DefaultPackages...)
	c := a
	c.Mirror = "http://other/debian"
	if a.baseDir() == b.baseDir() || a.baseDir() == c.baseDir() || !strings.HasPrefix(a.baseDir(), "/c/rootfs-bookworm-") {
		t.Errorf("base directories do not follow their inputs: %s %s %s", a.baseDir(), b.baseDir(), c.baseDir())
	}
}

func TestHostMirror(t *testing.T) {
	f := filepath.Join(t.TempDir(), "debian.sources")
	os.WriteFile(f, []byte("Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n"), 0o644)
	if got := hostMirror(f); got != "http://mirror.example/debian" {
		t.Errorf("hostMirror = %q", got)
	}
	if got := hostMirror(filepath.Join(t.TempDir(), "none")); got != "http://deb.debian.org/debian" {
		t.Errorf("no sources file: %q", got)
	}
}

func TestMountsUnder(t *testing.T) {
	if m := mountsUnder("/proc"); len(m) == 0 || m[0] != "/proc" {
		t.Errorf("mountsUnder(/proc) = %v", m)
	}
	if m := mountsUnder(t.TempDir()); len(m) != 0 {
		t.Errorf("a fresh directory has mounts: %v", m)
	}
}
