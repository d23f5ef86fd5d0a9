package main

import (
	"strings"
	"testing"
	"time"
)

// One line per certificate, soonest first within a machine; near expiry marked; a machine with
// no report says so; a damaged report is an error naming the machine.
func TestPrintCerts(t *testing.T) {
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	reports := map[string]string{
		"node-1": ``,
		"master": `[{"name":"apiserver","notAfter":"2027-12-01T00:00:00Z"},{"name":"admin.conf","notAfter":"2027-01-20T00:00:00Z"},{"name":"kubelet-client","notAfter":"2027-01-03T00:00:00Z"}]`,
	}
	var b strings.Builder
	doc, err := certsReport(reports, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.print(&b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	want := [][]string{
		{"MACHINE", "CERTIFICATE", "EXPIRES"},
		{"master", "kubelet-client", "2027-01-03 00:00", "2d", "under 7 days"},
		{"master", "admin.conf", "2027-01-20 00:00", "19d", "under 30 days"},
		{"master", "apiserver", "2027-12-01 00:00", "334d"},
		{"node-1", "no report"},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), b.String())
	}
	for i, w := range want {
		for _, s := range w {
			if !strings.Contains(lines[i], s) {
				t.Errorf("line %d %q lacks %q", i, lines[i], s)
			}
		}
	}
	if strings.Contains(lines[3], "days") {
		t.Errorf("a certificate with 334 days left is marked: %q", lines[3])
	}
	reports["node-2"] = `{not json`
	if _, err := certsReport(reports, now); err == nil || !strings.Contains(err.Error(), "node-2") {
		t.Errorf("a damaged report: %v, want an error naming node-2", err)
	}
}
