package main

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// The registry's files: a certificate the CA vouches for at the guest and loopback addresses
// and nowhere else, the key and the password readable by their owner only, a bcrypt entry that
// takes the password, and a config naming them all. An address off loopback, or a directory
// used before, is refused.
func TestRegistrySetup(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "registry")
	if err := registrySetup(dir, "127.0.0.1:5443", "10.0.2.100:5000", "puller"); err != nil {
		t.Fatal(err)
	}
	read := func(name string, mode os.FileMode) []byte {
		t.Helper()
		p := filepath.Join(dir, name)
		data, err := os.ReadFile(p)
		fi, serr := os.Stat(p)
		if err != nil || serr != nil || fi.Mode().Perm() != mode {
			t.Fatalf("%s: %v %v, want mode %o", name, err, serr, mode)
		}
		return data
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(read(registryCA, 0o644)) {
		t.Fatal("no CA certificate")
	}
	pair, err := tls.X509KeyPair(read(registryCert, 0o644), read(registryKey, 0o600))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for host, ok := range map[string]bool{"10.0.2.100": true, "127.0.0.1": true, "10.0.2.2": false, "localhost": false} {
		_, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: host})
		if (err == nil) != ok {
			t.Errorf("the certificate for %s: %v, want valid %v", host, err, ok)
		}
	}
	password := strings.TrimSpace(string(read(registryPassword, 0o600)))
	user, hash, _ := strings.Cut(strings.TrimSpace(string(read(registryHtpasswd, 0o600))), ":")
	if user != "puller" || bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil || len(password) < 32 {
		t.Errorf("htpasswd %q does not take the %d-character password for puller", hash, len(password))
	}
	config := string(read(registryConfig, 0o600))
	for _, want := range []string{"addr: 127.0.0.1:5443", filepath.Join(dir, registryCert), filepath.Join(dir, registryHtpasswd), filepath.Join(dir, registryData)} {
		if !strings.Contains(config, want) {
			t.Errorf("config lacks %q:\n%s", want, config)
		}
	}
	if err := registrySetup(dir, "127.0.0.1:5443", "10.0.2.100:5000", "puller"); err == nil {
		t.Error("a directory used before was taken")
	}
	if err := registrySetup(filepath.Join(t.TempDir(), "r"), "0.0.0.0:5000", "10.0.2.100:5000", "puller"); err == nil {
		t.Error("a registry listening beyond loopback was set up")
	}
}
