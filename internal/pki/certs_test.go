package pki_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"kubeup.dev/kubeup/internal/pki"
)

// Expectations below are written out from kubeadm's certificate list for Kubernetes v1.37
// (https://kubernetes.io/docs/setup/best-practices/certificates/), not computed from the code
// under test.

const (
	day          = 24 * time.Hour
	caValidity   = 3650 * day
	leafValidity = 365 * day
	// tolerance covers backdating (kubeadm uses 5 minutes) and the test's own run time.
	tolerance = 10 * time.Minute
)

var (
	serverAuth = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	clientAuth = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	bothAuth   = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
)

// caCNs are the CAs by file base, with the CNs kubeadm's code uses.
var caCNs = map[string]string{"ca": "kubernetes", "front-proxy-ca": "front-proxy-ca", "etcd/ca": "etcd-ca"}

type certWant struct {
	name string // file base under pki/, or kubeconfig name
	ca   string // file base of the issuing CA
	cn   string
	orgs []string
	eku  []x509.ExtKeyUsage
	dns  []string
	ips  []string
}

// localLeaves are the leaf certificates of configs/local.yaml (master "master" at 10.10.0.10,
// certSANs 127.0.0.1 and localhost).
var localLeaves = []certWant{
	{name: "apiserver", ca: "ca", cn: "kube-apiserver", eku: serverAuth,
		dns: []string{"master", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost"},
		ips: []string{"10.96.0.1", "10.10.0.10", "127.0.0.1"}},
	{name: "apiserver-kubelet-client", ca: "ca", cn: "kube-apiserver-kubelet-client", orgs: []string{"system:kubelet-api-admin"}, eku: clientAuth},
	{name: "front-proxy-client", ca: "front-proxy-ca", cn: "front-proxy-client", eku: clientAuth},
	{name: "etcd/server", ca: "etcd/ca", cn: "master", eku: bothAuth,
		dns: []string{"master", "localhost"}, ips: []string{"10.10.0.10", "127.0.0.1", "::1"}},
	{name: "etcd/peer", ca: "etcd/ca", cn: "master", eku: bothAuth,
		dns: []string{"master", "localhost"}, ips: []string{"10.10.0.10", "127.0.0.1", "::1"}},
	{name: "etcd/healthcheck-client", ca: "etcd/ca", cn: "kube-etcd-healthcheck-client", eku: clientAuth},
	{name: "apiserver-etcd-client", ca: "etcd/ca", cn: "kube-apiserver-etcd-client", eku: clientAuth},
}

func TestCertificateAuthoritiesMatchReference(t *testing.T) {
	now := time.Now()
	dir, _ := newBundle(t, loadConfig(t), pki.Options{})
	for base, cn := range caCNs {
		t.Run(base, func(t *testing.T) {
			c := certFile(t, dir, base)
			if c.Subject.CommonName != cn {
				t.Errorf("CN %q, want %q", c.Subject.CommonName, cn)
			}
			if len(c.Subject.Organization) != 0 {
				t.Errorf("O %v, want none", c.Subject.Organization)
			}
			if !c.IsCA || !c.BasicConstraintsValid {
				t.Errorf("IsCA %v, BasicConstraintsValid %v: want a CA", c.IsCA, c.BasicConstraintsValid)
			}
			wantKU := x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
			if c.KeyUsage != wantKU {
				t.Errorf("KeyUsage %b, want %b", c.KeyUsage, wantKU)
			}
			if !slices.Equal(c.DNSNames, []string{cn}) {
				t.Errorf("DNSNames %v, want [%s]", c.DNSNames, cn)
			}
			if len(c.IPAddresses) != 0 {
				t.Errorf("IP SANs %v, want none", c.IPAddresses)
			}
			if !bytes.Equal(c.RawIssuer, c.RawSubject) {
				t.Errorf("issuer %v differs from subject %v: not self-signed", c.Issuer, c.Subject)
			}
			if err := c.CheckSignatureFrom(c); err != nil {
				t.Errorf("not self-signed: %v", err)
			}
			if c.SerialNumber.Sign() <= 0 {
				t.Errorf("serial %v, want positive", c.SerialNumber)
			}
			if !samePublicKey(c.PublicKey, keyFile(t, dir, base).Public()) {
				t.Errorf("certificate does not match pki/%s.key", base)
			}
			if !near(c.NotBefore, now, tolerance) || c.NotBefore.After(now) {
				t.Errorf("NotBefore %v, want shortly before %v", c.NotBefore, now)
			}
			if !near(c.NotAfter, now.Add(caValidity), tolerance) {
				t.Errorf("NotAfter %v, want about 10 years after %v", c.NotAfter, now)
			}
		})
	}
}

// checkLeaf asserts everything the reference says about a leaf certificate: subject, issuer
// chain and usages through x509.Verify, exact SANs, key usages and validity.
func checkLeaf(t *testing.T, dir string, w certWant, c *x509.Certificate, now time.Time) {
	t.Helper()
	if c.Subject.CommonName != w.cn {
		t.Errorf("CN %q, want %q", c.Subject.CommonName, w.cn)
	}
	if !slices.Equal(c.Subject.Organization, w.orgs) {
		t.Errorf("O %v, want %v", c.Subject.Organization, w.orgs)
	}
	if c.IsCA {
		t.Errorf("leaf is a CA")
	}
	if want := x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment; c.KeyUsage != want {
		t.Errorf("KeyUsage %b, want %b (DigitalSignature|KeyEncipherment)", c.KeyUsage, want)
	}
	if !slices.Equal(c.ExtKeyUsage, w.eku) {
		t.Errorf("ExtKeyUsage %v, want %v", c.ExtKeyUsage, w.eku)
	}
	if len(c.UnknownExtKeyUsage) != 0 {
		t.Errorf("unexpected extended key usages %v", c.UnknownExtKeyUsage)
	}

	// The issuing CA verifies it, for each of its usages; the other CAs do not.
	for base, cn := range caCNs {
		ca := certFile(t, dir, base)
		pool := x509.NewCertPool()
		pool.AddCert(ca)
		for _, u := range w.eku {
			_, err := c.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{u}})
			switch {
			case base == w.ca && err != nil:
				t.Errorf("does not verify against %s (%s) for usage %v: %v", base, cn, u, err)
			case base != w.ca && err == nil:
				t.Errorf("verifies against %s (%s), want only %s", base, cn, w.ca)
			}
		}
		if base == w.ca && c.Issuer.CommonName != cn {
			t.Errorf("issuer CN %q, want %q", c.Issuer.CommonName, cn)
		}
	}
	// A usage the table does not list must not verify.
	if !slices.Contains(w.eku, x509.ExtKeyUsageServerAuth) {
		pool := x509.NewCertPool()
		pool.AddCert(certFile(t, dir, w.ca))
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: serverAuth}); err == nil {
			t.Errorf("client certificate verifies for serverAuth")
		}
	}

	var ips []string
	for _, ip := range c.IPAddresses {
		ips = append(ips, ip.String())
	}
	if !sameStrings(c.DNSNames, w.dns) {
		t.Errorf("DNS SANs %v, want %v", c.DNSNames, w.dns)
	}
	if !sameStrings(ips, w.ips) {
		t.Errorf("IP SANs %v, want %v", ips, w.ips)
	}
	if len(c.EmailAddresses)+len(c.URIs) != 0 {
		t.Errorf("unexpected email/URI SANs %v %v", c.EmailAddresses, c.URIs)
	}
	// A TLS client checks every name against the certificate.
	if slices.Contains(w.eku, x509.ExtKeyUsageServerAuth) {
		for _, h := range append(slices.Clone(w.dns), w.ips...) {
			if err := c.VerifyHostname(h); err != nil {
				t.Errorf("VerifyHostname(%s): %v", h, err)
			}
		}
	}

	if !near(c.NotBefore, now, tolerance) || c.NotBefore.After(now) {
		t.Errorf("NotBefore %v, want shortly before %v", c.NotBefore, now)
	}
	if !near(c.NotAfter, now.Add(leafValidity), tolerance) {
		t.Errorf("NotAfter %v, want about 1 year after %v", c.NotAfter, now)
	}
}

func sameStrings(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	sort.Strings(a)
	sort.Strings(b)
	return slices.Equal(a, b)
}

func TestLeafCertificatesMatchReference(t *testing.T) {
	now := time.Now()
	dir, _ := newBundle(t, loadConfig(t), pki.Options{})
	for _, w := range localLeaves {
		t.Run(w.name, func(t *testing.T) {
			c := certFile(t, dir, w.name)
			checkLeaf(t, dir, w, c, now)
			if !samePublicKey(c.PublicKey, keyFile(t, dir, w.name).Public()) {
				t.Errorf("certificate does not match pki/%s.key", w.name)
			}
		})
	}
}

// With a DNS endpoint and other certSANs, the API server certificate covers exactly those on
// top of the fixed names, and the etcd certificates do not change.
func TestLeafSANsFollowConfig(t *testing.T) {
	now := time.Now()
	cfg := loadConfig(t,
		"endpoint: 10.10.0.10:6443", "endpoint: api.example.com:8443",
		"certSANs: [127.0.0.1, localhost]", "certSANs: [api.example.com, 192.0.2.7]",
		"dnsDomain: cluster.local", "dnsDomain: corp.internal",
		"serviceCIDR: 10.96.0.0/12", "serviceCIDR: 10.100.0.0/16",
		"name: master", "name: cp-1")
	dir, _ := newBundle(t, cfg, pki.Options{})
	wants := []certWant{
		{name: "apiserver", ca: "ca", cn: "kube-apiserver", eku: serverAuth,
			dns: []string{"cp-1", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.corp.internal", "api.example.com"},
			ips: []string{"10.100.0.1", "10.10.0.10", "192.0.2.7"}},
		{name: "etcd/server", ca: "etcd/ca", cn: "cp-1", eku: bothAuth,
			dns: []string{"cp-1", "localhost"}, ips: []string{"10.10.0.10", "127.0.0.1", "::1"}},
		{name: "etcd/peer", ca: "etcd/ca", cn: "cp-1", eku: bothAuth,
			dns: []string{"cp-1", "localhost"}, ips: []string{"10.10.0.10", "127.0.0.1", "::1"}},
	}
	for _, w := range wants {
		t.Run(w.name, func(t *testing.T) { checkLeaf(t, dir, w, certFile(t, dir, w.name), now) })
	}
}

func TestKubeconfigsMatchReference(t *testing.T) {
	cases := []struct {
		name            string
		edits           []string
		endpoint, local string
		master          string
	}{
		{name: "local.yaml", endpoint: "https://10.10.0.10:6443", local: "https://10.10.0.10:6443", master: "master"},
		{name: "dns endpoint",
			edits:    []string{"endpoint: 10.10.0.10:6443", "endpoint: api.example.com:8443", "certSANs: [127.0.0.1, localhost]", "certSANs: [api.example.com]"},
			endpoint: "https://api.example.com:8443", local: "https://10.10.0.10:6443", master: "master"},
		{name: "endpoint without port", edits: []string{"endpoint: 10.10.0.10:6443", "endpoint: localhost", "name: master", "name: cp-1"},
			endpoint: "https://localhost:6443", local: "https://10.10.0.10:6443", master: "cp-1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Now()
			dir, _ := newBundle(t, loadConfig(t, tc.edits...), pki.Options{})
			caPEM := readFile(t, dir, "pki/ca.crt")
			wants := []struct {
				certWant
				server string
			}{
				{certWant{name: "admin.conf", cn: "kubernetes-admin", orgs: []string{"kubeadm:cluster-admins"}}, tc.endpoint},
				{certWant{name: "super-admin.conf", cn: "kubernetes-super-admin", orgs: []string{"system:masters"}}, tc.endpoint},
				{certWant{name: "kubelet.conf", cn: "system:node:" + tc.master, orgs: []string{"system:nodes"}}, tc.endpoint},
				{certWant{name: "controller-manager.conf", cn: "system:kube-controller-manager"}, tc.local},
				{certWant{name: "scheduler.conf", cn: "system:kube-scheduler"}, tc.local},
			}
			for _, w := range wants {
				t.Run(w.name, func(t *testing.T) {
					kc := readKubeconfig(t, dir, w.name)
					if kc.server != w.server {
						t.Errorf("server %q, want %q", kc.server, w.server)
					}
					if !bytes.Equal(kc.caPEM, caPEM) {
						t.Errorf("embedded CA differs from pki/ca.crt")
					}
					w.ca, w.eku = "ca", clientAuth
					checkLeaf(t, dir, w.certWant, kc.cert, now)
					if !samePublicKey(kc.cert.PublicKey, kc.key.Public()) {
						t.Errorf("client certificate does not match the embedded key")
					}
				})
			}
			// admin.conf is cluster-admin through RBAC only since 1.29: never system:masters.
			if kc := readKubeconfig(t, dir, "admin.conf"); slices.Contains(kc.cert.Subject.Organization, "system:masters") {
				t.Errorf("admin.conf is in system:masters")
			}
		})
	}
}

// checkKeys asserts the PEM type of every private key among files (key files and kubeconfigs),
// that each is of the algorithm, that every certificate carries such a key, and that sa.pub is
// the public half of sa.key.
func checkKeys(t *testing.T, dir string, alg pki.KeyAlgorithm, files []string) {
	t.Helper()
	wantType, bits := "EC PRIVATE KEY", 0
	switch alg {
	case pki.RSA2048:
		wantType, bits = "RSA PRIVATE KEY", 2048
	case pki.RSA3072:
		wantType, bits = "RSA PRIVATE KEY", 3072
	case pki.RSA4096:
		wantType, bits = "RSA PRIVATE KEY", 4096
	}
	check := func(what string, pub any) {
		t.Helper()
		switch k := pub.(type) {
		case *ecdsa.PublicKey:
			if bits != 0 || k.Curve != elliptic.P256() {
				t.Errorf("%s: ECDSA %s key, want %s", what, k.Curve.Params().Name, alg)
			}
		case *rsa.PublicKey:
			if k.N.BitLen() != bits {
				t.Errorf("%s: RSA-%d key, want %s", what, k.N.BitLen(), alg)
			}
		default:
			t.Errorf("%s: %T key, want %s", what, pub, alg)
		}
	}
	var meta pki.Meta
	if err := json.Unmarshal(readFile(t, dir, "bundle.json"), &meta); err != nil {
		t.Fatal(err)
	}
	if meta.KeyAlgorithm != alg {
		t.Errorf("bundle.json records %q keys, want %q", meta.KeyAlgorithm, alg)
	}
	for _, rel := range files {
		switch {
		case strings.HasSuffix(rel, ".key"):
			k, typ := parseKey(t, rel, readFile(t, dir, rel))
			if typ != wantType {
				t.Errorf("%s: PEM type %q, want %q", rel, typ, wantType)
			}
			check(rel, k.Public())
		case strings.HasSuffix(rel, ".crt"):
			check(rel, parseCert(t, rel, readFile(t, dir, rel)).PublicKey)
		case strings.HasSuffix(rel, ".conf"):
			kc := readKubeconfig(t, dir, rel)
			if _, typ := parseKey(t, rel, kc.keyPEM); typ != wantType {
				t.Errorf("%s: client key PEM type %q, want %q", rel, typ, wantType)
			}
			check(rel+" client key", kc.key.Public())
			check(rel+" client certificate", kc.cert.PublicKey)
		}
	}
	// sa.pub is the PKIX public key of sa.key.
	sa, _ := parseKey(t, "pki/sa.key", readFile(t, dir, "pki/sa.key"))
	pub, err := x509.ParsePKIXPublicKey(pemBlock(t, "pki/sa.pub", readFile(t, dir, "pki/sa.pub"), "PUBLIC KEY").Bytes)
	if err != nil {
		t.Fatalf("pki/sa.pub: %v", err)
	}
	if !samePublicKey(pub, sa.Public()) {
		t.Errorf("pki/sa.pub is not the public half of pki/sa.key")
	}
}

func TestDefaultKeyAlgorithmIsECDSAP256(t *testing.T) {
	dir, b := newBundle(t, loadConfig(t), pki.Options{})
	if b.Meta.KeyAlgorithm != pki.ECDSAP256 {
		t.Errorf("Meta.KeyAlgorithm %q, want %q", b.Meta.KeyAlgorithm, pki.ECDSAP256)
	}
	checkKeys(t, dir, pki.ECDSAP256, bundleFiles)
}

// rsa-2048 makes a whole bundle of RSA-2048 keys.
func TestRSA2048Bundle(t *testing.T) {
	cfg := loadConfig(t)
	dir, b := newBundle(t, cfg, pki.Options{KeyAlgorithm: pki.RSA2048})
	if b.Meta.KeyAlgorithm != pki.RSA2048 {
		t.Errorf("Meta.KeyAlgorithm %q, want %q", b.Meta.KeyAlgorithm, pki.RSA2048)
	}
	checkKeys(t, dir, pki.RSA2048, bundleFiles)
	// The certificates are still what the reference says with RSA keys.
	checkLeaf(t, dir, localLeaves[0], certFile(t, dir, "apiserver"), time.Now())
	// A later run without the option keeps using the bundle's algorithm and creates nothing.
	if _, err := pki.Ensure(dir, cfg, pki.Options{Progress: noProgress(t)}); err != nil {
		t.Errorf("second Ensure: %v", err)
	}
}

// RSA-3072 and RSA-4096 keys take long to generate (about a second each for 4096 here), so
// these bundles are cut short: a planted apiserver-kubelet-client.crt without its key makes
// Ensure stop with an error right after it has made the three CAs, the service-account key
// and the apiserver certificate, which are then checked. That is 5 keys instead of 16.
func TestLargeRSAKeyAlgorithms(t *testing.T) {
	cfg := loadConfig(t)
	made := []string{
		"pki/ca.crt", "pki/ca.key", "pki/front-proxy-ca.crt", "pki/front-proxy-ca.key",
		"pki/etcd/ca.crt", "pki/etcd/ca.key", "pki/sa.key", "pki/sa.pub",
		"pki/apiserver.crt", "pki/apiserver.key",
	}
	for _, alg := range []pki.KeyAlgorithm{pki.RSA3072, pki.RSA4096} {
		t.Run(string(alg), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "pki"), 0o700); err != nil {
				t.Fatal(err)
			}
			stop := filepath.Join(dir, "pki", "apiserver-kubelet-client.crt")
			if err := os.WriteFile(stop, []byte("planted\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := pki.Ensure(dir, cfg, pki.Options{KeyAlgorithm: alg})
			if err == nil || !strings.Contains(err.Error(), "apiserver-kubelet-client.key") {
				t.Fatalf("Ensure = %v, want the planted damage reported", err)
			}
			got := regularFiles(snapshot(t, dir))
			want := append([]string{"bundle.json", "pki/apiserver-kubelet-client.crt"}, made...)
			sort.Strings(want)
			if !slices.Equal(got, want) {
				t.Fatalf("bundle holds %v, want %v", got, want)
			}
			checkKeys(t, dir, alg, made)
			checkLeaf(t, dir, localLeaves[0], certFile(t, dir, "apiserver"), time.Now())
		})
	}
}

func TestParseKeyAlgorithm(t *testing.T) {
	for _, s := range []string{"rsa-2048", "rsa-3072", "rsa-4096", "ecdsa-p256"} {
		if a, err := pki.ParseKeyAlgorithm(s); err != nil || string(a) != s {
			t.Errorf("ParseKeyAlgorithm(%q) = %q, %v", s, a, err)
		}
	}
	for _, s := range []string{"", "RSA-2048", "rsa-1024", "ed25519"} {
		if _, err := pki.ParseKeyAlgorithm(s); err == nil {
			t.Errorf("ParseKeyAlgorithm(%q) accepted", s)
		}
	}
}

func TestServingCert(t *testing.T) {
	_, b := newBundle(t, loadConfig(t), pki.Options{})
	certPEM, keyPEM, err := pki.ServingCert(b, "kubeup-pxe", []string{"10.10.0.1", "pxe.example"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(b.File("pki/ca.crt"))
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	for _, host := range []string{"10.10.0.1", "pxe.example"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: host}); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
	if leaf.NotAfter.After(time.Now().Add(2 * time.Hour)) {
		t.Errorf("serving cert valid until %v, asked for an hour", leaf.NotAfter)
	}
}
