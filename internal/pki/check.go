package pki

import (
	"crypto/x509"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// mismatches lists how cert differs from spec: names, organisations, SANs, usages, issuer and
// expiry. Empty means the certificate is what the config asks for.
func mismatches(spec CertSpec, cert *x509.Certificate, ca *x509.Certificate, now time.Time) []string {
	var out []string
	if cert.Subject.CommonName != spec.CN {
		out = append(out, fmt.Sprintf("CN is %q, config wants %q", cert.Subject.CommonName, spec.CN))
	}
	if !sameSet(cert.Subject.Organization, spec.Orgs) {
		out = append(out, fmt.Sprintf("O is %v, config wants %v", cert.Subject.Organization, spec.Orgs))
	}
	if miss, extra := diff(cert.DNSNames, spec.DNS); len(miss)+len(extra) > 0 {
		out = append(out, describe("DNS SAN", miss, extra))
	}
	var have []string
	for _, ip := range cert.IPAddresses {
		if a, ok := netip.AddrFromSlice(ip); ok {
			have = append(have, a.Unmap().String())
		}
	}
	var want []string
	for _, ip := range spec.IPs {
		want = append(want, ip.String())
	}
	if miss, extra := diff(have, want); len(miss)+len(extra) > 0 {
		out = append(out, describe("IP SAN", miss, extra))
	}
	if !slices.Equal(cert.ExtKeyUsage, spec.Usages) {
		out = append(out, fmt.Sprintf("extended key usages are %v, config wants %v", cert.ExtKeyUsage, spec.Usages))
	}
	if err := cert.CheckSignatureFrom(ca); err != nil {
		out = append(out, fmt.Sprintf("not signed by %s: %v", ca.Subject.CommonName, err))
	}
	if now.After(cert.NotAfter) {
		out = append(out, fmt.Sprintf("expired on %s", cert.NotAfter.Format(time.RFC3339)))
	}
	return out
}

func describe(what string, missing, extra []string) string {
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "missing "+what+" "+strings.Join(missing, ", "))
	}
	if len(extra) > 0 {
		parts = append(parts, "unexpected "+what+" "+strings.Join(extra, ", "))
	}
	return strings.Join(parts, "; ")
}

// diff returns what want has that have lacks, and what have has that want lacks.
func diff(have, want []string) (missing, extra []string) {
	for _, w := range want {
		if !slices.Contains(have, w) {
			missing = append(missing, w)
		}
	}
	for _, h := range have {
		if !slices.Contains(want, h) {
			extra = append(extra, h)
		}
	}
	return missing, extra
}

func sameSet(a, b []string) bool {
	m, e := diff(a, b)
	return len(m)+len(e) == 0
}
