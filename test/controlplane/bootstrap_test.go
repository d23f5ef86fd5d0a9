package controlplane

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	authnv1 "k8s.io/api/authentication/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/certificate/csr"

	"kubeup.dev/kubeup/internal/agent"
	"kubeup.dev/kubeup/test/testenv"
)

func checkEncryption(t *testing.T, ctx context.Context, e *env) {
	const plain = "kubeup-plaintext-marker"
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "enc-check"}, Data: map[string][]byte{"v": []byte(plain)}}
	if _, err := e.adminCS.CoreV1().Secrets("default").Create(ctx, s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pki := filepath.Join(e.root, "etc/kubernetes/pki/etcd")
	cert, err := tls.LoadX509KeyPair(filepath.Join(pki, "healthcheck-client.crt"), filepath.Join(pki, "healthcheck-client.key"))
	if err != nil {
		t.Fatal(err)
	}
	pool, err := certutil.NewPool(filepath.Join(pki, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"https://127.0.0.1:2379"}, DialTimeout: 10 * time.Second,
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "/registry/secrets/default/enc-check")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("read the secret from etcd: %v (%d keys)", err, len(resp.Kvs))
	}
	raw := resp.Kvs[0].Value
	if !strings.HasPrefix(string(raw), "k8s:enc:secretbox:v1:key1:") {
		t.Errorf("secret stored as %.40q, want the k8s:enc:secretbox:v1:key1: prefix", raw)
	}
	if strings.Contains(string(raw), plain) {
		t.Error("secret's plaintext is in etcd")
	}
}

// nodeCSR makes a certificate request for node with the given SANs.
func nodeCSR(t *testing.T, node string, ips []string, dns []string) ([]byte, crypto.Signer) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var addrs []net.IP
	for _, ip := range ips {
		addrs = append(addrs, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: "system:node:" + node, Organization: []string{"system:nodes"}},
		IPAddresses: addrs, DNSNames: dns,
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), key
}

// checkTLSBootstrap runs the kubelet's bootstrap flow with only what node-1's Ignition config
// holds, and returns a client config for the node identity it obtained.
func checkTLSBootstrap(t *testing.T, ctx context.Context, e *env) *rest.Config {
	nodeRoot := testenv.Apply(t, filepath.Join(e.out, "node-1.ign"))
	boot, err := clientcmd.BuildConfigFromFlags("", filepath.Join(nodeRoot, "etc/kubernetes/bootstrap-kubelet.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if len(boot.KeyData)+len(boot.CertData) > 0 || boot.BearerToken == "" {
		t.Fatal("the node's bootstrap kubeconfig should hold a token and no client key")
	}
	csrPEM, key := nodeCSR(t, "node-1", nil, nil)
	client := kubernetes.NewForConfigOrDie(boot)
	usages := []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}
	name, uid, err := csr.RequestCertificateWithContext(ctx, client, csrPEM, "", certificatesv1.KubeAPIServerClientKubeletSignerName, nil, usages, key)
	if err != nil {
		t.Fatalf("create client CSR with the bootstrap token: %v", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	certPEM, err := csr.WaitForCertificate(wctx, client, name, uid)
	if err != nil {
		t.Fatalf("client CSR %s not approved and signed by the controller-manager: %v", name, err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key.(*ecdsa.PrivateKey))
	node := rest.CopyConfig(boot)
	node.BearerToken = ""
	node.CertData, node.KeyData = certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	r, err := kubernetes.NewForConfigOrDie(node).AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if u := r.Status.UserInfo; u.Username != "system:node:node-1" || !slices.Contains(u.Groups, "system:nodes") {
		t.Fatalf("bootstrapped identity is %s %v", u.Username, u.Groups)
	}

	// Tokens that must not work: wrong secret, unknown ID, expired.
	expired := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "bootstrap-token-exp123", Namespace: "kube-system"},
		Type:       corev1.SecretTypeBootstrapToken,
		Data: map[string][]byte{"token-id": []byte("exp123"), "token-secret": []byte("0123456789abcdef"),
			"expiration": []byte(time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)), "usage-bootstrap-authentication": []byte("true"),
			"auth-extra-groups": []byte("system:bootstrappers:kubeadm:default-node-token")},
	}
	if _, err := e.adminCS.CoreV1().Secrets("kube-system").Create(ctx, expired, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	id, _, _ := strings.Cut(boot.BearerToken, ".")
	for what, token := range map[string]string{
		"wrong secret": id + ".zzzzzzzzzzzzzzzz",
		"unknown ID":   "nosuch.0123456789abcdef",
		"expired":      "exp123.0123456789abcdef",
	} {
		bad := rest.CopyConfig(boot)
		bad.BearerToken = token
		req, _ := nodeCSR(t, "node-1", nil, nil)
		_, err := kubernetes.NewForConfigOrDie(bad).CertificatesV1().CertificateSigningRequests().Create(ctx,
			&certificatesv1.CertificateSigningRequest{ObjectMeta: metav1.ObjectMeta{GenerateName: "bad-"},
				Spec: certificatesv1.CertificateSigningRequestSpec{Request: req, SignerName: certificatesv1.KubeAPIServerClientKubeletSignerName, Usages: usages}},
			metav1.CreateOptions{})
		if !apierrors.IsUnauthorized(err) {
			t.Errorf("%s token: got %v, want 401 Unauthorized", what, err)
		}
	}
	return node
}

// registerNode creates the Node object as the kubelet does, with the node's own credentials,
// and reports it ready with room for pods. (No kubelet runs in this test: there is no container
// runtime here; the QEMU cluster test runs real kubelets.)
func registerNode(t *testing.T, ctx context.Context, cfg *rest.Config, name, ip string) {
	c := kubernetes.NewForConfigOrDie(cfg)
	n, err := c.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name,
		Labels: map[string]string{"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("node registers itself: %v", err)
	}
	res := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("2Gi"), corev1.ResourcePods: resource.MustParse("110")}
	// As the kubelet does: status on the Node as it is now. The controller-manager taints a new
	// Node not-ready at once, and NodeRestriction refuses a node's update that carries other
	// taints than the stored ones, so the object Create returned may already be stale.
	deadline := time.Now().Add(time.Minute)
	for {
		err := func() error {
			if n, err = c.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); err != nil {
				return err
			}
			n.Status = corev1.NodeStatus{
				Capacity: res, Allocatable: res,
				Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}, {Type: corev1.NodeHostName, Address: name}},
				Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
			}
			_, err = c.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
			return err
		}()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node updates its status: %v", err)
		}
		time.Sleep(time.Second) // the Node changed between the read and the update: read it again
	}
	// NodeRestriction: a node may not touch another node.
	if _, err := c.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-2"}}, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("node-1 creating node-2: %v, want Forbidden", err)
	}
}

func checkServingCSRs(t *testing.T, ctx context.Context, e *env, nodeCfg *rest.Config) {
	node := kubernetes.NewForConfigOrDie(nodeCfg)
	usages := []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth}
	request := func(ips, dns []string) string {
		req, key := nodeCSR(t, "node-1", ips, dns)
		name, _, err := csr.RequestCertificateWithContext(ctx, node, req, "", certificatesv1.KubeletServingSignerName, nil, usages, key)
		if err != nil {
			t.Fatalf("node-1 requests a serving certificate: %v", err)
		}
		return name
	}
	own := request([]string{"127.0.0.11"}, []string{"node-1"})
	otherIP := request([]string{"127.0.0.12"}, []string{"node-1"})
	otherName := request([]string{"127.0.0.11"}, []string{"node-2"})

	status := func(name string) (approved, denied bool, cert []byte) {
		c, err := e.adminCS.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, cond := range c.Status.Conditions {
			approved = approved || cond.Type == certificatesv1.CertificateApproved
			denied = denied || cond.Type == certificatesv1.CertificateDenied
		}
		return approved, denied, c.Status.Certificate
	}
	// By the time the client CSR of this node was signed, the built-in approver had run; a
	// serving CSR is still undecided until the agent looks at it.
	if a, d, _ := status(own); a || d {
		t.Fatalf("serving CSR %s decided before the agent ran (approved %v, denied %v)", own, a, d)
	}
	ap := &agent.Approver{Client: e.adminCS, Log: func(csr string, d agent.Decision, reason string) { t.Logf("approver: %s %s: %s", csr, d, reason) }}
	if err := ap.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if a, _, _ := status(own); !a {
		t.Fatalf("serving CSR for node-1's own address not approved")
	}
	for _, name := range []string{otherIP, otherName} {
		if a, d, _ := status(name); a || !d {
			t.Errorf("serving CSR %s naming another node's address or name: approved %v, denied %v", name, a, d)
		}
	}
	var certPEM []byte
	waitFor(t, ctx, "controller-manager signs the approved serving CSR", 2*time.Minute, func() error {
		if _, _, certPEM = status(own); len(certPEM) == 0 {
			return fmt.Errorf("CSR %s approved, no certificate yet", own)
		}
		return nil
	})
	block, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.IPAddresses) != 1 || cert.IPAddresses[0].String() != "127.0.0.11" || !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		t.Errorf("serving certificate IPs %v usages %v", cert.IPAddresses, cert.ExtKeyUsage)
	}
}
