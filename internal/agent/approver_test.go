package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"maps"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
)

type req struct {
	cn, org string
	ips     []string
	dns     []string
	uris    []string
}

func servingCSR(t *testing.T, user string, groups []string, usages []certificatesv1.KeyUsage, r req) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: r.cn, Organization: []string{r.org}}, DNSNames: r.dns}
	for _, ip := range r.ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	for _, u := range r.uris {
		pu, _ := url.Parse(u)
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "csr-x"},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName: certificatesv1.KubeletServingSignerName,
			Usages:     usages, Username: user, Groups: groups,
		},
	}
}

func TestReview(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}, Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: "10.10.0.11"}, {Type: corev1.NodeHostName, Address: "node-1"}}}}
	serving := []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment, certificatesv1.UsageServerAuth}
	nodes := []string{"system:nodes", "system:authenticated"}
	good := req{cn: "system:node:node-1", org: "system:nodes", ips: []string{"10.10.0.11"}, dns: []string{"node-1"}}
	cases := []struct {
		name   string
		user   string
		groups []string
		usages []certificatesv1.KeyUsage
		req    req
		node   *corev1.Node
		want   Decision
	}{
		{"own names and addresses", "system:node:node-1", nodes, serving, good, node, Approve},
		{"own address only", "system:node:node-1", nodes, serving, req{cn: good.cn, org: good.org, ips: good.ips}, node, Approve},
		{"another node's address", "system:node:node-1", nodes, serving, req{cn: good.cn, org: good.org, ips: []string{"10.10.0.12"}}, node, Deny},
		{"another node's name", "system:node:node-1", nodes, serving, req{cn: good.cn, org: good.org, dns: []string{"node-2"}}, node, Deny},
		{"not a node", "alice", []string{"system:authenticated"}, serving, good, node, Deny},
		{"node user without the nodes group", "system:node:node-1", []string{"system:authenticated"}, serving, good, node, Deny},
		{"subject names another node", "system:node:node-1", nodes, serving, req{cn: "system:node:node-2", org: "system:nodes", ips: good.ips}, node, Deny},
		{"client auth usage", "system:node:node-1", nodes, append(serving, certificatesv1.UsageClientAuth), good, node, Deny},
		{"no server auth", "system:node:node-1", nodes, []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature}, good, node, Deny},
		{"URI SAN", "system:node:node-1", nodes, serving, req{cn: good.cn, org: good.org, ips: good.ips, uris: []string{"spiffe://x"}}, node, Deny},
		{"no SAN", "system:node:node-1", nodes, serving, req{cn: good.cn, org: good.org}, node, Deny},
		{"node not registered yet", "system:node:node-1", nodes, serving, good, nil, Wait},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, reason := Review(servingCSR(t, c.user, c.groups, c.usages, c.req), c.node)
			if got != c.want {
				t.Fatalf("decision %s (%s), want %s", got, reason, c.want)
			}
		})
	}
	t.Run("other signers are not ours", func(t *testing.T) {
		csr := servingCSR(t, "system:node:node-1", nodes, serving, good)
		csr.Spec.SignerName = certificatesv1.KubeAPIServerClientKubeletSignerName
		if d, _ := Review(csr, node); d != Skip {
			t.Fatalf("decision %s, want skip", d)
		}
	})
	t.Run("decided CSRs are left alone", func(t *testing.T) {
		csr := servingCSR(t, "system:node:node-1", nodes, serving, good)
		csr.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateDenied}}
		if d, _ := Review(csr, node); d != Skip {
			t.Fatalf("decision %s, want skip", d)
		}
	})
}

// Run approves a node's serving CSR that came before its Node once the Node registers with its
// addresses (informers: no listing every interval), and denies a bad one at once.
func TestApproverRun(t *testing.T) {
	serving := []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment, certificatesv1.UsageServerAuth}
	groups := []string{"system:nodes", "system:authenticated"}
	early := servingCSR(t, "system:node:node-1", groups, serving, req{cn: "system:node:node-1", org: "system:nodes", ips: []string{"10.10.0.11"}})
	early.Name = "csr-early"
	c := fake.NewClientset(early)
	var mu sync.Mutex
	decisions := map[string]Decision{}
	a := &Approver{Client: c, Log: func(csr string, d Decision, _ string) {
		mu.Lock()
		defer mu.Unlock()
		decisions[csr] = d
	}}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { a.Run(ctx, func(err error) { t.Logf("approver: %v", err) }); close(done) }()
	defer func() { cancel(); <-done }()

	// csr-early is seen with no Node and waits: only the Node's events can bring it back.
	seen := func(want map[string]Decision) error {
		return wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			return maps.Equal(decisions, want), nil
		})
	}
	if err := seen(map[string]Decision{"csr-early": Wait}); err != nil {
		t.Fatalf("decisions %v, want csr-early waiting for its Node", decisions)
	}
	bad := servingCSR(t, "system:node:node-1", groups, serving, req{cn: "system:node:node-1", org: "system:nodes", ips: []string{"10.10.0.99"}})
	bad.Name = "csr-bad"
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}
	if _, err := c.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Registered, no addresses yet: both wait.
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.10.0.11"}}
	if _, err := c.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CertificatesV1().CertificateSigningRequests().Create(ctx, bad, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	want := map[string]Decision{"csr-early": Approve, "csr-bad": Deny}
	if err := seen(want); err != nil {
		t.Fatalf("decisions %v, want %v", decisions, want)
	}
	got, err := c.CertificatesV1().CertificateSigningRequests().Get(ctx, "csr-early", metav1.GetOptions{})
	if err != nil || len(got.Status.Conditions) != 1 || got.Status.Conditions[0].Type != certificatesv1.CertificateApproved {
		t.Errorf("csr-early: %v, conditions %+v", err, got.Status.Conditions)
	}
}
