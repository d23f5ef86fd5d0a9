package pki

import (
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"slices"
	"time"
)

// Reissue signs a new certificate for the key of oldPEM with the CA of caPEM/caKeyPEM, saying
// exactly what the old one said (subject, SANs, key usages): what a machine's agent does to
// renew a leaf certificate before it expires, with nothing but the CA on its disk. The key is
// kept, as kubeadm's renewal keeps it, so nothing that pinned it breaks. The new certificate
// is valid for lifetime from now (never beyond the CA). caPEM may be a trust bundle: the
// first certificate is the CA that signs (its key is caKeyPEM), and the old certificate must
// have been issued by one of them. During a CA rotation the bundle is new CA then old CA, and
// this moves a leaf from the old CA to the new one; outside a rotation it is the one CA, and a
// certificate from elsewhere is refused (renewing it would hand out one nobody trusts).
func Reissue(oldPEM, caPEM, caKeyPEM []byte, now time.Time, lifetime time.Duration) ([]byte, error) {
	old, err := decodeCert(oldPEM)
	if err != nil {
		return nil, fmt.Errorf("the certificate to renew: %w", err)
	}
	trusted, err := CertsPEM(caPEM)
	if err != nil {
		return nil, fmt.Errorf("the CA certificate: %w", err)
	}
	ca := trusted[0]
	caKey, err := decodeKey(caKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("the CA key: %w", err)
	}
	if !samePublicKey(ca.PublicKey, caKey.Public()) {
		return nil, fmt.Errorf("the CA key does not belong to the CA certificate %q", ca.Subject.CommonName)
	}
	if !slices.ContainsFunc(trusted, func(c *x509.Certificate) bool { return old.CheckSignatureFrom(c) == nil }) {
		return nil, fmt.Errorf("%q was not issued by the CA %q: %w", old.Subject.CommonName, ca.Subject.CommonName, old.CheckSignatureFrom(ca))
	}
	if lifetime <= 0 {
		return nil, fmt.Errorf("lifetime %v: must be positive", lifetime)
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               old.Subject,
		DNSNames:              old.DNSNames,
		IPAddresses:           old.IPAddresses,
		URIs:                  old.URIs,
		EmailAddresses:        old.EmailAddresses,
		NotBefore:             now.Add(-Backdate).UTC(),
		NotAfter:              now.Add(lifetime).UTC(),
		KeyUsage:              old.KeyUsage,
		ExtKeyUsage:           old.ExtKeyUsage,
		BasicConstraintsValid: true,
	}
	if tmpl.NotAfter.After(ca.NotAfter) {
		tmpl.NotAfter = ca.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, old.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("sign %q: %w", old.Subject.CommonName, err)
	}
	return encodeCert(der), nil
}

// Lifetime is how long cert was issued for (NotAfter - NotBefore, less the backdating), the
// lifetime a renewal keeps.
func Lifetime(cert *x509.Certificate) time.Duration {
	d := cert.NotAfter.Sub(cert.NotBefore) - Backdate
	if d <= 0 {
		d = cert.NotAfter.Sub(cert.NotBefore)
	}
	return d
}
