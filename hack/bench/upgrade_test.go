package main

import "testing"

// The bench finds kubeup upgrade's last line in the test's output, as the test logs it.
func TestUpgradeDoneLine(t *testing.T) {
	line := "    cluster_test.go:173: [ 21m3s] upgrade to v1.37.2 done in 21m3s (snapshot 5s, master 5m50s, node-1 7m2s, node-2 6m40s, add-ons 12s)"
	m := upgradeDone.FindStringSubmatch(line)
	if m == nil || m[1] != "v1.37.2" || m[2] != "21m3s" || m[3] != "snapshot 5s, master 5m50s, node-1 7m2s, node-2 6m40s, add-ons 12s" {
		t.Errorf("upgradeDone on %q: %q", line, m)
	}
}
