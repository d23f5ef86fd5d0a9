package machine

import (
	"testing"
	"time"
)

// TestGuestinfoCarriesTheConsole: the lines an agent prints, each put in the variable
// GuestinfoKey names (as the agent's info-set does), read back as the console they came from.
func TestGuestinfoCarriesTheConsole(t *testing.T) {
	vars := map[string]string{}
	get := func(k string) string { return vars[k] }

	c := GuestinfoConsole(get, false)
	if c.Booted || c.Stage() != "powered on" {
		t.Fatalf("no variables, no heartbeat: %+v, stage %q", c, c.Stage())
	}
	if c := GuestinfoConsole(get, true); !c.Booted || c.Boots != 1 || c.Stage() != "booted" {
		t.Fatalf("heartbeat alone: %+v, stage %q", c, c.Stage())
	}

	report := Phase1Report{Machine: "node-1", Phase: "1", Pass: true, Checks: []Check{{Name: "kubelet", Pass: true, Evidence: "active"}}}
	timeline := Timeline{Machine: "node-1", Boot: time.Unix(0, 0).UTC(), Steps: []Step{{Name: StepReady, Seconds: 300}}}
	for _, line := range []string{
		"[   12.3] systemd[1]: Started kubelet.service", // not kubeup's: not published
		"kubeup: node-1 phase 1 NodeSpec ok: 12 checks",
		report.Line(),
		"kubeup: node-1 certificates: kubelet renewed",
		timeline.Line(),
	} {
		if k := GuestinfoKey(line); k != "" {
			vars[k] = line
		}
	}
	if len(vars) != 3 {
		t.Fatalf("variables %v, want the last kubeup line, the report and the timeline", vars)
	}
	// The heartbeat may lag the agent's first line: a line is proof enough of a boot.
	c = GuestinfoConsole(get, false)
	if !c.Booted || c.Ignition != "ok" || c.Stage() != "phase 1 passed" {
		t.Errorf("console %+v, stage %q: want booted, config applied, phase 1 passed", c, c.Stage())
	}
	if c.Phase1 == nil || c.Phase1.Machine != "node-1" || len(c.Phase1.Checks) != 1 {
		t.Errorf("phase-1 report %+v", c.Phase1)
	}
	if c.Timeline == nil || len(c.Timeline.Steps) != 1 {
		t.Errorf("timeline %+v", c.Timeline)
	}
	if c.Last != "kubeup: node-1 certificates: kubelet renewed" {
		t.Errorf("last line %q", c.Last)
	}
}
