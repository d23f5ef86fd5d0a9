package cluster

import (
	"kubeup.dev/kubeup/internal/machine"
	"kubeup.dev/kubeup/internal/versions"
)

// Defaults, as the issue and kubeadm have them.
const (
	DefaultPodCIDR           = "10.244.0.0/16"
	DefaultServiceCIDR       = "10.96.0.0/12"
	DefaultDNSDomain         = "cluster.local"
	DefaultCNI               = "flannel"
	DefaultBootstrapTokenTTL = "24h"
	DefaultAPIServerPort     = 6443
	DefaultPodSecurity       = PodSecurityBaseline
)

// Pod Security Standards levels (podSecurity).
const (
	PodSecurityPrivileged = "privileged"
	PodSecurityBaseline   = "baseline"
	PodSecurityRestricted = "restricted"
)

// Add-on names.
const (
	AddonCoreDNS       = "coredns"
	AddonKubeProxy     = "kube-proxy"
	AddonMetricsServer = "metrics-server"
)

// KnownAddons lists every add-on kubeup can install, in install order.
var KnownAddons = []string{AddonKubeProxy, AddonCoreDNS, AddonMetricsServer}

// Default fills every unset field with its default. It is idempotent.
func (c *Config) Default() {
	if c.KubernetesVersion == "" {
		c.KubernetesVersion = versions.Kubernetes
	}
	if c.Target == "" {
		c.Target = TargetQEMU
	}
	if c.OS == "" {
		c.OS = machine.DefaultOS
	}
	if c.Network.PodCIDR == "" {
		c.Network.PodCIDR = DefaultPodCIDR
	}
	if c.Network.ServiceCIDR == "" {
		c.Network.ServiceCIDR = DefaultServiceCIDR
	}
	if c.Network.DNSDomain == "" {
		c.Network.DNSDomain = DefaultDNSDomain
	}
	if c.Network.CNI == "" {
		c.Network.CNI = DefaultCNI
	}
	// nil means "not said": all add-ons. An explicit empty list means none.
	if c.Addons == nil {
		c.Addons = append([]string(nil), KnownAddons...)
	}
	if c.PodSecurity == "" {
		c.PodSecurity = DefaultPodSecurity
	}
	if c.PKI.BootstrapTokenTTL == "" {
		c.PKI.BootstrapTokenTTL = DefaultBootstrapTokenTTL
	}
	if c.Target == TargetQEMU && c.QEMU == nil {
		c.QEMU = &QEMU{}
	}
	if c.QEMU != nil {
		if c.QEMU.Memory == "" {
			c.QEMU.Memory = "2G"
		}
		if c.QEMU.CPUs == 0 {
			c.QEMU.CPUs = 2
		}
	}
	// The endpoint defaults to the master's own address, which its certificate always covers.
	if c.ControlPlane.Endpoint == "" {
		if m := c.Master(); m != nil {
			if ip := m.IP(); ip.IsValid() {
				c.ControlPlane.Endpoint = ip.String()
			}
		}
	}
}
