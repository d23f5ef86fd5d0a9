package main

import (
	"context"
	"fmt"
	"io"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/pki"
	kaws "kubeup.dev/kubeup/internal/provider/aws"
)

// awsProvider is the AWS provider of the cluster whose bundle is in state. The config is the
// same as on any target: the master's address gives the VPC and subnet, nodes and master talk
// over controlPlane.endpoint inside the VPC, and the master's Elastic IP, which no config can
// name in advance, is allocated first and recorded in the bundle (pki.ProviderSANsFile) so
// that the API server certificate covers it. With the node token pool, the node config carries
// the pool's current token when the cluster answers (docs/bootstrap-tokens.md).
func awsProvider(cfg *cluster.Config, state string, out io.Writer, opt cloudOptions) *kaws.Provider {
	p := &kaws.Provider{Config: cfg, Dir: providerDir(state, cluster.TargetAWS), NumNodes: opt.numNodes, DryRun: opt.dryRun, Out: out}
	if cfg.PKI.BootstrapTokenPool {
		p.NodeConfig = func(ctx context.Context, server string, raw []byte) ([]byte, error) {
			b, err := pki.Load(state, cfg)
			if err != nil {
				return nil, err
			}
			raw, err = poolNodeConfig(ctx, out, server, b, raw)
			if err != nil {
				return nil, fmt.Errorf("the node pool's token could not be read: %w", err)
			}
			return raw, nil
		}
	}
	return p
}

// upAWS brings the cluster up on EC2 (internal/provider/aws).
func upAWS(ctx context.Context, out io.Writer, cfg *cluster.Config, state string, opt cloudOptions) error {
	p := awsProvider(cfg, state, out, opt)
	if cfg.AWS != nil {
		ami, err := amiFrom(opt.manifest, cfg.AWS.Region, cfg.AWS.AMI)
		if err != nil {
			return err
		}
		p.AMI = ami
	}
	return bringUp(ctx, out, p, cfg, state, opt)
}
