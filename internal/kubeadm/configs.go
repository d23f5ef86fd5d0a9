package kubeadm

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"maps"
	"slices"
	"strings"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/ignition"
	"kubeup.dev/kubeup/internal/machine"
	"kubeup.dev/kubeup/internal/manifests"
	"kubeup.dev/kubeup/internal/versions"
)

// layout is the image the peer runs on: the Debian image built here.
var layout, _ = machine.LayoutOf(machine.Debian)

// configPath is kubeadm's config on every machine; patchDir holds the master's patches of its
// static pods (kubeadm's --patches, read by init).
const (
	configPath = "/etc/kubeadm/kubeadm.yaml"
	patchDir   = "/etc/kubeadm/patches"
)

// Tuning is which settings the peer runs with.
type Tuning int

const (
	// Defaults is kubeadm as it comes: what a user who sets nothing gets.
	Defaults Tuning = iota
	// Tuned gives the peer what kubeup sets for a slow host, where kubeadm lets a user set it:
	// the controller-manager's and the scheduler's leader election (ClusterConfiguration
	// extraArgs), the control plane's startup-probe allowance (a strategic-merge patch per
	// static pod, kubeadm's patches) and the kubelet's runtime request timeout on an emulated
	// machine (the KubeletConfiguration kubeadm hands every machine). Without the first two,
	// the build notes record both components crash-looping and a starved API server killed
	// while it still started, on this host.
	Tuned
)

func (t Tuning) String() string {
	if t == Tuned {
		return "tuned"
	}
	return "defaults"
}

// controlPlane are the static pods kubeadm writes, named as its patches' targets and their
// containers.
var controlPlane = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}

// Configs renders one Ignition config per machine of cfg. caCert and caKey (PEM) become the
// cluster CA kubeadm signs with; token is the bootstrap token the nodes join with.
func Configs(cfg *cluster.Config, caCert, caKey []byte, token string, tuning Tuning) (map[string][]byte, error) {
	hash, err := caHash(caCert)
	if err != nil {
		return nil, err
	}
	master := cfg.Master()
	host, port := cfg.EndpointHostPort()
	endpoint := fmt.Sprintf("%s:%d", host, port)
	out := map[string][]byte{}
	for i := range cfg.Machines {
		m := &cfg.Machines[i]
		p := ignition.Plan{Name: m.Name, Role: m.Role}
		ignition.Identity(&p, m)
		ignition.NodePrerequisites(&p)
		unit := joinUnit
		doc := joinConfig(m, endpoint, token, hash)
		if m.Role == cluster.RoleMaster {
			unit = initUnit
			doc = initConfig(cfg, master, endpoint, token, tuning)
			p.Files = append(p.Files,
				ignition.File{Path: "/etc/kubernetes/pki/ca.crt", Mode: 0o644, Data: caCert},
				ignition.File{Path: "/etc/kubernetes/pki/ca.key", Mode: 0o600, Data: caKey})
			if tuning == Tuned {
				p.Files = append(p.Files, startupPatches()...)
			}
		}
		p.Files = append(p.Files, ignition.File{Path: configPath, Mode: 0o600, Data: []byte(doc)})
		p.Units = []ignition.Unit{
			{Name: "containerd.service", Enabled: true},
			{Name: "kubelet.service", Enabled: true, Contents: kubeletUnit},
			{Name: "kubeadm.service", Enabled: true, Contents: unit},
		}
		raw, err := ignition.Render(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.Name, err)
		}
		out[m.Name] = raw
	}
	return out, nil
}

// caHash is what `kubeadm join --discovery-token-ca-cert-hash` wants: the SHA-256 of the CA's
// SubjectPublicKeyInfo.
func caHash(caCert []byte) (string, error) {
	block, _ := pem.Decode(caCert)
	if block == nil {
		return "", fmt.Errorf("CA certificate: no PEM block")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "", fmt.Errorf("CA certificate: %w", err)
	}
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// initConfig is the master's kubeadm configuration: the same networks, version and images as
// the kubeup cluster, the master schedulable as kubeup's is, waits long enough for a control
// plane under emulation (kubeadm's 4-minute default gives up before this host's API server
// answers), kubelet serving certificates signed by the cluster CA (as kubeadm's docs say for
// metrics-server) and 127.0.0.1 in the API server's certificate for the host's port forward.
// Tuned adds the leader election, the patches and the runtime request timeout.
func initConfig(cfg *cluster.Config, master *cluster.Machine, endpoint, token string, tuning Tuning) string {
	ip := master.IP().String()
	var patches, components, kubelet string
	if tuning == Tuned {
		kubelet = fmt.Sprintf("runtimeRequestTimeout: %s\n", manifests.EmulatedRuntimeRequestTimeout)
		patches = "patches:\n  directory: " + patchDir + "\n"
		args := "  extraArgs:\n"
		for _, k := range slices.Sorted(maps.Keys(manifests.LeaderElection)) {
			args += fmt.Sprintf("  - name: %s\n    value: %q\n", k, manifests.LeaderElection[k])
		}
		components = "controllerManager:\n" + args + "scheduler:\n" + args
	}
	return fmt.Sprintf(`apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
bootstrapTokens:
- token: %q
  ttl: 24h0m0s
localAPIEndpoint:
  advertiseAddress: %s
  bindPort: 6443
timeouts:
  controlPlaneComponentHealthCheck: 30m0s
  kubeletHealthCheck: 30m0s
  kubernetesAPICall: 5m0s
  etcdAPICall: 5m0s
  tlsBootstrap: 30m0s
nodeRegistration:
  name: %s
  criSocket: unix:///run/containerd/containerd.sock
  taints: []
  kubeletExtraArgs:
  - name: node-ip
    value: %s
%s---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: %s
controlPlaneEndpoint: %s
networking:
  podSubnet: %s
  serviceSubnet: %s
  dnsDomain: %s
apiServer:
  certSANs: [127.0.0.1, localhost]
etcd:
  local:
    imageTag: %s-0
dns:
  imageTag: %s
%s---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
serverTLSBootstrap: true
%s`, token, ip, master.Name, ip, patches, cfg.KubernetesVersion, endpoint, cfg.Network.PodCIDR, cfg.Network.ServiceCIDR,
		cfg.Network.DNSDomain, versions.Etcd, versions.CoreDNS, components, kubelet)
}

// startupPatches give each control-plane static pod kubeup's startup-probe allowance, in the
// shape of kubeadm's patches: a file per target, a strategic merge on the Pod, its container
// found by name.
func startupPatches() []ignition.File {
	var files []ignition.File
	for _, c := range controlPlane {
		patch := fmt.Sprintf("spec:\n  containers:\n  - name: %s\n    startupProbe:\n      failureThreshold: %d\n", c, manifests.StartupProbeFailures)
		files = append(files, ignition.File{Path: patchDir + "/" + c + "+strategic.yaml", Mode: 0o600, Data: []byte(patch)})
	}
	return files
}

func joinConfig(m *cluster.Machine, endpoint, token, hash string) string {
	return fmt.Sprintf(`apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
discovery:
  bootstrapToken:
    apiServerEndpoint: %s
    token: %q
    caCertHashes: [%q]
timeouts:
  discovery: 30m0s
  tlsBootstrap: 30m0s
  kubernetesAPICall: 5m0s
nodeRegistration:
  name: %s
  criSocket: unix:///run/containerd/containerd.sock
  kubeletExtraArgs:
  - name: node-ip
    value: %s
`, endpoint, token, hash, m.Name, m.IP().String())
}

// kubeletUnit is the kubelet unit with kubeadm's drop-in folded in: the kubelet waits (crash
// loops) until kubeadm writes its config, as in kubeadm's packages.
var kubeletUnit = strings.TrimLeft(`
[Unit]
Description=kubelet (kubeadm)
Wants=network-online.target containerd.service
After=network-online.target containerd.service
StartLimitIntervalSec=0

[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
ExecStart=`+layout.Kubelet()+` $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
`, "\n")

// The first-boot units. Preflight errors are ignored because the image lacks tools kubeadm's
// preflight asks for but init and join do not use (crictl, socat, ethtool); everything else
// preflight checks, the image has (phase 1 of kubeup checks the same node spec).
const unitHead = `[Unit]
Wants=network-online.target containerd.service
After=network-online.target containerd.service
ConditionPathExists=!/etc/kubernetes/kubelet.conf
`

var initUnit = unitHead + `Description=kubeadm init (first boot)

[Service]
Type=oneshot
ExecStart=` + layout.Kubeadm() + ` init --config ` + configPath + ` --ignore-preflight-errors=all
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
`

var joinUnit = unitHead + `Description=kubeadm join (first boot)

[Service]
Type=oneshot
ExecStart=` + layout.Kubeadm() + ` join --config ` + configPath + ` --ignore-preflight-errors=all
Restart=on-failure
RestartSec=5
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
`
