//go:generate go tool packer-sdc mapstructure-to-hcl2 -type Config

package node

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/hashicorp/packer-plugin-sdk/common"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"kubeup.dev/kubeup/internal/bundle"
	"kubeup.dev/kubeup/internal/machine"
)

// Config is the provisioner's block in a template.
type Config struct {
	common.PackerConfig `mapstructure:",squash"`

	// The distribution the image is made from: `debian` (Ignition runs from the initramfs on the
	// first boot; files under /usr/local) or `flatcar` (native Ignition; /usr is read-only, so
	// files go under /opt). Default `debian`.
	Target string `mapstructure:"target"`
	// The offline bundle directory (`make bundle`): bundle.json and images/*.tar. Every image in
	// it is imported into containerd's store, so the machine pulls nothing.
	Bundle string `mapstructure:"bundle" required:"true"`
	// A directory with the machine's binaries: kubelet, kubeadm, kubeup-agent, containerd, ctr,
	// containerd-shim-runc-v2, the CNI plugins bridge, host-local, loopback and portmap, and on
	// Debian ignition. Symbolic links are followed.
	Binaries string `mapstructure:"binaries" required:"true"`
	// Debian only: where the first boot reads its Ignition config from (Ignition's platform id):
	// `qemu` (fw_cfg), `aws` (EC2 user-data), `vmware` (guestinfo) or `metal` (the
	// `ignition.config.url` kernel argument). The kernel command line's `ignition.platform.id=`
	// overrides it. Default `qemu`.
	Platform string `mapstructure:"platform"`
	// Where files are staged on the machine before they are installed; removed when done.
	// Default `/var/tmp/kubeup-stage`.
	StagingDirectory string `mapstructure:"staging_directory"`
	// Leave out the node-spec checks. Only for debugging a build: an image that was not checked
	// may fail on its first boot instead.
	SkipChecks bool `mapstructure:"skip_checks"`
	// Leave the image unsealed (machine-id, first-boot marker, logs), to provision further in a
	// later step; the last kubeup-node step of a build must seal.
	SkipSeal bool `mapstructure:"skip_seal"`

	ctx interpolate.Context
}

// Platforms Ignition can read a Debian machine's config from, here.
var Platforms = []string{"qemu", "aws", "vmware", "metal"}

// prepare decodes the template's blocks, fills defaults and checks every field, naming the
// field and the fix.
func (c *Config) prepare(raws ...any) error {
	err := config.Decode(c, &config.DecodeOpts{
		PluginType:         "kubeup-node",
		Interpolate:        true,
		InterpolateContext: &c.ctx,
	}, raws...)
	if err != nil {
		return err
	}
	if c.Target == "" {
		c.Target = "debian"
	}
	if c.Platform == "" {
		c.Platform = "qemu"
	}
	if c.StagingDirectory == "" {
		c.StagingDirectory = "/var/tmp/kubeup-stage"
	}
	var errs *packersdk.MultiError
	add := func(format string, args ...any) { errs = packersdk.MultiErrorAppend(errs, fmt.Errorf(format, args...)) }
	if !slices.Contains(machine.OSes, c.Target) {
		add("target: %q is not one of %v", c.Target, machine.OSes)
	}
	if !slices.Contains(Platforms, c.Platform) {
		add("platform: %q is not one of %v", c.Platform, Platforms)
	}
	if c.Target == "flatcar" && c.Platform != "qemu" {
		add("platform: Flatcar's own Ignition finds its platform; leave platform out for target flatcar")
	}
	if !filepath.IsAbs(c.StagingDirectory) {
		add("staging_directory: %q must be an absolute path on the machine", c.StagingDirectory)
	}
	switch {
	case c.Bundle == "":
		add("bundle: required: the offline bundle directory (make bundle prints it)")
	default:
		if _, err := bundle.ReadManifest(c.Bundle); err != nil {
			add("bundle: %v: point it at the directory make bundle prints", err)
		}
	}
	if c.Binaries == "" {
		add("binaries: required: a directory with %v", binaries(c.Target))
	} else {
		for _, b := range binaries(c.Target) {
			if st, err := os.Stat(filepath.Join(c.Binaries, b)); err != nil || !st.Mode().IsRegular() {
				add("binaries: %s has no file %s: put (or link) the binary there", c.Binaries, b)
			}
		}
	}
	if errs != nil && len(errs.Errors) > 0 {
		return errs
	}
	return nil
}

// binaries are the files a target needs in Config.Binaries.
func binaries(target string) []string {
	b := []string{"kubelet", "kubeadm", "kubeup-agent", "containerd", "ctr", "containerd-shim-runc-v2", "bridge", "host-local", "loopback", "portmap"}
	if target == "debian" {
		b = append(b, "ignition")
	}
	return b
}
