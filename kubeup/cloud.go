package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"kubeup.dev/kubeup/internal/cluster"
)

// cloudOptions are the flags of up and down that choose the provider and that the cloud
// providers (AWS, vSphere) read.
type cloudOptions struct {
	// providerFlag is --provider; empty means the config's target.
	providerFlag string
	// configPath is the cluster config file, for the commands error messages suggest.
	configPath string
	dryRun     bool
	// manifest is Packer's manifest post-processor output, to take the AMI or template from.
	manifest    string
	numNodes    int
	numNodesSet bool
	timeout     time.Duration
}

func (o *cloudOptions) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.providerFlag, "provider", "", "qemu, aws or vsphere (default: the config's target); it must match the config's target and block")
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "print what would be created (up) or deleted (down) and change nothing (aws, vsphere)")
	cmd.Flags().StringVar(&o.manifest, "packer-manifest", "", "Packer manifest (post-processor \"manifest\" output) naming the image to use: the AMI (aws) or template (vsphere) of its last build")
}

// provider is the provider to use: --provider, which must agree with the config, or the
// config's target. A config names one target and carries that target's block; switching
// provider means changing the target and the block, nothing else.
func (o *cloudOptions) provider(file string, cfg *cluster.Config) (string, error) {
	o.configPath = file
	if o.providerFlag == "" || o.providerFlag == cfg.Target {
		return cfg.Target, nil
	}
	switch o.providerFlag {
	case cluster.TargetQEMU, cluster.TargetAWS, cluster.TargetVSphere:
		return "", fmt.Errorf("--provider %s: %s has target: %s (fix: set target: %s and give it a %s block instead of the %s one, or drop --provider)",
			o.providerFlag, file, cfg.Target, o.providerFlag, o.providerFlag, cfg.Target)
	}
	return "", fmt.Errorf("--provider %q: use qemu, aws or vsphere", o.providerFlag)
}
