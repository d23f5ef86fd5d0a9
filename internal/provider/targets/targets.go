package targets

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/ignition"
	"kubeup.dev/kubeup/internal/packermanifest"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/internal/provider"
	"kubeup.dev/kubeup/internal/provider/aws"
	"kubeup.dev/kubeup/internal/provider/metal"
	"kubeup.dev/kubeup/internal/provider/qemu"
	"kubeup.dev/kubeup/internal/provider/vsphere"
)

// Options are what the commands hand a provider; each target takes the fields it uses.
type Options struct {
	// State is the secrets bundle's directory; a provider keeps its own files in Dir(State, target).
	State string
	// Out gets the provider's progress and notes.
	Out io.Writer
	// DryRun makes the provider print what up or down would do and change nothing (Plans).
	DryRun bool
	// NumNodes is how many nodes up starts: the size of AWS's node group (NodeGroup).
	NumNodes int
	// Manifest is a Packer manifest (its post-processor "manifest" output) naming the image:
	// the AMI (aws) or the template (vsphere) of its last build.
	Manifest string
	// Image is the image new machines boot, overriding the config's and Manifest's: QEMU's
	// image directory (none: a replaced machine keeps its image), an AMI id (aws), a template
	// (vsphere). Bare metal boots what the PXE server's assets hold.
	Image string
	// PollDelay is how often a cloud's provider asks whether a change it waits for is done (0:
	// its SDK's defaults, 15 s on AWS).
	PollDelay time.Duration
	// APIPort and KVM are QEMU's: the host port forwarded to the API server (0: a free one),
	// and KVM instead of emulation.
	APIPort int
	KVM     bool
	// Reboot asks machine name's agent to reboot it (machine.RebootAnnotation): how bare
	// metal's Replace has a network-booted machine boot its new config.
	Reboot func(ctx context.Context, name string) error
	// NodeConfig brings the node role's config up to date before AWS puts it into the launch
	// template (the token pool's current token); used with pki.bootstrapTokenPool.
	NodeConfig func(ctx context.Context, server string, raw []byte) ([]byte, error)
}

// Target is one row of the table.
type Target struct {
	// New makes the provider of the cluster cfg, whose bundle is in opt.State. It fails on an
	// option the target cannot honour (a Packer manifest with no image for it). The caller
	// logs out of a provider that holds a session (Close).
	New func(cfg *cluster.Config, opt Options) (provider.Provider, error)
	// Channel is how one config reaches its machine on this target.
	Channel provider.ChannelRule
	// Plans says up and down have a plan to print with --dry-run (what they would create in
	// or delete from an account or an inventory). Elsewhere they make and remove only files
	// and processes under Dir.
	Plans bool
	// NodeGroup says the nodes are a group's anonymous members, started from the node role's
	// config, NumNodes of them (AWS's Auto Scaling group). Elsewhere they are the config's
	// named machines, and up starts the first NumNodes.
	NodeGroup bool
	// OwnKubeconfig says up writes the host's admin kubeconfig into Dir, because the host
	// reaches the API server at another address than the config's endpoint (QEMU's forwarded
	// port, AWS's Elastic IP). Elsewhere the bundle's admin.conf, which names the endpoint, is
	// the host's.
	OwnKubeconfig bool
	// Starter fills what a starter config for the target needs beyond its name, for `kubeup
	// up` with no config, and returns a note for the user about what it could not fill ("" if
	// none). Without it the target has no starter, and NoStarter says why and what to do
	// instead.
	Starter   func(ctx context.Context, v *cluster.StarterValues) (note string)
	NoStarter string
	// SyncTokens puts a node config carrying the node token pool's current token
	// (opt.NodeConfig) where the target's new nodes read it (AWS's launch template), changing
	// nothing with dry. Without it, TokensNote says why nothing needs syncing, or what to do.
	SyncTokens func(ctx context.Context, cfg *cluster.Config, opt Options, dry bool) error
	TokensNote string
	// DefaultImage is the image of a release where no image is given (QEMU: the cache's);
	// without it the provider finds its own (the config's, the manifest's, the newest AMI).
	DefaultImage func(release string) string
	// ImageRelease is the Kubernetes release image holds, as the image says; without it the
	// release is not known before a machine boots it.
	ImageRelease func(image string) (string, error)
}

var table = map[string]Target{
	cluster.TargetQEMU: {
		New:           func(cfg *cluster.Config, opt Options) (provider.Provider, error) { return QEMU(cfg, opt), nil },
		Channel:       qemu.Channel,
		OwnKubeconfig: true,
		Starter:       asIs,
		TokensNote:    renderAgain,
		DefaultImage:  qemuImage,
		ImageRelease: func(dir string) (string, error) {
			img, err := qemu.ImageIn(dir)
			return img.Kubernetes, err
		},
	},
	cluster.TargetAWS: {
		New:           func(cfg *cluster.Config, opt Options) (provider.Provider, error) { return AWS(cfg, opt) },
		Channel:       aws.Channel,
		Plans:         true,
		NodeGroup:     true,
		OwnKubeconfig: true,
		Starter:       awsStarter,
		SyncTokens:    syncAWSTokens,
	},
	cluster.TargetVSphere: {
		New:        func(cfg *cluster.Config, opt Options) (provider.Provider, error) { return VSphere(cfg, opt) },
		Channel:    vsphere.Channel,
		Plans:      true,
		Starter:    asIs,
		TokensNote: renderAgain,
	},
	cluster.TargetMetal: {
		New:        func(cfg *cluster.Config, opt Options) (provider.Provider, error) { return Metal(cfg, opt), nil },
		Channel:    metal.Channel,
		NoStarter:  "there is no starter config for bare metal, whose machines each need their MAC and address (fix: write a config, configs/metal.yaml is an example, and pass --config)",
		TokensNote: "nothing to sync: kubeup pxe serve puts the current node token into every node config it hands out",
	},
}

// qemuImage is $KUBEUP_IMAGE, or the cache's image of release.
func qemuImage(release string) string {
	if d := os.Getenv("KUBEUP_IMAGE"); d != "" {
		return d
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return qemu.DefaultImageDir(cache, release)
}

// asIs is the starter of a target whose starter config needs nothing but its name.
func asIs(context.Context, *cluster.StarterValues) string { return "" }

// renderAgain is the tokens note of a target whose named machines boot configs rendered
// beforehand: a node made later needs its config rendered then.
const renderAgain = "nothing to sync: this target's nodes are the config's named machines, each booting the config rendered for it; a node made later gets the current token when its config is rendered (ignition-gen, kubeup up)"

// awsStarter: the region the SDK's settings name, and a bucket of the cluster's own for
// pointer configs (bucket names are global: a random part makes it the cluster's).
func awsStarter(ctx context.Context, v *cluster.StarterValues) string {
	v.Region = aws.DefaultRegion(ctx)
	suffix := make([]byte, 6)
	rand.Read(suffix)
	v.Bucket = "kubeup-configs-" + hex.EncodeToString(suffix)
	if v.Region == "" {
		return "the AWS SDK's settings name no region (AWS_REGION, your profile): set aws.region in " + cluster.StarterFile
	}
	return ""
}

// syncAWSTokens renders the node role's config in memory (it holds a bootstrap token), gives
// it the pool's current token as read from the API server at the address up left reachable
// (the Elastic IP in the host kubeconfig), and makes it the launch template's new default
// version when it differs.
func syncAWSTokens(ctx context.Context, cfg *cluster.Config, opt Options, dry bool) error {
	b, err := pki.Load(opt.State, cfg)
	if err != nil {
		return err
	}
	nodes, err := ignition.Configs(cfg, b, ignition.Options{Role: cluster.RoleNode})
	if err != nil {
		return err
	}
	kubeconfig := ownKubeconfig(opt.State, cluster.TargetAWS)
	kc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("%s: %w (kubeup up writes it)", kubeconfig, err)
	}
	raw, err := opt.NodeConfig(ctx, kc.Host, nodes[0].Raw)
	if err != nil {
		return err
	}
	p, err := aws.New(ctx, aws.Options{Region: cfg.AWS.Region, Out: opt.Out})
	if err != nil {
		return err
	}
	_, err = p.SyncNodeConfig(ctx, &aws.Spec{Cluster: cfg.Name, ConfigURL: cfg.AWS.ConfigURL, TokenSeed: aws.TokenSeed(Dir(opt.State, cluster.TargetAWS)),
		Node: aws.Config{Name: nodes[0].Name, Raw: raw}}, dry)
	return err
}

// Lookup is target's row.
func Lookup(target string) (Target, error) {
	t, ok := table[target]
	if !ok {
		return Target{}, fmt.Errorf("target %q has no provider (the targets are %s)", target, strings.Join(Names(), ", "))
	}
	return t, nil
}

// Names are the targets, sorted.
func Names() []string { return slices.Sorted(maps.Keys(table)) }

// Dir is where target's provider keeps its files for the cluster whose bundle is in state.
func Dir(state, target string) string { return filepath.Join(state, target) }

// HostKubeconfig is the admin kubeconfig this host uses for the cluster whose bundle is in
// state: the one up writes into Dir (OwnKubeconfig), or else the bundle's, which also serves a
// cluster whose configs ignition-gen rendered, with no kubeup up.
func HostKubeconfig(state, target string) string {
	if table[target].OwnKubeconfig {
		return ownKubeconfig(state, target)
	}
	return filepath.Join(state, "admin.conf")
}

// ownKubeconfig is the host's admin kubeconfig of a target that writes its own.
func ownKubeconfig(state, target string) string {
	return filepath.Join(Dir(state, target), "admin.conf")
}

// QEMU is the QEMU provider of cfg's cluster; restore and upgrade use what only it has (the
// master's etcd disk, the images).
func QEMU(cfg *cluster.Config, opt Options) *qemu.Provider {
	return &qemu.Provider{Config: cfg, Dir: Dir(opt.State, cluster.TargetQEMU), ImageDir: opt.Image, APIPort: opt.APIPort, KVM: opt.KVM, Out: opt.Out}
}

// AWS is the AWS provider of cfg's cluster; its AMI is opt.Image, else the manifest's, else
// aws.ami (none: Prepare finds the newest the Packer template built).
func AWS(cfg *cluster.Config, opt Options) (*aws.Provider, error) {
	p := &aws.Provider{Config: cfg, Dir: Dir(opt.State, cluster.TargetAWS), NumNodes: opt.NumNodes, DryRun: opt.DryRun, Out: opt.Out,
		Client: aws.Options{PollDelay: opt.PollDelay}}
	if cfg.PKI.BootstrapTokenPool {
		p.NodeConfig = opt.NodeConfig
	}
	if cfg.AWS != nil {
		ami, err := amiFrom(opt.Manifest, cfg.AWS.Region, cfg.AWS.AMI)
		if err != nil {
			return nil, err
		}
		p.AMI = cmp.Or(opt.Image, ami)
	}
	return p, nil
}

// VSphere is the vSphere provider of cfg's cluster, which logs in on first use; its template
// is opt.Image, else the manifest's, else vsphere.template.
func VSphere(cfg *cluster.Config, opt Options) (*vsphere.Provider, error) {
	p := &vsphere.Provider{Config: cfg, Dir: Dir(opt.State, cluster.TargetVSphere), DryRun: opt.DryRun, Out: opt.Out}
	if cfg.VSphere != nil {
		p.Template = cfg.VSphere.Template
	}
	if opt.Manifest != "" {
		id, err := packermanifest.LastArtifact(opt.Manifest, "vsphere-clone")
		if err != nil {
			return nil, err
		}
		p.Template = id
		if opt.Out != nil {
			fmt.Fprintf(opt.Out, "template %s, from %s\n", id, opt.Manifest)
		}
	}
	p.Template = cmp.Or(opt.Image, p.Template)
	return p, nil
}

// Metal is the bare-metal provider of cfg's cluster: its configs go where 'kubeup pxe serve
// --ignition' reads them, and its reports come from the PXE server, trusted through the
// bundle's CA.
func Metal(cfg *cluster.Config, opt Options) *metal.Provider {
	return &metal.Provider{Config: cfg, Dir: Dir(opt.State, cluster.TargetMetal), CAFile: filepath.Join(opt.State, "pki", "ca.crt"), Out: opt.Out,
		Reboot: opt.Reboot}
}
