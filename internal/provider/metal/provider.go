package metal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"kubeup.dev/kubeup/internal/agent"
	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/fsutil"
	"kubeup.dev/kubeup/internal/ignition"
	"kubeup.dev/kubeup/internal/machine"
	"kubeup.dev/kubeup/internal/provider"
)

// Provider runs a cluster's machines on bare metal through the PXE server at
// metal.pxeServer.
type Provider struct {
	Config *cluster.Config
	// Dir keeps the machines' configs under ignition/, which `kubeup pxe serve --ignition`
	// serves.
	Dir string
	// CAFile is the cluster CA the PXE server's certificate chains to (the bundle's
	// pki/ca.crt); Machines and Replace read the reports over HTTPS trusting it alone.
	CAFile string
	// Out gets what the operator must do, and the configs written.
	Out io.Writer
	// PowerCycleTimeout bounds how long Replace waits for the machine to come back (default
	// 30 minutes).
	PowerCycleTimeout time.Duration
	// Reboot asks machine name's agent to reboot it (machine.RebootAnnotation, through the
	// API). nil, or when the request fails, Replace asks the operator to power-cycle it.
	Reboot func(ctx context.Context, name string) error
}

var (
	_ provider.Provider = (*Provider)(nil)
	_ provider.Booted   = (*Provider)(nil)
)

// Target is metal.
func (p *Provider) Target() string { return cluster.TargetMetal }

func (p *Provider) out() io.Writer {
	if p.Out == nil {
		return io.Discard
	}
	return p.Out
}

// IgnitionDir is where the machines' configs are written: what `kubeup pxe serve --ignition`
// serves.
func (p *Provider) IgnitionDir() string { return filepath.Join(p.Dir, "ignition") }

func (p *Provider) pxeServer() (string, error) {
	if p.Config.Metal == nil || p.Config.Metal.PXEServer == "" {
		return "", errors.New("target metal needs metal.pxeServer in the cluster config: the PXE server the machines boot from and report to")
	}
	return strings.TrimSuffix(p.Config.Metal.PXEServer, "/"), nil
}

// Prepare checks that the config names the PXE server. Bare metal needs no SAN and no render
// option: the machines' addresses are the config's.
func (p *Provider) Prepare(context.Context) (provider.Prepared, error) {
	_, err := p.pxeServer()
	return provider.Prepared{}, err
}

// RenderOptions are none, as Prepare gives: the configs name no device of the target.
func (p *Provider) RenderOptions(context.Context) (ignition.Options, error) {
	return ignition.Options{}, nil
}

// Channel is bare metal's: the PXE server hands each machine a pointer config holding no
// secret, then the whole config over HTTPS to that machine alone (package pxe).
func Channel(*cluster.Config, ignition.Config) (provider.Channel, error) {
	return provider.Channel{How: "PXE server (pointer + HTTPS)"}, nil
}

// Deliver writes each config (0600, atomically) where the PXE server reads it.
func (p *Provider) Deliver(_ context.Context, configs []ignition.Config) error {
	if err := fsutil.MkdirAll(p.IgnitionDir(), 0o700); err != nil {
		return err
	}
	for _, c := range configs {
		if err := p.write(c); err != nil {
			return err
		}
	}
	fmt.Fprintf(p.out(), "wrote %d machine configs to %s\n", len(configs), p.IgnitionDir())
	return nil
}

func (p *Provider) write(c ignition.Config) error {
	// A master's config holds the cluster's CA keys: readable by the owner alone.
	return fsutil.ReplaceFile(filepath.Join(p.IgnitionDir(), c.Name+".ign"), c.Raw, 0o600)
}

// Create starts nothing: kubeup has no power control over bare metal. It says what the
// operator does.
func (p *Provider) Create(context.Context) error {
	srv, err := p.pxeServer()
	if err != nil {
		return err
	}
	fmt.Fprintf(p.out(), "bare metal: kubeup pxe serve --ignition %s must serve these configs (its agents report to %s), then power the machines on: they network-boot (docs/pxe.md)\n",
		p.IgnitionDir(), srv)
	return nil
}

// reports are the PXE server's reports, by machine, oldest first.
func (p *Provider) reports(ctx context.Context) (map[string][]agent.PostedReport, error) {
	srv, err := p.pxeServer()
	if err != nil {
		return nil, err
	}
	c, err := agent.NewHTTPClient(p.CAFile)
	if err != nil {
		return nil, fmt.Errorf("the cluster CA to trust the PXE server with: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv+"/reports", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s/reports: %s", srv, resp.Status)
	}
	var reports map[string][]agent.PostedReport
	if err := json.NewDecoder(resp.Body).Decode(&reports); err != nil {
		return nil, fmt.Errorf("%s/reports: %w", srv, err)
	}
	return reports, nil
}

// console is what a machine's reports to the PXE server say about its bring-up, as its
// console would: the agent runs only once Ignition applied its config, so any report means
// the machine booted and applied it. Machines that have not reported are Unseen.
func console(name string, reports []agent.PostedReport) machine.Console {
	if len(reports) == 0 {
		return machine.Console{Unseen: true}
	}
	c := machine.Console{Booted: true, Boots: 1, Ignition: "ok"}
	for _, r := range reports {
		status := "ok"
		if !r.Pass {
			status = "FAIL"
		}
		c.Last = fmt.Sprintf("kubeup: %s phase %s %s %s: %s", name, r.Phase, r.Result, status, r.Message)
		if r.Phase == "1" {
			c.Phase1 = &machine.Phase1Report{Machine: name, Phase: "1", Pass: r.Pass}
		}
	}
	return c
}

// Machines is every machine of the config with what it reported to the PXE server. A server
// that does not answer (yet) is no error: each machine then says so, and a wait goes on.
func (p *Provider) Machines(ctx context.Context) ([]provider.Machine, error) {
	if _, err := p.pxeServer(); err != nil {
		return nil, err
	}
	reports, err := p.reports(ctx)
	var unreachable string
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, os.ErrNotExist) { // no CA: no bundle, nothing brought up
			return nil, err
		}
		unreachable = fmt.Sprintf("the PXE server does not answer: %v (is kubeup pxe serve running?)", err)
	}
	var ms []provider.Machine
	for _, m := range p.Config.Machines {
		c := console(m.Name, reports[m.Name])
		if unreachable != "" && c.Last == "" {
			c.Last = unreachable
		}
		// No power state to read: a machine counts as running; a dead one never reports.
		ms = append(ms, provider.Machine{Name: m.Name, Role: m.Role, Running: true, Console: c})
	}
	return ms, nil
}

// Endpoint is the config's: the host reaches the machines' network.
func (p *Provider) Endpoint(context.Context) (string, error) { return p.Config.EndpointURL(), nil }

// Logs says where to look when a machine does not come up.
func (p *Provider) Logs() string {
	return "each machine's reports: kubeup status, or the PXE server's --reports file; its console on the machine's own screen or BMC"
}

// Replace puts machine name's new config where the PXE server serves it, asks the machine's
// agent to reboot it (Reboot), or else the operator to power-cycle it (kubeup cannot power bare
// metal off or on), and waits: the machine network-boots again, from the PXE server's boot
// files, applies the new config and reports phase 1 anew.
func (p *Provider) Replace(ctx context.Context, name string, config ignition.Config) error {
	if _, ok := p.Config.Machine(name); !ok {
		return fmt.Errorf("metal: replace %s: no such machine in the config", name)
	}
	if err := fsutil.MkdirAll(p.IgnitionDir(), 0o700); err != nil {
		return err
	}
	// The machine's last phase-1 report before: the next one, whatever its clock says, is
	// the new boot's. (A server that does not answer yet has none.)
	var before time.Time
	if reports, err := p.reports(ctx); err == nil {
		before = lastPhase1(reports[name]).Time
	}
	if err := p.write(config); err != nil {
		return err
	}
	timeout := p.PowerCycleTimeout
	if timeout == 0 {
		timeout = 30 * time.Minute
	}
	how := "power-cycle it now (kubeup has no power control of bare metal)"
	if p.Reboot != nil {
		if err := p.Reboot(ctx, name); err != nil {
			how = fmt.Sprintf("its agent could not be asked to reboot it (%v): power-cycle it now", err)
		} else {
			how = "its agent was asked to reboot it"
		}
	}
	fmt.Fprintf(p.out(), "%s: its new config is in %s; %s: waiting up to %v for its new phase-1 report\n",
		name, p.IgnitionDir(), how, timeout)
	var last error
	err := wait.PollUntilContextTimeout(ctx, 5*time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		reports, err := p.reports(ctx)
		if err != nil {
			last = err
			return false, nil
		}
		r := lastPhase1(reports[name])
		switch {
		case r.Phase == "" || r.Time.Equal(before):
			return false, nil
		case !r.Pass:
			return false, fmt.Errorf("%s: phase 1 failed after the power cycle: %s", name, r.Message)
		}
		return true, nil
	})
	if err != nil && last != nil {
		err = fmt.Errorf("%w (the PXE server's reports: %v)", err, last)
	}
	if err != nil {
		return fmt.Errorf("metal: replace %s: %w", name, err)
	}
	return nil
}

// lastPhase1 is the latest phase-1 report of reports, or the zero report.
func lastPhase1(reports []agent.PostedReport) agent.PostedReport {
	for i := len(reports) - 1; i >= 0; i-- {
		if reports[i].Phase == "1" {
			return reports[i]
		}
	}
	return agent.PostedReport{}
}

// BootedImage is "": the PXE server's boot files are the operator's, and kubeup does not know
// which a machine booted.
func (p *Provider) BootedImage(context.Context, string) (string, error) { return "", nil }

// BootedConfig is the config the PXE server serves machine name, which it booted last: Replace
// writes it just before the machine boots again (an upgrade interrupted in between names the
// machine as unfinished).
func (p *Provider) BootedConfig(_ context.Context, name string) ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(p.IgnitionDir(), name+".ign"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("metal: no config for %s in %s (kubeup up writes them)", name, p.IgnitionDir())
	}
	return data, err
}

// Down removes the configs kubeup wrote for the PXE server; the machines are the operator's
// to power off.
func (p *Provider) Down(context.Context) error {
	if err := os.RemoveAll(p.Dir); err != nil {
		return fmt.Errorf("remove %s: %w", p.Dir, err)
	}
	fmt.Fprintf(p.out(), "removed %s (the PXE server no longer has their configs to hand out); the machines keep running: power them off yourself\n", p.Dir)
	return nil
}
