package controlplane

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/certificate"

	"kubeup.dev/kubeup/internal/agent"
	"kubeup.dev/kubeup/internal/carotation"
	"kubeup.dev/kubeup/internal/manifests"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/internal/renewal"
)

// rotationNode is a node for the CA rotation test: no kubelet runs (there is none in the
// control-plane test), but its files are a joined node's (pki/ca.crt, kubelet.conf naming the
// kubelet's rotated client certificate, bootstrap-kubelet.conf, kubelet-client-current.pem and
// kubelet-server-current.pem from the old CA), its identity is system:node:<name> as the
// node authorizer sees it, a pod bound to it mounts kube-root-ca.crt, and its agent's loop
// (CertWatch with carotation.Kubelet) runs as it runs on the machine. Kubelet restarts are
// recorded with the trust they started on.
type rotationNode struct {
	name, root string
	client     kubernetes.Interface
	mu         sync.Mutex
	restarts   []string // the node's ca.crt key ids at each kubelet restart
}

const rotationNodeIP = "10.0.0.21"

func newRotationNode(t *testing.T, e *env, name string, caPEM, caKeyPEM []byte) *rotationNode {
	t.Helper()
	ctx := t.Context()
	n := &rotationNode{name: name, root: t.TempDir()}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := e.adminCS.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: rotationNodeIP}, {Type: corev1.NodeHostName, Address: name}}
	if _, err := e.adminCS.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// kube-proxy's place: a kube-system pod bound to the node, with the service account token
	// volume that projects kube-root-ca.crt (what lets the node read that ConfigMap).
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "proxy-" + name, Namespace: metav1.NamespaceSystem},
		Spec: corev1.PodSpec{NodeName: name, Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10"}}}}
	waitFor(t, ctx, "a pod bound to "+name+" (the default service account must exist first)", 2*time.Minute, func() error {
		_, err := e.adminCS.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
		return err
	})

	pkiDir := filepath.Join(n.root, manifests.KubeletDir, "pki")
	for _, c := range []struct {
		prefix string
		tmpl   *x509.Certificate
	}{
		{"kubelet-client", &x509.Certificate{Subject: pkix.Name{CommonName: "system:node:" + name, Organization: []string{"system:nodes"}},
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}},
		{"kubelet-server", &x509.Certificate{Subject: pkix.Name{CommonName: "system:node:" + name, Organization: []string{"system:nodes"}},
			DNSNames: []string{name}, IPAddresses: []net.IP{net.ParseIP(rotationNodeIP)},
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}},
	} {
		certPEM, keyPEM := issueFrom(t, caPEM, caKeyPEM, c.tmpl)
		store, err := certificate.NewFileStore(c.prefix, pkiDir, pkiDir, "", "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Update(certPEM, keyPEM); err != nil {
			t.Fatal(err)
		}
	}
	current := filepath.Join(pkiDir, "kubelet-client-current.pem")
	kc := fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters: [{name: default-cluster, cluster: {server: %s, certificate-authority-data: %s}}]\n"+
		"users: [{name: default-auth, user: {client-certificate: %s, client-key: %s}}]\n"+
		"contexts: [{name: default-context, context: {cluster: default-cluster, user: default-auth}}]\ncurrent-context: default-context\n",
		e.admin.Host, base64.StdEncoding.EncodeToString(caPEM), current, current)
	boot, err := pki.TokenKubeconfig(e.cfg.Name, e.admin.Host, caPEM, "kubelet-bootstrap", "abcdef.0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	for path, data := range map[string][]byte{
		manifests.PKIDir + "/ca.crt": caPEM,
		manifests.KubeletKubeconf:    []byte(kc),
		manifests.BootstrapKubeconf:  boot,
	} {
		p := filepath.Join(n.root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// run starts the node agent's certificate loop as kubeup-agent runs it on a node, with the
// interval scaled down; it returns a function that stops it.
func (n *rotationNode) run(t *testing.T, ctx context.Context) (stop func()) {
	t.Helper()
	cfg, err := agent.WaitForKubeconfig(ctx, n.root, manifests.KubeletKubeconf)
	if err != nil {
		t.Fatal(err)
	}
	n.client = kubernetes.NewForConfigOrDie(cfg)
	w := &agent.CertWatch{Machine: n.name, Root: n.root, Watch: renewal.KubeletItems,
		Reporter: &agent.Reporter{Machine: n.name, Console: testWriter{t}, Client: n.client, Events: agent.NewEvents(ctx, n.client)}}
	k := &carotation.Kubelet{Root: n.root, Node: n.name, Config: cfg, Client: n.client, FollowTrust: true, Log: t.Logf, Event: w.Say,
		RestartKubelet: func(context.Context) error {
			n.mu.Lock()
			defer n.mu.Unlock()
			n.restarts = append(n.restarts, strings.Join(keyIDs(t, n.file(t, manifests.PKIDir+"/ca.crt")), ","))
			return nil
		}}
	w.CARotation = append(w.CARotation, k.Step)
	ctx, cancel := context.WithCancel(ctx)
	var done sync.WaitGroup
	done.Go(func() { w.Run(ctx, 2*time.Second) })
	return func() { cancel(); done.Wait() }
}

func (n *rotationNode) file(t *testing.T, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(n.root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// trusts checks the node's ca.crt and the CA data of both its kubeconfigs hold exactly the CAs
// of want.
func (n *rotationNode) trusts(t *testing.T, want ...[]byte) error {
	t.Helper()
	var ids []string
	for _, w := range want {
		ids = append(ids, keyIDs(t, w)...)
	}
	check := func(what string, data []byte) error {
		got := keyIDs(t, data)
		if len(got) != len(ids) {
			return fmt.Errorf("%s holds CAs %v, want %v", what, got, ids)
		}
		for _, id := range ids {
			if !strings.Contains(strings.Join(got, ","), id) {
				return fmt.Errorf("%s holds CAs %v, want %v", what, got, ids)
			}
		}
		return nil
	}
	if err := check("ca.crt", n.file(t, manifests.PKIDir+"/ca.crt")); err != nil {
		return err
	}
	for _, kc := range []string{manifests.KubeletKubeconf, manifests.BootstrapKubeconf} {
		cfg, err := clientcmd.Load(n.file(t, kc))
		if err != nil {
			return err
		}
		for _, c := range cfg.Clusters {
			if err := check(kc, c.CertificateAuthorityData); err != nil {
				return err
			}
		}
	}
	return nil
}

// kubeletCertsFrom checks both of the node's kubelet certificates are issued by caPEM.
func (n *rotationNode) kubeletCertsFrom(t *testing.T, caPEM []byte) error {
	t.Helper()
	ca := mustCert(t, caPEM)
	for _, it := range renewal.KubeletItems {
		c, err := it.Read(n.root)
		if err != nil {
			return err
		}
		if err := c.Cert.CheckSignatureFrom(ca); err != nil {
			return fmt.Errorf("%s is not from the new CA (issuer %q)", it.Name, c.Cert.Issuer.CommonName)
		}
	}
	return nil
}

// published is what the node's agent published on its Node: trusted key ids and the issuers
// of its certificates.
func published(ctx context.Context, c kubernetes.Interface, node string) (trust string, issuers map[string]string, err error) {
	n, err := c.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return "", nil, err
	}
	var list []agent.Expiry
	if err := json.Unmarshal([]byte(n.Annotations[agent.CertificatesAnnotation]), &list); err != nil {
		return "", nil, fmt.Errorf("annotation %s: %w", agent.CertificatesAnnotation, err)
	}
	issuers = map[string]string{}
	for _, e := range list {
		issuers[e.Name] = e.Issuer
	}
	return n.Annotations[agent.TrustAnnotation], issuers, nil
}

func keyIDs(t *testing.T, data []byte) []string {
	t.Helper()
	cs, err := pki.CertsPEM(data)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range cs {
		out = append(out, hex.EncodeToString(c.SubjectKeyId))
	}
	return out
}

// issueFrom issues a certificate from the CA for tmpl, with a new P-256 key; PEM.
func issueFrom(t *testing.T, caPEM, caKeyPEM []byte, tmpl *x509.Certificate) (certPEM, keyPEM []byte) {
	t.Helper()
	kb, _ := pem.Decode(caKeyPEM)
	caKey, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Minute), time.Now().Add(24*time.Hour)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, mustCert(t, caPEM), key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}
