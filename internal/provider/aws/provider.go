package aws

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/fsutil"
	"kubeup.dev/kubeup/internal/ignition"
	"kubeup.dev/kubeup/internal/machine"
	"kubeup.dev/kubeup/internal/provider"
)

// Provider runs a cluster's machines on EC2 (provider.Provider): the master as an instance
// with an Elastic IP and an EBS volume for etcd, the nodes as an Auto Scaling group started
// from the node role's config. Nodes on AWS are anonymous members of the group, so the
// config's named nodes are not started; NumNodes says how many run.
type Provider struct {
	Config *cluster.Config
	// Dir keeps what the provider needs between runs: the seed of its EC2 client tokens.
	Dir string
	// AMI is the image every machine boots (aws.ami, or the one a Packer manifest names). If
	// it is empty, Prepare takes the newest AMI of the account that the Packer template built
	// for the config's OS; Machines, Endpoint and Down need none.
	AMI      string
	NumNodes int
	// DryRun: Prepare, Deliver and Create only look and print, for every resource, whether it
	// exists or would be made; Down only lists what it would delete.
	DryRun bool
	// Out gets one line per resource as it is found, made or deleted, and notes.
	Out io.Writer
	// Client says how to reach AWS beyond the config's region (a stand-in's endpoint in tests).
	Client Options
	// NodeConfig, if set, rewrites the node role's config before it is delivered, given the
	// API server's address as this host reaches it: kubeup puts the node pool's current
	// bootstrap token into it. If it fails, a launch template that exists keeps its config, so
	// that a re-run never puts back an older token than the template holds.
	NodeConfig func(ctx context.Context, server string, raw []byte) ([]byte, error)

	c   *Client
	run *Run
}

var (
	_ provider.Provider       = (*Provider)(nil)
	_ provider.Booted         = (*Provider)(nil)
	_ provider.GroupRefresher = (*Provider)(nil)
)

// APIEndpoint is the API server's URL at an address the host reaches.
func APIEndpoint(ip string) string { return fmt.Sprintf("https://%s:%d", ip, APIPort) }

// Target is aws.
func (p *Provider) Target() string { return cluster.TargetAWS }

func (p *Provider) out() io.Writer {
	if p.Out == nil {
		return io.Discard
	}
	return p.Out
}

func (p *Provider) client(ctx context.Context) (*Client, error) {
	if p.c != nil {
		return p.c, nil
	}
	if p.Config.AWS == nil {
		return nil, errors.New("target aws needs an aws block in the cluster config")
	}
	opt := p.Client
	opt.Region, opt.Out = p.Config.AWS.Region, p.out()
	c, err := New(ctx, opt)
	p.c = c
	return c, err
}

// master is the config's one master.
func (p *Provider) master() (cluster.Machine, error) {
	var masters []cluster.Machine
	for _, m := range p.Config.Machines {
		if m.Role == cluster.RoleMaster {
			masters = append(masters, m)
		}
	}
	if len(masters) != 1 {
		return cluster.Machine{}, fmt.Errorf("target aws: the config has %d masters; the AWS provider starts exactly one", len(masters))
	}
	return masters[0], nil
}

// spec is what every call needs to find the cluster's resources.
func (p *Provider) spec() (*Spec, error) {
	m, err := p.master()
	if err != nil {
		return nil, err
	}
	a := p.Config.AWS
	return &Spec{Cluster: p.Config.Name, AMI: p.AMI, InstanceType: a.InstanceType, AllowedCIDRs: a.AllowedCIDRs,
		ConfigURL: a.ConfigURL, Endpoint: p.Config.ControlPlane.Endpoint, NumNodes: p.NumNodes,
		Master: Config{Name: m.Name, Address: m.Address}, Node: Config{Name: cluster.RoleNode}}, nil
}

// Prepare finds or makes what the configs depend on: the master's Elastic IP (a SAN of the
// API server certificate), the network, and the etcd volume (whose device the master's config
// mounts).
func (p *Provider) Prepare(ctx context.Context) (provider.Prepared, error) {
	if p.Config.AWS == nil {
		return provider.Prepared{}, errors.New("target aws needs an aws block in the cluster config")
	}
	if p.NumNodes < 0 {
		return provider.Prepared{}, fmt.Errorf("--num-nodes %d: want 0 or more", p.NumNodes)
	}
	s, err := p.spec()
	if err != nil {
		return provider.Prepared{}, err
	}
	// The master's agent must not wait for the named nodes of a local config.
	if named := len(p.Config.Machines) - 1; named > 0 {
		p.Config.TrimNodes(0)
		how := "the Auto Scaling group's nodes boot the node role's config"
		if p.NumNodes > 0 {
			how = fmt.Sprintf("the Auto Scaling group starts --num-nodes=%d nodes from the node role's config", p.NumNodes)
		}
		fmt.Fprintf(p.out(), "note: the config's %d named nodes are not started on AWS: %s\n", named, how)
	}
	if s.TokenSeed, err = p.tokenSeed(); err != nil {
		return provider.Prepared{}, err
	}
	c, err := p.client(ctx)
	if err != nil {
		return provider.Prepared{}, err
	}
	if p.DryRun {
		fmt.Fprintf(p.out(), "plan for cluster %s in %s (dry run: nothing is changed):\n", s.Cluster, c.region)
	} else {
		fmt.Fprintf(p.out(), "cluster %s in %s:\n", s.Cluster, c.region)
	}
	if p.AMI == "" {
		id, name, err := c.NewestImage(ctx, ImagePattern(p.Config.OS))
		if err != nil {
			return provider.Prepared{}, err
		}
		p.AMI, s.AMI = id, id
		fmt.Fprintf(p.out(), "image %s (%s): the newest AMI of this account named %s\n", id, name, ImagePattern(p.Config.OS))
	}
	p.run, err = c.Prepare(ctx, s, p.DryRun)
	if err != nil {
		return provider.Prepared{}, err
	}
	prep := provider.Prepared{Render: ignition.Options{EtcdDevice: p.run.EtcdDevice()}, Roles: []string{cluster.RoleNode}}
	if eip := p.run.ElasticIP(); eip != "" {
		prep.SANs = []string{eip}
	}
	return prep, nil
}

// Deliver stores the master's config and the node role's config: the master's in S3 behind
// a pointer (it holds the CA keys), the node role's as the launch template's user-data.
func (p *Provider) Deliver(ctx context.Context, configs []ignition.Config) error {
	if p.run == nil {
		return errors.New("aws: Deliver before Prepare")
	}
	s := p.run.s
	var master, node *ignition.Config
	for i, c := range configs {
		switch {
		case c.Role == cluster.RoleMaster && c.Name == s.Master.Name:
			master = &configs[i]
		case c.Role == cluster.RoleNode && c.Name == cluster.RoleNode:
			node = &configs[i]
		default:
			return fmt.Errorf("aws: config %s: the AWS provider starts the master %s and the node role's anonymous machines only", c.Name, s.Master.Name)
		}
	}
	if master == nil || node == nil {
		return errors.New("aws: Deliver needs the master's config and the node role's config")
	}
	s.CertSANs = p.Config.ControlPlane.CertSANs
	m, _ := p.Config.Machine(master.Name)
	return p.run.Deliver(ctx, Config{Name: master.Name, Address: m.Address, Raw: master.Raw, Secret: true, Sum: sha256Hex(master.Raw)},
		Config{Name: node.Name, Raw: p.nodeRaw(ctx, node.Raw), Sum: sha256Hex(node.Raw)})
}

// nodeRaw is the node role's config with the node token pool's current token (NodeConfig),
// read from the master at its Elastic IP; when the master does not answer yet, the config as
// rendered, and the launch template keeps the version it has.
func (p *Provider) nodeRaw(ctx context.Context, raw []byte) []byte {
	eip := p.run.ElasticIP()
	if p.NodeConfig == nil || eip == "" {
		return raw
	}
	fresh, err := p.NodeConfig(ctx, APIEndpoint(eip), raw)
	if err != nil {
		p.run.s.KeepNodeConfig = true
		p.run.s.KeepNodeConfigWhy = fmt.Sprintf("the node config could not be brought up to date (%v); run kubeup tokens sync once the master answers", err)
		fmt.Fprintf(p.out(), "node config: the bundle's as rendered; %v\n", err)
		return raw
	}
	return fresh
}

// prepared is Prepare's run, made now when this provider did not prepare (a command on a
// cluster an earlier up made: Replace, an upgrade's render). It finds what exists; it makes
// only what is missing, as a re-run of up would.
func (p *Provider) prepared(ctx context.Context) (*Run, error) {
	if p.run == nil {
		if _, err := p.Prepare(ctx); err != nil {
			return nil, err
		}
	}
	return p.run, nil
}

// RenderOptions are Prepare's: the master's config mounts the etcd volume by its device.
func (p *Provider) RenderOptions(ctx context.Context) (ignition.Options, error) {
	r, err := p.prepared(ctx)
	if err != nil {
		return ignition.Options{}, err
	}
	return ignition.Options{EtcdDevice: r.EtcdDevice()}, nil
}

// BootedImage is the AMI machine name's instance runs: the master's, or a node's, named by its
// private DNS name's host part as its kubelet registers.
func (p *Provider) BootedImage(ctx context.Context, name string) (string, error) {
	in, err := p.instance(ctx, name)
	if err != nil {
		return "", err
	}
	return aws.ToString(in.ImageId), nil
}

// BootedConfig is nil: the master's config is in S3 under a name every config of it shares,
// and a node's user-data carries the token its launch template had: BootedConfigSum tells.
func (p *Provider) BootedConfig(context.Context, string) ([]byte, error) { return nil, nil }

// BootedConfigSum is the SHA-256 of the config machine name's instance boots, as rendered from
// the bundle (ConfigSumTag); "" for an instance started before kubeup tagged it.
func (p *Provider) BootedConfigSum(ctx context.Context, name string) (string, error) {
	in, err := p.instance(ctx, name)
	if err != nil {
		return "", err
	}
	return tagValue(in.Tags, ConfigSumTag), nil
}

// instance finds machine name's live instance: the master by its Name tag, a node among the
// cluster's instances by its private DNS name's host part (Machines' names).
func (p *Provider) instance(ctx context.Context, name string) (ec2types.Instance, error) {
	r, err := p.prepared(ctx)
	if err != nil {
		return ec2types.Instance{}, err
	}
	filters := r.s.clusterFilter(filter("instance-state-name", "pending", "running", "stopping", "stopped"))
	if name == r.s.Master.Name {
		filters = r.s.tagFilters(r.s.name(name), filters[1:]...)
	}
	pg := ec2.NewDescribeInstancesPaginator(r.p.ec2, &ec2.DescribeInstancesInput{Filters: filters})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return ec2types.Instance{}, r.wrap("DescribeInstances", "instance of "+name, err)
		}
		for _, res := range page.Reservations {
			for _, in := range res.Instances {
				host, _, _ := strings.Cut(aws.ToString(in.PrivateDnsName), ".")
				if name == r.s.Master.Name || (host == name && tagValue(in.Tags, RoleTag) != cluster.RoleMaster) {
					return in, nil
				}
			}
		}
	}
	return ec2types.Instance{}, fmt.Errorf("aws: cluster %s has no live instance for %s in %s (kubeup status lists them)", r.s.Cluster, name, r.p.region)
}

// Create starts the master and the nodes' Auto Scaling group, and prints what up leaves to
// the operator.
func (p *Provider) Create(ctx context.Context) error {
	if p.run == nil {
		return errors.New("aws: Create before Prepare")
	}
	rep, err := p.run.Create(ctx)
	if rep != nil {
		for _, todo := range rep.TODO {
			fmt.Fprintf(p.out(), "note: %s\n", todo)
		}
	}
	return err
}

// Machines lists the cluster's live instances with what their serial consoles say
// (GetConsoleOutput: the same lines QEMU's serial log has, read without logging in). The
// master is named as in the config; a node by its private DNS name's host part, which is the
// name its kubelet registers.
func (p *Provider) Machines(ctx context.Context) ([]provider.Machine, error) {
	s, err := p.spec()
	if err != nil {
		return nil, err
	}
	c, err := p.client(ctx)
	if err != nil {
		return nil, err
	}
	var ms []provider.Machine
	pg := ec2.NewDescribeInstancesPaginator(c.ec2, &ec2.DescribeInstancesInput{Filters: s.clusterFilter(
		filter("instance-state-name", "pending", "running", "stopping", "stopped"))})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return nil, wrap(c.region, "DescribeInstances", "instances of "+s.Cluster, err)
		}
		for _, res := range page.Reservations {
			for _, in := range res.Instances {
				m := provider.Machine{Role: tagValue(in.Tags, RoleTag), Running: in.State != nil && in.State.Name == ec2types.InstanceStateNameRunning}
				switch {
				case m.Role == cluster.RoleMaster:
					m.Name = s.Master.Name
				case aws.ToString(in.PrivateDnsName) != "":
					m.Role = cluster.RoleNode
					m.Name, _, _ = strings.Cut(aws.ToString(in.PrivateDnsName), ".")
				default:
					m.Role = cluster.RoleNode
					m.Name = aws.ToString(in.InstanceId)
				}
				if m.Console, err = p.console(ctx, c, aws.ToString(in.InstanceId)); err != nil {
					return nil, err
				}
				ms = append(ms, m)
			}
		}
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("aws: no instance of cluster %s in %s: %w (kubeup up makes them)", s.Cluster, c.region, fs.ErrNotExist)
	}
	// The master first, then the nodes by name: the same order on every poll.
	rank := func(m provider.Machine) int {
		if m.Role == cluster.RoleMaster {
			return 0
		}
		return 1
	}
	slices.SortFunc(ms, func(a, b provider.Machine) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(a.Name, b.Name))
	})
	return ms, nil
}

// isPrivate says whether host is not a public address (a name, or a private address).
func isPrivate(host string) bool {
	a, err := netip.ParseAddr(host)
	return err != nil || a.IsPrivate()
}

// console reads an instance's console output, the newest EC2 has.
func (p *Provider) console(ctx context.Context, c *Client, id string) (machine.Console, error) {
	out, err := c.ec2.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(id), Latest: aws.Bool(true)})
	if err != nil {
		return machine.Console{}, wrap(c.region, "GetConsoleOutput", "instance "+id, err)
	}
	if out.Output == nil {
		return machine.Console{}, nil // nothing printed yet
	}
	text, err := base64.StdEncoding.DecodeString(aws.ToString(out.Output))
	if err != nil {
		return machine.Console{}, fmt.Errorf("aws: console output of %s: %w", id, err)
	}
	return machine.ReadConsole(strings.NewReader(string(text)))
}

// Endpoint is the API server at the master's Elastic IP.
func (p *Provider) Endpoint(ctx context.Context) (string, error) {
	if p.run != nil && p.run.ElasticIP() != "" {
		return APIEndpoint(p.run.ElasticIP()), nil
	}
	s, err := p.spec()
	if err != nil {
		return "", err
	}
	c, err := p.client(ctx)
	if err != nil {
		return "", err
	}
	out, err := c.ec2.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{Filters: s.tagFilters(s.name("master"))})
	if err != nil {
		return "", wrap(c.region, "DescribeAddresses", "elastic IP "+s.name("master"), err)
	}
	if len(out.Addresses) > 0 {
		return APIEndpoint(aws.ToString(out.Addresses[0].PublicIp)), nil
	}
	if h := s.endpointHost(); h != "" && !isPrivate(h) {
		return APIEndpoint(h), nil // the operator's own address
	}
	return "", fmt.Errorf("aws: cluster %s has no Elastic IP in %s: %w (kubeup up allocates it)", s.Cluster, c.region, fs.ErrNotExist)
}

// Replace gives the master a new root: its instance is terminated and a new one is started
// from the AMI with config, with the same etcd volume, private address and Elastic IP. Nodes
// are members of the Auto Scaling group: they are replaced by a new launch template version
// and an instance refresh, not one by one here.
func (p *Provider) Replace(ctx context.Context, name string, config ignition.Config) error {
	r, err := p.prepared(ctx)
	if err != nil {
		return err
	}
	if name != r.s.Master.Name {
		return fmt.Errorf("aws: %s: only the master is replaced by name; nodes of the Auto Scaling group are replaced by an instance refresh", name)
	}
	if r.instance == "" {
		id, err := r.findInstance(ctx, r.s.name(name))
		if err != nil {
			return err
		}
		r.instance = id
	}
	if r.instance != "" {
		if _, err := r.p.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{r.instance}}); err != nil {
			return r.wrap("TerminateInstances", "instance "+r.instance, err)
		}
		w := ec2.NewInstanceTerminatedWaiter(r.p.ec2, func(o *ec2.InstanceTerminatedWaiterOptions) { r.p.waitDelay(&o.MinDelay, &o.MaxDelay) })
		if err := w.Wait(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{r.instance}}, 10*time.Minute); err != nil {
			return r.wrap("DescribeInstances (wait until terminated)", "instance "+r.instance, err)
		}
		r.rep.add(r.p.out, Step{Kind: "instance", Name: r.s.name(name), ID: r.instance, State: "deleted", Note: "replaced"})
	}
	// The new instance is a new creation: its ClientToken names the config it boots.
	r.s.Master.Raw, r.s.Master.Secret = config.Raw, true // a master's config holds the CA keys
	r.s.Master.Sum = sha256Hex(config.Raw)
	r.instanceToken = "master-instance-" + hashOf(config.Raw)
	r.instance, r.volumeAttachedTo, r.eipOwner = "", "", ""
	if err := r.ensureConfigs(ctx, r.s.Master); err != nil {
		return err
	}
	if err := r.ensureSecurityGroups(ctx); err != nil {
		return err
	}
	return r.ensureMaster(ctx)
}

// Logs says where to look when a machine does not come up.
func (p *Provider) Logs() string {
	return "console output: kubeup status, or aws ec2 get-console-output --latest --instance-id <id>"
}

// Down deletes what up made, found by the cluster's tags, then Dir.
func (p *Provider) Down(ctx context.Context) error {
	s, err := p.spec()
	if err != nil {
		return err
	}
	c, err := p.client(ctx)
	if err != nil {
		return err
	}
	if p.DryRun {
		fmt.Fprintf(p.out(), "would delete, of cluster %s in %s (dry run: nothing is changed):\n", s.Cluster, c.region)
	} else {
		fmt.Fprintf(p.out(), "deleting cluster %s in %s:\n", s.Cluster, c.region)
	}
	rep, err := c.Down(ctx, s, p.DryRun)
	if err != nil || p.DryRun {
		return err
	}
	// The token seed goes with what its tokens made (the next up starts with new tokens, or EC2
	// would answer its creations with the deleted resources), the host kubeconfig with the
	// released Elastic IP.
	if err := os.RemoveAll(p.Dir); err != nil {
		return err
	}
	fmt.Fprintf(p.out(), "deleted %d resources of cluster %s; the bucket stays\n", len(rep.Steps), s.Cluster)
	return nil
}

// tokenSeed is the cluster's ClientToken seed, made on first use. A dry run makes none.
func (p *Provider) tokenSeed() (string, error) {
	path := filepath.Join(p.Dir, "token-seed")
	data, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(data)), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if p.DryRun {
		return "", nil
	}
	seed := hex.EncodeToString(randomBytes(16))
	if err := fsutil.MkdirAll(p.Dir, 0o700); err != nil {
		return "", err
	}
	if err := fsutil.CreateFile(path, []byte(seed+"\n"), 0o600); err != nil {
		return "", err
	}
	return seed, nil
}

// TokenSeed is the seed kept in dir by an earlier up, or "" if there is none.
func TokenSeed(dir string) string {
	data, _ := os.ReadFile(filepath.Join(dir, "token-seed"))
	return strings.TrimSpace(string(data))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}
