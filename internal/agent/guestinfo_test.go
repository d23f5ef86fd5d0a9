package agent

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/vmware/vmw-guestinfo/vmcheck"

	"kubeup.dev/kubeup/internal/machine"
)

// TestGuestinfoPublishesKubeupLines: what the agent prints, in whatever chunks, reaches
// guestinfo line by line, only kubeup's lines, and the vSphere provider's reading of those
// variables gives the machine's stage. A VM that refuses info-set costs one line on stderr.
func TestGuestinfoPublishesKubeupLines(t *testing.T) {
	vars := map[string]string{}
	sets := 0
	g := &Guestinfo{Set: func(k, v string) error { sets++; vars[k] = v; return nil }}
	report := machine.Phase1Report{Machine: "m", Phase: "1", Pass: true}
	text := "kubeup: m phase 1 NodeSpec ok: 1 checks\nnot ours\n" + report.Line() + "\n" + strings.Repeat("x", 2*valueLimit) + "\n"
	for len(text) > 0 { // 7-byte chunks: lines arrive split
		n := min(7, len(text))
		if _, err := g.Write([]byte(text[:n])); err != nil {
			t.Fatal(err)
		}
		text = text[n:]
	}
	if sets != 2 || vars[machine.GuestinfoLast] != "kubeup: m phase 1 NodeSpec ok: 1 checks" || vars[machine.GuestinfoReport] != report.Line() {
		t.Fatalf("%d sets, variables %v", sets, vars)
	}
	if c := machine.GuestinfoConsole(func(k string) string { return vars[k] }, true); c.Stage() != "phase 1 passed" {
		t.Errorf("stage from guestinfo: %q", c.Stage())
	}
	if _, err := fmt.Fprintf(g, "kubeup: m still going"); err != nil || sets != 2 {
		t.Errorf("an unterminated line was published (%d sets, %v)", sets, err)
	}

	var stderr bytes.Buffer
	g = &Guestinfo{Set: func(string, string) error { return errors.New("Permission denied") }, Errors: &stderr}
	fmt.Fprintln(g, "kubeup: a")
	fmt.Fprintln(g, "kubeup: b")
	if got := strings.Count(stderr.String(), "Permission denied"); got != 1 {
		t.Errorf("refused info-set reported %d times, want once:\n%s", got, stderr.String())
	}
}

// TestConsoleIsStdoutOffVMware: on any other hypervisor (this host, QEMU, EC2) the agent
// prints to stdout alone and never touches VMware's backdoor port.
func TestConsoleIsStdoutOffVMware(t *testing.T) {
	vmware := vmcheck.IsVirtualCPU()
	t.Logf("CPUID says VMware: %v", vmware)
	if !vmware && Console() != os.Stdout {
		t.Fatal("Console() found VMware Tools on a host that is not a VMware VM")
	}
}
