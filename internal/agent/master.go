package agent

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"kubeup.dev/kubeup/internal/machine"
)

// Master is the agent on the control-plane machine.
type Master struct {
	Config Config
	// Root prefixes every path of Config (a test runs the agent against a scratch tree).
	Root     string
	Reporter *Reporter
	// Timeline, if set, hears when the API answered and the add-ons were applied.
	Timeline *Recorder
}

func (m *Master) path(p string) string { return filepath.Join(m.Root, p) }

// RESTConfig loads a kubeconfig of the machine.
func (m *Master) RESTConfig(kubeconfig string) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", m.path(kubeconfig))
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", kubeconfig, err)
	}
	return cfg, nil
}

// Bootstrap waits for the API server, then applies the objects of the addons directory by
// server-side apply: first the files that need super-admin.conf (the binding that makes
// admin.conf a cluster admin), then everything else as admin.conf. Running it again applies the
// same objects and changes nothing.
func (m *Master) Bootstrap(ctx context.Context, timeout time.Duration) (ApplyResult, error) {
	var total ApplyResult
	super, err := m.RESTConfig(m.Config.SuperKubeconfig)
	if err != nil {
		return total, err
	}
	admin, err := m.RESTConfig(m.Config.Kubeconfig)
	if err != nil {
		return total, err
	}
	progress := func(waited time.Duration, last string) {
		if m.Reporter != nil && m.Reporter.Console != nil {
			fmt.Fprintf(m.Reporter.Console, "kubeup: %s waiting for the API server (%v): %s; %s\n",
				m.Reporter.Machine, waited.Round(time.Second), last, m.Diagnose(ctx))
		}
	}
	if err := WaitForAPI(ctx, super, timeout, progress); err != nil {
		m.report(ctx, "3", "APIReady", false, err.Error())
		return total, err
	}
	m.Timeline.Now(machine.StepAPI)
	m.report(ctx, "3", "APIReady", true, "the API server answers /readyz")
	if m.Reporter != nil {
		if m.Reporter.Client, err = kubernetes.NewForConfig(admin); err != nil {
			return total, err
		}
		m.Reporter.Events = NewEvents(ctx, m.Reporter.Client)
	}
	entries, err := os.ReadDir(m.path(m.Config.AddonsDir))
	if err != nil {
		return total, err
	}
	var others []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".yaml") && !slices.Contains(m.Config.SuperAdminFiles, e.Name()) {
			others = append(others, e.Name())
		}
	}
	for _, step := range []struct {
		cfg   *rest.Config
		files []string
	}{{super, m.Config.SuperAdminFiles}, {admin, others}} {
		a, err := NewApplier(step.cfg)
		if err != nil {
			return total, err
		}
		r, err := a.ApplyFiles(ctx, m.path(m.Config.AddonsDir), step.files)
		total.Objects += r.Objects
		total.Changed += r.Changed
		if err != nil {
			m.report(ctx, "3", "Bootstrap", false, err.Error())
			return total, err
		}
	}
	m.Timeline.Now(machine.StepBootstrap)
	m.report(ctx, "3", "Bootstrap", true, fmt.Sprintf("applied %d objects (%d changed)", total.Objects, total.Changed))
	return total, nil
}

func (m *Master) report(ctx context.Context, phase, result string, ok bool, msg string) {
	if m.Reporter != nil {
		m.Reporter.Report(ctx, phase, result, ok, msg)
	}
}

// WaitForAPI polls /readyz until the API server answers ok or timeout passes, and then says
// what it last saw. progress, if set, hears what it sees every 30 seconds: a control plane
// starting under emulation takes minutes, and the console should show why.
func WaitForAPI(ctx context.Context, cfg *rest.Config, timeout time.Duration, progress func(waited time.Duration, last string)) error {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	last := "no answer yet"
	start, told := time.Now(), time.Now()
	// Polling /readyz.
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err == nil && string(body) == "ok" {
			return true, nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = string(body)
		}
		if progress != nil && time.Since(told) >= 30*time.Second {
			progress(time.Since(start), last)
			told = time.Now()
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("API server at %s not ready after %v; last seen: %s", cfg.Host, timeout, last)
	}
	return nil
}

// Diagnose says, from the machine itself, what its control-plane containers are doing and the
// kubelet's last error: what an operator would otherwise need a login for. Best effort.
func (m *Master) Diagnose(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var parts []string
	if out, err := exec.CommandContext(ctx, "ctr", "-n", "k8s.io", "tasks", "ls").Output(); err == nil {
		parts = append(parts, fmt.Sprintf("%d containers (ctr tasks: %s)", strings.Count(string(out), "\n")-1,
			strings.Join(strings.Fields(strings.ReplaceAll(string(out), "\n", " | ")), " ")))
	}
	// klog writes errors as "E1126 ..." lines on stderr, which journald keeps at priority info.
	if out, err := exec.CommandContext(ctx, "journalctl", "-u", "kubelet", "-n", "300", "-o", "cat", "--no-pager").Output(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		for i := len(lines) - 1; i >= 0; i-- {
			// Errors about the API not being there yet say nothing new while waiting for it.
			if strings.HasPrefix(lines[i], "E") && !strings.Contains(lines[i], "not found") &&
				!strings.Contains(lines[i], "connection refused") && !strings.Contains(lines[i], "not registered") {
				// The cause is at the end of kubelet's nested error messages.
				line := lines[i]
				if len(line) > 500 {
					line = line[:150] + " ... " + line[len(line)-350:]
				}
				parts = append(parts, "kubelet's last error: "+line)
				break
			}
		}
	}
	if len(parts) == 0 {
		return "no diagnostics (ctr and journalctl did not answer)"
	}
	return strings.Join(parts, "; ")
}
