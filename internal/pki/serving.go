package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"net/netip"
	"time"
)

// ServingCert issues a short-lived TLS serving certificate from the bundle's cluster CA for a
// service of the cluster's own (the PXE server), naming hosts (DNS names or IP addresses).
// Nothing is written: the key lives as long as the process, and clients that trust the
// cluster CA (Ignition's certificateAuthorities) trust it.
func ServingCert(b *Bundle, cn string, hosts []string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	spec := CertSpec{Name: cn, CN: cn, Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, h := range hosts {
		if ip, err := netip.ParseAddr(h); err == nil {
			spec.IPs = append(spec.IPs, ip)
		} else {
			spec.DNS = append(spec.DNS, h)
		}
	}
	return memoryLeaf(b, spec, validity)
}

// ClientCert issues a short-lived client certificate from the bundle's cluster CA for a tool
// of kubeup's own that talks to the API server with a narrow identity (user cn in groups orgs,
// which RBAC binds): the node token's distributors. Like ServingCert, nothing is written.
func ClientCert(b *Bundle, cn string, orgs []string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	return memoryLeaf(b, CertSpec{Name: cn, CN: cn, Orgs: orgs, Usages: clientAuth}, validity)
}

// memoryLeaf issues spec from the cluster CA with a new P-256 key that lives only in memory.
func memoryLeaf(b *Bundle, spec CertSpec, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	ca, err := decodeCert(b.File("pki/ca.crt"))
	if err != nil {
		return nil, nil, fmt.Errorf("pki/ca.crt: %w", err)
	}
	caKey, err := decodeKey(b.File("pki/ca.key"))
	if err != nil {
		return nil, nil, fmt.Errorf("pki/ca.key: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	certPEM, err = newLeaf(spec, key.Public(), ca, caKey, time.Now(), validity)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = encodeKey(key)
	return certPEM, keyPEM, err
}
