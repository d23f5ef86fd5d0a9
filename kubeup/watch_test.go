package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"kubeup.dev/kubeup/internal/machine"
)

func TestMilestonesKeepTheFirstTime(t *testing.T) {
	m := newMilestones(time.Now().Add(-90 * time.Second))
	m.reached("API")
	m.at["API"] = 90 * time.Second // as if reached 90 s after power-on
	m.reached("phase 3")
	m.reached("API") // seen again later: the first time counts
	if got := m.String(); !strings.HasPrefix(got, "API 90s, phase 3 ") || strings.Count(got, "API") != 1 {
		t.Errorf("%q", got)
	}
}

// `kubeup status -o json` has field names a script can rely on.
func TestStatusJSON(t *testing.T) {
	m := machineState{Name: "node-1", Role: "node", Running: true, Registered: true, Ready: true,
		Console: machine.Console{Booted: true, Boots: 1, Ignition: "ok", Last: "kubeup: node-1 ok",
			Phase1:   &machine.Phase1Report{Machine: "node-1", Pass: true},
			Timeline: &machine.Timeline{Machine: "node-1", Steps: []machine.Step{{Name: machine.StepReady, Seconds: 190}}}}}
	data, err := json.Marshal(m.status())
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	json.Unmarshal(data, &back)
	for field, want := range map[string]any{"name": "node-1", "role": "node", "stage": "Ready", "boots": 1.0, "phase1Pass": true, "lastReport": "kubeup: node-1 ok"} {
		if back[field] != want {
			t.Errorf("%s: %v, want %v (in %s)", field, back[field], want, data)
		}
	}
	steps, _ := back["timeline"].(map[string]any)["steps"].([]any)
	if len(steps) != 1 || steps[0].(map[string]any)["name"] != "ready" {
		t.Errorf("timeline: %s", data)
	}
}
