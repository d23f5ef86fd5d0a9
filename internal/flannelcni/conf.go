package flannelcni

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
)

// Defaults, as upstream has them.
const (
	DefaultSubnetFile = "/run/flannel/subnet.env"
	DefaultDataDir    = "/var/lib/cni/flannel"
)

// NetConf is the plugin's network configuration.
type NetConf struct {
	types.NetConf
	SubnetFile string         `json:"subnetFile,omitempty"`
	DataDir    string         `json:"dataDir,omitempty"`
	Delegate   map[string]any `json:"delegate,omitempty"`
}

// LoadNetConf parses the config the runtime passes on stdin and fills in the defaults.
func LoadNetConf(data []byte) (*NetConf, error) {
	n := &NetConf{}
	if err := json.Unmarshal(data, n); err != nil {
		return nil, fmt.Errorf("parse network config: %w", err)
	}
	if n.SubnetFile == "" {
		n.SubnetFile = DefaultSubnetFile
	}
	if n.DataDir == "" {
		n.DataDir = DefaultDataDir
	}
	return n, nil
}

// Subnet is what flanneld leased to this node.
type Subnet struct {
	Network netip.Prefix // the whole pod network
	Subnet  netip.Prefix // this node's part of it, with the gateway address (10.244.1.1/24)
	MTU     int
	IPMasq  bool // flanneld masquerades itself, so the bridge must not
}

// ParseSubnetEnv reads flanneld's subnet.env.
func ParseSubnetEnv(r io.Reader) (Subnet, error) {
	var s Subnet
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok {
			continue
		}
		var err error
		switch k {
		case "FLANNEL_NETWORK":
			s.Network, err = netip.ParsePrefix(v)
		case "FLANNEL_SUBNET":
			s.Subnet, err = netip.ParsePrefix(v)
		case "FLANNEL_MTU":
			s.MTU, err = strconv.Atoi(v)
		case "FLANNEL_IPMASQ":
			s.IPMasq, err = strconv.ParseBool(v)
		default:
			continue
		}
		if err != nil {
			return s, fmt.Errorf("%s=%q: %w", k, v, err)
		}
		seen[k] = true
	}
	if err := sc.Err(); err != nil {
		return s, err
	}
	for _, k := range []string{"FLANNEL_NETWORK", "FLANNEL_SUBNET", "FLANNEL_MTU", "FLANNEL_IPMASQ"} {
		if !seen[k] {
			return s, fmt.Errorf("%s missing: is flanneld running on this node?", k)
		}
	}
	return s, nil
}

// DelegateConf builds the delegate plugin's config: the "delegate" section, with what flannel
// knows filled in where the section does not say otherwise.
func DelegateConf(n *NetConf, s Subnet) ([]byte, error) {
	d := map[string]any{}
	for k, v := range n.Delegate {
		d[k] = v
	}
	setDefault := func(k string, v any) {
		if _, ok := d[k]; !ok {
			d[k] = v
		}
	}
	setDefault("type", "bridge")
	d["name"] = n.Name
	d["cniVersion"] = n.CNIVersion
	setDefault("mtu", s.MTU)
	setDefault("ipMasq", !s.IPMasq)
	if d["type"] == "bridge" {
		setDefault("isGateway", true)
	}
	// IPAM is flannel's to decide: host-local on this node's subnet. Other keys of a delegate
	// "ipam" section (host-local's dataDir, say) are kept.
	ipam := map[string]any{}
	if m, ok := d["ipam"].(map[string]any); ok {
		for k, v := range m {
			ipam[k] = v
		}
	}
	ipam["type"] = "host-local"
	ipam["ranges"] = [][]map[string]string{{{"subnet": s.Subnet.Masked().String()}}}
	ipam["routes"] = []map[string]string{{"dst": s.Network.String()}}
	d["ipam"] = ipam
	return json.Marshal(d)
}
