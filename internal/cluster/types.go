package cluster

// APIVersion and Kind identify a cluster config.
const (
	APIVersion = "kubeup.dev/v1alpha1"
	Kind       = "Cluster"
)

// Roles a machine can have.
const (
	RoleMaster = "master"
	RoleNode   = "node"
)

// Targets a cluster can be brought up on.
const (
	TargetQEMU    = "qemu"
	TargetMetal   = "metal"
	TargetAWS     = "aws"
	TargetVSphere = "vsphere"
)

// Config is one cluster: what runs, where, and on which machines.
type Config struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	// Name names the cluster; it is also the state directory (.kubeup/<name>/).
	Name string `yaml:"name"`
	// KubernetesVersion must be one of versions.Supported.
	KubernetesVersion string `yaml:"kubernetesVersion"`
	// Target says where the machines run: qemu (default), metal, aws or vsphere.
	Target string `yaml:"target"`
	// OS is the layout of the image the machines boot: debian (default: the image `make image`
	// builds) or flatcar. It decides where the units find kubeup's binaries.
	OS           string       `yaml:"os"`
	ControlPlane ControlPlane `yaml:"controlPlane"`
	Network      Network      `yaml:"network"`
	// Addons are the default add-ons to install; nil means all of them.
	Addons   []string   `yaml:"addons"`
	PKI      PKI        `yaml:"pki"`
	Machines []Machine  `yaml:"machines"`
	Butane   RoleButane `yaml:"butane"`
	QEMU     *QEMU      `yaml:"qemu,omitempty"`
	Metal    *Metal     `yaml:"metal,omitempty"`
	AWS      *AWS       `yaml:"aws,omitempty"`
	VSphere  *VSphere   `yaml:"vsphere,omitempty"`
}

// ControlPlane says how clients reach the API server.
type ControlPlane struct {
	// Endpoint is host:port (or host) that nodes and users use to reach the API server. Its host
	// must be covered by the API server certificate: the master's name or address, or one of CertSANs.
	Endpoint string `yaml:"endpoint"`
	// CertSANs are extra names and addresses for the API server certificate (load balancers,
	// forwarded ports, DNS names).
	CertSANs []string `yaml:"certSANs"`
}

// Network holds the cluster's address ranges and its CNI.
type Network struct {
	PodCIDR     string `yaml:"podCIDR"`
	ServiceCIDR string `yaml:"serviceCIDR"`
	DNSDomain   string `yaml:"dnsDomain"`
	// CNI is the pod network plugin; flannel is the one shipped.
	CNI string `yaml:"cni"`
}

// PKI tunes the secrets bundle.
type PKI struct {
	// BootstrapTokenTTL is how long the node bootstrap token is valid (Go duration, default 24h).
	BootstrapTokenTTL string `yaml:"bootstrapTokenTTL"`
	// NodeCertificateTTL is how long the certificates the controller-manager signs for the
	// kubelets (client and serving) are valid; the kubelets renew them at 70-90% of it. Empty
	// keeps Kubernetes' default (one year). Short values are for testing rotation.
	NodeCertificateTTL string `yaml:"nodeCertificateTTL,omitempty"`
	// BootstrapTokenPool keeps a node bootstrap token valid for fleets (an Auto Scaling group, a
	// PXE server's default role): the master's agent mints a successor, valid for
	// bootstrapTokenTTL, when less than a third of the current token's lifetime is left, and
	// kubeup and the PXE server put the current one into the node configs they hand out
	// (docs/bootstrap-tokens.md). Off: the bundle's token expires and new nodes stop joining.
	BootstrapTokenPool bool `yaml:"bootstrapTokenPool,omitempty"`
}

// Machine is one machine of the cluster.
type Machine struct {
	Name string `yaml:"name"`
	Role string `yaml:"role"`
	// MAC identifies the machine on the network (PXE, QEMU) and selects its static address.
	MAC string `yaml:"mac"`
	// UUID and Serial are the machine's SMBIOS system UUID and serial number: on bare metal the
	// PXE server also recognises a machine by them (iPXE's ${uuid} and ${serial}).
	UUID   string `yaml:"uuid,omitempty"`
	Serial string `yaml:"serial,omitempty"`
	// Address is the machine's IPv4 address in CIDR form (10.0.0.10/24); empty means DHCP.
	Address string `yaml:"address"`
	// Gateway is the default route for a static address; optional.
	Gateway string `yaml:"gateway"`
	// Butane is a Butane (fcos 1.5.0) snippet merged into this machine's Ignition config.
	Butane string `yaml:"butane"`
}

// RoleButane holds Butane snippets merged into every machine of a role.
type RoleButane struct {
	Master string `yaml:"master"`
	Node   string `yaml:"node"`
}

// QEMU configures local VMs.
type QEMU struct {
	Memory string `yaml:"memory"` // per VM, e.g. 2G
	CPUs   int    `yaml:"cpus"`
	// Network is the private network the VMs share (CIDR); machine addresses must lie in it.
	Network string `yaml:"network"`
}

// Metal configures bare-metal machines booted from the network.
type Metal struct {
	// PXEServer is the URL of `kubeup pxe serve` as the machines reach it.
	PXEServer string `yaml:"pxeServer"`
	// OS is no longer read here: the image's OS is the top-level os, for every target. The
	// field stays so that an old config gets a message saying so, not "unknown field".
	OS string `yaml:"os,omitempty"`
}

// AWS configures EC2 machines.
type AWS struct {
	Region       string   `yaml:"region"`
	InstanceType string   `yaml:"instanceType"`
	AMI          string   `yaml:"ami"`
	AllowedCIDRs []string `yaml:"allowedCIDRs"`
	// ConfigURL is where configs too large for user-data, or holding secrets, are stored
	// (s3://bucket/prefix/); user-data then holds a hash-pinned pointer to them.
	ConfigURL string `yaml:"configURL"`
}

// VSphere configures VMs cloned from a vSphere template.
type VSphere struct {
	Server     string `yaml:"server"`
	Datacenter string `yaml:"datacenter"`
	Datastore  string `yaml:"datastore"`
	Network    string `yaml:"network"`
	Template   string `yaml:"template"`
	// ConfigURL is where configs over the guestinfo limit are served from (https://...).
	ConfigURL string `yaml:"configURL"`
}
