package agent

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"kubeup.dev/kubeup/internal/pki"
)

// testCA makes a CA and a certificate it signs for names (server or client).
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, cn string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{cert: c, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (ca *testCA) issue(t *testing.T, cn string, ips ...net.IP) (certPEM, keyPEM []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		IPAddresses: ips, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
}

// The agent's client verifies the server against the CA data its kubeconfig holds at each new
// connection: during a CA rotation the file goes from the old CA to old+new, and the server's
// certificate from the old CA to the new one. It still checks the server's name and chain.
func TestReloadingConfigFollowsCAData(t *testing.T) {
	oldCA, newCA := newTestCA(t, "old"), newTestCA(t, "new")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("{}")) }))
	var current atomic.Pointer[tls.Certificate]
	serve := func(ca *testCA, ip string) {
		c, k := ca.issue(t, "server", net.ParseIP(ip))
		pair, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		current.Store(&pair)
	}
	// (httptest adds its own certificate to Certificates, which crypto/tls prefers to
	// GetCertificate for a client that sends no SNI, as for an IP: a whole config per client.)
	srv.TLS = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		return &tls.Config{Certificates: []tls.Certificate{*current.Load()}}, nil
	}}
	serve(newCA, "127.0.0.1")
	srv.StartTLS()
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "admin.conf")
	write := func(caPEM []byte) {
		c, k := oldCA.issue(t, "admin")
		data, err := pki.Kubeconfig("test", srv.URL, caPEM, "admin", c, k)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	get := func() error {
		cfg, err := ReloadingConfig(path)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Transport.(*http.Transport).DisableKeepAlives = true
		rc, err := rest.HTTPClientFor(cfg)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := rc.Get(srv.URL)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	write(oldCA.pem)
	cfg, _ := ReloadingConfig(path)
	tr := cfg.Transport.(*http.Transport)
	tr.DisableKeepAlives = true
	client := &http.Client{Transport: tr}
	if _, err := client.Get(srv.URL); err == nil {
		t.Fatal("a server certificate from a CA the kubeconfig does not hold was accepted")
	}
	write(append(append([]byte{}, oldCA.pem...), newCA.pem...))
	if resp, err := client.Get(srv.URL); err != nil {
		t.Fatalf("after the kubeconfig took the new CA too, the same client: %v", err)
	} else {
		resp.Body.Close()
	}
	// The name is still checked: a certificate for another address is refused.
	serve(newCA, "10.9.9.9")
	if err := get(); err == nil {
		t.Error("a server certificate for another address was accepted")
	}
}
