//go:build e2e

package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/manifests"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/internal/renewal"
	"kubeup.dev/kubeup/test/testenv"
)

// nodeCertTTL is the test cluster's node certificate lifetime: the kubelet renews at 70 to 90%
// of it, so both of node-1's certificates rotate a few minutes after it joins.
const nodeCertTTL = 8 * time.Minute

// masterLeafTTL is how long the master's leaf certificates are issued for, just before `kubeup
// up`: its agent renews them when a third of that is left, 10 minutes later, on the booted
// master. (admin.conf keeps its year: the test reaches the API with the bundle's copy.)
const masterLeafTTL = 15 * time.Minute

// maxAPIGap is the longest the API may fail to answer the host while the master restarts etcd
// and then the API server on renewed certificates: each took 8 to 13 s on loopback in the
// control-plane test; a TCG master is slower, and both restarts may fall in one gap.
const maxAPIGap = 3 * time.Minute

// TestCertRotation: a master and a node whose kubelet certificates live 8 minutes
// (pki.nodeCertificateTTL), on a master whose own leaf certificates live 15. The node's kubelet
// renews its client certificate (a CSR of its own, approved by the controller-manager) and its
// serving certificate (approved by the master's agent) with the cluster's short lifetime, and
// the node stays Ready throughout. The master's agent renews every leaf certificate on the
// booted master, restarting etcd, the API server, the controller-manager and the scheduler as
// static pods: the API server then presents a new certificate, the API fails to answer for at
// most maxAPIGap, and the agent reports the renewals as Events. Seen from the host through the
// API only.
func TestCertRotation(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "configs/local.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(src), "bootstrapTokenTTL: 24h", "bootstrapTokenTTL: 24h\n  nodeCertificateTTL: "+nodeCertTTL.String(), 1)
	if cfg == string(src) {
		t.Fatal("configs/local.yaml has no bootstrapTokenTTL line to add nodeCertificateTTL after")
	}
	path := filepath.Join(t.TempDir(), "rotation.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var first *x509.Certificate // the API server's certificate as issued before up
	e := upPrepared(t, 1, path, func(state string) {
		first = shortenMasterLeaves(t, path, state)
	})
	ctx := context.Background()
	const node = "node-1"
	apiAddr := fmt.Sprintf("127.0.0.1:%d", e.spec.APIPort)

	var notReady []string
	var client, serving []*x509.Certificate
	var served *x509.Certificate
	var renewed map[string]bool
	var apiDown time.Time // since when the API has not answered
	var gaps []time.Duration
	seen := "nothing yet"
	deadline := time.Now().Add(20 * time.Minute)
	for {
		n, err := e.client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		switch {
		case err != nil && apiDown.IsZero():
			apiDown = time.Now()
		case err == nil && !apiDown.IsZero():
			gaps = append(gaps, time.Since(apiDown))
			t.Logf("the API answered again after %v", time.Since(apiDown).Round(time.Second))
			apiDown = time.Time{}
		}
		if err == nil {
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status != corev1.ConditionTrue {
					notReady = append(notReady, time.Now().Format(time.TimeOnly)+" "+c.Reason)
				}
			}
		}
		if csrs, err := e.client.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{}); err == nil {
			client, serving = issued(csrs.Items, "system:node:"+node)
		}
		if c, err := servingCert(apiAddr); err == nil {
			served = c
		}
		renewed = renewedComponents(ctx, e)
		seen = fmt.Sprintf("%s; the API server's certificate: serial %s (before up: %s); renewed on the master: %v",
			fmtCount(len(client), len(serving)), serial(served), serial(first), renewed)
		masterDone := served != nil && served.SerialNumber.Cmp(first.SerialNumber) != 0 && len(renewed) == len(renewal.RestartOrder)
		if len(client) >= 1 && len(serving) >= 2 && masterDone && apiDown.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the certificates did not all rotate in 20 minutes; last seen: %s", seen)
		}
		time.Sleep(5 * time.Second) // polling the API for the renewals
	}
	t.Logf("rotated: %s", seen)
	for _, c := range append(client, serving...) {
		if life := c.NotAfter.Sub(c.NotBefore); life > nodeCertTTL+10*time.Minute {
			t.Errorf("certificate %s valid for %v: the controller-manager did not sign for %v", c.Subject.CommonName, life, nodeCertTTL)
		}
	}
	if len(notReady) > 0 {
		t.Errorf("%s was not Ready at: %v", node, notReady)
	}
	if !served.NotAfter.After(first.NotAfter) {
		t.Errorf("the API server's new certificate expires at %s, not after the first one (%s)", served.NotAfter, first.NotAfter)
	}
	for _, g := range gaps {
		if g > maxAPIGap {
			t.Errorf("the API did not answer for %v (at most %v expected for the restarts)", g.Round(time.Second), maxAPIGap)
		}
	}
	evs, err := e.client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "reason=CertificateRenewalFailed"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs.Items {
		t.Errorf("%s: %s: %s", ev.InvolvedObject.Name, ev.Reason, ev.Message)
	}
}

// shortenMasterLeaves makes the secrets bundle in state and re-issues the master's leaf
// certificates in it for masterLeafTTL, with the agent's own renewal code (the bundle is laid
// out as /etc/kubernetes). It returns the API server's certificate.
func shortenMasterLeaves(t *testing.T, config, state string) *x509.Certificate {
	c, err := cluster.Load(config)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pki.Ensure(state, c, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, filepath.Dir(manifests.KubernetesDir)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(state, filepath.Join(root, manifests.KubernetesDir)); err != nil {
		t.Fatal(err)
	}
	var items []renewal.Item
	for _, it := range renewal.MasterItems {
		if it.Name != "admin.conf" && it.Name != "super-admin.conf" {
			items = append(items, it)
		}
	}
	noop := func(context.Context, string) error { return nil }
	r := &renewal.Renewer{Root: root, Items: items, Share: 1, Lifetime: masterLeafTTL,
		Restart: noop, Healthy: func(context.Context, string, time.Time) error { return nil }}
	if _, err := r.RenewDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	certs, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range certs {
		if c.Name == "apiserver" {
			t.Logf("the master's leaf certificates expire at %s", c.Cert.NotAfter.Format(time.TimeOnly))
			return c.Cert
		}
	}
	t.Fatal("no apiserver certificate in the bundle")
	return nil
}

// servingCert is the certificate the API server presents.
func servingCert(addr string) (*x509.Certificate, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true}) // only reading the certificate
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

func serial(c *x509.Certificate) string {
	if c == nil {
		return "none"
	}
	return c.SerialNumber.Text(16)
}

// renewedComponents are the components the master's agent reported renewed and healthy on
// their new certificates (CertificateRenewed Events on the master's Node).
func renewedComponents(ctx context.Context, e *env) map[string]bool {
	evs, err := e.client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "reason=CertificateRenewed"})
	if err != nil {
		return nil
	}
	out := map[string]bool{}
	for _, ev := range evs.Items {
		for _, comp := range renewal.RestartOrder {
			if ev.InvolvedObject.Name == "master" && strings.Contains(ev.Message, comp+" healthy") {
				out[comp] = true
			}
		}
	}
	return out
}

// issued are the certificates issued for requests by user: kubelet client certificates it
// renewed itself (its first came through the bootstrap token, as another user), and serving
// certificates (all its own).
func issued(csrs []certificatesv1.CertificateSigningRequest, user string) (client, serving []*x509.Certificate) {
	for _, csr := range csrs {
		if csr.Spec.Username != user || len(csr.Status.Certificate) == 0 {
			continue
		}
		block, _ := pem.Decode(csr.Status.Certificate)
		if block == nil {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			continue
		}
		switch csr.Spec.SignerName {
		case certificatesv1.KubeAPIServerClientKubeletSignerName:
			client = append(client, c)
		case certificatesv1.KubeletServingSignerName:
			serving = append(serving, c)
		}
	}
	return client, serving
}

func fmtCount(client, serving int) string {
	return fmt.Sprintf("%d client certificate(s) renewed by the node, %d serving certificate(s) issued", client, serving)
}
