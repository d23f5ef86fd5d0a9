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

// checkPair checks that a CA's certificate and key belong together and it is a CA.
func checkPair(ca pki.CA, certPEM, keyPEM []byte) (*x509.Certificate, error) {
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return nil, fmt.Errorf("new CA %s: %w", ca, err)
	}
	_, c, err := firstCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("new CA %s: %w", ca, err)
	}
	if !c.IsCA {
		return nil, fmt.Errorf("new CA %s: %q is not a CA certificate", ca, c.Subject.CommonName)
	}
	return c, nil
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
