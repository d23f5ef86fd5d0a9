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
	// APIVersion is the schema's version: kubeup.dev/v1alpha1.
	APIVersion string `yaml:"apiVersion"`
	// Kind is Cluster.
	Kind string `yaml:"kind"`
	// Name names the cluster; it is also the state directory (.kubeup/<name>/).
	Name string `yaml:"name"`
	// KubernetesVersion is the Kubernetes release the machines run: one this kubeup brings up
	// (`kubeup version` lists them). The QEMU image must be built for it
	// (KUBEUP_KUBERNETES=v1.36.3 make image).
	KubernetesVersion string `yaml:"kubernetesVersion"`
	// Target says where the machines run: qemu (default), metal, aws or vsphere.
	Target string `yaml:"target"`
	// OS is the layout of the image the machines boot: debian (default: the image `make image`
	// builds) or flatcar. It decides where the units find kubeup's binaries.
	OS string `yaml:"os"`
	// ControlPlane says how clients reach the API server.
	ControlPlane ControlPlane `yaml:"controlPlane"`
	// Network holds the cluster's address ranges and its CNI.
	Network Network `yaml:"network"`
	// Addons are the default add-ons to install, from kube-proxy, coredns and metrics-server;
	// unset means all of them, an empty list (addons: []) none.
	Addons []string `yaml:"addons"`
	// PKI tunes the secrets bundle.
	PKI PKI `yaml:"pki"`
	// PodSecurity is the Pod Security Standard that namespaces without a
	// pod-security.kubernetes.io/enforce label enforce: privileged, baseline (default) or
	// restricted. Such namespaces also warn and audit at restricted. kubeup labels its own
	// namespaces (kube-system, kube-flannel, verify's) for what they run.
	PodSecurity string `yaml:"podSecurity"`
	// Registries send the machines' image pulls from upstream registries to mirrors: an
	// air-gapped site's own registry, or a pull-through cache. The bundle's images are in
	// containerd's store already and are never pulled; every other image of a listed registry
	// is pulled from its mirrors, in order, then from the registry itself.
	Registries []Registry `yaml:"registries"`
	// Machines are the cluster's named machines: exactly one master, and any number of nodes.
	Machines []Machine `yaml:"machines"`
	// Butane holds Butane snippets merged into every machine of a role.
	Butane RoleButane `yaml:"butane"`
	// QEMU configures local VMs (target qemu).
	QEMU *QEMU `yaml:"qemu,omitempty"`
	// Metal configures bare-metal machines booted from the network (target metal).
	Metal *Metal `yaml:"metal,omitempty"`
	// AWS configures EC2 machines (target aws).
	AWS *AWS `yaml:"aws,omitempty"`
	// VSphere configures VMs cloned from a vSphere template (target vsphere).
	VSphere *VSphere `yaml:"vsphere,omitempty"`
}

// ControlPlane says how clients reach the API server.
type ControlPlane struct {
	// Endpoint is host:port (or host) that nodes and users use to reach the API server. Its host
	// must be covered by the API server certificate: the master's name or address, or one of CertSANs.
	// Empty: the master's address; no port: 6443.
	Endpoint string `yaml:"endpoint"`
	// CertSANs are extra names and addresses for the API server certificate (load balancers,
	// forwarded ports, DNS names).
	CertSANs []string `yaml:"certSANs"`
}

// Network holds the cluster's address ranges and its CNI.
type Network struct {
	// PodCIDR is the range pod addresses come from; each node gets a slice of it.
	PodCIDR string `yaml:"podCIDR"`
	// ServiceCIDR is the range ClusterIP Service addresses come from.
	ServiceCIDR string `yaml:"serviceCIDR"`
	// DNSDomain is the cluster's DNS domain, which CoreDNS serves.
	DNSDomain string `yaml:"dnsDomain"`
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

// Registry is one upstream registry's mirrors, written as containerd's hosts.toml on every
// machine.
type Registry struct {
	// Registry is the upstream registry's host, as image references name it: registry.k8s.io,
	// docker.io, ghcr.io, or host:port.
	Registry string `yaml:"registry"`
	// Mirrors are the mirrors' base URLs (https://mirror.example.internal:5000), tried in
	// order; each must serve the registry's images under the same names (the OCI distribution
	// API). Plain http:// is allowed for a mirror on a network you trust. A mirror's
	// credentials are kept in the secrets bundle (kubeup registry login), never here.
	Mirrors []string `yaml:"mirrors"`
	// CA is a PEM CA certificate the mirrors' TLS certificates chain to, when the machines'
	// system trust does not cover them.
	CA string `yaml:"ca"`
}

// Machine is one machine of the cluster.
type Machine struct {
	// Name is the machine's hostname and its Node's name.
	Name string `yaml:"name"`
	// Role is master or node.
	Role string `yaml:"role"`
	// MAC identifies the machine on the network (PXE, QEMU) and selects its static address.
	MAC string `yaml:"mac"`
	// UUID is the machine's SMBIOS system UUID: on bare metal the PXE server also recognises a
	// machine by it (iPXE's ${uuid}).
	UUID string `yaml:"uuid,omitempty"`
	// Serial is the machine's SMBIOS serial number: on bare metal the PXE server also recognises
	// a machine by it (iPXE's ${serial}).
	Serial string `yaml:"serial,omitempty"`
	// Address is the machine's IPv4 address in CIDR form (10.0.0.10/24); empty means DHCP. The
	// master needs one: etcd and the API server advertise it.
	Address string `yaml:"address"`
	// Gateway is the default route for a static address; optional.
	Gateway string `yaml:"gateway"`
	// Butane is a Butane (fcos 1.5.0) snippet merged into this machine's Ignition config.
	Butane string `yaml:"butane"`
}

// RoleButane holds Butane snippets merged into every machine of a role.
type RoleButane struct {
	// Master is a Butane snippet merged into the master's Ignition config.
	Master string `yaml:"master"`
	// Node is a Butane snippet merged into every node's Ignition config.
	Node string `yaml:"node"`
}

// QEMU configures local VMs.
type QEMU struct {
	// Memory is each VM's memory, e.g. 2G.
	Memory string `yaml:"memory"`
	// CPUs is each VM's number of virtual CPUs.
	CPUs int `yaml:"cpus"`
	// Network is the private network the VMs share (CIDR); machine addresses must lie in it.
	Network string `yaml:"network"`
	// HostForwards are services on this host that every VM reaches at a guest address, such
	// as a registry mirror: each VM gets a second NIC on QEMU's restricted user network, whose
	// only way out is these forwards. The host side must be a loopback address.
	HostForwards []HostForward `yaml:"hostForwards,omitempty"`
}

// HostForward is one service on the host as the VMs reach it.
type HostForward struct {
	// Guest is the address the VMs connect to, in QEMU's user network 10.0.2.0/24 and not one
	// of its own (.2 the host, .3 DNS, .15 the VM): 10.0.2.100:5000.
	Guest string `yaml:"guest"`
	// Host is where the service listens on this host's loopback: 127.0.0.1:5000.
	Host string `yaml:"host"`
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
	// Region is the AWS region the cluster is made in.
	Region string `yaml:"region"`
	// InstanceType is the EC2 instance type of every machine.
	InstanceType string `yaml:"instanceType"`
	// AMI is the machine image (built from images/aws-*.pkr.hcl); kubeup up --packer-manifest
	// takes it from a Packer manifest instead.
	AMI string `yaml:"ami"`
	// AllowedCIDRs are the address ranges that may reach the API server's port; nothing else is
	// let in from outside (no SSH).
	AllowedCIDRs []string `yaml:"allowedCIDRs"`
	// ConfigURL is where configs too large for user-data, or holding secrets, are stored
	// (s3://bucket/prefix/); user-data then holds a hash-pinned pointer to them.
	ConfigURL string `yaml:"configURL"`
}

// VSphere configures VMs cloned from a vSphere template.
type VSphere struct {
	// Server is the vCenter's URL, used when GOVC_URL is not set.
	Server string `yaml:"server"`
	// Datacenter is the datacenter the VMs are made and looked for in.
	Datacenter string `yaml:"datacenter"`
	// Datastore holds the VMs' disks.
	Datastore string `yaml:"datastore"`
	// Network is the network each VM's first network card is connected to.
	Network string `yaml:"network"`
	// Template is the VM template to clone (built from images/vsphere-flatcar.pkr.hcl); kubeup up
	// --packer-manifest takes it from a Packer manifest instead.
	Template string `yaml:"template"`
	// ConfigURL is where configs over the guestinfo limit are served from (https://...).
	ConfigURL string `yaml:"configURL"`
}
