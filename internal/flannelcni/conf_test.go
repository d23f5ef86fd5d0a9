package flannelcni

import (
	"encoding/json"
	"strings"
	"testing"
)

const subnetEnv = "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"

func TestParseSubnetEnv(t *testing.T) {
	s, err := ParseSubnetEnv(strings.NewReader(subnetEnv))
	if err != nil {
		t.Fatal(err)
	}
	if s.Network.String() != "10.244.0.0/16" || s.Subnet.String() != "10.244.3.1/24" || s.MTU != 1450 || !s.IPMasq {
		t.Fatalf("parsed %+v", s)
	}
	for _, bad := range []string{"", "FLANNEL_NETWORK=10.244.0.0/16\n", strings.Replace(subnetEnv, "1450", "big", 1), strings.Replace(subnetEnv, "10.244.3.1/24", "10.244.3.1", 1)} {
		if _, err := ParseSubnetEnv(strings.NewReader(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// The conflist kubeup's flannel manifest installs: the delegate asks for hairpin mode and a
// default gateway, as upstream's does.
const netconf = `{"cniVersion":"0.3.1","name":"cbr0","type":"flannel","delegate":{"hairpinMode":true,"isDefaultGateway":true}}`

func TestDelegateConf(t *testing.T) {
	n, err := LoadNetConf([]byte(netconf))
	if err != nil {
		t.Fatal(err)
	}
	if n.SubnetFile != DefaultSubnetFile || n.DataDir != DefaultDataDir {
		t.Errorf("defaults: %q %q", n.SubnetFile, n.DataDir)
	}
	s, _ := ParseSubnetEnv(strings.NewReader(subnetEnv))
	raw, err := DelegateConf(n, s)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Type, Name, CNIVersion string
		MTU                    int
		IPMasq                 bool `json:"ipMasq"`
		IsGateway              bool `json:"isGateway"`
		IsDefaultGateway       bool `json:"isDefaultGateway"`
		HairpinMode            bool `json:"hairpinMode"`
		IPAM                   struct {
			Type   string
			Ranges [][]struct{ Subnet string }
			Routes []struct{ Dst string }
		}
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	if d.Type != "bridge" || d.Name != "cbr0" || d.CNIVersion != "0.3.1" || d.MTU != 1450 || d.IPMasq || !d.IsGateway || !d.IsDefaultGateway || !d.HairpinMode {
		t.Errorf("delegate %s", raw)
	}
	if d.IPAM.Type != "host-local" || d.IPAM.Ranges[0][0].Subnet != "10.244.3.0/24" || d.IPAM.Routes[0].Dst != "10.244.0.0/16" {
		t.Errorf("ipam %s", raw)
	}
	// The delegate section wins where it speaks, except for the IPAM ranges and routes.
	n.Delegate["mtu"] = 1400
	n.Delegate["ipMasq"] = true
	n.Delegate["ipam"] = map[string]any{"dataDir": "/tmp/x", "ranges": "ignored"}
	raw, _ = DelegateConf(n, s)
	if !strings.Contains(string(raw), `"mtu":1400`) || !strings.Contains(string(raw), `"ipMasq":true`) ||
		!strings.Contains(string(raw), `"dataDir":"/tmp/x"`) || !strings.Contains(string(raw), `"subnet":"10.244.3.0/24"`) {
		t.Errorf("delegate overrides: %s", raw)
	}
}
