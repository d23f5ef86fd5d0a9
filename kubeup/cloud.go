package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"kubeup.dev/kubeup/internal/cli"
	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/fsutil"
	"kubeup.dev/kubeup/internal/machine"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/internal/provider/targets"
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
	// image is up's --image; apiPort and kvm are its QEMU flags.
	image   string
	apiPort int
	kvm     bool
}

// pollDelay is how often a cloud's provider asks whether a change is done: the SDK's defaults
// against a cloud; tests against the stand-ins shorten it.
var pollDelay time.Duration

// targetOptions are what the provider of cfg's target takes from the flags (the table in
// internal/provider/targets). With the node token pool, AWS's node config carries the pool's
// current token once the cluster answers (docs/bootstrap-tokens.md).
func (o *cloudOptions) targetOptions(cfg *cluster.Config, state string, out io.Writer) targets.Options {
	return targets.Options{State: state, Out: out, DryRun: o.dryRun, NumNodes: o.numNodes, Manifest: o.manifest,
		Image: o.image, APIPort: o.apiPort, KVM: o.kvm, PollDelay: pollDelay,
		Reboot: requestReboot(targets.HostKubeconfig(state, cfg.Target)),
		NodeConfig: func(ctx context.Context, server string, raw []byte) ([]byte, error) {
			b, err := pki.Load(state, cfg)
			if err != nil {
				return nil, err
			}
			raw, err = poolNodeConfig(ctx, out, server, b, raw)
			if err != nil {
				return nil, fmt.Errorf("the node pool's token could not be read: %w", err)
			}
			return raw, nil
		}}
}

// requestReboot asks a machine's agent, through the API server that kubeconfig reaches, to
// reboot it: it names the machine's current boot on its Node (machine.RebootAnnotation).
func requestReboot(kubeconfig string) func(ctx context.Context, name string) error {
	return func(ctx context.Context, name string) error {
		rc, err := loadRestConfig(kubeconfig)
		if err != nil {
			return err
		}
		cs, err := kubernetes.NewForConfig(rc)
		if err != nil {
			return err
		}
		n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		boot := n.Status.NodeInfo.BootID
		if boot == "" {
			return fmt.Errorf("node %s reports no boot ID", name)
		}
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{machine.RebootAnnotation: boot}}})
		if err != nil {
			return err
		}
		_, err = cs.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
		return err
	}
}

func (o *cloudOptions) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.providerFlag, "provider", "", strings.Join(targets.Names(), ", ")+" (default: the config's target); it must match the config's target and block. Where there is no config at all, it picks the target and up writes a starter "+cluster.StarterFile)
	cmd.RegisterFlagCompletionFunc("provider", cobra.FixedCompletions(targets.Names(), cobra.ShellCompDirectiveNoFileComp))
	cmd.MarkFlagFilename("packer-manifest", "json")
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
	if _, err := targets.Lookup(o.providerFlag); err != nil {
		return "", cli.Usagef("--provider %q: use one of %s", o.providerFlag, strings.Join(targets.Names(), ", "))
	}
	return "", cli.Usagef("--provider %s: %s has target: %s (fix: set target: %s and give it a %s block instead of the %s one, or drop --provider)",
		o.providerFlag, file, cfg.Target, o.providerFlag, o.providerFlag, cfg.Target)
}

// ensureBundle creates the secrets bundle in state if there is none, as ignition-gen does, and
// says which it did.
func ensureBundle(out io.Writer, cfg *cluster.Config, state, configPath string) (*pki.Bundle, error) {
	created := 0
	b, err := pki.Ensure(state, cfg, pki.Options{ConfigPath: configPath, Progress: func(string) { created++ }})
	if err != nil {
		return nil, err
	}
	if created > 0 {
		fmt.Fprintf(out, "created the secrets bundle in %s (%d files; it holds the CA keys: keep it)\n", state, created)
	} else {
		fmt.Fprintf(out, "using the secrets bundle in %s\n", state)
	}
	return b, nil
}

// cloudBundle is the secrets bundle and the directory to render configs into for a cloud
// provider: the bundle in state (created if missing) and renderDir; or, for a dry run, which
// writes nothing under state, the existing bundle or a throwaway one (whose configs have the
// same sizes) and a temporary directory, removed by the returned cleanup.
func cloudBundle(out io.Writer, cfg *cluster.Config, state, renderDir string, opt cloudOptions) (*pki.Bundle, string, func(), error) {
	nothing := func() {}
	if !opt.dryRun {
		b, err := ensureBundle(out, cfg, state, opt.configPath)
		return b, renderDir, nothing, err
	}
	tmp, err := os.MkdirTemp("", "kubeup-dry-run-")
	if err != nil {
		return nil, "", nothing, err
	}
	cleanup := func() { os.RemoveAll(tmp) }
	var b *pki.Bundle
	if _, statErr := os.Stat(filepath.Join(state, pki.MetaFile)); statErr == nil {
		b, err = pki.Load(state, cfg)
	} else {
		fmt.Fprintf(out, "would create the secrets bundle in %s (the plan uses a throwaway one)\n", state)
		b, err = pki.Ensure(filepath.Join(tmp, "bundle"), cfg, pki.Options{})
	}
	if err != nil {
		cleanup()
		return nil, "", nothing, err
	}
	return b, filepath.Join(tmp, "ignition"), cleanup, nil
}

// starterName is the cluster name of a starter config.
const starterName = "kubeup"

// writeStarter writes cluster.StarterFile, the starter config for target, when there is no
// cluster config at all (a fresh directory, an empty container volume), and says so.
func writeStarter(ctx context.Context, out io.Writer, target string) error {
	row, err := targets.Lookup(target)
	if err != nil {
		return cli.Usagef("--provider %q: use one of %s", target, strings.Join(targets.Names(), ", "))
	}
	if row.Starter == nil {
		return cli.Usagef("--provider %s: %s", target, row.NoStarter)
	}
	v := cluster.StarterValues{Name: starterName}
	note := row.Starter(ctx, &v)
	data, err := cluster.Starter(target, v)
	if err != nil {
		return err
	}
	// A config holds no secret; CreateFile never replaces one that appeared meanwhile.
	if err := fsutil.CreateFile(cluster.StarterFile, data, 0o644); err != nil {
		return fmt.Errorf("write a starter config: %w (fix: run where you may write, e.g. docker run --user \"$(id -u):$(id -g)\")", err)
	}
	fmt.Fprintf(out, "no cluster config here: wrote %s, a starter for target %s (cluster %s); edit it and run kubeup up again to change the cluster (every field: docs/config.md)\n",
		cluster.StarterFile, target, starterName)
	if note != "" {
		fmt.Fprintln(out, "note: "+note)
	}
	return nil
}
