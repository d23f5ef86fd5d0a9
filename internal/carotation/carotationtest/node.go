package carotationtest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"kubeup.dev/kubeup/internal/carotation"
	"kubeup.dev/kubeup/internal/manifests"
	"kubeup.dev/kubeup/internal/pki"
)

// Node is a node's trust files (its pki/ca.crt and the CA data of its kubelet's kubeconfigs)
// and its agent's Kubelet following kube-root-ca.crt. The fake clientset holds that ConfigMap;
// an httptest TLS server stands in for the API server's certificate.
type Node struct {
	Root string
	// OldCA is what the node trusts at first; ServerCA issued the server's certificate.
	OldCA, ServerCA []byte
	K               *carotation.Kubelet
	// Restarts counts the kubelet's restarts; Log is what the agent said.
	Restarts int
	Log      strings.Builder

	client *fake.Clientset
	cm     *corev1.ConfigMap
}

// NewNode makes a node that trusts a CA of its own, and a server whose CA it does not trust yet.
func NewNode(t testing.TB) *Node {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point
	srv.StartTLS()
	t.Cleanup(srv.Close)
	n := &Node{Root: t.TempDir(), OldCA: CA(t, "old", time.Hour), ServerCA: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})}
	write := func(rel string, data []byte) {
		p := filepath.Join(n.Root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(manifests.PKIDir+"/ca.crt", n.OldCA)
	for _, kc := range []string{manifests.KubeletKubeconf, manifests.BootstrapKubeconf} {
		data, err := pki.TokenKubeconfig("c", srv.URL, n.OldCA, "u", "abcdef.0123456789abcdef")
		if err != nil {
			t.Fatal(err)
		}
		write(kc, data)
	}
	n.cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: carotation.RootCAConfigMap, Namespace: "kube-system"}}
	n.client = fake.NewClientset(n.cm)
	n.K = &carotation.Kubelet{Root: n.Root, Node: "node-1", Client: n.client, FollowTrust: true,
		Config:         &rest.Config{Host: srv.URL},
		RestartKubelet: func(context.Context) error { n.Restarts++; return nil },
		Log:            func(format string, args ...any) { fmt.Fprintf(&n.Log, format+"\n", args...) }}
	return n
}

// SetRootCA publishes bundle as kube-system's kube-root-ca.crt.
func (n *Node) SetRootCA(t testing.TB, bundle []byte) {
	t.Helper()
	n.cm.Data = map[string]string{"ca.crt": string(bundle)}
	if _, err := n.client.CoreV1().ConfigMaps("kube-system").Update(t.Context(), n.cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TrustIs says whether the node's pki/ca.crt and its kubeconfigs' CA data are want.
func (n *Node) TrustIs(want []byte) error {
	if got, _ := os.ReadFile(filepath.Join(n.Root, manifests.PKIDir, "ca.crt")); !bytes.Equal(got, want) {
		return fmt.Errorf("ca.crt is not what was expected")
	}
	for _, kc := range []string{manifests.KubeletKubeconf, manifests.BootstrapKubeconf} {
		cfg, err := clientcmd.LoadFromFile(filepath.Join(n.Root, kc))
		if err != nil {
			return err
		}
		for _, c := range cfg.Clusters {
			if !bytes.Equal(c.CertificateAuthorityData, want) {
				return fmt.Errorf("%s's CA data is not what was expected", kc)
			}
		}
	}
	return nil
}

// CA is a self-signed CA certificate named cn, valid from an hour ago for life, as PEM.
func CA(t testing.TB, cn string, life time.Duration) []byte {
	t.Helper()
	cert, _ := SelfSigned(t, cn, true, time.Now().Add(-time.Hour), time.Now().Add(life))
	return cert
}

// SelfSigned is a self-signed certificate (a CA or not) and its key, as PEM.
func SelfSigned(t testing.TB, cn string, isCA bool, notBefore, notAfter time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, IsCA: isCA, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}
