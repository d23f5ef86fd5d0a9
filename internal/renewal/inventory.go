package renewal

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"kubeup.dev/kubeup/internal/manifests"
	"kubeup.dev/kubeup/internal/pki"
)

// Components a renewal restarts, in the order it restarts them: etcd first, so the API server
// restarted next already talks to an etcd with its new certificates.
const (
	Etcd              = "etcd"
	APIServer         = "kube-apiserver"
	ControllerManager = "kube-controller-manager"
	Scheduler         = "kube-scheduler"
)

// RestartOrder is the order components are restarted in.
var RestartOrder = []string{Etcd, APIServer, ControllerManager, Scheduler}

// Item is one certificate the master's agent manages.
type Item struct {
	// Name is the bundle's name: the file base under pki/ or the kubeconfig's file name.
	Name string
	CA   pki.CA
	// Kubeconfig is set when the certificate is embedded in a kubeconfig.
	Kubeconfig bool
	// Component is what reads the certificate only at start and must be restarted to use a
	// new one; empty when every reader reads it afresh (admin.conf, the etcd health check
	// client).
	Component string
	// Path, when set, is the file's path on the machine (certificates the agent only watches).
	Path string
}

// KubeletItems are the kubelet's own certificates, on every machine: the kubelet renews them
// itself (rotateCertificates; serving certificates through CSRs the master's agent approves),
// so the agent only watches them.
var KubeletItems = []Item{
	{Name: "kubelet-client", Path: KubeletClientFile},
	{Name: "kubelet-serving", Path: KubeletServingFile},
}

// Where the kubelet keeps its current client and serving certificates, each with its key.
const (
	KubeletClientFile  = manifests.KubeletDir + "/pki/kubelet-client-current.pem"
	KubeletServingFile = manifests.KubeletDir + "/pki/kubelet-server-current.pem"
)

// MasterItems are the master's leaf certificates and kubeconfigs, as the secrets bundle lays
// them out on the machine. The kubelet's own client certificate is not here: the kubelet
// rotates it itself (rotateCertificates).
var MasterItems = []Item{
	{Name: "etcd/server", CA: pki.EtcdCA, Component: Etcd},
	{Name: "etcd/peer", CA: pki.EtcdCA, Component: Etcd},
	{Name: "etcd/healthcheck-client", CA: pki.EtcdCA},
	{Name: "apiserver", CA: pki.ClusterCA, Component: APIServer},
	{Name: "apiserver-kubelet-client", CA: pki.ClusterCA, Component: APIServer},
	{Name: "apiserver-etcd-client", CA: pki.EtcdCA, Component: APIServer},
	{Name: "front-proxy-client", CA: pki.FrontProxyCA, Component: APIServer},
	{Name: "controller-manager.conf", CA: pki.ClusterCA, Kubeconfig: true, Component: ControllerManager},
	{Name: "scheduler.conf", CA: pki.ClusterCA, Kubeconfig: true, Component: Scheduler},
	{Name: "admin.conf", CA: pki.ClusterCA, Kubeconfig: true},
	{Name: "super-admin.conf", CA: pki.ClusterCA, Kubeconfig: true},
}

// File is the item's file under root.
func (it Item) File(root string) string {
	if it.Path != "" {
		return filepath.Join(root, it.Path)
	}
	return filepath.Join(root, manifests.KubernetesDir, it.rel())
}

// rel is the item's path in the secrets bundle, which is laid out as /etc/kubernetes.
func (it Item) rel() string {
	if it.Kubeconfig {
		return it.Name
	}
	return filepath.Join("pki", it.Name+".crt")
}

// ReadBundle reads the item's certificate from a secrets bundle directory (the operator's
// copy; the master's agent renews its own).
func (it Item) ReadBundle(dir string) (Cert, error) {
	return it.readFile(filepath.Join(dir, it.rel()))
}

// Cert is one managed certificate as it is on disk now.
type Cert struct {
	Item
	Cert *x509.Certificate
	// PEM is the certificate; Raw the whole file it came from (the kubeconfig for those).
	PEM, Raw []byte
}

// RenewAt is when less than share of the certificate's lifetime will be left: from then on it
// is Due.
func (c Cert) RenewAt(share float64) time.Time {
	return c.Cert.NotAfter.Add(-time.Duration(float64(pki.Lifetime(c.Cert)) * share))
}

// Due reports whether less than share of the certificate's lifetime (not counting the
// backdating) is left at now.
func (c Cert) Due(now time.Time, share float64) bool {
	return now.After(c.RenewAt(share))
}

// Read reads the item's certificate under root.
func (it Item) Read(root string) (Cert, error) {
	return it.readFile(it.File(root))
}

func (it Item) readFile(file string) (Cert, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return Cert{}, err
	}
	c := Cert{Item: it, Raw: raw, PEM: raw}
	if it.Kubeconfig {
		kc, err := clientcmd.Load(raw)
		if err != nil {
			return Cert{}, fmt.Errorf("%s: %w", file, err)
		}
		ctx := kc.Contexts[kc.CurrentContext]
		if ctx == nil || kc.AuthInfos[ctx.AuthInfo] == nil || len(kc.AuthInfos[ctx.AuthInfo].ClientCertificateData) == 0 {
			return Cert{}, fmt.Errorf("%s: the current context has no embedded client certificate", file)
		}
		c.PEM = kc.AuthInfos[ctx.AuthInfo].ClientCertificateData
	}
	// The kubelet's files hold the key too: take the first certificate.
	var block *pem.Block
	for rest := c.PEM; ; {
		block, rest = pem.Decode(rest)
		if block == nil {
			return Cert{}, fmt.Errorf("%s: no PEM certificate", file)
		}
		if block.Type == "CERTIFICATE" {
			break
		}
	}
	if c.Cert, err = x509.ParseCertificate(block.Bytes); err != nil {
		return Cert{}, fmt.Errorf("%s: %w", file, err)
	}
	return c, nil
}

// withCert returns the file content with newPEM in place of the certificate: the certificate
// itself, or the kubeconfig with its client certificate replaced.
func (c Cert) withCert(newPEM []byte) ([]byte, error) {
	if !c.Kubeconfig {
		return newPEM, nil
	}
	kc, err := clientcmd.Load(c.Raw)
	if err != nil {
		return nil, err
	}
	kc.AuthInfos[kc.Contexts[kc.CurrentContext].AuthInfo].ClientCertificateData = newPEM
	return clientcmd.Write(*kc)
}

// caFiles are the CA's certificate and key under root.
func caFiles(root string, ca pki.CA) (cert, key string) {
	base := filepath.Join(root, manifests.PKIDir, string(ca))
	return base + ".crt", base + ".key"
}
