package manifests

import "kubeup.dev/kubeup/internal/versions"

// Params is everything the manifests depend on. It is derived from the cluster config; the
// manifests package never reads the config itself, so it stays a pure function of these values.
type Params struct {
	ClusterName       string
	KubernetesVersion string
	Images            versions.Images

	// MasterName and MasterIP are the control-plane machine's name and address (the advertise
	// address of the apiserver and etcd).
	MasterName string
	MasterIP   string
	// Endpoint is the control-plane endpoint every client outside the master uses,
	// as a URL: https://host:port.
	Endpoint string
	// APIServerPort is the port the apiserver listens on (6443 by default).
	APIServerPort int

	PodCIDR      string
	ServiceCIDR  string
	DNSDomain    string
	DNSServiceIP string // the tenth address of the service CIDR, as kubeadm picks it

	// Addons names the default add-ons to install: kube-proxy, coredns, metrics-server.
	Addons []string

	// PodSecurity is the Pod Security Standard level namespaces without a label enforce.
	PodSecurity string

	// NodeCertificateTTL, if set, is the controller-manager's --cluster-signing-duration.
	NodeCertificateTTL string
}

// HasAddon reports whether the named add-on is enabled.
func (p Params) HasAddon(name string) bool {
	for _, a := range p.Addons {
		if a == name {
			return true
		}
	}
	return false
}
