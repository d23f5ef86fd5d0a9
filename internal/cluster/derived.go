package cluster

import (
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// Master returns the master machine, or nil if there is none.
func (c *Config) Master() *Machine {
	for i := range c.Machines {
		if c.Machines[i].Role == RoleMaster {
			return &c.Machines[i]
		}
	}
	return nil
}

// Machine returns the machine called name.
func (c *Config) Machine(name string) (Machine, bool) {
	for _, m := range c.Machines {
		if m.Name == name {
			return m, true
		}
	}
	return Machine{}, false
}

// IP is the machine's address without its prefix length; invalid if it has none.
func (m *Machine) IP() netip.Addr {
	if p, err := netip.ParsePrefix(m.Address); err == nil {
		return p.Addr()
	}
	return netip.Addr{}
}

// EndpointHostPort splits the control-plane endpoint, filling in the default port.
func (c *Config) EndpointHostPort() (string, int) {
	host, port, err := net.SplitHostPort(c.ControlPlane.Endpoint)
	if err != nil {
		return c.ControlPlane.Endpoint, DefaultAPIServerPort
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return host, DefaultAPIServerPort
	}
	return host, p
}

// EndpointURL is the https URL clients outside the master use.
func (c *Config) EndpointURL() string {
	h, p := c.EndpointHostPort()
	return "https://" + net.JoinHostPort(h, strconv.Itoa(p))
}

// NthServiceIP returns the n-th address of the service CIDR (1: the kubernetes Service,
// 10: kube-dns, as kubeadm picks them).
func (c *Config) NthServiceIP(n int) netip.Addr {
	p, err := netip.ParsePrefix(c.Network.ServiceCIDR)
	if err != nil {
		return netip.Addr{}
	}
	a := p.Masked().Addr()
	for range n {
		a = a.Next()
	}
	return a
}

// TokenTTL is the bootstrap token lifetime.
func (c *Config) TokenTTL() time.Duration {
	d, _ := time.ParseDuration(c.PKI.BootstrapTokenTTL)
	return d
}

// APIServerSANs returns the DNS names and IPs the API server certificate covers, in the order
// kubeadm builds them: master name, kubernetes service names, first service IP, advertise
// address, then the extra SANs (the endpoint is covered by one of these, as validation checks).
func (c *Config) APIServerSANs() (dns []string, ips []netip.Addr) {
	add := func(s string) {
		if a, err := netip.ParseAddr(s); err == nil {
			for _, x := range ips {
				if x == a {
					return
				}
			}
			ips = append(ips, a)
			return
		}
		for _, x := range dns {
			if x == s {
				return
			}
		}
		dns = append(dns, s)
	}
	if m := c.Master(); m != nil {
		add(m.Name)
	}
	for _, n := range []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc." + c.Network.DNSDomain} {
		add(n)
	}
	if ip := c.NthServiceIP(1); ip.IsValid() {
		add(ip.String())
	}
	if m := c.Master(); m != nil && m.IP().IsValid() {
		add(m.IP().String())
	}
	for _, s := range c.ControlPlane.CertSANs {
		add(s)
	}
	return dns, ips
}

// TrimNodes keeps the master and the first n nodes, in config order (a smaller cluster from
// the same file), and returns how many nodes it kept: fewer than n when the config lists fewer.
func (c *Config) TrimNodes(n int) int {
	var kept []Machine
	nodes := 0
	for _, m := range c.Machines {
		if m.Role == RoleMaster {
			kept = append(kept, m)
		} else if nodes < n {
			kept = append(kept, m)
			nodes++
		}
	}
	c.Machines = kept
	return nodes
}

// StateRoot is where the commands keep each cluster's secrets bundle by default.
const StateRoot = ".kubeup"

// StateDir is the cluster's default secrets bundle directory: .kubeup/<name>.
func (c *Config) StateDir() string { return filepath.Join(StateRoot, c.Name) }

// MirrorHost is a mirror URL's host[:port], which its credentials are kept under; empty for a
// URL that does not parse (validation names it).
func MirrorHost(mirror string) string {
	u, err := url.Parse(mirror)
	if err != nil {
		return ""
	}
	return u.Host
}

// MirrorHosts lists the hosts of every mirror of the config's registries, each once, in order.
func (c *Config) MirrorHosts() []string {
	var out []string
	for _, r := range c.Registries {
		for _, m := range r.Mirrors {
			if h := MirrorHost(m); h != "" && !slices.Contains(out, h) {
				out = append(out, h)
			}
		}
	}
	return out
}
