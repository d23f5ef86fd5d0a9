package ignition

import (
	"fmt"
	"time"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/machine"
	"kubeup.dev/kubeup/internal/manifests"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/internal/versions"
)

// inputs is what every plan of one cluster shares, computed once: rendering a thousand nodes
// serializes the kubelet config and the bootstrap kubeconfig once, not a thousand times.
type inputs struct {
	cfg    *cluster.Config
	bundle *pki.Bundle
	params manifests.Params
	// layout is where the image keeps kubeup's binaries (the cluster's os).
	layout machine.Layout

	kubeletConfig       []byte
	bootstrapKubeconfig []byte
	controlPlane        []File // the static pods, and the API server's authentication and admission configs
	addons              []File // master only, under manifests.AddonsDir
	// The registries' files under machine.ContainerdCertsDir, by path there: the master's with
	// the mirrors' credentials, every node's without.
	registriesMaster, registriesNode map[string]File
}

// Params derives the manifests' inputs from a cluster config.
func Params(cfg *cluster.Config) manifests.Params {
	m := cfg.Master()
	var runtimeTimeout time.Duration
	if cfg.Target == cluster.TargetQEMU {
		// The QEMU target is the one that emulates (TCG) where KVM does not work; with KVM the
		// longer wait costs nothing.
		runtimeTimeout = manifests.EmulatedRuntimeRequestTimeout
	}
	return manifests.Params{
		ClusterName:       cfg.Name,
		KubernetesVersion: cfg.KubernetesVersion,
		Images:            versions.ImagesFor(cfg.KubernetesVersion),
		MasterName:        m.Name,
		MasterIP:          m.IP().String(),
		Endpoint:          cfg.EndpointURL(),
		APIServerPort:     cluster.DefaultAPIServerPort,
		PodCIDR:           cfg.Network.PodCIDR,
		ServiceCIDR:       cfg.Network.ServiceCIDR,
		DNSDomain:         cfg.Network.DNSDomain,
		DNSServiceIP:      cfg.NthServiceIP(10).String(),
		Addons:            cfg.Addons,
		PodSecurity:       cfg.PodSecurity,

		NodeCertificateTTL:    cfg.PKI.NodeCertificateTTL,
		RuntimeRequestTimeout: runtimeTimeout,
	}
}

// addonSets names the add-on files in apply order; the master agent applies them sorted by name.
var addonSets = []struct {
	file  string
	addon string // empty: always
	build func(manifests.Params) ([]manifests.Object, error)
}{
	{"20-kube-proxy.yaml", cluster.AddonKubeProxy, manifests.KubeProxy},
	{"30-flannel.yaml", "", manifests.Flannel},
	{"40-coredns.yaml", cluster.AddonCoreDNS, manifests.CoreDNS},
	{"50-metrics-server.yaml", cluster.AddonMetricsServer, manifests.MetricsServer},
	{"60-kubeup-agent.yaml", "", manifests.AgentMetrics},
}

// Files the master agent applies with super-admin.conf before anything else.
const clusterAdminsFile = "00-cluster-admins.yaml"

// registryHostsAddon is the add-on of the registry mirrors' files for the nodes' agents, before
// any add-on whose pods a node might pull for.
const registryHostsAddon = "15-registry-hosts.yaml"

func newInputs(cfg *cluster.Config, b *pki.Bundle) (*inputs, error) {
	in := &inputs{cfg: cfg, bundle: b, params: Params(cfg)}
	var err error
	if in.layout, err = machine.LayoutOf(cfg.OS); err != nil {
		return nil, fmt.Errorf("os: %w", err)
	}
	in.registriesMaster, in.registriesNode = in.registryFiles(true), in.registryFiles(false)
	if in.kubeletConfig, err = manifests.KubeletConfig(in.params); err != nil {
		return nil, err
	}
	in.bootstrapKubeconfig, err = pki.TokenKubeconfig(cfg.Name, cfg.EndpointURL(), b.File("pki/ca.crt"),
		"kubelet-bootstrap", b.Token.String())
	if err != nil {
		return nil, err
	}
	for _, sp := range manifests.StaticPods(in.params) {
		data, err := manifests.StaticPodYAML(sp)
		if err != nil {
			return nil, err
		}
		in.controlPlane = append(in.controlPlane, File{Path: manifests.ManifestsDir + "/" + sp.File, Mode: 0o600, Data: data})
	}
	auth, err := manifests.AuthenticationConfig()
	if err != nil {
		return nil, err
	}
	admission, err := manifests.AdmissionConfig(in.params)
	if err != nil {
		return nil, err
	}
	in.controlPlane = append(in.controlPlane,
		File{Path: manifests.AuthenticationConfigFile, Mode: 0o600, Data: auth},
		File{Path: manifests.AdmissionConfigFile, Mode: 0o600, Data: admission})
	return in, in.buildAddons()
}

func (in *inputs) buildAddons() error {
	add := func(name string, objs []manifests.Object) error {
		data, err := manifests.YAML(objs...)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		in.addons = append(in.addons, File{Path: manifests.AddonsDir + "/" + name, Mode: 0o600, Data: data})
		return nil
	}
	if err := add(clusterAdminsFile, manifests.ClusterAdmins()); err != nil {
		return err
	}
	t := in.bundle.Token
	boot, err := manifests.Bootstrap(in.params, manifests.BootstrapToken{ID: t.ID, Secret: t.Secret, Description: t.Description, Expires: t.Expires},
		in.bundle.File("pki/ca.crt"))
	if err != nil {
		return err
	}
	if err := add("10-bootstrap.yaml", boot); err != nil {
		return err
	}
	if len(in.cfg.Registries) > 0 {
		files := map[string]string{}
		for rel, f := range in.registriesMaster {
			files[rel] = string(f.Data)
		}
		objs, err := manifests.RegistryHosts(files)
		if err != nil {
			return err
		}
		if err := add(registryHostsAddon, objs); err != nil {
			return err
		}
	}
	for _, s := range addonSets {
		if s.addon != "" && !in.params.HasAddon(s.addon) {
			continue
		}
		objs, err := s.build(in.params)
		if err != nil {
			return fmt.Errorf("%s: %w", s.file, err)
		}
		if err := add(s.file, objs); err != nil {
			return err
		}
	}
	return nil
}
