package cluster

import (
	"net/netip"
	"slices"
	"testing"
)

func TestNthServiceIP(t *testing.T) {
	tests := []struct {
		cidr string
		n    int
		want string
	}{
		{DefaultServiceCIDR, 1, "10.96.0.1"},
		{DefaultServiceCIDR, 10, "10.96.0.10"},
		{DefaultServiceCIDR, 0, "10.96.0.0"},
		{DefaultServiceCIDR, 256, "10.96.1.0"},
		{"172.20.0.0/16", 10, "172.20.0.10"},
		{"10.96.0.5/12", 1, "10.96.0.1"}, // host bits ignored
	}
	for _, tt := range tests {
		c := &Config{Network: Network{ServiceCIDR: tt.cidr}}
		if got := c.NthServiceIP(tt.n); got != netip.MustParseAddr(tt.want) {
			t.Errorf("NthServiceIP(%s, %d) = %v, want %s", tt.cidr, tt.n, got, tt.want)
		}
	}
	// The default range, through Default.
	var c Config
	c.Default()
	if c.NthServiceIP(1).String() != "10.96.0.1" || c.NthServiceIP(10).String() != "10.96.0.10" {
		t.Errorf("defaulted: %v %v", c.NthServiceIP(1), c.NthServiceIP(10))
	}
	if ip := (&Config{Network: Network{ServiceCIDR: "bad"}}).NthServiceIP(1); ip.IsValid() {
		t.Errorf("invalid CIDR gave %v", ip)
	}
}

func TestEndpoint(t *testing.T) {
	tests := []struct {
		endpoint, host string
		port           int
		url            string
	}{
		{"10.10.0.10:6443", "10.10.0.10", 6443, "https://10.10.0.10:6443"},
		{"10.10.0.10", "10.10.0.10", 6443, "https://10.10.0.10:6443"},
		{"k8s.example.com:443", "k8s.example.com", 443, "https://k8s.example.com:443"},
		{"k8s.example.com", "k8s.example.com", 6443, "https://k8s.example.com:6443"},
		{"[fd00::1]:8443", "fd00::1", 8443, "https://[fd00::1]:8443"},
		{"fd00::1", "fd00::1", 6443, "https://[fd00::1]:6443"},
	}
	for _, tt := range tests {
		c := &Config{ControlPlane: ControlPlane{Endpoint: tt.endpoint}}
		h, p := c.EndpointHostPort()
		if h != tt.host || p != tt.port {
			t.Errorf("EndpointHostPort(%q) = %q, %d, want %q, %d", tt.endpoint, h, p, tt.host, tt.port)
		}
		if got := c.EndpointURL(); got != tt.url {
			t.Errorf("EndpointURL(%q) = %q, want %q", tt.endpoint, got, tt.url)
		}
	}
}

func TestAPIServerSANs(t *testing.T) {
	c, err := Load("../../configs/local.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dns, ips := c.APIServerSANs()
	wantDNS := []string{"master", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost"}
	wantIPs := []netip.Addr{netip.MustParseAddr("10.96.0.1"), netip.MustParseAddr("10.10.0.10"), netip.MustParseAddr("127.0.0.1")}
	if !slices.Equal(dns, wantDNS) {
		t.Errorf("DNS SANs = %q, want %q", dns, wantDNS)
	}
	if !slices.Equal(ips, wantIPs) {
		t.Errorf("IP SANs = %v, want %v", ips, wantIPs)
	}

	// certSANs repeating what is there already add nothing; the DNS domain is followed.
	c.Network.DNSDomain = "corp.example"
	c.ControlPlane.CertSANs = []string{"10.10.0.10", "master", "kubernetes", "10.96.0.1", "lb.example.com", "lb.example.com", "127.0.0.1"}
	dns, ips = c.APIServerSANs()
	wantDNS = []string{"master", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.corp.example", "lb.example.com"}
	if !slices.Equal(dns, wantDNS) {
		t.Errorf("DNS SANs = %q, want %q", dns, wantDNS)
	}
	if !slices.Equal(ips, wantIPs) {
		t.Errorf("IP SANs = %v, want %v", ips, wantIPs)
	}
	for _, list := range [][]string{dns, toStrings(ips)} {
		seen := map[string]bool{}
		for _, s := range list {
			if seen[s] {
				t.Errorf("duplicate SAN %q", s)
			}
			seen[s] = true
		}
	}

	// No master: only the service names and IP.
	dns, ips = (&Config{Network: Network{ServiceCIDR: DefaultServiceCIDR, DNSDomain: "cluster.local"}}).APIServerSANs()
	if len(dns) != 4 || len(ips) != 1 || ips[0].String() != "10.96.0.1" {
		t.Errorf("no master: %q %v", dns, ips)
	}
}

func toStrings(ips []netip.Addr) []string {
	var s []string
	for _, a := range ips {
		s = append(s, a.String())
	}
	return s
}

func TestMasterAndIP(t *testing.T) {
	c := &Config{Machines: []Machine{
		{Name: "n", Role: RoleNode, Address: "10.0.0.2/24"},
		{Name: "m", Role: RoleMaster, Address: "10.0.0.1/24"},
	}}
	m := c.Master()
	if m == nil || m.Name != "m" || m.IP() != netip.MustParseAddr("10.0.0.1") {
		t.Fatalf("Master = %+v", m)
	}
	if m != &c.Machines[1] {
		t.Error("Master does not point into Machines")
	}
	if (&Config{Machines: []Machine{{Role: RoleNode}}}).Master() != nil {
		t.Error("Master without a master")
	}
	if (&Machine{}).IP().IsValid() || (&Machine{Address: "10.0.0.1"}).IP().IsValid() {
		t.Error("IP valid without a CIDR address")
	}
}

func TestTrimNodes(t *testing.T) {
	c := &Config{Machines: []Machine{{Name: "n1", Role: RoleNode}, {Name: "m", Role: RoleMaster}, {Name: "n2", Role: RoleNode}, {Name: "n3", Role: RoleNode}}}
	if got := c.TrimNodes(2); got != 2 {
		t.Errorf("kept %d nodes, want 2", got)
	}
	var names []string
	for _, m := range c.Machines {
		names = append(names, m.Name)
	}
	if !slices.Equal(names, []string{"n1", "m", "n2"}) {
		t.Errorf("kept %v, want the master and the first two nodes in order", names)
	}
	if got := c.TrimNodes(5); got != 2 || len(c.Machines) != 3 {
		t.Errorf("asking for more than there are: kept %d nodes of %v", got, c.Machines)
	}
}
