// Command packer-plugin-kubeup is kubeup's Packer plugin: the kubeup-node provisioner, which
// turns any builder's machine into a kubeup machine image, and the kubeup-rootfs builder, which
// makes a Debian root filesystem in a chroot for targets with no cloud and no KVM. Packer runs
// it; install it with `packer plugins install --path packer-plugin-kubeup
// github.com/kubeup/kubeup` (Packer 1.10+) or put it in PACKER_PLUGIN_PATH (Packer 1.9).
package main

import (
	"fmt"
	"os"

	"github.com/hashicorp/packer-plugin-sdk/plugin"
	"github.com/hashicorp/packer-plugin-sdk/version"

	"kubeup.dev/kubeup/internal/cli"
	"kubeup.dev/kubeup/internal/versions"
	"kubeup.dev/kubeup/packer-plugin/node"
	"kubeup.dev/kubeup/packer-plugin/rootfs"
)

// Version is the plugin's version, as Packer reports it: kubeup's.
var Version = version.NewPluginVersion(versions.Kubeup, "", "")

func main() {
	// Packer asks with `describe`; a person asks with `version`.
	if len(os.Args) == 2 && (os.Args[1] == "version" || os.Args[1] == "--version") {
		fmt.Println(cli.Version("packer-plugin-kubeup").String())
		return
	}
	set := plugin.NewSet()
	set.RegisterBuilder("rootfs", new(rootfs.Builder))
	set.RegisterProvisioner("node", new(node.Provisioner))
	set.SetVersion(Version)
	if err := set.Run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
