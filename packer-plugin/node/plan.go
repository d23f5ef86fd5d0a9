package node

import (
	"embed"
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"kubeup.dev/kubeup/internal/bundle"
	"kubeup.dev/kubeup/internal/machine"
	"kubeup.dev/kubeup/internal/versions"
)

// files are the machine's own files, the same on every build.
//
//go:embed files
var files embed.FS

// Install is one file the plan puts on the machine: staged under the staging directory as
// Stage, then installed at Dest with Mode. Exactly one of Local (a file on the build host) and
// Embedded (a name under files/) or Content is set.
type Install struct {
	Local    string
	Embedded string
	Content  string
	Stage    string
	Dest     string
	Mode     string
}

// Plan is everything the provisioner does on one machine: the files it uploads, and the shell
// script that installs them, imports the bundle's images, checks the node spec and seals.
type Plan struct {
	Target  string
	Files   []Install
	Images  []string // bundle archives on the build host, staged under images/
	Script  string
	Checker string // kubeup-agent's path on the machine
}

// NewPlan works out what the provisioner does for c's target.
func NewPlan(c *Config) (*Plan, error) {
	l, err := machine.LayoutOf(c.Target)
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	m, err := bundle.ReadManifest(c.Bundle)
	if err != nil {
		return nil, err
	}
	p := &Plan{Target: c.Target, Checker: l.Agent()}
	bin := func(name, dir string) {
		p.Files = append(p.Files, Install{Local: filepath.Join(c.Binaries, name), Stage: "bin/" + name, Dest: path.Join(dir, name), Mode: "0755"})
	}
	for _, b := range []string{"kubelet", "kubeadm", "kubeup-agent"} {
		bin(b, l.Bin)
	}
	for _, b := range []string{"containerd", "ctr", "containerd-shim-runc-v2"} {
		bin(b, l.Containerd)
	}
	for _, b := range []string{"bridge", "host-local", "loopback", "portmap"} {
		bin(b, l.CNIBin)
	}
	embedded := func(name, dest, mode string) {
		p.Files = append(p.Files, Install{Embedded: name, Stage: "files/" + name, Dest: dest, Mode: mode})
	}
	p.Files = append(p.Files, Install{Content: containerdConfig(), Stage: "files/containerd-config.toml", Dest: machine.ContainerdConfig, Mode: "0644"})
	// The node spec's modules and sysctls at every boot, before any config is applied.
	p.Files = append(p.Files,
		Install{Content: machine.ModulesLoadConf(), Stage: "files/modules-load.conf", Dest: machine.ModulesLoadFile, Mode: "0644"},
		Install{Content: machine.SysctlConf(), Stage: "files/sysctl.conf", Dest: machine.SysctlFile, Mode: "0644"})
	p.Files = append(p.Files, Install{Local: filepath.Join(c.Bundle, bundle.ManifestFile), Stage: "bundle.json", Dest: l.BundleManifest, Mode: "0644"})
	switch c.Target {
	case machine.Debian:
		bin("ignition", "/usr/local/lib/kubeup")
		embedded("ignition-hook", "/etc/initramfs-tools/hooks/kubeup-ignition", "0755")
		embedded("ignition-local-bottom", "/etc/initramfs-tools/scripts/local-bottom/kubeup-ignition", "0755")
		embedded("netboot", "/etc/initramfs-tools/scripts/kubeup-net", "0644")
		embedded("dhcp.network", "/etc/systemd/network/99-dhcp.network", "0644")
		p.Files = append(p.Files, Install{Content: c.Platform + "\n", Stage: "files/platform", Dest: "/etc/kubeup/platform", Mode: "0644"})
	case machine.Flatcar:
		p.Files = append(p.Files, Install{
			Content: "# kubeup: run the containerd that kubeup's images were imported with.\n[Service]\nExecStart=\nExecStart=" + path.Join(l.Containerd, "containerd") + "\n",
			Stage:   "files/containerd-dropin.conf", Dest: "/etc/systemd/system/containerd.service.d/10-kubeup.conf", Mode: "0644"})
	}
	for _, img := range m.Images {
		p.Images = append(p.Images, filepath.Join(c.Bundle, img.Archive))
	}
	p.Script = p.script(c, l)
	return p, nil
}

// script renders the plan as one POSIX shell script, run as root on the machine.
func (p *Plan) script(c *Config, l machine.Layout) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("#!/bin/sh")
	w("# Written by packer-plugin-kubeup's kubeup-node provisioner (target %s).", p.Target)
	w("set -eu")
	w("export PATH=%s", l.Path)
	w("stage=%s", shellQuote(c.StagingDirectory))
	w(`say() { echo "kubeup-node: $*"; }`)
	if p.Target == machine.Debian {
		w("# Debian's containerd package brings the unit and runc; kubeup's containerd replaces its binaries.")
		w("for f in /usr/sbin/runc /lib/systemd/system/containerd.service /bin/busybox; do")
		w(`  [ -e "$f" ] || { say "$f is missing: install Debian's containerd, runc and busybox packages before kubeup-node runs"; exit 1; }`)
		w("done")
	}
	w("")
	w(`say "installing %d files"`, len(p.Files))
	for _, f := range p.Files {
		w(`install -D -m %s "$stage/%s" %s`, f.Mode, f.Stage, shellQuote(f.Dest))
	}
	if p.Target == machine.Debian {
		w(`say "rebuilding the initramfs with Ignition in it"`)
		w("update-initramfs -u -k all >/dev/null")
		w("systemctl enable systemd-networkd.service >/dev/null 2>&1")
	}
	w("")
	w("# The image's own containerd writes its store, in a private instance: the machine finds the")
	w("# store in its own format, and a running containerd service (on a booted builder) is left alone.")
	w("systemctl stop containerd.service >/dev/null 2>&1 || true")
	w("state=$(mktemp -d /run/kubeup-containerd.XXXXXX 2>/dev/null || mktemp -d)")
	w(`printf 'version = 2\nroot = "/var/lib/containerd"\nstate = "%%s"\n[grpc]\n  address = "%%s/containerd.sock"\n' "$state" "$state" >"$stage/containerd.toml"`)
	w(`%s/containerd --config "$stage/containerd.toml" >"$stage/containerd.log" 2>&1 &`, l.Containerd)
	w("ctrd=$!")
	w(`trap 'kill $ctrd 2>/dev/null || true' EXIT`)
	w(`ctr() { %s/ctr -a "$state/containerd.sock" -n k8s.io "$@"; }`, l.Containerd)
	w("i=0; until ctr version >/dev/null 2>&1; do")
	w(`  i=$((i+1)); [ $i -le 150 ] || { say "containerd did not answer in 30 s; its log:"; tail -n 20 "$stage/containerd.log"; exit 1; }`)
	w("  sleep 0.2")
	w("done")
	w(`say "importing %d images into containerd's store"`, len(p.Images))
	w("# (ctr's stderr is kept aside: on a cgroup v1 build host it warns on every call.)")
	w(`for a in "$stage"/images/*.tar; do`)
	w(`  ctr images import "$a" >/dev/null 2>"$stage/ctr.err" || { cat "$stage/ctr.err"; exit 1; }`)
	w(`  say "  $(basename "$a")"`)
	w("done")
	w("# Import unpacked every image into snapshots, which containers run from; the compressed layers")
	w("# are only needed to push or pull, so they go (as the CRI's discard_unpacked_layers does): a")
	w("# quarter of the image. Manifests and configs stay, so the kubelet still sees every image.")
	w("for d in $(ctr content ls -q | sort -u); do")
	w(`  if [ "$(ctr content get "$d" 2>/dev/null | head -c 2 | od -An -tx1 | tr -d ' ')" = 1f8b ]; then ctr content rm "$d" >/dev/null 2>&1 || true; fi`)
	w("done")
	if c.SkipChecks {
		w(`say "node-spec checks skipped (skip_checks)"`)
	} else {
		w(`say "checking the image against the node spec"`)
		w(`%s --image-check --containerd-address "$state/containerd.sock"`, p.Checker)
	}
	w(`kill $ctrd; wait $ctrd || true; trap - EXIT`)
	w(`rm -rf "$state"`)
	w("")
	if c.SkipSeal {
		w(`say "left unsealed (skip_seal)"`)
	} else {
		w(`say "sealing for first boot"`)
		switch p.Target {
		case machine.Debian:
			w("echo uninitialized >/etc/machine-id")
			w("rm -f /var/lib/dbus/machine-id")
			w("echo kubeup >/etc/hostname")
			w("# debootstrap's minbase has no /etc/hosts, and containerd copies it into every pod sandbox.")
			w(`[ -s /etc/hosts ] || printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >/etc/hosts`)
			w("mkdir -p /etc/kubeup && touch /etc/kubeup/ignition-firstboot")
			w("for u in systemd-firstboot.service serial-getty@ttyS0.service getty@tty1.service e2scrub_all.timer e2scrub_reap.service apt-daily.timer apt-daily-upgrade.timer; do")
			w(`  ln -sf /dev/null "/etc/systemd/system/$u"`)
			w("done")
			w("passwd -l root >/dev/null")
			w("rm -rf /var/log/*.log /var/cache/* /tmp/*")
		case machine.Flatcar:
			w("# Flatcar runs Ignition again when this flag is there and the machine-id is not.")
			w("rm -f /etc/machine-id")
			w("touch /boot/flatcar/first_boot")
			w("rm -rf /var/log/journal/* /tmp/*")
		}
	}
	w(`cd / && rm -rf "$stage"`)
	w(`say "done"`)
	return b.String()
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// containerdConfig is the embedded containerd config with the bundle's pause image, named once
// in internal/versions.
func containerdConfig() string {
	data, err := files.ReadFile("files/containerd-config.toml")
	if err != nil {
		panic(err) // embedded at build time
	}
	return strings.NewReplacer("@PAUSE_IMAGE@", versions.PauseImage, "@CERTS_DIR@", machine.ContainerdCertsDir).Replace(string(data))
}
