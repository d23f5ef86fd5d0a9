package manifests

import (
	"time"

	"kubeup.dev/kubeup/internal/versions"
)

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

	// RuntimeRequestTimeout, if set, is the kubelet's runtimeRequestTimeout (its default is
	// 2 minutes); EmulatedRuntimeRequestTimeout on the QEMU target.
	RuntimeRequestTimeout time.Duration
}

// EmulatedRuntimeRequestTimeout is how long the kubelet waits for one container-runtime call on
// an emulated machine. A busy emulated node (QEMU TCG, a quarter of a host core while the
// upstream suite runs) took more than the default 2 minutes to make a pod's sandbox; the kubelet
// then gave up and asked again while containerd still worked on the first request ("failed to
// reserve sandbox name"), so the sandbox took the time twice and the pod missed the 5 minutes
// the suite waits for it. Five minutes lets the first request finish, and still fails a runtime
// that hangs within minutes.
const EmulatedRuntimeRequestTimeout = 5 * time.Minute

// HasAddon reports whether the named add-on is enabled.
func (p Params) HasAddon(name string) bool {
	for _, a := range p.Addons {
		if a == name {
			return true
		}
	}
	return false
}
