package machine

import (
	"bufio"
	"encoding/json"
	"io"
	"strings"
)

// Console is what a machine's console output says about its bring-up: the host reads it
// without logging in, from a VM's serial log, EC2's GetConsoleOutput or the like.
type Console struct {
	Booted   bool          // the kernel printed its banner
	Ignition string        // "ok" or "FAIL" once the initramfs applied (or failed) the config
	Phase1   *Phase1Report // the agent's phase-1 report
	Timeline *Timeline     // the agent's bring-up timeline, once the machine is Ready
	Boots    int           // kernel banners seen: more than one after a reboot
	Last     string        // the last kubeup line
	// Unseen: the provider sees nothing of the machine until its agent first reports (bare
	// metal: no console, no power state), so nothing yet says it is even powered on.
	Unseen bool
}

// Lines the image's first boot prints when it applied (or failed to apply) the config.
const (
	IgnitionOK     = "kubeup: ignition: ok"
	IgnitionFailed = "kubeup: ignition: FAILED"
)

// ReadConsole parses console output. It may span several boots; the fields describe the
// latest one.
func ReadConsole(r io.Reader) (Console, error) {
	var c Console
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.Contains(line, "Linux version "):
			c = Console{Booted: true, Boots: c.Boots + 1}
		case strings.Contains(line, IgnitionOK):
			c.Ignition = "ok"
		case strings.Contains(line, IgnitionFailed):
			c.Ignition = "FAIL"
		}
		if i := strings.Index(line, TimelinePrefix); i >= 0 {
			var t Timeline
			if json.Unmarshal([]byte(line[i+len(TimelinePrefix):]), &t) == nil {
				c.Timeline = &t
			}
		} else if i := strings.Index(line, ReportPrefix); i >= 0 {
			var r Phase1Report
			if json.Unmarshal([]byte(line[i+len(ReportPrefix):]), &r) == nil {
				c.Phase1 = &r
			}
		} else if i := strings.Index(line, "kubeup: "); i >= 0 {
			c.Last = strings.TrimSpace(line[i:])
		}
	}
	return c, sc.Err()
}

// Stage is the furthest step of the bring-up the console shows.
func (c Console) Stage() string {
	switch {
	case c.Phase1 != nil && c.Phase1.Pass:
		return "phase 1 passed"
	case c.Phase1 != nil:
		return "phase 1 FAILED"
	case c.Ignition == "ok":
		return "config applied"
	case c.Ignition != "":
		return "config FAILED"
	case c.Booted:
		return "booted"
	case c.Unseen:
		return "no report yet"
	}
	return "powered on"
}
