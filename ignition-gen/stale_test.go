package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/internal/renewal"
)

// A bundle whose master certificates are past the renewal point says so for each, with the
// command that refreshes it; a fresh one says nothing.
func TestStaleNotes(t *testing.T) {
	cfg, err := cluster.Load("../configs/local.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "bundle")
	issued := time.Now().Add(-300 * 24 * time.Hour)
	if _, err := pki.Ensure(dir, cfg, pki.Options{Now: issued}); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	staleNotes(&b, dir, "configs/local.yaml")
	for _, it := range renewal.MasterItems {
		if !strings.Contains(b.String(), "note: the bundle's "+it.Name+" expires ") || !strings.Contains(b.String(), "kubeup certs renew "+it.Name+" --config configs/local.yaml") {
			t.Errorf("no note for %s:\n%s", it.Name, b.String())
		}
	}
	b.Reset()
	timeNow = func() time.Time { return issued.Add(time.Hour) }
	defer func() { timeNow = time.Now }()
	staleNotes(&b, dir, "configs/local.yaml")
	if b.Len() != 0 {
		t.Errorf("notes for a fresh bundle:\n%s", b.String())
	}
}
