package cluster

import (
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"kubeup.dev/kubeup/internal/versions"
)

// minimal is the smallest valid config: everything else comes from defaults.
const minimal = `apiVersion: kubeup.dev/v1alpha1
kind: Cluster
name: mini
machines:
  - name: master
    role: master
    address: 10.10.0.10/24
`

func TestDefaultsApplied(t *testing.T) {
	c, probs := problemsOf(t, "mini.yaml", minimal)
	if len(probs) > 0 {
		t.Fatalf("minimal config has problems: %v", probs)
	}
	// Literal values, not the constants: changing a default must be a deliberate test change.
	for _, f := range []struct{ name, got, want string }{
		{"kubernetesVersion", c.KubernetesVersion, "v1.37.2"},
		{"network.podCIDR", c.Network.PodCIDR, "10.244.0.0/16"},
		{"network.serviceCIDR", c.Network.ServiceCIDR, "10.96.0.0/12"},
		{"network.dnsDomain", c.Network.DNSDomain, "cluster.local"},
		{"network.cni", c.Network.CNI, "flannel"},
		{"pki.bootstrapTokenTTL", c.PKI.BootstrapTokenTTL, "24h"},
		{"podSecurity", c.PodSecurity, "baseline"},
		{"target", c.Target, "qemu"},
		{"controlPlane.endpoint", c.ControlPlane.Endpoint, "10.10.0.10"},
	} {
		if f.got != f.want {
			t.Errorf("%s = %q, want %q", f.name, f.got, f.want)
		}
	}
	if c.KubernetesVersion != versions.Kubernetes {
		t.Errorf("kubernetesVersion %q is not versions.Kubernetes %q", c.KubernetesVersion, versions.Kubernetes)
	}
	if want := []string{"kube-proxy", "coredns", "metrics-server"}; !slices.Equal(c.Addons, want) {
		t.Errorf("addons = %q, want %q", c.Addons, want)
	}
	if c.QEMU == nil || c.QEMU.Memory != "2G" || c.QEMU.CPUs != 2 || c.QEMU.Network != "" {
		t.Errorf("qemu = %+v, want memory 2G, cpus 2, no network", c.QEMU)
	}
	if c.Metal != nil || c.AWS != nil || c.VSphere != nil {
		t.Errorf("defaults created a block for another target: %+v", c)
	}
	if c.EndpointURL() != "https://10.10.0.10:6443" {
		t.Errorf("EndpointURL = %q", c.EndpointURL())
	}
	if c.TokenTTL().Hours() != 24 {
		t.Errorf("TokenTTL = %v", c.TokenTTL())
	}
}

func TestDefaultsKeepExplicitValues(t *testing.T) {
	c := &Config{
		KubernetesVersion: "v9.9.9",
		Target:            TargetMetal,
		OS:                "flatcar",
		ControlPlane:      ControlPlane{Endpoint: "lb.example.com:443"},
		Network:           Network{PodCIDR: "10.1.0.0/16", ServiceCIDR: "10.2.0.0/16", DNSDomain: "example.local", CNI: "other"},
		Addons:            []string{},
		PKI:               PKI{BootstrapTokenTTL: "1h"},
		PodSecurity:       PodSecurityRestricted,
		Machines:          []Machine{{Name: "m", Role: RoleMaster, Address: "10.0.0.1/24"}},
	}
	want := cloneConfig(c)
	c.Default()
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Default changed explicit values:\n got %+v\nwant %+v", c, want)
	}
	// An explicit qemu block keeps its values; missing ones are filled.
	c = &Config{QEMU: &QEMU{CPUs: 4}}
	c.Default()
	if c.QEMU.CPUs != 4 || c.QEMU.Memory != "2G" {
		t.Errorf("qemu = %+v", c.QEMU)
	}
}

func TestDefaultsZeroConfig(t *testing.T) {
	var c Config
	c.Default()
	if c.ControlPlane.Endpoint != "" {
		t.Errorf("endpoint %q without a master", c.ControlPlane.Endpoint)
	}
	if c.Target != TargetQEMU || c.QEMU == nil {
		t.Errorf("target %q, qemu %v", c.Target, c.QEMU)
	}
	// The master has no usable address: no endpoint either.
	c = Config{Machines: []Machine{{Role: RoleMaster, Address: "dhcp"}}}
	c.Default()
	if c.ControlPlane.Endpoint != "" {
		t.Errorf("endpoint %q from an invalid address", c.ControlPlane.Endpoint)
	}
	// Target aws: no qemu block appears.
	c = Config{Target: TargetAWS}
	c.Default()
	if c.QEMU != nil {
		t.Errorf("qemu block for target aws")
	}
}

// The defaulted add-on list is a copy: changing a config must not change KnownAddons.
func TestDefaultAddonsNotShared(t *testing.T) {
	var a, b Config
	a.Default()
	b.Default()
	a.Addons[0] = "changed"
	if KnownAddons[0] != AddonKubeProxy || b.Addons[0] != AddonKubeProxy {
		t.Errorf("add-on list shared: KnownAddons %q, other config %q", KnownAddons, b.Addons)
	}
}

func TestDefaultIdempotent(t *testing.T) {
	srcs := map[string]string{
		"minimal":           minimal,
		"base":              validBase,
		"empty":             "{}",
		"no master address": `machines: [{name: m, role: master}]`,
		"aws":               "target: aws\naws: {region: x}\n",
	}
	for _, file := range exampleConfigs(t) {
		srcs[filepath.Base(file)] = string(readFile(t, file))
	}
	for name, src := range srcs {
		t.Run(name, func(t *testing.T) {
			c, _ := Parse(name, []byte(src)) // problems or not, Parse has defaulted it
			if c == nil {
				t.Fatal("no config")
			}
			once := cloneConfig(c)
			c.Default()
			if !reflect.DeepEqual(c, once) {
				t.Errorf("second Default changed the config:\n got %+v\nwant %+v", c, once)
			}
		})
	}
}

// cloneConfig deep-copies a config by reflection, so that it keeps up with new fields; nil and
// empty slices stay distinct (addons: [] means none).
func cloneConfig(c *Config) *Config {
	return deepCopy(reflect.ValueOf(c)).Interface().(*Config)
}

func deepCopy(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return reflect.Zero(v.Type())
		}
		p := reflect.New(v.Type().Elem())
		p.Elem().Set(deepCopy(v.Elem()))
		return p
	case reflect.Struct:
		s := reflect.New(v.Type()).Elem()
		for i := range v.NumField() {
			s.Field(i).Set(deepCopy(v.Field(i)))
		}
		return s
	case reflect.Slice:
		if v.IsNil() {
			return reflect.Zero(v.Type())
		}
		s := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			s.Index(i).Set(deepCopy(v.Index(i)))
		}
		return s
	case reflect.String, reflect.Int, reflect.Bool:
		return v
	default:
		panic("deepCopy: unhandled kind " + v.Kind().String())
	}
}

func TestCloneConfig(t *testing.T) {
	c, _ := Parse("base.yaml", []byte(validBase))
	c.ControlPlane.CertSANs = []string{"a"}
	d := cloneConfig(c)
	if !reflect.DeepEqual(c, d) {
		t.Fatal("clone differs")
	}
	d.Machines[0].Name = "x"
	d.QEMU.CPUs = 9
	d.Addons[0] = "x"
	d.ControlPlane.CertSANs[0] = "x"
	if c.Machines[0].Name == "x" || c.QEMU.CPUs == 9 || c.Addons[0] == "x" || c.ControlPlane.CertSANs[0] == "x" {
		t.Error("clone shares memory with the original")
	}
	if e := cloneConfig(&Config{Addons: []string{}}); e.Addons == nil {
		t.Error("clone turned an empty add-on list into nil")
	}
}
