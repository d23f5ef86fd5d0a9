//go:build e2e

package cluster

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kubeup.dev/kubeup/test/testenv"
)

// nodeCertTTL is the test cluster's node certificate lifetime: the kubelet renews at 70 to 90%
// of it, so both of node-1's certificates rotate a few minutes after it joins.
const nodeCertTTL = 8 * time.Minute

// TestCertRotation: a master and a node whose kubelet certificates live 8 minutes
// (pki.nodeCertificateTTL). The node's kubelet renews its client certificate (a CSR of its own,
// approved by the controller-manager) and its serving certificate (approved by the master's
// agent) with the cluster's short lifetime, and the node stays Ready throughout. Seen from the
// host through the API only.
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
	e := upWith(t, 1, path)
	ctx := context.Background()
	const node = "node-1"

	var notReady []string
	var client, serving []*x509.Certificate
	seen := "nothing yet"
	deadline := time.Now().Add(15 * time.Minute)
	for {
		if n, err := e.client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{}); err == nil {
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status != corev1.ConditionTrue {
					notReady = append(notReady, time.Now().Format(time.TimeOnly)+" "+c.Reason)
				}
			}
		}
		if csrs, err := e.client.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{}); err == nil {
			client, serving = issued(csrs.Items, "system:node:"+node)
			seen = fmtCount(len(client), len(serving))
		} else {
			seen = err.Error()
		}
		if len(client) >= 1 && len(serving) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not rotate both certificates in 15 minutes; last seen: %s", node, seen)
		}
		time.Sleep(5 * time.Second) // polling the API for the kubelet's renewal CSRs
	}
	t.Logf("%s rotated: %s", node, seen)
	for _, c := range append(client, serving...) {
		if life := c.NotAfter.Sub(c.NotBefore); life > nodeCertTTL+10*time.Minute {
			t.Errorf("certificate %s valid for %v: the controller-manager did not sign for %v", c.Subject.CommonName, life, nodeCertTTL)
		}
	}
	if len(notReady) > 0 {
		t.Errorf("%s was not Ready at: %v", node, notReady)
	}
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
