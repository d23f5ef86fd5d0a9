package agent

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"

	"github.com/vmware/vmw-guestinfo/rpcvmx"
	"github.com/vmware/vmw-guestinfo/vmcheck"

	"kubeup.dev/kubeup/internal/machine"
)

// Guestinfo passes the agent's console lines on to the VM's guestinfo: each kubeup line goes
// to the variable machine.GuestinfoKey names, replacing the one before, where the vSphere
// provider reads it (a vSphere VM's serial console is not readable from outside). Write takes
// any chunks; a line is published once its newline arrives.
type Guestinfo struct {
	// Set sets one guestinfo variable. A failure is reported once on Errors and not retried:
	// the console keeps every line anyway.
	Set    func(key, value string) error
	Errors io.Writer

	mu     sync.Mutex
	buf    []byte
	failed bool
}

// valueLimit keeps a variable well inside what VMware Tools passes in one RPC message.
const valueLimit = 48 << 10

func (g *Guestinfo) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.buf = append(g.buf, p...)
	for {
		i := bytes.IndexByte(g.buf, '\n')
		if i < 0 {
			break
		}
		line := string(bytes.TrimRight(g.buf[:i], "\r"))
		g.buf = g.buf[i+1:]
		key := machine.GuestinfoKey(line)
		if key == "" || len(line) > valueLimit || g.failed {
			continue
		}
		if err := g.Set(key, line); err != nil {
			g.failed = true
			if g.Errors != nil {
				fmt.Fprintf(g.Errors, "kubeup-agent: guestinfo: %s: %v; reports stay on the console only\n", key, err)
			}
		}
	}
	// An unterminated line that never ends is not kept for ever.
	if len(g.buf) > valueLimit {
		g.buf = g.buf[:0]
	}
	return len(p), nil
}

// Console is where the agent prints its lines: stdout, which the unit sends to the console,
// and, on a VMware VM, guestinfo too.
func Console() io.Writer {
	set, ok := vmwareGuestinfo()
	if !ok {
		return os.Stdout
	}
	return io.MultiWriter(os.Stdout, &Guestinfo{Set: set, Errors: os.Stderr})
}

// vmwareGuestinfo returns a setter of guestinfo variables through VMware Tools' RPC channel
// (the backdoor that vmtoolsd's info-set uses), or false when this is no VMware VM. The CPUID
// check comes first: it needs no privilege and keeps the agent from touching the backdoor port
// on any other hypervisor. Every call runs on one goroutine locked to its OS thread, because
// the I/O privilege the backdoor may need is per thread.
func vmwareGuestinfo() (func(key, value string) error, bool) {
	if !vmcheck.IsVirtualCPU() {
		return nil, false
	}
	type req struct {
		key, value string
		done       chan error
	}
	reqs := make(chan req)
	ready := make(chan bool)
	go func() {
		runtime.LockOSThread()
		ok, err := vmcheck.IsVirtualWorld(true)
		ready <- ok && err == nil
		if !ok || err != nil {
			return
		}
		cfg := rpcvmx.NewConfig()
		for r := range reqs {
			r.done <- cfg.SetString(r.key, r.value)
		}
	}()
	if !<-ready {
		return nil, false
	}
	return func(key, value string) error {
		done := make(chan error, 1)
		reqs <- req{key, value, done}
		return <-done
	}, true
}
