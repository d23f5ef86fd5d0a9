package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/bcrypt"

	"kubeup.dev/kubeup/internal/fsutil"
)

// The files registrySetup writes into its directory.
const (
	registryCA       = "ca.crt"
	registryCert     = "registry.crt"
	registryKey      = "registry.key"
	registryHtpasswd = "htpasswd"
	registryPassword = "password"
	registryConfig   = "config.yml"
	registryData     = "data"
)

// registrySetup writes what distribution's registry needs to serve the test images to the
// cluster: a CA of its own and a certificate for the addresses it is reached at (the VMs' guest
// address, this host's loopback), a user with a random password (htpasswd, bcrypt), and its
// config, listening on listen with its storage in dir. Nothing it writes is reused from an
// earlier run: a new directory each time.
func registrySetup(dir, listen, guest, user string) error {
	l, err := netip.ParseAddrPort(listen)
	if err != nil || !l.Addr().IsLoopback() {
		return fmt.Errorf("-listen %q: the registry listens on this host's loopback only, such as 127.0.0.1:5000", listen)
	}
	g, err := netip.ParseAddrPort(guest)
	if err != nil {
		return fmt.Errorf("-guest %q: the address the machines reach it at, such as 10.0.2.100:5000", guest)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("%s: a new directory for the registry's files: %w", dir, err)
	}
	caPEM, certPEM, keyPEM, err := registryCerts([]net.IP{g.Addr().AsSlice(), l.Addr().AsSlice()})
	if err != nil {
		return err
	}
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	password := hex.EncodeToString(secret)
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	config := fmt.Sprintf(`# distribution's registry for make conformance: the test images, over TLS, to one user.
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
  tls:
    certificate: %s
    key: %s
auth:
  htpasswd:
    realm: kubeup-conformance
    path: %s
`, filepath.Join(dir, registryData), listen, filepath.Join(dir, registryCert), filepath.Join(dir, registryKey), filepath.Join(dir, registryHtpasswd))
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{registryCA, caPEM, 0o644},
		{registryCert, certPEM, 0o644},
		{registryKey, keyPEM, 0o600},
		{registryHtpasswd, []byte(user + ":" + string(hash) + "\n"), 0o600},
		{registryPassword, []byte(password + "\n"), 0o600},
		{registryConfig, []byte(config), 0o600},
	} {
		if err := fsutil.CreateFile(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	return os.Mkdir(filepath.Join(dir, registryData), 0o700)
}

// registryCerts makes a CA and a serving certificate for ips, valid for a day: a conformance
// run's registry lives as long as the run.
func registryCerts(ips []net.IP) (caPEM, certPEM, keyPEM []byte, err error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kubeup conformance registry CA"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kubeup conformance registry"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(24 * time.Hour), IPAddresses: ips,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

// registryCommand parses registry's flags.
func registryCommand(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("registry", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dir := fs.String("dir", "", "a new directory for the registry's files")
	listen := fs.String("listen", "127.0.0.1:5000", "where the registry listens, on loopback")
	guest := fs.String("guest", "10.0.2.100:5000", "where the machines reach it (qemu.hostForwards' guest address)")
	user := fs.String("username", "conformance", "the one user allowed to pull and push")
	if err := fs.Parse(args); err != nil || *dir == "" {
		return fmt.Errorf("registry: -dir is required (%s)", usage)
	}
	if err := registrySetup(*dir, *listen, *guest, *user); err != nil {
		return err
	}
	fmt.Fprintf(out, "registry files in %s: run it with: registry serve %s\n", *dir, filepath.Join(*dir, registryConfig))
	return nil
}
