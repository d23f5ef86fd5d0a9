package carotation

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"kubeup.dev/kubeup/internal/fsutil"
	"kubeup.dev/kubeup/internal/manifests"
	"kubeup.dev/kubeup/internal/pki"
)

// The master's files during a rotation, under /etc/kubernetes/pki/ca-rotation (inside the pki
// directory the control-plane pods mount): state.json, new/ and old/ (each CA's certificate and
// key, etcd/ca as etcd-ca), and signer.crt/.key, the one CA the controller-manager signs kubelet
// certificates with. The controller-manager needs a file with exactly one certificate, and
// pki/ca.crt holds two while both are trusted, so during a rotation its
// --cluster-signing-cert-file/--cluster-signing-key-file point at the signer files instead;
// finishing points them back at pki/ca.crt and pki/ca.key, kubeadm's layout again.
const (
	WorkDir    = manifests.PKIDir + "/ca-rotation"
	SignerCert = WorkDir + "/signer.crt"
	SignerKey  = WorkDir + "/signer.key"
)

const (
	signingCertFlag = "--cluster-signing-cert-file"
	signingKeyFlag  = "--cluster-signing-key-file"
)

func (m *Master) path(p string) string { return filepath.Join(m.Root, p) }

func (m *Master) caFile(dir string, ca pki.CA, ext string) string {
	return m.path(filepath.Join(WorkDir, dir, dataKey(ca, ext)))
}

// trustFile and keyFile are a CA's files in the kubeadm layout.
func (m *Master) trustFile(ca pki.CA) string {
	return m.path(manifests.PKIDir + "/" + string(ca) + ".crt")
}
func (m *Master) keyFile(ca pki.CA) string {
	return m.path(manifests.PKIDir + "/" + string(ca) + ".key")
}

// createOrSame creates a file 0600, or finds it with the same content (a resumed run).
func createOrSame(path string, data []byte) error {
	err := fsutil.CreateFile(path, data, 0o600)
	if errors.Is(err, fs.ErrExist) {
		have, rerr := os.ReadFile(path)
		if rerr != nil {
			return rerr
		}
		if !bytes.Equal(have, data) {
			return fmt.Errorf("%s exists with other content: a rotation's files were left by another rotation; see docs/ca-rotation.md (\"Abandoned rotation\")", path)
		}
		return nil
	}
	return err
}

// replaceKeepingMode writes data over path atomically, keeping its mode; unchanged content is
// not rewritten.
func replaceKeepingMode(path string, data []byte) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if have, err := os.ReadFile(path); err == nil && bytes.Equal(have, data) {
		return nil
	}
	return fsutil.ReplaceFile(path, data, fi.Mode().Perm())
}

// firstCert returns the first certificate of a PEM file, as PEM.
func firstCert(data []byte) ([]byte, *x509.Certificate, error) {
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil, nil, errors.New("no CERTIFICATE PEM block")
		}
		if b.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(b.Bytes)
			return pem.EncodeToMemory(b), c, err
		}
	}
}

// pairError is what is wrong with a new CA's certificate, or with its key (inKey).
type pairError struct {
	inKey bool
	msg   string
}

func (e *pairError) Error() string { return e.msg }

// key is the Secret's data key at fault, of the CA's certificate crt and key key.
func (e *pairError) key(crt, key string) string {
	if e.inKey {
		return key
	}
	return crt
}

// checkPair checks a new CA: certPEM is one CA certificate, valid from now (give or take
// clockSkew) for at least minValidity, and keyPEM one private key, the certificate's. Nothing
// else may be in either: a second certificate would be trusted with the CA.
func checkPair(certPEM, keyPEM []byte, now time.Time) (*x509.Certificate, *pairError) {
	certErr := func(format string, args ...any) *pairError { return &pairError{msg: fmt.Sprintf(format, args...)} }
	keyErr := func(format string, args ...any) *pairError {
		return &pairError{inKey: true, msg: fmt.Sprintf(format, args...)}
	}
	blocks, err := pemBlocks(certPEM)
	if err != nil {
		return nil, certErr("%v", err)
	}
	if len(blocks) != 1 || blocks[0].Type != "CERTIFICATE" {
		return nil, certErr("%s, want one CERTIFICATE", blockTypes(blocks))
	}
	c, err := caCert(blocks[0])
	if err != nil {
		return nil, certErr("%v", err)
	}
	name := clip(c.Subject.CommonName)
	switch {
	case c.NotBefore.After(now.Add(clockSkew)):
		return nil, certErr("%q is not valid before %s, and the master's clock says %s", name, c.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case c.NotAfter.Before(now.Add(minValidity)):
		return nil, certErr("%q expires %s, less than %v from now", name, c.NotAfter.UTC().Format(time.RFC3339), minValidity)
	}
	kb, err := pemBlocks(keyPEM)
	if err != nil {
		return nil, keyErr("%v", err)
	}
	if len(kb) != 1 || !strings.HasSuffix(kb[0].Type, "PRIVATE KEY") {
		return nil, keyErr("%s, want one PRIVATE KEY", blockTypes(kb))
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return nil, keyErr("not the key of %q: %v", name, err)
	}
	return c, nil
}

// pemBlocks decodes data as PEM blocks and nothing else but the whitespace between them
// (pem.Decode alone skips any text before a block).
func pemBlocks(data []byte) ([]*pem.Block, error) {
	var out []*pem.Block
	for rest := bytes.TrimSpace(data); len(rest) > 0; rest = bytes.TrimSpace(rest) {
		if !bytes.HasPrefix(rest, []byte("-----BEGIN ")) {
			return nil, fmt.Errorf("%d bytes that are not PEM", len(rest))
		}
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil, errors.New("a PEM block that does not decode")
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, errors.New("empty")
	}
	return out, nil
}

// caCert parses a CERTIFICATE block that must be a CA's.
func caCert(b *pem.Block) (*x509.Certificate, error) {
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, err
	}
	if !c.IsCA || !c.BasicConstraintsValid {
		return nil, fmt.Errorf("%q is not a CA certificate", clip(c.Subject.CommonName))
	}
	return c, nil
}

// blockTypes says what PEM blocks there are, for a message.
func blockTypes(blocks []*pem.Block) string {
	var types []string
	for _, b := range blocks {
		types = append(types, clip(b.Type))
	}
	return fmt.Sprintf("%d PEM blocks (%s)", len(blocks), strings.Join(types, ", "))
}

// kubeconfigs are the master's kubeconfigs whose CA data follows the rotation.
func (m *Master) kubeconfigs() []string {
	var out []string
	for _, name := range []string{"admin.conf", "super-admin.conf", "controller-manager.conf", "scheduler.conf", "kubelet.conf"} {
		p := m.path(manifests.KubernetesDir + "/" + name)
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// setKubeconfigCA puts caPEM in every cluster entry of every kubeconfig of paths.
func setKubeconfigCA(paths []string, caPEM []byte) error {
	for _, p := range paths {
		kc, err := clientcmd.LoadFromFile(p)
		if err != nil {
			return err
		}
		for _, c := range kc.Clusters {
			c.CertificateAuthorityData = caPEM
			c.LocationOfOrigin = ""
		}
		data, err := clientcmd.Write(*kc)
		if err != nil {
			return err
		}
		if err := replaceKeepingMode(p, data); err != nil {
			return err
		}
	}
	return nil
}

// setSigner points the controller-manager's manifest at cert and key (machine paths). The
// kubelet restarts the pod on the change by itself; the stage restarts and checks it after.
func (m *Master) setSigner(cert, key string) error {
	path := m.path(manifests.ManifestsDir + "/kube-controller-manager.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var pod corev1.Pod
	if err := yaml.Unmarshal(data, &pod); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(pod.Spec.Containers) != 1 {
		return fmt.Errorf("%s: %d containers, want 1", path, len(pod.Spec.Containers))
	}
	cmd := pod.Spec.Containers[0].Command
	changed := false
	for flag, value := range map[string]string{signingCertFlag: cert, signingKeyFlag: key} {
		found := false
		for i, a := range cmd {
			if name, v, _ := strings.Cut(a, "="); name == flag {
				found = true
				if v != value {
					cmd[i], changed = flag+"="+value, true
				}
			}
		}
		if !found {
			return fmt.Errorf("%s: no %s flag to point at the rotation's signer", path, flag)
		}
	}
	if !changed {
		return nil
	}
	out, err := yaml.Marshal(&pod)
	if err != nil {
		return err
	}
	return fsutil.ReplaceFile(path, out, 0o600)
}
