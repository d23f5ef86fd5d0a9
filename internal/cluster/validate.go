package cluster

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"kubeup.dev/kubeup/internal/machine"
	"kubeup.dev/kubeup/internal/versions"
)

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Validate checks a defaulted config and returns every problem; file names it in messages.
func (c *Config) Validate(file string) Problems {
	return c.validate(file, nil)
}

func (c *Config) validate(file string, lines lineIndex) Problems {
	r := &reporter{file: file, lines: lines}
	c.validateHeader(r)
	pod, svc := c.validateNetwork(r)
	c.validateMachines(r, pod, svc)
	c.validateEndpoint(r)
	c.validateAddons(r)
	c.validatePKI(r)
	c.validateTarget(r)
	c.validateButane(r)
	c.validateRegistries(r)
	return r.out
}

// validateRegistries checks each registry's host, its mirrors' URLs and its CA, and that no
// registry is listed twice.
func (c *Config) validateRegistries(r *reporter) {
	seen := map[string]int{}
	for i, reg := range c.Registries {
		path := fmt.Sprintf("registries[%d]", i)
		if !RegistryHost(reg.Registry) {
			r.add(path+".registry", "write the registry's host as image references name it, such as registry.k8s.io, docker.io or host:5000",
				"%q is not a registry host", reg.Registry)
		} else if j, dup := seen[reg.Registry]; dup {
			r.add(path+".registry", fmt.Sprintf("merge its mirrors into registries[%d]", j), "registry %s is listed twice", reg.Registry)
		} else {
			seen[reg.Registry] = i
		}
		if len(reg.Mirrors) == 0 {
			r.add(path+".mirrors", "list at least one mirror URL, such as https://mirror.example.internal:5000", "registry %s has no mirror", reg.Registry)
		}
		for j, m := range reg.Mirrors {
			u, err := url.Parse(m)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || !RegistryHost(u.Host) || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
				r.add(fmt.Sprintf("%s.mirrors[%d]", path, j), "write the mirror's base URL, such as https://mirror.example.internal:5000 (no credentials, query or fragment)",
					"%q is not a mirror URL", m)
			}
		}
		if reg.CA != "" {
			if rest, n := pemCertificates([]byte(reg.CA)); n == 0 || strings.TrimSpace(string(rest)) != "" {
				r.add(path+".ca", "paste the mirror CA's certificate, PEM (-----BEGIN CERTIFICATE-----), nothing else",
					"registry %s: ca is not one or more PEM certificates", reg.Registry)
			}
		}
	}
}

// RegistryHost says whether s is a registry host as image references and hosts.toml name it:
// a DNS name or an IP address, with an optional port.
func RegistryHost(s string) bool {
	host, port := s, ""
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return false
		}
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	return host != "" && len(validation.IsDNS1123Subdomain(host)) == 0
}

// pemCertificates counts the parseable certificates at the start of data and returns what
// follows them.
func pemCertificates(data []byte) (rest []byte, n int) {
	for {
		block, next := pem.Decode(data)
		if block == nil || block.Type != "CERTIFICATE" {
			return data, n
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return data, n
		}
		data, n = next, n+1
	}
}

func (c *Config) validateHeader(r *reporter) {
	if c.APIVersion != APIVersion {
		r.add("apiVersion", "set apiVersion: "+APIVersion, "apiVersion is %q, want %q", c.APIVersion, APIVersion)
	}
	if c.Kind != Kind {
		r.add("kind", "set kind: "+Kind, "kind is %q, want %q", c.Kind, Kind)
	}
	if c.Name == "" {
		r.add("name", "give the cluster a name such as local", "name is required")
	} else if errs := validation.IsDNS1123Label(c.Name); len(errs) > 0 {
		r.add("name", "use lower-case letters, digits and '-'", "name %q is not a DNS label: %s", c.Name, strings.Join(errs, "; "))
	}
	if !slices.Contains(versions.Supported, c.KubernetesVersion) {
		r.add("kubernetesVersion", "use "+strings.Join(versions.Supported, " or ")+" (or leave it out)",
			"Kubernetes %s is not supported by this kubeup", c.KubernetesVersion)
	}
	if levels := []string{PodSecurityPrivileged, PodSecurityBaseline, PodSecurityRestricted}; !slices.Contains(levels, c.PodSecurity) {
		r.add("podSecurity", "use "+strings.Join(levels, ", ")+" (or leave it out for "+DefaultPodSecurity+")",
			"%q is not a Pod Security Standard level", c.PodSecurity)
	}
}

// validateNetwork checks the CIDRs and returns them parsed (invalid prefixes when bad).
func (c *Config) validateNetwork(r *reporter) (pod, svc netip.Prefix) {
	parse := func(path, s string) netip.Prefix {
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() {
			r.add(path, "write an IPv4 CIDR such as 10.244.0.0/16", "%q is not an IPv4 CIDR", s)
			return netip.Prefix{}
		}
		if p.Masked() != p {
			r.add(path, "use "+p.Masked().String(), "%s has host bits set", s)
		}
		return p.Masked()
	}
	pod = parse("network.podCIDR", c.Network.PodCIDR)
	svc = parse("network.serviceCIDR", c.Network.ServiceCIDR)
	if pod.IsValid() && pod.Bits() > 24 {
		r.add("network.podCIDR", "use a /24 or larger range such as 10.244.0.0/16", "%s is too small: every node gets a /24 from it", pod)
	}
	// kube-apiserver refuses IPv4 service ranges with more than 20 host bits.
	if svc.IsValid() && svc.Bits() < 12 {
		r.add("network.serviceCIDR", "use /12 or smaller, such as 10.96.0.0/12", "%s is too large: the API server allows at most a /12", svc)
	}
	if svc.IsValid() && svc.Bits() > 28 {
		r.add("network.serviceCIDR", "use a /28 or larger range", "%s is too small for the kubernetes and kube-dns Service addresses", svc)
	}
	if pod.IsValid() && svc.IsValid() && pod.Overlaps(svc) {
		r.add("network.serviceCIDR", "pick ranges that do not overlap", "service CIDR %s overlaps pod CIDR %s", svc, pod)
	}
	if errs := validation.IsDNS1123Subdomain(c.Network.DNSDomain); len(errs) > 0 {
		r.add("network.dnsDomain", "use a domain such as cluster.local", "%q is not a DNS domain: %s", c.Network.DNSDomain, strings.Join(errs, "; "))
	}
	if c.Network.CNI != DefaultCNI {
		r.add("network.cni", "use flannel (the only CNI shipped)", "unknown CNI %q", c.Network.CNI)
	}
	return pod, svc
}

func (c *Config) validateMachines(r *reporter, pod, svc netip.Prefix) {
	if len(c.Machines) == 0 {
		r.add("machines", "list the machines, one with role: master", "no machines")
		return
	}
	var qemuNet netip.Prefix
	if c.QEMU != nil && c.QEMU.Network != "" {
		qemuNet, _ = netip.ParsePrefix(c.QEMU.Network)
	}
	names, macs, addrs := map[string]int{}, map[string]int{}, map[netip.Addr]int{}
	var masters []int
	for i, m := range c.Machines {
		path := fmt.Sprintf("machines[%d]", i)
		switch {
		case m.Name == "":
			r.add(path+".name", "give every machine a name", "name is required")
		case len(validation.IsDNS1123Label(m.Name)) > 0:
			r.add(path+".name", "use lower-case letters, digits and '-'", "machine name %q is not a DNS label (it becomes the hostname and node name)", m.Name)
		case (m.Name == RoleMaster || m.Name == RoleNode) && m.Name != m.Role:
			// Machine configs and role configs share one namespace (<name>.ign): a master named
			// node would put the CA keys where the node role's config goes, which the PXE
			// server hands to any unknown machine.
			r.add(path+".name", "give it a name that is not a role's, e.g. cp-1", "a %s named %q: its config would be %s.ign, the %s role's config",
				m.Role, m.Name, m.Name, m.Name)
		default:
			if j, dup := names[m.Name]; dup {
				r.add(path+".name", "give each machine its own name", "duplicate machine name %q, also machines[%d]", m.Name, j)
			} else {
				names[m.Name] = i
			}
		}
		switch m.Role {
		case RoleMaster:
			masters = append(masters, i)
		case RoleNode:
		default:
			r.add(path+".role", "use role: master or role: node", "unknown role %q", m.Role)
		}
		if m.MAC != "" {
			hw, err := net.ParseMAC(m.MAC)
			if err != nil || len(hw) != 6 {
				r.add(path+".mac", "write it as 52:54:00:12:34:56", "%q is not a MAC address", m.MAC)
			} else if key := hw.String(); true {
				if j, dup := macs[key]; dup {
					r.add(path+".mac", "give each machine its own MAC", "duplicate MAC %s, also machines[%d]", key, j)
				} else {
					macs[key] = i
				}
			}
		}
		if m.UUID != "" && !uuidPattern.MatchString(m.UUID) {
			r.add(path+".uuid", "write it as dmidecode -s system-uuid prints it: 8-4-4-4-12 hex digits", "%q is not a UUID", m.UUID)
		}
		if m.Address != "" {
			p, err := netip.ParsePrefix(m.Address)
			if err != nil || !p.Addr().Is4() {
				r.add(path+".address", "write the address with its prefix length, e.g. 10.10.0.10/24", "%q is not an IPv4 address in CIDR form", m.Address)
			} else {
				a := p.Addr()
				if j, dup := addrs[a]; dup {
					r.add(path+".address", "give each machine its own address", "duplicate address %s, also machines[%d]", a, j)
				} else {
					addrs[a] = i
				}
				if pod.IsValid() && pod.Contains(a) {
					r.add(path+".address", "move the machine network or network.podCIDR", "address %s lies in the pod CIDR %s", a, pod)
				}
				if svc.IsValid() && svc.Contains(a) {
					r.add(path+".address", "move the machine network or network.serviceCIDR", "address %s lies in the service CIDR %s", a, svc)
				}
				if qemuNet.IsValid() && !qemuNet.Contains(a) {
					r.add(path+".address", "use an address inside qemu.network "+qemuNet.String(), "address %s is outside the VM network %s", a, qemuNet)
				}
			}
		}
		if m.Gateway != "" {
			if a, err := netip.ParseAddr(m.Gateway); err != nil || !a.Is4() {
				r.add(path+".gateway", "write an IPv4 address such as 10.10.0.1", "%q is not an IPv4 address", m.Gateway)
			} else if m.Address == "" {
				r.add(path+".gateway", "set address too, or remove gateway (DHCP provides one)", "gateway without a static address")
			}
		}
	}
	switch {
	case len(masters) == 0:
		r.add("machines", "give one machine role: master", "no master: one machine must have role master")
	case len(masters) > 1:
		for _, i := range masters[1:] {
			r.add(fmt.Sprintf("machines[%d].role", i), "kubeup runs one control-plane machine; make the others role: node",
				"more than one master (machines[%d] is already the master)", masters[0])
		}
	default:
		if m := c.Machines[masters[0]]; m.Address == "" {
			r.add(fmt.Sprintf("machines[%d].address", masters[0]), "give the master a static address such as 10.10.0.10/24",
				"the master needs a static address: etcd and the API server advertise it and its certificate covers it")
		}
	}
}

// validateEndpoint checks that the control-plane endpoint parses and that the API server
// certificate will cover its host, so that clients do not fail TLS verification later.
func (c *Config) validateEndpoint(r *reporter) {
	for i, s := range c.ControlPlane.CertSANs {
		if _, err := netip.ParseAddr(s); err == nil {
			continue
		}
		if errs := validation.IsDNS1123Subdomain(s); len(errs) > 0 {
			r.add(fmt.Sprintf("controlPlane.certSANs[%d]", i), "use an IP address or a lower-case DNS name", "%q is neither an IP address nor a DNS name", s)
		}
	}
	ep := c.ControlPlane.Endpoint
	if ep == "" {
		return // no master address to default from: reported there
	}
	host, port := ep, strconv.Itoa(DefaultAPIServerPort)
	if h, p, err := net.SplitHostPort(ep); err == nil {
		host, port = h, p
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		r.add("controlPlane.endpoint", "write host:port, e.g. 10.10.0.10:6443", "%q has no valid port", ep)
	}
	if host == "" || strings.ContainsAny(host, "/ ") {
		r.add("controlPlane.endpoint", "write host:port, e.g. 10.10.0.10:6443", "%q has no valid host", ep)
		return
	}
	dns, ips := c.APIServerSANs()
	// DNS names match case-insensitively in TLS, as here.
	covered := slices.ContainsFunc(dns, func(n string) bool { return strings.EqualFold(n, host) })
	if a, err := netip.ParseAddr(host); err == nil {
		covered = slices.Contains(ips, a)
	}
	if !covered {
		r.add("controlPlane.endpoint", "add "+strings.ToLower(host)+" to controlPlane.certSANs",
			"endpoint host %s is covered by no API server certificate name (it has the master's name and address and controlPlane.certSANs)", host)
	}
}

func (c *Config) validateAddons(r *reporter) {
	seen := map[string]bool{}
	for i, a := range c.Addons {
		path := fmt.Sprintf("addons[%d]", i)
		if !slices.Contains(KnownAddons, a) {
			r.add(path, "use any of "+strings.Join(KnownAddons, ", "), "unknown add-on %q", a)
		}
		if seen[a] {
			r.add(path, "list each add-on once", "add-on %q listed twice", a)
		}
		seen[a] = true
	}
}

func (c *Config) validatePKI(r *reporter) {
	d, err := time.ParseDuration(c.PKI.BootstrapTokenTTL)
	switch {
	case err != nil:
		r.add("pki.bootstrapTokenTTL", "write a duration such as 24h", "%q is not a duration", c.PKI.BootstrapTokenTTL)
	case d < time.Minute:
		r.add("pki.bootstrapTokenTTL", "use at least 1m; 24h is the default", "%s is too short for a node to join", d)
	}
	if c.PKI.NodeCertificateTTL != "" {
		d, err := time.ParseDuration(c.PKI.NodeCertificateTTL)
		switch {
		case err != nil:
			r.add("pki.nodeCertificateTTL", "write a duration such as 8760h, or leave it out for Kubernetes' one year", "%q is not a duration", c.PKI.NodeCertificateTTL)
		case d < 5*time.Minute:
			r.add("pki.nodeCertificateTTL", "use at least 5m", "%s leaves a kubelet no time to renew before it expires", d)
		}
	}
}

func (c *Config) validateTarget(r *reporter) {
	blocks := map[string]bool{TargetQEMU: c.QEMU != nil, TargetMetal: c.Metal != nil, TargetAWS: c.AWS != nil, TargetVSphere: c.VSphere != nil}
	if _, ok := blocks[c.Target]; !ok {
		r.add("target", "use qemu, metal, aws or vsphere", "unknown target %q", c.Target)
		return
	}
	// In a fixed order, not the map's: the same config must give the same message.
	for _, t := range []string{TargetQEMU, TargetMetal, TargetAWS, TargetVSphere} {
		if blocks[t] && t != c.Target {
			r.add(t, "remove the "+t+" block or set target: "+t, "a %s block, but target is %s", t, c.Target)
		}
	}
	if c.QEMU != nil {
		if c.QEMU.CPUs < 1 {
			r.add("qemu.cpus", "use 1 or more (2 is the default)", "%d CPUs", c.QEMU.CPUs)
		}
		if q, err := resource.ParseQuantity(c.QEMU.Memory); err != nil || q.Value() < 1<<30 {
			r.add("qemu.memory", "write a size of at least 1G, e.g. 2G", "%q is not a memory size of at least 1 GiB (Kubernetes needs it)", c.QEMU.Memory)
		}
	}
	if c.QEMU != nil && c.QEMU.Network != "" {
		if p, err := netip.ParsePrefix(c.QEMU.Network); err != nil || !p.Addr().Is4() {
			r.add("qemu.network", "write an IPv4 CIDR such as 10.10.0.0/24", "%q is not an IPv4 CIDR", c.QEMU.Network)
		}
	}
	if c.QEMU != nil {
		validateHostForwards(c.QEMU.HostForwards, r)
	}
	if c.Target == TargetAWS {
		if c.AWS == nil {
			r.add("aws", "add an aws block with region and configURL", "target aws needs an aws block")
		} else {
			if c.AWS.Region == "" {
				r.add("aws.region", "set the region, e.g. eu-west-1", "region is required")
			}
			if !strings.HasPrefix(c.AWS.ConfigURL, "s3://") {
				r.add("aws.configURL", "set an s3://bucket/prefix/ URL", "configURL must be an s3:// URL: the master's config holds keys and never goes into user-data")
			}
		}
	}
	if c.Target == TargetVSphere {
		if c.VSphere == nil {
			r.add("vsphere", "add a vsphere block", "target vsphere needs a vsphere block")
		} else if c.VSphere.ConfigURL != "" && !strings.HasPrefix(c.VSphere.ConfigURL, "https://") {
			r.add("vsphere.configURL", "serve large configs over https://", "configURL %q is not https", c.VSphere.ConfigURL)
		}
	}
	if !slices.Contains(machine.OSes, c.OS) {
		r.add("os", "use one of "+strings.Join(machine.OSes, ", "), "unknown OS %q", c.OS)
	} else if c.Target == TargetQEMU && c.OS != machine.DefaultOS {
		r.add("os", "use os: "+machine.DefaultOS+" (the image make image builds) or another target", "the QEMU target boots the %s image; a %s image for QEMU is not built here", machine.DefaultOS, c.OS)
	}
	if c.Metal != nil && c.Metal.OS != "" {
		r.add("metal.os", "move it to the top level: os: "+c.Metal.OS, "metal.os is now os, for every target")
	}
}

func (c *Config) validateButane(r *reporter) {
	check := func(path, src string) {
		if src == "" {
			return
		}
		if _, err := TranslateButane(src); err != nil {
			r.add(path, "fix the Butane snippet (variant fcos 1.5.0 or flatcar 1.1.0)", "%v", err)
		}
	}
	check("butane.master", c.Butane.Master)
	check("butane.node", c.Butane.Node)
	for i, m := range c.Machines {
		check(fmt.Sprintf("machines[%d].butane", i), m.Butane)
	}
}

// qemuUserNet is QEMU's user network, and the addresses in it that are QEMU's own: the host's
// gateway, its DNS, and the VM's.
var (
	qemuUserNet   = netip.MustParsePrefix("10.0.2.0/24")
	qemuUserOwned = []netip.Addr{netip.MustParseAddr("10.0.2.2"), netip.MustParseAddr("10.0.2.3"), netip.MustParseAddr("10.0.2.15")}
)

// validateHostForwards checks that each forward leads from a free address of QEMU's user
// network to this host's loopback, and that no guest address is used twice.
func validateHostForwards(fwds []HostForward, r *reporter) {
	seen := map[string]int{}
	for i, f := range fwds {
		path := fmt.Sprintf("qemu.hostForwards[%d]", i)
		g, err := netip.ParseAddrPort(f.Guest)
		switch {
		case err != nil || !qemuUserNet.Contains(g.Addr()) || slices.Contains(qemuUserOwned, g.Addr()) || g.Addr() == qemuUserNet.Addr() || g.Port() == 0:
			r.add(path+".guest", "write an address and port of QEMU's user network 10.0.2.0/24 other than .2, .3 and .15, such as 10.0.2.100:5000",
				"%q is not a free guest address of QEMU's user network", f.Guest)
		default:
			if j, dup := seen[f.Guest]; dup {
				r.add(path+".guest", fmt.Sprintf("give it another address or port than qemu.hostForwards[%d]", j), "%s is forwarded twice", f.Guest)
			}
			seen[f.Guest] = i
		}
		if h, err := netip.ParseAddrPort(f.Host); err != nil || !h.Addr().IsLoopback() || h.Port() == 0 {
			r.add(path+".host", "forward to a service on this host's loopback, such as 127.0.0.1:5000 (the VMs may reach nothing else)",
				"%q is not a loopback address and port", f.Host)
		}
	}
}
