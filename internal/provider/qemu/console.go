package qemu

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"

	"kubeup.dev/kubeup/internal/machine"
)

// Console is what a machine's serial log says about its bring-up: the host reads it without
// logging in.
type Console struct {
	Booted   bool                  // the kernel printed its banner
	Ignition string                // "ok" or "FAIL" once the initramfs applied (or failed) the config
	Phase1   *machine.Phase1Report // the agent's phase-1 report
	Timeline *machine.Timeline     // the agent's bring-up timeline, once the machine is Ready
	Boots    int                   // kernel banners seen: more than one after a reboot
	Last     string                // the last kubeup line
}

// ReadConsole parses machine name's serial log. The log spans every boot; the fields describe
// the latest one.
func (s *Spec) ReadConsole(name string) (Console, error) {
	var c Console
	f, err := os.Open(s.serialLog(name))
	if err != nil {
		return c, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.Contains(line, "Linux version "):
			c = Console{Booted: true, Boots: c.Boots + 1}
		case strings.Contains(line, "kubeup: ignition: ok"):
			c.Ignition = "ok"
		case strings.Contains(line, "kubeup: ignition: FAILED"):
			c.Ignition = "FAIL"
		}
		if i := strings.Index(line, machine.TimelinePrefix); i >= 0 {
			var t machine.Timeline
			if json.Unmarshal([]byte(line[i+len(machine.TimelinePrefix):]), &t) == nil {
				c.Timeline = &t
			}
		} else if i := strings.Index(line, machine.ReportPrefix); i >= 0 {
			var r machine.Phase1Report
			if json.Unmarshal([]byte(line[i+len(machine.ReportPrefix):]), &r) == nil {
				c.Phase1 = &r
			}
		} else if i := strings.Index(line, "kubeup: "); i >= 0 {
			c.Last = strings.TrimSpace(line[i:])
		}
	}
	return c, sc.Err()
}
