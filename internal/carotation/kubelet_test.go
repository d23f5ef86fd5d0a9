package carotation_test

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

// A node's trust follows kube-root-ca.crt only when the API server's certificate verifies
// against what it would adopt. client-go's fake clientset stands in for the API server's
// ConfigMap, an httptest TLS server for its certificate; the real node authorizer, kubelet
// certificates and CSRs run in test/controlplane's TestCARotation.
func TestNodeTrustFollowsTheCluster(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is the point
	srv.StartTLS()
	defer srv.Close()
	serverCA := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	oldCA, otherCA := testCA(t, "old"), testCA(t, "other")

	root := t.TempDir()
	write := func(rel string, data []byte) {
		p := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(manifests.PKIDir+"/ca.crt", oldCA)
	for _, kc := range []string{manifests.KubeletKubeconf, manifests.BootstrapKubeconf} {
		data, err := pki.TokenKubeconfig("c", srv.URL, oldCA, "u", "abcdef.0123456789abcdef")
		if err != nil {
			t.Fatal(err)
		}
		write(kc, data)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: carotation.RootCAConfigMap, Namespace: "kube-system"}}
	client := fake.NewClientset(cm)
	setRoot := func(bundle []byte) {
		cm.Data = map[string]string{"ca.crt": string(bundle)}
		if _, err := client.CoreV1().ConfigMaps("kube-system").Update(t.Context(), cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	restarts := 0
	var log strings.Builder
	k := &carotation.Kubelet{Root: root, Node: "node-1", Client: client, FollowTrust: true,
		Config:         &rest.Config{Host: srv.URL},
		RestartKubelet: func(context.Context) error { restarts++; return nil },
		Log:            func(format string, args ...any) { fmt.Fprintf(&log, format+"\n", args...) }}
	trustIs := func(want []byte) error {
		if got, _ := os.ReadFile(filepath.Join(root, manifests.PKIDir, "ca.crt")); !bytes.Equal(got, want) {
			return fmt.Errorf("ca.crt is not what was expected")
		}
		for _, kc := range []string{manifests.KubeletKubeconf, manifests.BootstrapKubeconf} {
			cfg, err := clientcmd.LoadFromFile(filepath.Join(root, kc))
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

	// The same CA: nothing to do.
	setRoot(oldCA)
	if busy, err := k.Step(t.Context()); err != nil || busy || restarts != 0 {
		t.Fatalf("same CA: busy %v, %v, %d restarts; want nothing done", busy, err, restarts)
	}
	// Old + a CA the API server's certificate does not chain to: not adopted.
	setRoot(append(append([]byte{}, oldCA...), otherCA...))
	if _, err := k.Step(t.Context()); err != nil || restarts != 0 {
		t.Fatalf("a trust the server does not verify against: %v, %d restarts", err, restarts)
	}
	if err := trustIs(oldCA); err != nil {
		t.Errorf("after refusing: %v", err)
	}
	if !strings.Contains(log.String(), "does not verify against them") {
		t.Errorf("console: %q; want why it was not adopted", log.String())
	}
	// Old + the CA that issued the server's certificate: adopted, the kubelet restarted once.
	both := append(append([]byte{}, oldCA...), serverCA...)
	setRoot(both)
	if busy, err := k.Step(t.Context()); err != nil || !busy || restarts != 1 {
		t.Fatalf("old+server CA: busy %v, %v, %d restarts; want busy and one restart", busy, err, restarts)
	}
	if err := trustIs(both); err != nil {
		t.Error(err)
	}
	if _, err := k.Step(t.Context()); err != nil || restarts != 1 {
		t.Errorf("again: %v, %d restarts; want nothing more", err, restarts)
	}
	// The server's CA alone (finish): adopted.
	setRoot(serverCA)
	if busy, err := k.Step(t.Context()); err != nil || busy || restarts != 2 {
		t.Fatalf("server CA alone: busy %v, %v, %d restarts", busy, err, restarts)
	}
	if err := trustIs(serverCA); err != nil {
		t.Error(err)
	}
}

func testCA(t *testing.T, cn string) []byte {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
