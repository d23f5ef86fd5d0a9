package main

import (
	"context"
	"fmt"
	"io"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/packermanifest"
	"kubeup.dev/kubeup/internal/provider/vsphere"
)

// vsphereProvider is the vSphere provider of the cluster whose bundle is in state, logging in
// with the govc variables. Its caller closes it.
func vsphereProvider(cfg *cluster.Config, state string, out io.Writer, opt cloudOptions) *vsphere.Provider {
	p := &vsphere.Provider{Config: cfg, Dir: providerDir(state, cluster.TargetVSphere), DryRun: opt.dryRun, Out: out}
	if cfg.VSphere != nil {
		p.Template = cfg.VSphere.Template
	}
	return p
}

// upVSphere brings the cluster up on vSphere through the provider flow: one VM per machine of
// the config (the first --num-nodes nodes), cloned from the template or the Packer manifest's.
func upVSphere(ctx context.Context, out io.Writer, cfg *cluster.Config, state string, opt cloudOptions) error {
	if have := cfg.TrimNodes(opt.numNodes); have < opt.numNodes && opt.numNodesSet {
		return fmt.Errorf("--num-nodes %d: the config lists only %d nodes (fix: add machines with role: node, each with its own name, mac and address)", opt.numNodes, have)
	}
	p := vsphereProvider(cfg, state, out, opt)
	defer closeProvider(ctx, p)
	if opt.manifest != "" {
		id, err := packermanifest.LastArtifact(opt.manifest, "vsphere-clone")
		if err != nil {
			return err
		}
		p.Template = id
		fmt.Fprintf(out, "template %s, from %s\n", id, opt.manifest)
	}
	return bringUp(ctx, out, p, cfg, state, opt)
}
