package machine

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Check is one node-spec check of phase 1.
type Check struct {
	Name     string `json:"name"`
	Pass     bool   `json:"pass"`
	Evidence string `json:"evidence"`
}

// Phase1Report is what a machine says about itself once it is up: one JSON line on the
// console, so a host can read it from the serial log without logging in.
type Phase1Report struct {
	Machine string  `json:"machine"`
	Phase   string  `json:"phase"`
	Pass    bool    `json:"pass"`
	Checks  []Check `json:"checks"`
	Seconds float64 `json:"seconds"` // since boot
}

// ReportPrefix starts the report line on the console.
const ReportPrefix = "kubeup-report "

// Line renders the report as its console line.
func (r Phase1Report) Line() string {
	b, _ := json.Marshal(r)
	return ReportPrefix + string(b)
}

// A machine's timeline is when it reached each step of its bring-up, in seconds since its
// kernel started: the machine's own clock, so a slow host or a late console read does not
// blur it. The agent prints it once the machine's Node is Ready, as a console line and an
// annotation on the Node, for `kubeup up`, `kubeup status -o json` and the bench to show where
// the time went.
const (
	TimelinePrefix     = "kubeup-timeline "
	TimelineAnnotation = "kubeup.dev/timeline"
)

// The steps, in bring-up order. A step the machine does not have (a node has no API server)
// is left out.
const (
	StepKernel     = "kernel"     // 0 by definition
	StepUserspace  = "userspace"  // the initramfs applied the config and handed over to systemd
	StepContainerd = "containerd" // containerd.service active
	StepKubelet    = "kubelet"    // kubelet.service active
	StepPhase1     = "phase-1"    // the agent's node-spec checks done
	StepAPI        = "api"        // the master's agent saw the API answer
	StepBootstrap  = "bootstrap"  // the master's agent applied the add-ons
	StepRegistered = "registered" // the Node object created
	StepCNI        = "cni"        // flanneld wrote the node's subnet.env
	StepReady      = "ready"      // the Node Ready
)

// StaticPodStep names the step of a control-plane static pod's first container start.
func StaticPodStep(component string) string { return "pod/" + component }

// Step is one moment of the bring-up.
type Step struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"` // since the kernel started
}

// Timeline is one machine's bring-up.
type Timeline struct {
	Machine string    `json:"machine"`
	Boot    time.Time `json:"boot"` // wall-clock time the kernel started
	Steps   []Step    `json:"steps"`
}

// Line renders the timeline as its console line.
func (t Timeline) Line() string {
	b, _ := json.Marshal(t)
	return TimelinePrefix + string(b)
}

// At returns when step was reached.
func (t Timeline) At(step string) (float64, bool) {
	for _, s := range t.Steps {
		if s.Name == step {
			return s.Seconds, true
		}
	}
	return 0, false
}

// String is the timeline on one line: "userspace 12s, containerd 20s, …".
func (t Timeline) String() string {
	var parts []string
	for _, s := range t.Steps {
		if s.Name != StepKernel {
			parts = append(parts, fmt.Sprintf("%s %.0fs", s.Name, s.Seconds))
		}
	}
	return strings.Join(parts, ", ")
}
