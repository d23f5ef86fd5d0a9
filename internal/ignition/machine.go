package ignition

import (
	"fmt"
	"io/fs"
	"path"
	"strings"

	"sigs.k8s.io/yaml"

	"kubeup.dev/kubeup/internal/agent"
	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/machine"
	"kubeup.dev/kubeup/internal/manifests"
)

// plan builds the plan of machine m, or of the role's anonymous fleet member when m is nil.
func (in *inputs) plan(role string, m *cluster.Machine) (Plan, error) {
	p := Plan{Name: role, Role: role}
	if m != nil {
		p.Name = m.Name
	}
	in.machineIdentity(&p, m)
	NodePrerequisites(&p)
	registries := in.registriesNode
	if role == cluster.RoleMaster {
		registries = in.registriesMaster
	}
	writeRegistries(&p, registries)
	p.dir(manifests.ManifestsDir, 0o755)
	p.file(manifests.PKIDir+"/ca.crt", 0o644, in.bundle.File("pki/ca.crt"))
	p.file(manifests.KubeletConfigFile, 0o600, in.kubeletConfig)
	if err := in.agentConfig(&p, role, m); err != nil {
		return p, err
	}
	if role == cluster.RoleMaster {
		in.masterFiles(&p)
	} else {
		// The only credential a node gets: a bootstrap token with a TTL.
		p.file(manifests.BootstrapKubeconf, 0o600, in.bootstrapKubeconfig)
	}
	addUnits(&p, in.layout)
	if s := in.roleButane(role); s != "" {
		p.Butane = append(p.Butane, Snippet{Source: "butane." + role, Text: s})
	}
	if m != nil && m.Butane != "" {
		p.Butane = append(p.Butane, Snippet{Source: fmt.Sprintf("machines[%s].butane", m.Name), Text: m.Butane})
	}
	return p, nil
}

// machineIdentity writes what only a named machine has: hostname, node IP, static address.
func (in *inputs) machineIdentity(p *Plan, m *cluster.Machine) {
	if m == nil {
		return
	}
	Identity(p, m)
	var args []string
	if ip := m.IP(); ip.IsValid() {
		args = append(args, "--node-ip="+ip.String())
	}
	args = append(args, "--hostname-override="+m.Name)
	p.file(machine.KubeletEnv, 0o600, []byte("KUBELET_ARGS="+strings.Join(args, " ")+"\n"))
}

// Identity adds a machine's hostname and, when it has a fixed address, its systemd-networkd
// config (matched by MAC).
func Identity(p *Plan, m *cluster.Machine) {
	p.file("/etc/hostname", 0o644, []byte(m.Name+"\n"))
	if m.Address != "" && m.MAC != "" {
		var b strings.Builder
		fmt.Fprintf(&b, "[Match]\nMACAddress=%s\n\n[Network]\nAddress=%s\n", strings.ToLower(m.MAC), m.Address)
		if m.Gateway != "" {
			fmt.Fprintf(&b, "Gateway=%s\n", m.Gateway)
		}
		p.file("/etc/systemd/network/10-kubeup.network", 0o644, []byte(b.String()))
	}
}

// NodePrerequisites adds the kernel modules and sysctls every Kubernetes machine needs.
func NodePrerequisites(p *Plan) {
	p.file(machine.ModulesLoadFile, 0o644, []byte(machine.ModulesLoadConf()))
	p.file(machine.SysctlFile, 0o644, []byte(machine.SysctlConf()))
}

func (in *inputs) roleButane(role string) string {
	if role == cluster.RoleMaster {
		return in.cfg.Butane.Master
	}
	return in.cfg.Butane.Node
}

// masterFiles adds the control plane: every key and certificate of the bundle, the
// kubeconfigs, encryption and audit configs, static pods and the objects the agent applies.
func (in *inputs) masterFiles(p *Plan) {
	for _, rel := range in.bundle.Files() {
		dir, base := path.Split(rel)
		switch {
		case rel == "pki/ca.crt":
			// already written for every machine
		case strings.HasPrefix(rel, "pki/"):
			mode := fs.FileMode(0o644)
			if strings.HasSuffix(base, ".key") {
				mode = 0o600
			}
			p.file(manifests.KubernetesDir+"/"+rel, mode, in.bundle.File(rel))
		case dir == "" && strings.HasSuffix(base, ".conf"), rel == "encryption-config.yaml", rel == "audit-policy.yaml":
			p.file(manifests.KubernetesDir+"/"+rel, 0o600, in.bundle.File(rel))
		}
	}
	p.dir(manifests.EtcdDataDir, 0o700)
	p.dir(manifests.AuditLogDir, 0o700)
	p.Files = append(p.Files, in.controlPlane...)
	p.Files = append(p.Files, in.addons...)
}

func (in *inputs) agentConfig(p *Plan, role string, m *cluster.Machine) error {
	c := agent.Config{Cluster: in.cfg.Name, Role: role, APIServer: in.cfg.EndpointURL()}
	if m != nil {
		c.Machine = m.Name
	}
	// Peers for the phase-1 reachability check: the master checks every named machine, a node
	// checks the master. A full mesh in every node's config would make a fleet's configs grow
	// with the square of its size; node-to-node reachability is phase 4.2's check, over the pod
	// network, where it matters.
	for _, peer := range in.cfg.Machines {
		ip := peer.IP()
		if !ip.IsValid() || (m != nil && peer.Name == m.Name) || (role != cluster.RoleMaster && peer.Role != cluster.RoleMaster) {
			continue
		}
		c.Peers = append(c.Peers, agent.Peer{Name: peer.Name, Address: ip.String()})
	}
	if role == cluster.RoleMaster {
		c.AddonsDir = manifests.AddonsDir
		c.SuperAdminFiles = []string{clusterAdminsFile}
		c.Kubeconfig = manifests.KubernetesDir + "/admin.conf"
		c.SuperKubeconfig = manifests.KubernetesDir + "/super-admin.conf"
		if in.cfg.PKI.BootstrapTokenPool {
			c.NodeTokenTTL = in.cfg.PKI.BootstrapTokenTTL
		}
	}
	if in.cfg.Metal != nil && in.cfg.Metal.PXEServer != "" {
		c.ReportURL = strings.TrimSuffix(in.cfg.Metal.PXEServer, "/") + "/report"
	}
	data, err := yaml.Marshal(c)
	if err != nil {
		return err
	}
	p.file(machine.AgentConfig, 0o644, data)
	return nil
}
