package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/fsutil"
	"kubeup.dev/kubeup/internal/ignition"
	"kubeup.dev/kubeup/internal/pki"
	kaws "kubeup.dev/kubeup/internal/provider/aws"
)

// awsDir is where the AWS provider keeps what it needs between runs: the rendered configs and
// the seed of its EC2 client tokens.
func awsDir(state string) string { return filepath.Join(state, "aws") }

// upAWS brings the cluster up on EC2 (internal/provider/aws).
func upAWS(ctx context.Context, out io.Writer, cfg *cluster.Config, state string, opt cloudOptions) error {
	if cfg.AWS == nil {
		return errors.New("target aws needs an aws block in the cluster config")
	}
	if opt.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opt.timeout)
		defer cancel()
	}
	ami, err := amiFrom(opt.manifest, cfg.AWS.Region, cfg.AWS.AMI)
	if err != nil {
		return err
	}
	b, renderDir, cleanup, err := cloudBundle(out, cfg, state, filepath.Join(awsDir(state), "ignition"), opt)
	if err != nil {
		return err
	}
	defer cleanup()
	spec, err := awsSpec(ctx, out, cfg, b, state, renderDir, ami, opt)
	if err != nil {
		return err
	}
	p, err := kaws.New(ctx, kaws.Options{Region: cfg.AWS.Region, Out: out})
	if err != nil {
		return err
	}
	if opt.dryRun {
		fmt.Fprintf(out, "plan for cluster %s in %s (dry run: nothing is changed):\n", cfg.Name, cfg.AWS.Region)
	} else {
		fmt.Fprintf(out, "bringing up cluster %s in %s:\n", cfg.Name, cfg.AWS.Region)
	}
	rep, err := p.Up(ctx, spec, opt.dryRun)
	if rep != nil {
		for _, todo := range rep.TODO {
			fmt.Fprintf(out, "note: %s\n", todo)
		}
	}
	if err != nil {
		return err
	}
	if !opt.dryRun {
		fmt.Fprintf(out, "cluster %s: the master is %s; the API server will answer on https://%s:%d once it has booted\n"+
			"  the bundle's kubeconfigs (%s) name controlPlane.endpoint %s\n",
			cfg.Name, rep.MasterIP, rep.MasterIP, kaws.APIPort, filepath.Join(state, "admin.conf"), cfg.ControlPlane.Endpoint)
	}
	return nil
}

// awsSpec renders the master's and the node role's configs into state/aws/ignition and
// describes the cluster to the provider. With pki.bootstrapTokenPool, the node config carries
// the pool's current token when the cluster answers; when it does not (the first up, or the
// master is away) the config keeps the bundle's token and an existing launch template is left
// as it is, so a re-run never puts back an older token than the one it holds.
func awsSpec(ctx context.Context, out io.Writer, cfg *cluster.Config, b *pki.Bundle, state, dir, ami string, opt cloudOptions) (*kaws.Spec, error) {
	outs, err := ignition.Generate(cfg, b, ignition.Options{OutDir: dir})
	if err != nil {
		return nil, err
	}
	var masters []ignition.Output
	for _, o := range outs {
		if o.Role == cluster.RoleMaster {
			masters = append(masters, o)
		}
	}
	if len(masters) != 1 {
		return nil, fmt.Errorf("target aws: the config has %d masters; the AWS provider starts exactly one", len(masters))
	}
	nodes, err := ignition.Generate(cfg, b, ignition.Options{OutDir: dir, Role: cluster.RoleNode})
	if err != nil {
		return nil, err
	}
	master, node := masters[0], nodes[0]
	masterRaw, err := os.ReadFile(master.File)
	if err != nil {
		return nil, err
	}
	nodeRaw, err := os.ReadFile(node.File)
	if err != nil {
		return nil, err
	}
	var keep bool
	var why string
	if cfg.PKI.BootstrapTokenPool {
		if pooled, err := poolNodeConfig(ctx, out, cfg, b, nodeRaw); err == nil {
			nodeRaw = pooled
		} else {
			keep, why = true, fmt.Sprintf("the node pool's token could not be read (%v); run kubeup tokens sync once the master answers", err)
			fmt.Fprintf(out, "node config: the bundle's token %s; the node pool's could not be read (%v)\n", b.Token.ID, err)
		}
	}
	seed, err := tokenSeed(state, opt.dryRun)
	if err != nil {
		return nil, err
	}
	numNodes := opt.numNodes
	if numNodes < 0 {
		return nil, fmt.Errorf("--num-nodes %d: want 0 or more", numNodes)
	}
	return &kaws.Spec{Cluster: cfg.Name, AMI: ami, InstanceType: cfg.AWS.InstanceType, AllowedCIDRs: cfg.AWS.AllowedCIDRs,
		ConfigURL: cfg.AWS.ConfigURL, Endpoint: cfg.ControlPlane.Endpoint, NumNodes: numNodes, TokenSeed: seed,
		Master: kaws.Config{Name: master.Name, Address: machineNamed(cfg, master.Name).Address, Raw: masterRaw, Secret: true},
		Node:   kaws.Config{Name: node.Name, Raw: nodeRaw}, KeepNodeConfig: keep, KeepNodeConfigWhy: why}, nil
}

// tokenSeed is the cluster's ClientToken seed, made on first use. A dry run makes none.
func tokenSeed(state string, dry bool) (string, error) {
	path := filepath.Join(awsDir(state), "token-seed")
	data, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(data)), nil
	}
	if !errors.Is(err, fs.ErrNotExist) || dry {
		if dry {
			return "", nil
		}
		return "", err
	}
	buf := make([]byte, 16)
	rand.Read(buf)
	seed := hex.EncodeToString(buf)
	if err := fsutil.MkdirAll(awsDir(state), 0o700); err != nil {
		return "", err
	}
	if err := fsutil.CreateFile(path, []byte(seed+"\n"), 0o600); err != nil {
		return "", err
	}
	return seed, nil
}

// downAWS deletes what upAWS made.
func downAWS(ctx context.Context, out io.Writer, cfg *cluster.Config, state string, opt cloudOptions) error {
	if cfg.AWS == nil {
		return errors.New("target aws needs an aws block in the cluster config")
	}
	master := ""
	for _, m := range cfg.Machines {
		if m.Role == cluster.RoleMaster {
			master = m.Name
		}
	}
	p, err := kaws.New(ctx, kaws.Options{Region: cfg.AWS.Region, Out: out})
	if err != nil {
		return err
	}
	spec := &kaws.Spec{Cluster: cfg.Name, ConfigURL: cfg.AWS.ConfigURL,
		Master: kaws.Config{Name: master}, Node: kaws.Config{Name: cluster.RoleNode}}
	if opt.dryRun {
		fmt.Fprintf(out, "would delete, of cluster %s in %s (dry run: nothing is changed):\n", cfg.Name, cfg.AWS.Region)
	} else {
		fmt.Fprintf(out, "deleting cluster %s in %s:\n", cfg.Name, cfg.AWS.Region)
	}
	rep, err := p.Down(ctx, spec, opt.dryRun)
	if err != nil {
		return err
	}
	if opt.dryRun {
		return nil
	}
	// Everything the tokens made is gone: the next up starts with new tokens, or EC2 would
	// answer its creations with the deleted resources.
	if err := os.Remove(filepath.Join(awsDir(state), "token-seed")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	fmt.Fprintf(out, "deleted %d resources of cluster %s; the bucket and the secrets bundle (%s) stay\n", len(rep.Steps), cfg.Name, state)
	return nil
}

// awsHelp says what up and down do on AWS; for the commands' --help.
const awsHelp = `AWS (target: aws): up creates, each tagged kubeup.dev/cluster=<cluster>: a VPC, a subnet, an
internet gateway and its route, security groups (the machines reach each other; 6443 reaches
the master from aws.allowedCIDRs only; port 22 is never opened), an encrypted EBS volume for the
master's etcd, the master with the Elastic IP that controlPlane.endpoint names, and a launch
template plus an Auto Scaling group of --num-nodes nodes. The master's config holds keys: it goes
to S3 (aws.configURL; private, encrypted, readable only by the master's IAM role) and its
user-data is a hash-pinned pointer; node configs go inline when they fit 16 KiB. Instances
require IMDSv2 with a hop limit of 1, so pods cannot read user-data. A re-run creates only what
is missing; down deletes what up made, in dependency order, and reports what it could not.
Credentials and settings come from the SDK's usual chain (AWS_PROFILE, AWS_ACCESS_KEY_ID, ...;
AWS_ENDPOINT_URL for a test endpoint). The AMI is aws.ami, or --packer-manifest's last
amazon-ebs build in aws.region.`
