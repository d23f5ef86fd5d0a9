package aws

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// Tag keys on everything Up makes.
const (
	ClusterTag = "kubeup.dev/cluster"
	RoleTag    = "kubeup.dev/role"
	// ConfigSumTag, on every instance, is the hex SHA-256 of the config it boots as rendered
	// from the bundle (Config.Sum): how an upgrade at the same release tells which machines a
	// config change reaches, since EC2 cannot give a config behind a pointer back.
	ConfigSumTag = "kubeup.dev/config-sha256"
)

// Spec is what Up needs to know about one cluster.
type Spec struct {
	// Cluster is the cluster's name: the value of every resource's ClusterTag and the stem of
	// their Name tags.
	Cluster      string
	AMI          string
	InstanceType string
	// AllowedCIDRs may reach the API server (6443) on the master. Nothing else is open to the
	// outside: there is no SSH.
	AllowedCIDRs []string
	// ConfigURL is s3://bucket/prefix/: where configs that must not or cannot go into
	// user-data are stored.
	ConfigURL string
	// Endpoint is the config's controlPlane.endpoint (host or host:port). Usually the master's
	// private address; if its host is an Elastic IP the operator allocated, that address is the
	// master's (and stays the operator's on kubeup down).
	Endpoint string
	// CertSANs are the API server certificate's extra names and addresses (kubeup adds the
	// Elastic IP that Prepare found or allocated). The Elastic IP must be among them, or be the
	// endpoint's host, or clients outside the VPC would fail TLS verification.
	CertSANs []string
	Master   Config
	// Node is the node role's config, the user-data of the launch template.
	Node Config
	// KeepNodeConfig leaves an existing launch template's node config as it is even when Node
	// differs: kubeup sets it when it could not read the node pool's current token, so that a
	// re-run does not put back the bundle's older one (docs/bootstrap-tokens.md).
	// KeepNodeConfigWhy says why, in the report.
	KeepNodeConfig    bool
	KeepNodeConfigWhy string
	NumNodes          int
	// EtcdVolumeGiB is the size of the master's etcd data volume (default 20).
	EtcdVolumeGiB int32
	// TokenSeed makes the EC2 ClientTokens: the same seed gives the same tokens, so a create
	// that succeeded but whose answer was lost is not repeated. Keep it per cluster (kubeup
	// keeps it in the state directory) and start a new one after Down. Empty: the SDK's own
	// random token per call.
	TokenSeed string
}

// Config is one rendered Ignition config.
type Config struct {
	// Name is the machine's name (master) or the role (node); the S3 object is <prefix><Name>.ign.
	Name string
	// Address is the machine's address with its prefix length (10.30.0.10/24): the master's
	// private address, whose network becomes the VPC and subnet.
	Address string
	Raw     []byte
	// Secret says the config holds private keys: it goes to S3 whatever its size.
	Secret bool
	// Sum is the hex SHA-256 of the config as rendered from the bundle, before a distributor
	// put the node token pool's current token in (the token alone changes no machine), tagged
	// on the instances that boot it (ConfigSumTag); "" tags nothing.
	Sum string
}

// checkPrepare checks what Prepare needs: names, the master's address and the settings.
func (s *Spec) checkPrepare() error {
	var errs []error
	need := func(v, field string) {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is empty", field))
		}
	}
	need(s.Cluster, "cluster name")
	need(s.AMI, "aws.ami (or --packer-manifest)")
	need(s.InstanceType, "aws.instanceType")
	need(s.ConfigURL, "aws.configURL")
	need(s.Master.Address, "the master's address")
	if _, _, err := s.bucketPrefix(); err != nil {
		errs = append(errs, err)
	}
	if _, err := s.network(); err != nil {
		errs = append(errs, err)
	}
	for _, c := range s.AllowedCIDRs {
		if _, err := netip.ParsePrefix(c); err != nil {
			errs = append(errs, fmt.Errorf("aws.allowedCIDRs: %w", err))
		}
	}
	return errors.Join(errs...)
}

// check checks what Finish needs besides: the rendered configs.
func (s *Spec) check() error {
	err := s.checkPrepare()
	if len(s.Master.Raw) == 0 || len(s.Node.Raw) == 0 {
		err = errors.Join(err, errors.New("the master's and the node role's configs must be rendered first"))
	}
	return err
}

// network is the master address's network: the VPC's and the subnet's CIDR.
func (s *Spec) network() (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s.Master.Address)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("the master's address %q: %w (want address/prefix, e.g. 10.30.0.10/24)", s.Master.Address, err)
	}
	if b := p.Bits(); b < 16 || b > 28 {
		return netip.Prefix{}, fmt.Errorf("the master's address %s: a VPC's network is /16 to /28", s.Master.Address)
	}
	return p.Masked(), nil
}

func (s *Spec) masterIP() string {
	p, _ := netip.ParsePrefix(s.Master.Address)
	return p.Addr().String()
}

// endpointHost is the host of controlPlane.endpoint.
func (s *Spec) endpointHost() string {
	if h, _, err := net.SplitHostPort(s.Endpoint); err == nil {
		return h
	}
	return s.Endpoint
}

// bucketPrefix splits ConfigURL into bucket and key prefix ("" or ending in /).
func (s *Spec) bucketPrefix() (bucket, prefix string, err error) {
	u, err := url.Parse(s.ConfigURL)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return "", "", fmt.Errorf("aws.configURL %q: want s3://bucket/prefix/", s.ConfigURL)
	}
	prefix = strings.TrimPrefix(u.Path, "/")
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return u.Host, prefix, nil
}

// objectKey is where c's full config is stored in the bucket: <prefix><name>.ign.
func (s *Spec) objectKey(c Config) string {
	_, prefix, _ := s.bucketPrefix()
	return prefix + c.Name + ".ign"
}

// objectURL is the s3:// URL of config name's object, which its pointer names.
func (s *Spec) objectURL(name string) (string, error) {
	bucket, _, err := s.bucketPrefix()
	if err != nil {
		return "", err
	}
	return "s3://" + bucket + "/" + s.objectKey(Config{Name: name}), nil
}

// name is the Name tag of one of the cluster's resources.
func (s *Spec) name(part string) string {
	if part == "" {
		return s.Cluster
	}
	return s.Cluster + "-" + part
}

// roleName is the IAM role (and instance profile) of the machines reading c from S3. IAM names
// are global to the account, hence the kubeup- prefix.
func (s *Spec) roleName(c Config) string { return "kubeup-" + s.Cluster + "-" + c.Name }

// token is the ClientToken of one creation (EC2 allows up to 64 ASCII characters).
func (s *Spec) token(what string) *string {
	if s.TokenSeed == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(s.TokenSeed + "\x00" + s.Cluster + "\x00" + what))
	t := hex.EncodeToString(sum[:24])
	return &t
}

func (s *Spec) etcdGiB() int32 {
	if s.EtcdVolumeGiB > 0 {
		return s.EtcdVolumeGiB
	}
	return 20
}

func itoa(i int32) string { return fmt.Sprint(i) }
