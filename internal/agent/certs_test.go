package agent

import (
	"crypto/x509"
	"testing"
	"time"

	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/internal/renewal"
)

// The loop wakes when the first certificate becomes due, not at the next round: with 12-minute
// certificates and a 10-minute round, waiting for the round could let one expire.
func TestCertWatchWait(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	cert := func(issued time.Time, life time.Duration) renewal.Cert {
		return renewal.Cert{Cert: &x509.Certificate{NotBefore: issued.Add(-pki.Backdate), NotAfter: issued.Add(life)}}
	}
	w := &CertWatch{Renewer: &renewal.Renewer{}, Now: func() time.Time { return now }}
	for _, tc := range []struct {
		name  string
		certs []renewal.Cert
		want  time.Duration
	}{
		{"a year's certificates wait the whole round", []renewal.Cert{cert(now, 365*24*time.Hour)}, 10 * time.Minute},
		// Due when a third of 12 minutes is left: 8 minutes after issue.
		{"the soonest due sets the wait", []renewal.Cert{cert(now, 365*24*time.Hour), cert(now, 12*time.Minute), cert(now, 15*time.Minute)}, 8 * time.Minute},
		{"a due certificate that could not be renewed is tried again after minWait", []renewal.Cert{cert(now.Add(-time.Hour), 12*time.Minute)}, minWait},
		{"nothing to renew", nil, 10 * time.Minute},
	} {
		if got := w.wait(tc.certs, 10*time.Minute); got != tc.want {
			t.Errorf("%s: wait %v, want %v", tc.name, got, tc.want)
		}
	}
	node := &CertWatch{}
	if got := node.wait([]renewal.Cert{cert(now, time.Minute)}, 10*time.Minute); got != 10*time.Minute {
		t.Errorf("a node's agent renews nothing and waits the round: %v", got)
	}
}
