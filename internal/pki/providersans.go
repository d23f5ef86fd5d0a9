package pki

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/fsutil"
)

// ProviderSANsFile lists, one a line, the addresses a provider allocated for the API server
// that the cluster config cannot name in advance: on AWS the master's Elastic IP, allocated by
// kubeup up before the bundle is made. Every use of the bundle (Ensure, Load, Renew: kubeup,
// ignition-gen, certs renew) adds them to controlPlane.certSANs, so the API server certificate
// made or renewed from the bundle covers them and every command checks it against the same list.
const ProviderSANsFile = "provider-sans"

// SetProviderSANs records the provider's addresses in the bundle directory dir (made if
// missing), replacing what was recorded; an unchanged list is not rewritten. It changes no
// certificate: a certificate made before is checked against the new list and, if it differs,
// is a conflict that 'kubeup certs renew apiserver' resolves.
func SetProviderSANs(dir string, addrs []string) error {
	data := []byte(strings.Join(addrs, "\n") + "\n")
	if old, err := os.ReadFile(filepath.Join(dir, ProviderSANsFile)); err == nil && string(old) == string(data) {
		return nil
	}
	if err := fsutil.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create bundle directory: %w", err)
	}
	return fsutil.ReplaceFile(filepath.Join(dir, ProviderSANsFile), data, 0o600)
}

// withProviderSANs returns cfg with the addresses of dir's ProviderSANsFile added to
// controlPlane.certSANs, or cfg itself when there are none.
func withProviderSANs(dir string, cfg *cluster.Config) (*cluster.Config, error) {
	data, err := os.ReadFile(filepath.Join(dir, ProviderSANsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read bundle: %w", err)
	}
	var extra []string
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || slices.Contains(cfg.ControlPlane.CertSANs, line) {
			continue
		}
		if net.ParseIP(line) == nil {
			return nil, fmt.Errorf("%s line %d: %q is not an IP address (the file is kubeup's: remove the line)", filepath.Join(dir, ProviderSANsFile), i+1, line)
		}
		extra = append(extra, line)
	}
	if len(extra) == 0 {
		return cfg, nil
	}
	c := *cfg
	c.ControlPlane.CertSANs = append(slices.Clone(cfg.ControlPlane.CertSANs), extra...)
	return &c, nil
}

// APIServerCovers reports whether the bundle in dir has an API server certificate and whether
// it covers addr.
func APIServerCovers(dir, addr string) (exists, covers bool, err error) {
	data, err := os.ReadFile(filepath.Join(dir, "pki", "apiserver.crt"))
	if errors.Is(err, fs.ErrNotExist) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("read bundle: %w", err)
	}
	cert, err := decodeCert(data)
	if err != nil {
		return true, false, fmt.Errorf("%s: %w", filepath.Join(dir, "pki", "apiserver.crt"), err)
	}
	return true, cert.VerifyHostname(addr) == nil, nil
}
