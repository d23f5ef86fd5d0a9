package machine

import (
	"strings"
)

// On vSphere nobody reads a VM's serial console from outside, so the agent also leaves its
// console lines in guestinfo: VMware Tools' info-set, from inside the guest, sets a variable
// that vSphere shows in the VM's extraConfig, which the host reads through the vSphere API
// without logging in. One variable per kind of line, each holding the latest line of that kind
// as the console shows it, so that ReadConsole parses them as it parses a serial log.
const (
	// GuestinfoLast holds the latest "kubeup: ..." line.
	GuestinfoLast = "guestinfo.kubeup.last"
	// GuestinfoReport holds the phase-1 report line (ReportPrefix).
	GuestinfoReport = "guestinfo.kubeup.report"
	// GuestinfoTimeline holds the timeline line (TimelinePrefix).
	GuestinfoTimeline = "guestinfo.kubeup.timeline"
)

// GuestinfoKeys are the variables, in the order GuestinfoConsole reads them.
var GuestinfoKeys = []string{GuestinfoLast, GuestinfoReport, GuestinfoTimeline}

// GuestinfoKey is the variable a console line goes to, or "" for a line that is not kubeup's.
func GuestinfoKey(line string) string {
	switch {
	case strings.HasPrefix(line, ReportPrefix):
		return GuestinfoReport
	case strings.HasPrefix(line, TimelinePrefix):
		return GuestinfoTimeline
	case strings.HasPrefix(line, "kubeup: "):
		return GuestinfoLast
	}
	return ""
}

// GuestinfoConsole is what a VM's guestinfo variables say about its bring-up. get returns a
// variable's value ("" when unset); booted says whether the guest runs (its VMware Tools
// heartbeat). The agent runs only once Ignition applied the config that starts it, so any
// line from it means the config was applied.
func GuestinfoConsole(get func(key string) string, booted bool) Console {
	var lines []string
	for _, k := range GuestinfoKeys {
		if v := get(k); v != "" {
			lines = append(lines, v)
		}
	}
	if len(lines) > 0 {
		booted = true
		lines = append([]string{IgnitionOK}, lines...)
	}
	c, _ := ReadConsole(strings.NewReader(strings.Join(lines, "\n"))) // a string reader does not fail
	if booted {
		c.Booted, c.Boots = true, 1
	}
	return c
}
