package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"
)

// validBase is a small valid config that the table cases mutate. Its line numbers are used
// directly in a few cases (apiVersion on 1, machines on 16, machines[1].address on 24).
const validBase = `apiVersion: kubeup.dev/v1alpha1
kind: Cluster
name: test
kubernetesVersion: v1.37.2
target: qemu
network:
  podCIDR: 10.244.0.0/16
  serviceCIDR: 10.96.0.0/12
  dnsDomain: cluster.local
  cni: flannel
addons: [kube-proxy, coredns, metrics-server]
pki:
  bootstrapTokenTTL: 24h
qemu:
  network: 10.10.0.0/24
machines:
  - name: master
    role: master
    mac: "52:54:00:aa:00:10"
    address: 10.10.0.10/24
  - name: node-1
    role: node
    mac: "52:54:00:aa:00:11"
    address: 10.10.0.11/24
`

// edit replaces old, which must occur exactly once, with new.
type edit struct{ old, new string }

func r(old, new string) edit { return edit{old, new} }

// mutate applies edits to src in order; a stale edit (old not found exactly once) fails the test,
// so that a case can never silently test the unmodified base.
func mutate(t *testing.T, src string, edits ...edit) string {
	t.Helper()
	for _, e := range edits {
		if n := strings.Count(src, e.old); n != 1 {
			t.Fatalf("edit %q: found %d times in\n%s", e.old, n, src)
		}
		src = strings.Replace(src, e.old, e.new, 1)
	}
	return src
}

// anyLine in want.line means the line is not checked.
const anyLine = -1

// want is one expected problem: the exact path, substrings of message and hint, and the line,
// given either as a number or as a substring of the (unique) source line it must point at.
type want struct {
	path, msg, hint string
	at              string // substring of the expected line; overrides line
	line            int    // used when at is empty; 0 means "no line"
}

// lineOf returns the 1-based number of the only line of src that contains s.
func lineOf(t *testing.T, src, s string) int {
	t.Helper()
	found := 0
	for i, l := range strings.Split(src, "\n") {
		if strings.Contains(l, s) {
			if found != 0 {
				t.Fatalf("lineOf(%q): more than one line matches", s)
			}
			found = i + 1
		}
	}
	if found == 0 {
		t.Fatalf("lineOf(%q): no line matches", s)
	}
	return found
}

// checkProblems asserts that probs are exactly wants (in any order): every want matched by its
// own problem and no problem left over.
func checkProblems(t *testing.T, src string, probs Problems, wants []want) {
	t.Helper()
	used := make([]bool, len(probs))
	for _, w := range wants {
		line := w.line
		if w.at != "" {
			line = lineOf(t, src, w.at)
		}
		found := false
		for i, p := range probs {
			if used[i] || p.Path != w.path || !strings.Contains(p.Msg, w.msg) || !strings.Contains(p.Hint, w.hint) {
				continue
			}
			if line != anyLine && p.Line != line {
				continue
			}
			used[i], found = true, true
			break
		}
		if !found {
			t.Errorf("missing problem: path=%q msg~%q hint~%q line=%d", w.path, w.msg, w.hint, line)
		}
	}
	for i, p := range probs {
		if !used[i] {
			t.Errorf("unexpected problem: %s", p)
		}
	}
	if t.Failed() {
		t.Logf("source:\n%s", numbered(src))
	}
}

func numbered(src string) string {
	var b strings.Builder
	for i, l := range strings.Split(src, "\n") {
		fmt.Fprintf(&b, "%3d| %s\n", i+1, l)
	}
	return b.String()
}

// problemsOf parses src and returns its problems; a nil error must mean no problems and a
// non-nil error must be Problems.
func problemsOf(t *testing.T, file, src string) (*Config, Problems) {
	t.Helper()
	c, err := Parse(file, []byte(src))
	if err == nil {
		return c, nil
	}
	var probs Problems
	if !errors.As(err, &probs) {
		t.Fatalf("Parse error is %T, not Problems: %v", err, err)
	}
	if len(probs) == 0 {
		t.Fatalf("Parse returned an empty Problems as error")
	}
	return c, probs
}

const masterButane = "    address: 10.10.0.10/24\n"

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		edits []edit
		want  []want
	}{
		{name: "valid base"},

		// Header.
		{name: "wrong apiVersion", edits: []edit{r("apiVersion: kubeup.dev/v1alpha1", "apiVersion: kubeup.dev/v1")},
			want: []want{{path: "apiVersion", msg: `want "kubeup.dev/v1alpha1"`, hint: "set apiVersion: kubeup.dev/v1alpha1", line: 1}}},
		{name: "missing apiVersion", edits: []edit{r("apiVersion: kubeup.dev/v1alpha1\n", "")},
			want: []want{{path: "apiVersion", msg: `apiVersion is ""`, line: 0}}},
		{name: "wrong kind", edits: []edit{r("kind: Cluster", "kind: Machine")},
			want: []want{{path: "kind", msg: `kind is "Machine"`, hint: "set kind: Cluster", line: 2}}},
		{name: "missing name", edits: []edit{r("name: test\n", "")},
			want: []want{{path: "name", msg: "name is required", hint: "give the cluster a name", line: 0}}},
		{name: "name not a DNS label", edits: []edit{r("name: test", "name: My_Cluster")},
			want: []want{{path: "name", msg: `"My_Cluster" is not a DNS label`, hint: "lower-case", line: 3}}},
		{name: "name too long", edits: []edit{r("name: test", "name: "+strings.Repeat("a", 64))},
			want: []want{{path: "name", msg: "not a DNS label", line: 3}}},
		{name: "unsupported kubernetesVersion", edits: []edit{r("kubernetesVersion: v1.37.2", "kubernetesVersion: v1.30.0")},
			want: []want{{path: "kubernetesVersion", msg: "v1.30.0 is not supported", hint: "v1.37.2", line: 4}}},
		{name: "kubernetesVersion without v", edits: []edit{r("kubernetesVersion: v1.37.2", "kubernetesVersion: 1.37.2")},
			want: []want{{path: "kubernetesVersion", msg: "1.37.2 is not supported", line: 4}}},

		// Network.
		{name: "pod CIDR without prefix", edits: []edit{r("podCIDR: 10.244.0.0/16", "podCIDR: 10.244.0.0")},
			want: []want{{path: "network.podCIDR", msg: `"10.244.0.0" is not an IPv4 CIDR`, hint: "10.244.0.0/16", at: "podCIDR:"}}},
		{name: "pod CIDR IPv6", edits: []edit{r("podCIDR: 10.244.0.0/16", "podCIDR: fd00:10:244::/56")},
			want: []want{{path: "network.podCIDR", msg: "not an IPv4 CIDR", at: "podCIDR:"}}},
		{name: "bad service CIDR", edits: []edit{r("serviceCIDR: 10.96.0.0/12", "serviceCIDR: 10.96.0.0/33")},
			want: []want{{path: "network.serviceCIDR", msg: `"10.96.0.0/33" is not an IPv4 CIDR`, at: "serviceCIDR:"}}},
		{name: "pod CIDR host bits set", edits: []edit{r("podCIDR: 10.244.0.0/16", "podCIDR: 10.244.1.0/16")},
			want: []want{{path: "network.podCIDR", msg: "10.244.1.0/16 has host bits set", hint: "use 10.244.0.0/16", at: "podCIDR:"}}},
		{name: "service CIDR host bits set", edits: []edit{r("serviceCIDR: 10.96.0.0/12", "serviceCIDR: 10.96.0.1/12")},
			want: []want{{path: "network.serviceCIDR", msg: "host bits set", hint: "use 10.96.0.0/12", at: "serviceCIDR:"}}},
		{name: "pod CIDR too small", edits: []edit{r("podCIDR: 10.244.0.0/16", "podCIDR: 10.244.0.0/25")},
			want: []want{{path: "network.podCIDR", msg: "too small", at: "podCIDR:"}}},
		{name: "overlapping pod and service CIDRs", edits: []edit{r("serviceCIDR: 10.96.0.0/12", "serviceCIDR: 10.244.128.0/20")},
			want: []want{{path: "network.serviceCIDR", msg: "service CIDR 10.244.128.0/20 overlaps pod CIDR 10.244.0.0/16", hint: "do not overlap", at: "serviceCIDR:"}}},
		{name: "service CIDR contains pod CIDR", edits: []edit{r("podCIDR: 10.244.0.0/16", "podCIDR: 10.100.0.0/16")},
			want: []want{{path: "network.serviceCIDR", msg: "overlaps", at: "serviceCIDR:"}}},
		{name: "service CIDR larger than /12", edits: []edit{r("serviceCIDR: 10.96.0.0/12", "serviceCIDR: 10.96.0.0/11")},
			want: []want{{path: "network.serviceCIDR", msg: "10.96.0.0/11 is too large", hint: "/12", at: "serviceCIDR:"}}},
		{name: "service CIDR of /12 is fine", edits: []edit{r("serviceCIDR: 10.96.0.0/12", "serviceCIDR: 172.16.0.0/12")}},
		{name: "service CIDR too small", edits: []edit{r("serviceCIDR: 10.96.0.0/12", "serviceCIDR: 10.96.0.0/29")},
			want: []want{{path: "network.serviceCIDR", msg: "too small", at: "serviceCIDR:"}}},
		{name: "bad dnsDomain", edits: []edit{r("dnsDomain: cluster.local", "dnsDomain: Cluster_Local")},
			want: []want{{path: "network.dnsDomain", msg: `"Cluster_Local" is not a DNS domain`, hint: "cluster.local", at: "dnsDomain:"}}},
		{name: "dnsDomain with trailing dot", edits: []edit{r("dnsDomain: cluster.local", "dnsDomain: cluster.local.")},
			want: []want{{path: "network.dnsDomain", msg: "not a DNS domain", at: "dnsDomain:"}}},
		{name: "unknown cni", edits: []edit{r("cni: flannel", "cni: calico")},
			want: []want{{path: "network.cni", msg: `unknown CNI "calico"`, hint: "flannel", at: "cni:"}}},
		{name: "unknown pod security level", edits: []edit{r("target: qemu\n", "target: qemu\npodSecurity: strict\n")},
			want: []want{{path: "podSecurity", msg: `"strict" is not a Pod Security Standard level`, hint: "baseline", at: "podSecurity:"}}},
		{name: "restricted pod security", edits: []edit{r("target: qemu\n", "target: qemu\npodSecurity: restricted\n")}},

		// Machines.
		{name: "no machines (empty list)", edits: []edit{r(validBase[strings.Index(validBase, "machines:"):], "machines: []\n")},
			want: []want{{path: "machines", msg: "no machines", hint: "role: master", at: "machines:"}}},
		{name: "no machines (omitted)", edits: []edit{r(validBase[strings.Index(validBase, "machines:"):], "")},
			want: []want{{path: "machines", msg: "no machines", line: 0}}},
		{name: "missing machine name", edits: []edit{r("  - name: node-1\n    role: node", "  - role: node")},
			want: []want{{path: "machines[1].name", msg: "name is required", at: "- role: node"}}},
		{name: "machine name not a DNS label", edits: []edit{r("name: node-1", "name: Node_1")},
			want: []want{{path: "machines[1].name", msg: `"Node_1" is not a DNS label`, at: "Node_1"}}},
		{name: "node machine named master", edits: []edit{r("name: node-1", "name: master"), r("  - name: master\n    role: master", "  - name: cp-1\n    role: master")},
			want: []want{{path: "machines[1].name", msg: `a node named "master": its config would be master.ign, the master role's config`, hint: "not a role's", at: "name: master"}}},
		{name: "master named node", edits: []edit{r("  - name: master\n    role: master", "  - name: node\n    role: master")},
			want: []want{{path: "machines[0].name", msg: `a master named "node"`, hint: "e.g. cp-1", line: 17}}},
		{name: "duplicate machine names", edits: []edit{r("name: master", "name: node-1")},
			want: []want{{path: "machines[1].name", msg: `duplicate machine name "node-1", also machines[0]`, hint: "its own name", line: 21}}},
		{name: "unknown role", edits: []edit{r("role: node", "role: worker")},
			want: []want{{path: "machines[1].role", msg: `unknown role "worker"`, at: "worker"}}},
		{name: "duplicate MACs", edits: []edit{r(`mac: "52:54:00:aa:00:11"`, `mac: "52:54:00:aa:00:10"`)},
			want: []want{{path: "machines[1].mac", msg: "duplicate MAC 52:54:00:aa:00:10, also machines[0]", hint: "its own MAC", line: 23}}},
		{name: "duplicate MACs in different case", edits: []edit{r(`mac: "52:54:00:aa:00:11"`, `mac: "52:54:00:AA:00:10"`)},
			want: []want{{path: "machines[1].mac", msg: "duplicate MAC 52:54:00:aa:00:10", at: "52:54:00:AA:00:10"}}},
		{name: "duplicate MACs in different notation", edits: []edit{r(`mac: "52:54:00:aa:00:11"`, `mac: "52-54-00-AA-00-10"`)},
			want: []want{{path: "machines[1].mac", msg: "duplicate MAC 52:54:00:aa:00:10", at: "52-54-00-AA-00-10"}}},
		{name: "bad MAC", edits: []edit{r(`mac: "52:54:00:aa:00:11"`, `mac: "52:54:00:aa:00"`)},
			want: []want{{path: "machines[1].mac", msg: `"52:54:00:aa:00" is not a MAC address`, hint: "52:54:00:12:34:56", at: `"52:54:00:aa:00"`}}},
		{name: "bad UUID", edits: []edit{r(`mac: "52:54:00:aa:00:11"`, `mac: "52:54:00:aa:00:11"
    uuid: 4c4c4544-0042`)},
			want: []want{{path: "machines[1].uuid", msg: `"4c4c4544-0042" is not a UUID`, hint: "8-4-4-4-12", at: "4c4c4544-0042"}}},
		{name: "EUI-64 is not a MAC", edits: []edit{r(`mac: "52:54:00:aa:00:11"`, `mac: "52:54:00:aa:00:11:22:33"`)},
			want: []want{{path: "machines[1].mac", msg: "is not a MAC address", at: "00:11:22:33"}}},
		{name: "duplicate addresses", edits: []edit{r("address: 10.10.0.11/24", "address: 10.10.0.10/24")},
			want: []want{{path: "machines[1].address", msg: "duplicate address 10.10.0.10, also machines[0]", line: 24}}},
		{name: "duplicate addresses with other prefix lengths", edits: []edit{r("address: 10.10.0.11/24", "address: 10.10.0.10/25")},
			want: []want{{path: "machines[1].address", msg: "duplicate address 10.10.0.10", line: 24}}},
		{name: "address without prefix length", edits: []edit{r("address: 10.10.0.11/24", "address: 10.10.0.11")},
			want: []want{{path: "machines[1].address", msg: "not an IPv4 address in CIDR form", hint: "10.10.0.10/24", line: 24}}},
		{name: "address inside pod CIDR", edits: []edit{r("address: 10.10.0.11/24", "address: 10.244.3.4/24")},
			want: []want{
				{path: "machines[1].address", msg: "address 10.244.3.4 lies in the pod CIDR 10.244.0.0/16", hint: "network.podCIDR", line: 24},
				{path: "machines[1].address", msg: "outside the VM network 10.10.0.0/24", line: 24},
			}},
		{name: "address inside service CIDR", edits: []edit{r("address: 10.10.0.11/24", "address: 10.96.0.1/24")},
			want: []want{
				{path: "machines[1].address", msg: "address 10.96.0.1 lies in the service CIDR 10.96.0.0/12", hint: "network.serviceCIDR", line: 24},
				{path: "machines[1].address", msg: "outside the VM network", line: 24},
			}},
		{name: "address outside qemu.network", edits: []edit{r("address: 10.10.0.11/24", "address: 10.10.1.11/24")},
			want: []want{{path: "machines[1].address", msg: "address 10.10.1.11 is outside the VM network 10.10.0.0/24", hint: "inside qemu.network 10.10.0.0/24", line: 24}}},
		{name: "bad qemu.network", edits: []edit{r("network: 10.10.0.0/24", "network: ten")},
			want: []want{{path: "qemu.network", msg: `"ten" is not an IPv4 CIDR`, at: "network: ten"}}},
		{name: "bad gateway", edits: []edit{r("address: 10.10.0.11/24\n", "address: 10.10.0.11/24\n    gateway: 10.10.0\n")},
			want: []want{{path: "machines[1].gateway", msg: "not an IPv4 address", at: "gateway:"}}},
		{name: "gateway without address", edits: []edit{r("address: 10.10.0.11/24\n", "gateway: 10.10.0.1\n")},
			want: []want{{path: "machines[1].gateway", msg: "gateway without a static address", at: "gateway:"}}},
		{name: "node without address (DHCP) is fine", edits: []edit{r("    address: 10.10.0.11/24\n", "")}},
		{name: "node without MAC is fine", edits: []edit{r(`    mac: "52:54:00:aa:00:11"`+"\n", "")}},
		{name: "no master", edits: []edit{r("name: master\n    role: master", "name: node-0\n    role: node")},
			want: []want{{path: "machines", msg: "no master", hint: "role: master", line: 16}}},
		{name: "two masters", edits: []edit{r("role: node", "role: master")},
			want: []want{{path: "machines[1].role", msg: "more than one master (machines[0] is already the master)", hint: "role: node", line: 22}}},
		{name: "master without address", edits: []edit{r(masterButane, "")},
			// No address line: the problem points at the machine itself.
			want: []want{{path: "machines[0].address", msg: "the master needs a static address", hint: "static address", at: "- name: master"}}},

		// Control-plane endpoint.
		{name: "endpoint not covered by any SAN",
			edits: []edit{r("network:\n", "controlPlane:\n  endpoint: 192.0.2.50:6443\nnetwork:\n")},
			want:  []want{{path: "controlPlane.endpoint", msg: "endpoint host 192.0.2.50 is covered by no API server certificate name", hint: "add 192.0.2.50 to controlPlane.certSANs", at: "endpoint:"}}},
		{name: "endpoint DNS name not covered",
			edits: []edit{r("network:\n", "controlPlane:\n  endpoint: k8s.example.com\nnetwork:\n")},
			want:  []want{{path: "controlPlane.endpoint", msg: "k8s.example.com", hint: "controlPlane.certSANs", at: "endpoint:"}}},
		{name: "endpoint covered via certSANs",
			edits: []edit{r("network:\n", "controlPlane:\n  endpoint: 192.0.2.50:6443\n  certSANs: [192.0.2.50]\nnetwork:\n")}},
		{name: "endpoint DNS name covered via certSANs",
			edits: []edit{r("network:\n", "controlPlane:\n  endpoint: k8s.example.com:443\n  certSANs: [k8s.example.com]\nnetwork:\n")}},
		{name: "endpoint is the master's address without port",
			edits: []edit{r("network:\n", "controlPlane:\n  endpoint: 10.10.0.10\nnetwork:\n")}},
		{name: "endpoint is the master's name",
			edits: []edit{r("network:\n", "controlPlane:\n  endpoint: master:6443\nnetwork:\n")}},
		{name: "endpoint is the kubernetes service IP",
			edits: []edit{r("network:\n", "controlPlane:\n  endpoint: 10.96.0.1:443\nnetwork:\n")}},
		{name: "endpoint port out of range",
			edits: []edit{r("network:\n", "controlPlane:\n  endpoint: 10.10.0.10:99999\nnetwork:\n")},
			want:  []want{{path: "controlPlane.endpoint", msg: `"10.10.0.10:99999" has no valid port`, hint: "host:port", at: "endpoint:"}}},
		{name: "endpoint port not a number",
			edits: []edit{r("network:\n", "controlPlane:\n  endpoint: 10.10.0.10:https\nnetwork:\n")},
			want:  []want{{path: "controlPlane.endpoint", msg: "no valid port", at: "endpoint:"}}},
		{name: "endpoint port zero",
			edits: []edit{r("network:\n", "controlPlane:\n  endpoint: 10.10.0.10:0\nnetwork:\n")},
			want:  []want{{path: "controlPlane.endpoint", msg: "no valid port", at: "endpoint:"}}},
		{name: "endpoint without host",
			edits: []edit{r("network:\n", "controlPlane:\n  endpoint: :6443\nnetwork:\n")},
			want:  []want{{path: "controlPlane.endpoint", msg: "no valid host", at: "endpoint:"}}},
		{name: "bad certSAN",
			edits: []edit{r("network:\n", "controlPlane:\n  certSANs:\n    - ok.example.com\n    - not a name\nnetwork:\n")},
			want:  []want{{path: "controlPlane.certSANs[1]", msg: `"not a name" is neither an IP address nor a DNS name`, at: "not a name"}}},

		// Add-ons.
		{name: "unknown add-on", edits: []edit{r("addons: [kube-proxy, coredns, metrics-server]", "addons: [kube-proxy, dashboard]")},
			want: []want{{path: "addons[1]", msg: `unknown add-on "dashboard"`, hint: "kube-proxy, coredns, metrics-server", at: "addons:"}}},
		{name: "duplicate add-on", edits: []edit{r("addons: [kube-proxy, coredns, metrics-server]", "addons:\n  - coredns\n  - kube-proxy\n  - coredns")},
			want: []want{{path: "addons[2]", msg: `add-on "coredns" listed twice`, hint: "once", line: 14}}},
		{name: "no add-ons", edits: []edit{r("addons: [kube-proxy, coredns, metrics-server]", "addons: []")}},
		{name: "add-ons omitted", edits: []edit{r("addons: [kube-proxy, coredns, metrics-server]\n", "")}},

		// PKI.
		{name: "bootstrapTokenTTL not a duration", edits: []edit{r("bootstrapTokenTTL: 24h", "bootstrapTokenTTL: 1 day")},
			want: []want{{path: "pki.bootstrapTokenTTL", msg: `"1 day" is not a duration`, hint: "24h", at: "bootstrapTokenTTL:"}}},
		{name: "bootstrapTokenTTL in days", edits: []edit{r("bootstrapTokenTTL: 24h", "bootstrapTokenTTL: 1d")},
			want: []want{{path: "pki.bootstrapTokenTTL", msg: "not a duration", at: "bootstrapTokenTTL:"}}},
		{name: "nodeCertificateTTL not a duration", edits: []edit{r("bootstrapTokenTTL: 24h", "bootstrapTokenTTL: 24h\n  nodeCertificateTTL: 1y")},
			want: []want{{path: "pki.nodeCertificateTTL", msg: `"1y" is not a duration`, hint: "8760h", at: "nodeCertificateTTL:"}}},
		{name: "nodeCertificateTTL too short", edits: []edit{r("bootstrapTokenTTL: 24h", "bootstrapTokenTTL: 24h\n  nodeCertificateTTL: 1m")},
			want: []want{{path: "pki.nodeCertificateTTL", msg: "no time to renew", hint: "5m", at: "nodeCertificateTTL:"}}},
		{name: "bootstrapTokenTTL too short", edits: []edit{r("bootstrapTokenTTL: 24h", "bootstrapTokenTTL: 30s")},
			want: []want{{path: "pki.bootstrapTokenTTL", msg: "30s is too short", hint: "at least 1m", at: "bootstrapTokenTTL:"}}},
		{name: "bootstrapTokenTTL negative", edits: []edit{r("bootstrapTokenTTL: 24h", "bootstrapTokenTTL: -1h")},
			want: []want{{path: "pki.bootstrapTokenTTL", msg: "too short", at: "bootstrapTokenTTL:"}}},

		// Targets.
		{name: "unknown target", edits: []edit{r("target: qemu", "target: gce")},
			want: []want{{path: "target", msg: `unknown target "gce"`, hint: "qemu, metal, aws or vsphere", line: 5}}},
		{name: "aws block with target qemu", edits: []edit{r("qemu:\n", "aws:\n  region: eu-west-1\n  configURL: s3://bucket/prefix/\nqemu:\n")},
			want: []want{{path: "aws", msg: "a aws block, but target is qemu", hint: "set target: aws", at: "aws:"}}},
		{name: "qemu block with target aws", edits: []edit{r("target: qemu", "target: aws"), r("qemu:\n", "aws:\n  region: eu-west-1\n  configURL: s3://bucket/prefix/\nqemu:\n")},
			want: []want{{path: "qemu", msg: "a qemu block, but target is aws", at: "qemu:"}}},
		{name: "target aws is fine", edits: []edit{r("target: qemu", "target: aws"), r("qemu:\n  network: 10.10.0.0/24\n", "aws:\n  region: eu-west-1\n  configURL: s3://bucket/prefix/\n")}},
		{name: "target aws without configURL", edits: []edit{r("target: qemu", "target: aws"), r("qemu:\n  network: 10.10.0.0/24\n", "aws:\n  region: eu-west-1\n")},
			want: []want{{path: "aws.configURL", msg: "configURL must be an s3:// URL", hint: "s3://bucket/prefix/", at: "aws:"}}},
		{name: "target aws with https configURL", edits: []edit{r("target: qemu", "target: aws"), r("qemu:\n  network: 10.10.0.0/24\n", "aws:\n  region: eu-west-1\n  configURL: https://example.com/\n")},
			want: []want{{path: "aws.configURL", msg: "s3://", at: "configURL:"}}},
		{name: "target aws without aws block", edits: []edit{r("target: qemu", "target: aws"), r("qemu:\n  network: 10.10.0.0/24\n", "")},
			want: []want{{path: "aws", msg: "target aws needs an aws block", line: 0}}},
		{name: "target aws without region", edits: []edit{r("target: qemu", "target: aws"), r("qemu:\n  network: 10.10.0.0/24\n", "aws:\n  configURL: s3://bucket/\n")},
			want: []want{{path: "aws.region", msg: "region is required", at: "aws:"}}},
		{name: "target vsphere without vsphere block", edits: []edit{r("target: qemu", "target: vsphere"), r("qemu:\n  network: 10.10.0.0/24\n", "")},
			want: []want{{path: "vsphere", msg: "needs a vsphere block"}}},
		{name: "vsphere configURL not https", edits: []edit{r("target: qemu", "target: vsphere"), r("qemu:\n  network: 10.10.0.0/24\n", "vsphere:\n  configURL: http://example.com/\n")},
			want: []want{{path: "vsphere.configURL", msg: "is not https", at: "configURL:"}}},
		{name: "unknown os", edits: []edit{r("target: qemu", "target: metal\nos: windows"), r("qemu:\n  network: 10.10.0.0/24\n", "metal: {}\n")},
			want: []want{{path: "os", msg: `unknown OS "windows"`, hint: "debian, flatcar", at: "os:"}}},
		{name: "flatcar on qemu", edits: []edit{r("target: qemu", "target: qemu\nos: flatcar")},
			want: []want{{path: "os", msg: "boots the debian image", hint: "os: debian", at: "os:"}}},
		{name: "flatcar on aws", edits: []edit{r("target: qemu", "target: aws\nos: flatcar"), r("qemu:\n  network: 10.10.0.0/24\n", "aws: {region: x, configURL: s3://b/}\n")}},
		{name: "metal.os moved", edits: []edit{r("target: qemu", "target: metal"), r("qemu:\n  network: 10.10.0.0/24\n", "metal:\n  os: flatcar\n")},
			want: []want{{path: "metal.os", msg: "metal.os is now os", hint: "os: flatcar", at: "os:"}}},

		// QEMU's forwards to host services.
		{name: "valid host forwards", edits: []edit{r("qemu:\n  network: 10.10.0.0/24\n", "qemu:\n  network: 10.10.0.0/24\n  hostForwards:\n    - {guest: 10.0.2.100:5000, host: 127.0.0.1:5000}\n    - {guest: 10.0.2.100:5001, host: \"[::1]:5001\"}\n")}},
		{name: "bad host forwards", edits: []edit{r("qemu:\n  network: 10.10.0.0/24\n", `qemu:
  network: 10.10.0.0/24
  hostForwards:
    - {guest: 10.0.2.2:5000, host: 10.10.0.1:5000}
    - {guest: 192.168.1.5:80, host: 127.0.0.1}
    - {guest: 10.0.2.100:5000, host: 127.0.0.1:5000}
    - {guest: 10.0.2.100:5000, host: 127.0.0.1:5001}
`)},
			want: []want{
				{path: "qemu.hostForwards[0].guest", msg: `"10.0.2.2:5000" is not a free guest address`, hint: "other than .2, .3 and .15", line: anyLine},
				{path: "qemu.hostForwards[0].host", msg: `"10.10.0.1:5000" is not a loopback address`, hint: "127.0.0.1:5000", line: anyLine},
				{path: "qemu.hostForwards[1].guest", msg: "is not a free guest address", line: anyLine},
				{path: "qemu.hostForwards[1].host", msg: "is not a loopback address", line: anyLine},
				{path: "qemu.hostForwards[3].guest", msg: "10.0.2.100:5000 is forwarded twice", hint: "qemu.hostForwards[2]", line: anyLine},
			}},

		// Butane.
		{name: "broken Butane snippet on a machine (not YAML)",
			edits: []edit{r(masterButane, masterButane+"    butane: |\n      storage: [\n")},
			want:  []want{{path: "machines[0].butane", msg: "not YAML", hint: "Butane snippet", at: "butane:"}}},
		{name: "broken Butane snippet on a machine (unknown key)",
			edits: []edit{r(masterButane, masterButane+"    butane: |\n      storage:\n        filez: []\n")},
			want:  []want{{path: "machines[0].butane", msg: "filez", hint: "Butane snippet", at: "butane:"}}},
		{name: "broken Butane snippet on a machine (bad file mode)",
			edits: []edit{r(masterButane, masterButane+"    butane: |\n      storage:\n        files:\n          - path: relative/motd\n")},
			want:  []want{{path: "machines[0].butane", msg: "butane", at: "butane:"}}},
		{name: "broken Butane snippet for a role",
			edits: []edit{r("machines:\n", "butane:\n  node: |\n    systemd: {units: [{name: x.service, enabled: maybe}]}\nmachines:\n")},
			want:  []want{{path: "butane.node", msg: "", hint: "Butane snippet", at: "node: |"}}},
		{name: "Butane snippet of an Ignition spec other than 3.4.0",
			edits: []edit{r(masterButane, masterButane+"    butane: |\n      variant: fcos\n      version: 1.6.0\n")},
			want:  []want{{path: "machines[0].butane", msg: "other than 3.4.0", at: "butane:"}}},
		{name: "valid Butane snippet without variant header",
			edits: []edit{r(masterButane, masterButane+"    butane: |\n      storage:\n        files:\n          - path: /etc/motd\n            contents:\n              inline: hello\n")}},
		{name: "valid Butane snippet with flatcar header",
			edits: []edit{r("machines:\n", "butane:\n  master: |\n    variant: flatcar\n    version: 1.1.0\n    storage:\n      files:\n        - path: /etc/motd\n          contents: {inline: hi}\nmachines:\n")}},

		// Registries.
		{name: "valid registries",
			edits: []edit{r("machines:\n", "registries:\n  - registry: registry.k8s.io\n    mirrors: [https://mirror.example.internal:5000, http://10.10.0.2:5000/k8s]\n    ca: |\n"+indent(testCA, "      ")+"  - registry: localhost:5000\n    mirrors: [https://mirror.example.internal]\nmachines:\n")}},
		{name: "bad registries",
			edits: []edit{r("machines:\n", `registries:
  - registry: https://docker.io
    mirrors: [ftp://mirror.example.internal, "https://user:pw@mirror.example.internal", https://mirror.example.internal:99999]
  - registry: ghcr.io
    ca: not a certificate
  - registry: ghcr.io
    mirrors: [https://mirror.example.internal]
machines:
`)},
			want: []want{
				{path: "registries[0].registry", msg: `"https://docker.io" is not a registry host`, hint: "docker.io", at: "registry: https://docker.io"},
				{path: "registries[0].mirrors[0]", msg: `"ftp://mirror.example.internal" is not a mirror URL`, hint: "https://mirror.example.internal:5000", at: "ftp://"},
				{path: "registries[0].mirrors[1]", msg: "is not a mirror URL", hint: "no credentials", at: "ftp://"},
				{path: "registries[0].mirrors[2]", msg: "is not a mirror URL", at: "ftp://"},
				{path: "registries[1].mirrors", msg: "registry ghcr.io has no mirror", hint: "at least one mirror", line: 19},
				{path: "registries[1].ca", msg: "ca is not one or more PEM certificates", hint: "PEM", at: "ca: not a certificate"},
				{path: "registries[2].registry", msg: "registry ghcr.io is listed twice", hint: "registries[1]", line: anyLine},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := mutate(t, validBase, tt.edits...)
			_, probs := problemsOf(t, "test.yaml", src)
			for _, p := range probs {
				if p.File != "test.yaml" {
					t.Errorf("problem %s: File = %q, want test.yaml", p, p.File)
				}
				if p.Hint == "" {
					t.Errorf("problem %s: no fix hint", p)
				}
			}
			checkProblems(t, src, probs, tt.want)
		})
	}
}

// testCA is a CA certificate, PEM, for the registries' ca field.
var testCA = func() string {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mirror CA"}, NotBefore: time.Now(),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}()

// indent puts prefix before every line of s.
func indent(s, prefix string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if l != "" {
			b.WriteString(prefix + l)
		}
	}
	return b.String()
}

func TestValidateAddonsEmptyVsOmitted(t *testing.T) {
	tests := []struct {
		name string
		line string
		want []string
	}{
		{"explicit empty list means none", "addons: []", []string{}},
		{"omitted means all three", "", KnownAddons},
		{"null means all three", "addons:", KnownAddons},
		{"a subset is kept in order", "addons: [metrics-server, coredns]", []string{AddonMetricsServer, AddonCoreDNS}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := mutate(t, validBase, r("addons: [kube-proxy, coredns, metrics-server]", tt.line))
			c, probs := problemsOf(t, "test.yaml", src)
			if len(probs) > 0 {
				t.Fatalf("unexpected problems: %v", probs)
			}
			if !slices.Equal(c.Addons, tt.want) {
				t.Errorf("Addons = %q, want %q", c.Addons, tt.want)
			}
			if c.Addons == nil {
				t.Errorf("Addons is nil after defaulting")
			}
		})
	}
	if want := []string{"kube-proxy", "coredns", "metrics-server"}; !slices.Equal(KnownAddons, want) {
		t.Errorf("KnownAddons = %q, want %q", KnownAddons, want)
	}
}

// manyProblems has one problem in nearly every part of the config.
const manyProblems = `apiVersion: kubeup.dev/v2
kind: Clusters
name: Bad_Name
kubernetesVersion: v1.30.0
controlPlane:
  endpoint: 192.0.2.50:6443
network:
  podCIDR: 10.244.1.0/16
  serviceCIDR: 10.224.0.0/11
  dnsDomain: "-bad-"
  cni: cilium
addons: [coredns, coredns, dashboard]
pki:
  bootstrapTokenTTL: forever
aws:
  region: eu-west-1
qemu:
  network: 10.10.0.0/24
machines:
  - name: a
    role: master
    mac: "52:54:00:AA:00:01"
    address: 10.10.0.10/24
    butane: |
      storage: [
  - name: a
    role: master
    mac: "52:54:00:aa:00:01"
    address: 10.10.0.10/24
  - name: c
    role: node
    mac: nope
    address: 10.20.0.10/24
`

func TestValidateReportsEveryProblem(t *testing.T) {
	_, probs := problemsOf(t, "many.yaml", manyProblems)
	checkProblems(t, manyProblems, probs, []want{
		{path: "apiVersion", msg: "kubeup.dev/v2", line: 1},
		{path: "kind", msg: "Clusters", line: 2},
		{path: "name", msg: "Bad_Name", line: 3},
		{path: "kubernetesVersion", msg: "v1.30.0", line: 4},
		{path: "controlPlane.endpoint", msg: "192.0.2.50", hint: "controlPlane.certSANs", line: 6},
		{path: "network.podCIDR", msg: "host bits", line: 8},
		{path: "network.serviceCIDR", msg: "too large", line: 9},
		{path: "network.serviceCIDR", msg: "overlaps", line: 9},
		{path: "network.dnsDomain", msg: "-bad-", line: 10},
		{path: "network.cni", msg: "cilium", line: 11},
		{path: "addons[1]", msg: "listed twice", line: 12},
		{path: "addons[2]", msg: "dashboard", line: 12},
		{path: "pki.bootstrapTokenTTL", msg: "forever", line: 14},
		{path: "aws", msg: "a aws block, but target is qemu", line: 15},
		{path: "machines[0].butane", msg: "not YAML", line: 24},
		{path: "machines[1].name", msg: "duplicate machine name", line: 26},
		{path: "machines[1].mac", msg: "duplicate MAC", line: 28},
		{path: "machines[1].address", msg: "duplicate address", line: 29},
		{path: "machines[1].role", msg: "more than one master", line: 27},
		{path: "machines[2].mac", msg: "not a MAC", line: 32},
		{path: "machines[2].address", msg: "outside the VM network", line: 33},
	})
	if len(probs) < 20 {
		t.Errorf("only %d problems reported", len(probs))
	}
}

func TestValidateCombinesDecodeAndValidationProblems(t *testing.T) {
	src := mutate(t, validBase, r("name: test", "name: test\ncolour: blue"), r("kind: Cluster", "kind: Clusters"))
	_, probs := problemsOf(t, "test.yaml", src)
	checkProblems(t, src, probs, []want{
		{path: "colour", msg: `unknown field "colour"`, hint: "spelling", at: "colour:"},
		{path: "kind", msg: "Clusters", at: "kind:"},
	})
}

func TestProblemsError(t *testing.T) {
	src := mutate(t, validBase, r("podCIDR: 10.244.0.0/16", "podCIDR: 10.244.0.0/33"), r("cni: flannel", "cni: weave"))
	_, err := Parse("clusters/bad.yaml", []byte(src))
	if err == nil {
		t.Fatal("Parse accepted a bad config")
	}
	msg := err.Error()
	for _, s := range []string{
		"2 problem(s) in cluster config",
		`clusters/bad.yaml:7: network.podCIDR: "10.244.0.0/33" is not an IPv4 CIDR (fix: write an IPv4 CIDR such as 10.244.0.0/16)`,
		`clusters/bad.yaml:10: network.cni: unknown CNI "weave" (fix: use flannel`,
	} {
		if !strings.Contains(msg, s) {
			t.Errorf("error does not contain %q:\n%s", s, msg)
		}
	}
	if n := strings.Count(msg, "\n"); n != 2 {
		t.Errorf("error has %d newlines, want one line per problem after the header:\n%s", n, msg)
	}
	for _, l := range strings.Split(msg, "\n")[1:] {
		for _, s := range []string{"clusters/bad.yaml:", "network.", "fix:"} {
			if !strings.Contains(l, s) {
				t.Errorf("line %q lacks %q", l, s)
			}
		}
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "c.yaml", Line: 3, Path: "name", Msg: "bad", Hint: "fix it"}, "c.yaml:3: name: bad (fix: fix it)"},
		{Problem{File: "c.yaml", Path: "name", Msg: "bad", Hint: "fix it"}, "c.yaml: name: bad (fix: fix it)"},
		{Problem{File: "c.yaml", Line: 3, Msg: "bad"}, "c.yaml:3: bad"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

// Validate works on a config built in code: no lines, but paths and hints.
func TestValidateWithoutSource(t *testing.T) {
	c := &Config{
		APIVersion: APIVersion, Kind: Kind, Name: "code",
		Machines: []Machine{{Name: "m", Role: RoleMaster, Address: "10.1.0.10/24"}},
	}
	c.Default()
	if probs := c.Validate("code"); len(probs) != 0 {
		t.Fatalf("unexpected problems: %v", probs)
	}
	c.Machines = append(c.Machines, Machine{Name: "m", Role: RoleMaster})
	probs := c.Validate("code")
	checkProblems(t, "", probs, []want{
		{path: "machines[1].name", msg: "duplicate machine name"},
		{path: "machines[1].role", msg: "more than one master"},
	})
}

// The order of problems must not depend on map iteration: same config, same message.
func TestValidateDeterministicOrder(t *testing.T) {
	src := mutate(t, validBase, r("qemu:\n", "aws: {region: x, configURL: s3://b/}\nvsphere: {server: v}\nmetal: {os: debian}\nqemu:\n"))
	_, first := Parse("x.yaml", []byte(src))
	if first == nil {
		t.Fatal("no problems")
	}
	for range 50 {
		_, err := Parse("x.yaml", []byte(src))
		if err.Error() != first.Error() {
			t.Fatalf("problem order changed between runs:\n%v\n---\n%v", first, err)
		}
	}
}
