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
	"slices"
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

// upAWS brings the cluster up on EC2 (internal/provider/aws). The config is the same as on
// any target: the master's address gives the VPC and subnet, nodes and master talk over
// controlPlane.endpoint inside the VPC, and the master's Elastic IP, which no config can name
// in advance, is allocated first and recorded in the bundle (pki.ProviderSANsFile) so that the
// API server certificate covers it.
func upAWS(ctx context.Context, out io.Writer, cfg *cluster.Config, state string, opt cloudOptions) error {
	if cfg.AWS == nil {
		return errors.New("target aws needs an aws block in the cluster config")
	}
	if opt.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opt.timeout)
		defer cancel()
	}
	if opt.numNodes < 0 {
		return fmt.Errorf("--num-nodes %d: want 0 or more", opt.numNodes)
	}
	var masters []cluster.Machine
	for _, m := range cfg.Machines {
		if m.Role == cluster.RoleMaster {
			masters = append(masters, m)
		}
	}
	if len(masters) != 1 {
		return fmt.Errorf("target aws: the config has %d masters; the AWS provider starts exactly one", len(masters))
	}
	// Nodes on AWS are anonymous members of the Auto Scaling group, all started from the node
	// role's config; the master's agent must not wait for the named ones of a local config.
	if named := len(cfg.Machines) - 1; named > 0 {
		cfg.TrimNodes(0)
		fmt.Fprintf(out, "note: the config's %d named nodes are not started on AWS: the Auto Scaling group starts --num-nodes=%d nodes from the node role's config\n", named, opt.numNodes)
	}
	ami, err := amiFrom(opt.manifest, cfg.AWS.Region, cfg.AWS.AMI)
	if err != nil {
		return err
	}
	seed, err := tokenSeed(state, opt.dryRun)
	if err != nil {
		return err
	}
	master := masters[0]
	spec := &kaws.Spec{Cluster: cfg.Name, AMI: ami, InstanceType: cfg.AWS.InstanceType, AllowedCIDRs: cfg.AWS.AllowedCIDRs,
		ConfigURL: cfg.AWS.ConfigURL, Endpoint: cfg.ControlPlane.Endpoint, NumNodes: opt.numNodes, TokenSeed: seed,
		Master: kaws.Config{Name: master.Name, Address: master.Address}, Node: kaws.Config{Name: cluster.RoleNode}}
	p, err := kaws.New(ctx, kaws.Options{Region: cfg.AWS.Region, Out: out})
	if err != nil {
		return err
	}
	if opt.dryRun {
		fmt.Fprintf(out, "plan for cluster %s in %s (dry run: nothing is changed):\n", cfg.Name, cfg.AWS.Region)
	} else {
		fmt.Fprintf(out, "bringing up cluster %s in %s:\n", cfg.Name, cfg.AWS.Region)
	}
	run, err := p.Prepare(ctx, spec, opt.dryRun)
	if err != nil {
		return err
	}
	eip := run.ElasticIP()
	if err := recordElasticIP(out, cfg, state, eip, opt); err != nil {
		return err
	}
	spec.CertSANs = cfg.ControlPlane.CertSANs
	b, renderDir, cleanup, err := cloudBundle(out, cfg, state, filepath.Join(awsDir(state), "ignition"), opt)
	if err != nil {
		return err
	}
	defer cleanup()
	masterCfg, nodeCfg, err := awsConfigs(cfg, b, renderDir, run.EtcdDevice())
	if err != nil {
		return err
	}
	// With the node token pool, the node config carries the pool's current token when the
	// cluster answers; when it does not (the first up, or the master is away), the config keeps
	// the bundle's token and an existing launch template is left as it is, so that a re-run
	// never puts back an older token than the one the template holds (docs/bootstrap-tokens.md).
	if cfg.PKI.BootstrapTokenPool && eip != "" {
		if pooled, err := poolNodeConfig(ctx, out, fmt.Sprintf("https://%s:%d", eip, kaws.APIPort), b, nodeCfg.Raw); err == nil {
			nodeCfg.Raw = pooled
		} else {
			spec.KeepNodeConfig = true
			spec.KeepNodeConfigWhy = fmt.Sprintf("the node pool's token could not be read (%v); run kubeup tokens sync once the master answers", err)
			fmt.Fprintf(out, "node config: the bundle's token %s; the node pool's could not be read (%v)\n", b.Token.ID, err)
		}
	}
	rep, err := run.Finish(ctx, masterCfg, nodeCfg)
	if rep != nil {
		for _, todo := range rep.TODO {
			fmt.Fprintf(out, "note: %s\n", todo)
		}
	}
	if err != nil || opt.dryRun {
		return err
	}
	kubeconfig := hostKubeconfig(state, cluster.TargetAWS)
	if err := writeKubeconfig(b, fmt.Sprintf("https://%s:%d", eip, kaws.APIPort), kubeconfig); err != nil {
		return err
	}
	fmt.Fprintf(out, "cluster %s: the master is %s (%s inside the VPC); the API server answers on https://%s:%d once it has booted\n"+
		"  kubectl --kubeconfig %s get nodes\n",
		cfg.Name, eip, cfg.ControlPlane.Endpoint, eip, kaws.APIPort, kubeconfig)
	return nil
}

// recordElasticIP makes the API server certificate cover the master's Elastic IP: it adds the
// address to cfg's certSANs and records it in the bundle directory, so that a bundle made now
// covers it and every later command checks against it. A bundle made before the address was
// allocated (or for an address released since) is an error naming the renewal: kubeup never
// re-issues a certificate by itself.
func recordElasticIP(out io.Writer, cfg *cluster.Config, state, eip string, opt cloudOptions) error {
	if eip == "" {
		return nil // dry run: allocated by the real run, before its bundle is made
	}
	exists, covers, err := pki.APIServerCovers(state, eip)
	if err != nil {
		return err
	}
	if opt.dryRun {
		if exists && !covers {
			// The plan goes on with the bundle as it is.
			fmt.Fprintf(out, "note: the bundle's API server certificate does not cover the Elastic IP %s: up will stop and ask for 'kubeup certs renew apiserver --config %s --state %s'\n",
				eip, opt.configPath, state)
			return nil
		}
	}
	if !slices.Contains(cfg.ControlPlane.CertSANs, eip) {
		cfg.ControlPlane.CertSANs = append(cfg.ControlPlane.CertSANs, eip)
	}
	if opt.dryRun {
		return nil
	}
	if err := pki.SetProviderSANs(state, []string{eip}); err != nil {
		return err
	}
	if exists && !covers {
		return fmt.Errorf("the secrets bundle in %s was made before the master's Elastic IP %s was allocated (or for another one): its API server "+
			"certificate does not cover it, and kubectl from outside the VPC would fail TLS verification. kubeup does not re-issue certificates "+
			"by itself. Fix: kubeup certs renew apiserver --config %s --state %s (it keeps the key and adds %s, recorded in %s), then kubeup up "+
			"again; the Elastic IP is kept (tagged %s=%s) until kubeup down",
			state, eip, opt.configPath, state, eip, filepath.Join(state, pki.ProviderSANsFile), kaws.ClusterTag, cfg.Name)
	}
	return nil
}

// awsConfigs renders the master's and the node role's configs into dir: the master's with the
// etcd volume's device, both read back for the provider.
func awsConfigs(cfg *cluster.Config, b *pki.Bundle, dir, etcdDevice string) (master, node kaws.Config, err error) {
	masters, err := ignition.Generate(cfg, b, ignition.Options{OutDir: dir, EtcdDevice: etcdDevice})
	if err != nil {
		return master, node, err
	}
	nodes, err := ignition.Generate(cfg, b, ignition.Options{OutDir: dir, Role: cluster.RoleNode})
	if err != nil {
		return master, node, err
	}
	m, n := masters[0], nodes[0]
	masterRaw, err := os.ReadFile(m.File)
	if err != nil {
		return master, node, err
	}
	nodeRaw, err := os.ReadFile(n.File)
	if err != nil {
		return master, node, err
	}
	return kaws.Config{Name: m.Name, Address: addressOf(cfg, m.Name), Raw: masterRaw, Secret: true},
		kaws.Config{Name: n.Name, Raw: nodeRaw}, nil
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
	// answer its creations with the deleted resources. The admin kubeconfig named the released
	// Elastic IP.
	for _, f := range []string{"token-seed", "admin.conf"} {
		if err := os.Remove(filepath.Join(awsDir(state), f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	fmt.Fprintf(out, "deleted %d resources of cluster %s; the bucket and the secrets bundle (%s) stay\n", len(rep.Steps), cfg.Name, state)
	return nil
}

// addressOf is the address of the config's machine called name, if it has one.
func addressOf(cfg *cluster.Config, name string) string {
	m, _ := cfg.Machine(name)
	return m.Address
}
