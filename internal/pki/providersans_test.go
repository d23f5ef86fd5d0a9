package pki_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"kubeup.dev/kubeup/internal/pki"
)

// TestProviderSANs: an address recorded before the bundle is made is in the API server
// certificate; one recorded after is a conflict naming certs renew, which then covers it, and
// every later Ensure (kubeup, ignition-gen) agrees with the renewed certificate.
func TestProviderSANs(t *testing.T) {
	cfg := loadConfig(t)
	dir := t.TempDir()
	if err := pki.SetProviderSANs(dir, []string{"203.0.113.10"}); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.Ensure(dir, cfg, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	if exists, covers, err := pki.APIServerCovers(dir, "203.0.113.10"); !exists || !covers || err != nil {
		t.Fatalf("new bundle: certificate exists %v, covers the provider's address %v (%v)", exists, covers, err)
	}
	if len(cfg.ControlPlane.CertSANs) != 2 {
		t.Errorf("Ensure changed the caller's config: certSANs %v", cfg.ControlPlane.CertSANs)
	}

	// The provider's address changed (a new Elastic IP after down and up).
	if err := pki.SetProviderSANs(dir, []string{"203.0.113.11"}); err != nil {
		t.Fatal(err)
	}
	if _, covers, _ := pki.APIServerCovers(dir, "203.0.113.11"); covers {
		t.Fatal("recording an address changed the certificate")
	}
	_, err := pki.Ensure(dir, cfg, pki.Options{ConfigPath: "configs/x.yaml"})
	var ce *pki.ConflictError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "missing IP SAN 203.0.113.11") ||
		!strings.Contains(err.Error(), "kubeup certs renew apiserver --config configs/x.yaml") {
		t.Fatalf("Ensure with a new provider address: %v; want a conflict naming certs renew apiserver", err)
	}
	if _, err := pki.Renew(dir, cfg, "apiserver", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, covers, _ := pki.APIServerCovers(dir, "203.0.113.11"); !covers {
		t.Error("the renewed certificate does not cover the provider's address")
	}
	if _, err := pki.Ensure(dir, cfg, pki.Options{}); err != nil {
		t.Errorf("Ensure after the renewal: %v", err)
	}
}
