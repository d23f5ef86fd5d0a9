package carotation

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/certificate"
	"k8s.io/client-go/util/certificate/csr"

	"kubeup.dev/kubeup/internal/manifests"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/internal/renewal"
)

// RootCAConfigMap is what the controller-manager publishes in every namespace from its
// --root-ca-file, the master's pki/ca.crt: old+new CA from TrustBoth on, the new CA alone
// after Finishing. It is how a node learns the cluster's CAs with no SSH: read over the TLS
// connection it already trusts, as the kubelet's own identity.
const RootCAConfigMap = "kube-root-ca.crt"

// Kubelet keeps one machine's kubelet on the cluster's CAs through a rotation, run by every
// machine's agent on each pass of its certificate loop:
//
//   - On nodes (FollowTrust), its trust follows kube-root-ca.crt: pki/ca.crt (the kubelet's
//     clientCAFile, which the API server's kubelet client certificate must chain to) and the CA
//     data of kubelet.conf and bootstrap-kubelet.conf, then the kubelet restarts (it reads its
//     kubeconfig's CA only when it starts). A new trust is adopted only if the API server's
//     certificate verifies against it, so a node never cuts itself off. The master's own trust
//     is written by Master, in its order, and FollowTrust is off there.
//   - Everywhere, once the trust holds two CAs and the first (the signing one) did not issue
//     the kubelet's client or serving certificate, it asks for a new one at once, as the kubelet
//     would at renewal (a CSR with the kubelet's own identity: the client one is approved by the
//     controller-manager, the serving one by the master's agent), stores it where the kubelet
//     keeps its certificates and restarts the kubelet. Without this a kubelet moves to the new
//     CA only at its next renewal, months away with the default lifetime, and `finish` waits
//     for it. A request answered by the old CA (the signer switches a moment after Reissue)
//     is tried again on the next pass.
type Kubelet struct {
	// Root prefixes every path ("/" on a machine).
	Root string
	// Node is the machine's Node name.
	Node string
	// Config and Client are the kubelet's identity (its kubelet.conf): what reads
	// kube-root-ca.crt and makes the CSRs, as the kubelet itself would.
	Config *rest.Config
	Client kubernetes.Interface
	// FollowTrust makes the machine's trust follow kube-root-ca.crt (nodes).
	FollowTrust bool
	// RestartKubelet restarts the machine's kubelet (systemctl restart kubelet).
	RestartKubelet func(ctx context.Context) error
	// CSRTimeout bounds the wait for a CSR to be signed (default 2 minutes).
	CSRTimeout time.Duration
	// Event, if set, reports what changed or failed; Log is told every step.
	Event func(ctx context.Context, ok bool, reason, msg string)
	Log   func(format string, args ...any)

	lastTrustErr string
}

func (k *Kubelet) path(p string) string { return filepath.Join(k.Root, p) }

func (k *Kubelet) logf(format string, args ...any) {
	if k.Log != nil {
		k.Log(format, args...)
	}
}

func (k *Kubelet) event(ctx context.Context, ok bool, reason, msg string) {
	if k.Event != nil {
		k.Event(ctx, ok, reason, msg)
	}
}

// kubeletConfs are the machine's kubeconfigs whose CA data follows its trust.
var kubeletConfs = []string{manifests.KubeletKubeconf, manifests.BootstrapKubeconf}

// Step does what the machine needs now. busy says a rotation is in progress as far as this
// machine can see (its trust holds more than one CA): the loop should look again soon.
func (k *Kubelet) Step(ctx context.Context) (busy bool, err error) {
	trustFile := k.path(manifests.PKIDir + "/ca.crt")
	trust, err := os.ReadFile(trustFile)
	if err != nil {
		return false, err
	}
	var restart []string
	var errs []error
	if k.FollowTrust {
		next, changed, err := k.followTrust(ctx, trust)
		switch {
		case err != nil:
			// Said on the console once per distinct error, not as an Event every minute: a
			// node cannot read kube-root-ca.crt before kube-proxy is bound to it, and during a
			// rotation the master's NodesTrust message names a node that does not follow.
			if msg := err.Error(); msg != k.lastTrustErr {
				k.logf("CA rotation: the node's trust: %s", msg)
				k.lastTrustErr = msg
			}
		case changed:
			trust = next
			restart = append(restart, "trust")
			fallthrough
		default:
			k.lastTrustErr = ""
		}
	}
	cas, err := pki.CertsPEM(trust)
	if err != nil {
		return false, fmt.Errorf("%s: %w", trustFile, err)
	}
	if len(cas) > 1 {
		// The kubelet's certificates come from the first CA of the trust, the one that signs.
		for _, kind := range []kubeletCert{clientCert, servingCert} {
			moved, err := k.moveCert(ctx, kind, cas[0])
			if err != nil {
				errs = append(errs, err)
			}
			if moved {
				restart = append(restart, kind.name)
			}
		}
	}
	if len(restart) > 0 {
		if err := k.RestartKubelet(ctx); err != nil {
			errs = append(errs, fmt.Errorf("restart the kubelet after updating %s: %w", strings.Join(restart, ", "), err))
		} else {
			k.logf("CA rotation: kubelet restarted on its new %s", strings.Join(restart, ", "))
		}
	}
	err = errors.Join(errs...)
	if err != nil {
		k.event(ctx, false, "CARotationKubeletFailed", err.Error())
	}
	return len(cas) > 1, err
}

// followTrust reads kube-root-ca.crt and, when it names other CAs than trust, checks the API
// server against it and writes it as the machine's trust. It returns the new trust.
func (k *Kubelet) followTrust(ctx context.Context, trust []byte) ([]byte, bool, error) {
	bundle, err := k.rootCA(ctx)
	if err != nil {
		return nil, false, err
	}
	want, err := rootCAs(bundle)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", RootCAConfigMap, err)
	}
	have, err := pki.CertsPEM(trust)
	if err != nil {
		return nil, false, err
	}
	if sameCerts(have, want) {
		return trust, false, nil
	}
	// A rotation keeps one CA from one trust to the next (old → old+new → new+old → new): a
	// bundle that shares none with the node's is no step of a rotation.
	if !slices.ContainsFunc(want, func(w *x509.Certificate) bool {
		return slices.ContainsFunc(have, func(h *x509.Certificate) bool { return bytes.Equal(w.Raw, h.Raw) })
	}) {
		return nil, false, fmt.Errorf("not adopting the cluster's CAs (%s): none of them is one the node trusts (%s), and a rotation keeps one", describe(want), describe(have))
	}
	if err := k.verifyServer(ctx, bundle); err != nil {
		return nil, false, fmt.Errorf("not adopting the cluster's CAs (%s): %w", describe(want), err)
	}
	if err := replaceKeepingMode(k.path(manifests.PKIDir+"/ca.crt"), bundle); err != nil {
		return nil, false, err
	}
	var confs []string
	for _, c := range kubeletConfs {
		if _, err := os.Stat(k.path(c)); err == nil {
			confs = append(confs, k.path(c))
		}
	}
	if err := setKubeconfigCA(confs, bundle); err != nil {
		return nil, false, err
	}
	msg := fmt.Sprintf("the node trusts %s (was %s), from %s", describe(want), describe(have), RootCAConfigMap)
	k.logf("CA rotation: %s", msg)
	k.event(ctx, true, "CARotationNodeTrust", msg)
	return bundle, true, nil
}

// rootCAs parses kube-root-ca.crt's bundle: CA certificates and nothing else, at most two (a
// rotation's old and new), since the node writes it as the kubelet's trust.
func rootCAs(bundle []byte) ([]*x509.Certificate, error) {
	blocks, err := pemBlocks(bundle)
	if err != nil {
		return nil, err
	}
	if len(blocks) > 2 {
		return nil, fmt.Errorf("%s: more than a rotation's two CAs", blockTypes(blocks))
	}
	var out []*x509.Certificate
	for _, b := range blocks {
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s, want CERTIFICATEs only", blockTypes(blocks))
		}
		c, err := caCert(b)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// rootCA reads kube-root-ca.crt as the kubelet may: the node authorizer lets a node read a
// ConfigMap only in a namespace where a pod bound to it mounts it, and every pod with a
// service account token does. kube-system first (kube-proxy runs on every node), then the
// namespaces of the node's pods.
func (k *Kubelet) rootCA(ctx context.Context) ([]byte, error) {
	get := func(ns string) ([]byte, error) {
		cm, err := k.Client.CoreV1().ConfigMaps(ns).Get(ctx, RootCAConfigMap, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		if cm.Data["ca.crt"] == "" {
			return nil, fmt.Errorf("%s/%s has no ca.crt", ns, RootCAConfigMap)
		}
		return []byte(cm.Data["ca.crt"]), nil
	}
	data, first := get(metav1.NamespaceSystem)
	if first == nil || !apierrors.IsForbidden(first) {
		return data, first
	}
	pods, err := k.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", k.Node).String()})
	if err != nil {
		return nil, fmt.Errorf("%w; and listing the node's pods for another namespace: %w", first, err)
	}
	tried := map[string]bool{metav1.NamespaceSystem: true}
	for _, p := range pods.Items {
		if tried[p.Namespace] {
			continue
		}
		tried[p.Namespace] = true
		if data, err := get(p.Namespace); err == nil {
			return data, nil
		}
	}
	return nil, fmt.Errorf("%w (and in no namespace of the node's pods: %d pods)", first, len(pods.Items))
}

// verifyServer connects to the API server and verifies its certificate against bundle alone.
func (k *Kubelet) verifyServer(ctx context.Context, bundle []byte) error {
	u, err := url.Parse(k.Config.Host)
	if err != nil {
		return err
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "443")
	}
	name := k.Config.TLSClientConfig.ServerName
	if name == "" {
		name = u.Hostname()
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(bundle)
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 15 * time.Second}, Config: &tls.Config{RootCAs: pool, ServerName: name, MinVersion: tls.VersionTLS12}}
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return fmt.Errorf("the API server's certificate does not verify against them: %w", err)
	}
	return conn.Close()
}

// kubeletCert is one of the kubelet's certificates, kept as the kubelet keeps it: a
// <prefix>-current.pem link to a file holding certificate and key.
type kubeletCert struct {
	name, prefix, signer string
	usages               []certificatesv1.KeyUsage
}

var (
	clientCert = kubeletCert{name: "kubelet-client", prefix: "kubelet-client", signer: certificatesv1.KubeAPIServerClientKubeletSignerName,
		usages: []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}}
	servingCert = kubeletCert{name: "kubelet-serving", prefix: "kubelet-server", signer: certificatesv1.KubeletServingSignerName,
		usages: []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth}}
)

// moveCert gets the kubelet a certificate from signer when its current one is from another CA.
func (k *Kubelet) moveCert(ctx context.Context, kind kubeletCert, signer *x509.Certificate) (bool, error) {
	dir := manifests.KubeletDir + "/pki"
	cur, err := renewal.Item{Name: kind.name, Path: dir + "/" + kind.prefix + "-current.pem"}.Read(k.Root)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // not there yet (the serving one comes after the Node registers)
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w", kind.name, err)
	}
	leaf := cur.Cert
	if leaf.CheckSignatureFrom(signer) == nil {
		return false, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return false, err
	}
	// The same names as the certificate it replaces: the kubelet's own, which the approver
	// accepted before.
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: leaf.Subject.CommonName, Organization: leaf.Subject.Organization},
		DNSNames: leaf.DNSNames, IPAddresses: leaf.IPAddresses,
	}, key)
	if err != nil {
		return false, err
	}
	csrPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	name, uid, err := csr.RequestCertificateWithContext(ctx, k.Client, csrPEM, "", kind.signer, nil, kind.usages, key)
	if err != nil {
		return false, fmt.Errorf("%s: request a certificate from the new CA: %w", kind.name, err)
	}
	timeout := k.CSRTimeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	certPEM, err := csr.WaitForCertificate(wctx, k.Client, name, uid)
	if err != nil {
		return false, fmt.Errorf("%s: CSR %s: %w", kind.name, name, err)
	}
	got, err := pki.CertsPEM(certPEM)
	if err != nil || len(got) == 0 {
		return false, fmt.Errorf("%s: CSR %s: no certificate in the answer: %v", kind.name, name, err)
	}
	if got[0].CheckSignatureFrom(signer) != nil {
		// The controller-manager still signs with the old CA (the master switches it right
		// after Reissue): keep the current certificate, ask again on the next pass.
		k.logf("CA rotation: %s: CSR %s was signed by %q, not yet the new CA; asking again later", kind.name, name, got[0].Issuer.CommonName)
		return false, nil
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return false, err
	}
	// Written as the kubelet writes it: a new <prefix>-<time>.pem, then the -current.pem link.
	store, err := certificate.NewFileStore(kind.prefix, k.path(dir), k.path(dir), "", "")
	if err != nil {
		return false, err
	}
	if _, err := store.Update(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})); err != nil {
		return false, fmt.Errorf("%s: store the new certificate: %w", kind.name, err)
	}
	msg := fmt.Sprintf("%s re-issued by the new CA %q (CSR %s), expires %s", kind.name, signer.Subject.CommonName, name, got[0].NotAfter.UTC().Format(time.RFC3339))
	k.logf("CA rotation: %s", msg)
	k.event(ctx, true, "CARotationKubeletCertificate", msg)
	return true, nil
}

// sameCerts: the same CAs in the same order. The order matters: the first is the one that
// signs, and a node moves its kubelet's certificates to it.
func sameCerts(a, b []*x509.Certificate) bool {
	return slices.EqualFunc(a, b, func(x, y *x509.Certificate) bool { return bytes.Equal(x.Raw, y.Raw) })
}

// describe names CAs for a message: common name and key id.
func describe(cas []*x509.Certificate) string {
	var s []string
	for _, c := range cas {
		s = append(s, fmt.Sprintf("%q (%s)", c.Subject.CommonName, shortID(c.SubjectKeyId)))
	}
	return strings.Join(s, " + ")
}

func shortID(id []byte) string {
	h := hex.EncodeToString(id)
	if len(h) > 8 {
		h = h[:8]
	}
	return h
}
