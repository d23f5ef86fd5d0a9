package pki

import (
	"crypto/x509"
	"net/netip"
	"strconv"

	"kubeup.dev/kubeup/internal/cluster"
)

// CA names a certificate authority by its file base under pki/.
type CA string

// The three CAs of a kubeadm cluster.
const (
	ClusterCA    CA = "ca"
	FrontProxyCA CA = "front-proxy-ca"
	EtcdCA       CA = "etcd/ca"
)

// caCommonNames are the CNs kubeadm's code uses (its docs say kubernetes-ca etc.).
var caCommonNames = map[CA]string{ClusterCA: "kubernetes", FrontProxyCA: "front-proxy-ca", EtcdCA: "etcd-ca"}

// CAs in creation order.
var CAs = []CA{ClusterCA, FrontProxyCA, EtcdCA}

// CertSpec is what one leaf certificate must say. It is computed from the cluster config on
// every run and compared with the certificate on disk.
type CertSpec struct {
	// Name is the file base under pki/ (apiserver, etcd/server), or the kubeconfig file name
	// (admin.conf) for kubeconfig client certificates.
	Name   string
	CA     CA
	CN     string
	Orgs   []string
	DNS    []string
	IPs    []netip.Addr
	Usages []x509.ExtKeyUsage
	// Server is the API server URL, for kubeconfigs only.
	Server string
}

var (
	serverAuth = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	clientAuth = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	// etcd wants both on its server and peer certs (an etcd 3.2 quirk kubeadm keeps).
	serverClientAuth = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
)

// Kubernetes 1.37 identities, as kubeadm issues them (https://kubernetes.io/docs/setup/best-practices/certificates/).
const (
	ClusterAdminsGroup = "kubeadm:cluster-admins"
	KubeletAPIAdmin    = "system:kubelet-api-admin"
	APIServerKubeletCN = "kube-apiserver-kubelet-client"
	FrontProxyClientCN = "front-proxy-client"
)

// LeafSpecs returns the leaf certificates under pki/ for cfg, in creation order.
func LeafSpecs(cfg *cluster.Config) []CertSpec {
	m := cfg.Master()
	dns, ips := cfg.APIServerSANs()
	adv := m.IP()
	etcdDNS := []string{m.Name, "localhost"}
	etcdIPs := []netip.Addr{adv, netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}
	return []CertSpec{
		{Name: "apiserver", CA: ClusterCA, CN: "kube-apiserver", DNS: dns, IPs: ips, Usages: serverAuth},
		{Name: "apiserver-kubelet-client", CA: ClusterCA, CN: APIServerKubeletCN, Orgs: []string{KubeletAPIAdmin}, Usages: clientAuth},
		{Name: "front-proxy-client", CA: FrontProxyCA, CN: FrontProxyClientCN, Usages: clientAuth},
		{Name: "etcd/server", CA: EtcdCA, CN: m.Name, DNS: etcdDNS, IPs: etcdIPs, Usages: serverClientAuth},
		{Name: "etcd/peer", CA: EtcdCA, CN: m.Name, DNS: etcdDNS, IPs: etcdIPs, Usages: serverClientAuth},
		{Name: "etcd/healthcheck-client", CA: EtcdCA, CN: "kube-etcd-healthcheck-client", Usages: clientAuth},
		{Name: "apiserver-etcd-client", CA: EtcdCA, CN: "kube-apiserver-etcd-client", Usages: clientAuth},
	}
}

// KubeconfigSpecs returns the kubeconfigs of the master, in creation order. admin.conf is
// cluster-admin through RBAC only; super-admin.conf is the break-glass system:masters identity
// the master agent needs once, to create that RBAC binding.
func KubeconfigSpecs(cfg *cluster.Config) []CertSpec {
	m := cfg.Master()
	endpoint := cfg.EndpointURL()
	local := LocalAPIServerURL(cfg)
	return []CertSpec{
		{Name: "admin.conf", CA: ClusterCA, CN: "kubernetes-admin", Orgs: []string{ClusterAdminsGroup}, Usages: clientAuth, Server: endpoint},
		{Name: "super-admin.conf", CA: ClusterCA, CN: "kubernetes-super-admin", Orgs: []string{"system:masters"}, Usages: clientAuth, Server: endpoint},
		{Name: "controller-manager.conf", CA: ClusterCA, CN: "system:kube-controller-manager", Usages: clientAuth, Server: local},
		{Name: "scheduler.conf", CA: ClusterCA, CN: "system:kube-scheduler", Usages: clientAuth, Server: local},
		{Name: "kubelet.conf", CA: ClusterCA, CN: "system:node:" + m.Name, Orgs: []string{"system:nodes"}, Usages: clientAuth, Server: endpoint},
	}
}

// LocalAPIServerURL is the URL the master's own components use.
func LocalAPIServerURL(cfg *cluster.Config) string {
	return "https://" + cfg.Master().IP().String() + ":" + strconv.Itoa(cluster.DefaultAPIServerPort)
}
