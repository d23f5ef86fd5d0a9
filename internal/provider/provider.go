package provider

import (
	"context"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/ignition"
	"kubeup.dev/kubeup/internal/machine"
)

// Provider runs one cluster's machines on one target. Its methods are called in this order by
// `kubeup up`; Machines, Endpoint, Replace and Down also work on a cluster an earlier run made.
type Provider interface {
	// Target is the cluster config's target this provider serves.
	Target() string
	// Prepare checks that the target can run the cluster (the host's cores and memory, the
	// account's credentials, the image) and makes what must exist before the secrets bundle.
	// It returns the addresses the API server's certificate must name besides the config's
	// (an Elastic IP no config can know in advance). When it fails it has changed nothing.
	Prepare(ctx context.Context) (Prepared, error)
	// Deliver puts each machine's config where that machine reads it on its first boot
	// (fw_cfg, user-data or a pointer to object storage, guestinfo, the PXE server).
	Deliver(ctx context.Context, configs []ignition.Config) error
	// Create starts the machines whose configs were delivered.
	Create(ctx context.Context) error
	// Machines is every machine's progress as the provider sees it, without logging in.
	Machines(ctx context.Context) ([]Machine, error)
	// Endpoint is the API server's URL as this host reaches it.
	Endpoint(ctx context.Context) (string, error)
	// Replace turns machine name off, discards its root disk and boots it again, from the
	// image, with config: how an immutable machine gets a new config or a new image. The
	// master's etcd data volume is kept: its data is the cluster's.
	Replace(ctx context.Context, name string, config ignition.Config) error
	// RenderOptions are the renderer's options for a config rendered after up, for a
	// replacement (an upgrade, a config change, a restore): what Prepare returned for the
	// cluster as it is (the master's etcd disk).
	RenderOptions(ctx context.Context) (ignition.Options, error)
	// Down removes what Prepare and Create made, and nothing else.
	Down(ctx context.Context) error
}

// Booted is a provider that tells what a running machine booted: its image and config. An
// upgrade gives a master that fails at the new release this image back, and at the same
// release replaces only the machines whose config or image differs.
type Booted interface {
	// BootedImage is machine name's image, as the provider's image option names one (QEMU's
	// image directory, an AMI id).
	BootedImage(ctx context.Context, name string) (string, error)
	// BootedConfig is the config machine name booted, byte for byte; nil when the provider
	// cannot read it back (a later render from the same bundle gives the same bytes).
	BootedConfig(ctx context.Context, name string) ([]byte, error)
}

// ConfigSums is a Booted provider that cannot read a booted config back but kept its SHA-256
// (vSphere's guestinfo.kubeup.config.sha256, the instance tag kubeup.dev/config-sha256 on
// AWS): enough to tell whether a new render differs.
type ConfigSums interface {
	// BootedConfigSum is the hex SHA-256 of the config machine name booted; "" when unknown
	// (a machine made before the provider recorded it).
	BootedConfigSum(ctx context.Context, name string) (string, error)
}

// GroupRefresher is a provider whose nodes are anonymous members of a group (AWS's Auto
// Scaling group): they are replaced through the group, not by name.
type GroupRefresher interface {
	// RefreshNodes makes node (the node role's config) what the group's new machines boot,
	// at the provider's image, and replaces every member with a new one, each new one
	// started before an old one goes; held is called with each old member's node name before
	// it goes (drain it there).
	RefreshNodes(ctx context.Context, node ignition.Config, held func(ctx context.Context, node string) error) error
}

// EtcdRestorer is a provider that can give the master an etcd disk made from a data
// directory on the host (an etcd snapshot restored there) and boot it with config.
type EtcdRestorer interface {
	// HasEtcdData says whether master name still has its etcd disk, the cluster's data.
	HasEtcdData(name string) (bool, error)
	// RestoreEtcd cuts master name's power, gives it a new etcd disk holding dataDir, and
	// boots it with a new root and config, as Replace does.
	RestoreEtcd(ctx context.Context, name, dataDir string, config ignition.Config) error
}

// Prepared is what Prepare found or made.
type Prepared struct {
	// SANs are addresses the API server's certificate must name besides the config's.
	SANs []string
	// Render are the renderer's options this target needs (on AWS the etcd volume's device).
	Render ignition.Options
	// Roles are the roles whose machines this target starts from one role config, as
	// anonymous members of a group (AWS's Auto Scaling group of nodes), rather than from the
	// config's named machines: Deliver gets each role's config too.
	Roles []string
}

// Machine is one machine's progress, as its provider sees it.
type Machine struct {
	Name    string
	Role    string
	Running bool
	// Console is what the machine printed about its bring-up (serial console, console output).
	Console machine.Console
}

// Channel is how a target hands one config to its machine, decided without asking the target:
// `kubeup up` delivers by it, and ignition-gen says it and writes what the operator must serve.
type Channel struct {
	// How names the channel: "fw_cfg opt/com.coreos/config", "EC2 user-data", ...
	How string
	// PointerURL, when set, is where the whole config must be served: the channel carries a
	// hash-pinned pointer to it instead (ignition.Pointer).
	PointerURL string
	// Why says why the config goes behind a pointer: it holds keys, or it is over the limit.
	Why string
}

// ChannelRule is a target's Channel for config c of the cluster cfg. It fails when the config
// cannot reach its machine at all (over vSphere's guestinfo limit with no vsphere.configURL).
type ChannelRule func(cfg *cluster.Config, c ignition.Config) (Channel, error)
