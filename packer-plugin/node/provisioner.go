package node

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2/hcldec"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"kubeup.dev/kubeup/internal/machine"
)

// Provisioner is kubeup-node.
type Provisioner struct {
	config Config
	plan   *Plan
}

// ConfigSpec is the HCL2 schema (generated: config.hcl2spec.go).
func (p *Provisioner) ConfigSpec() hcldec.ObjectSpec { return p.config.FlatMapstructure().HCL2Spec() }

// Prepare checks the configuration and works out the plan; nothing touches a machine yet.
func (p *Provisioner) Prepare(raws ...any) error {
	if err := p.config.prepare(raws...); err != nil {
		return err
	}
	plan, err := NewPlan(&p.config)
	if err != nil {
		return err
	}
	p.plan = plan
	return nil
}

// Provision stages the plan's files and images on the machine, runs its script as root, and
// turns a failed node-spec check into an error that names each failed check.
func (p *Provisioner) Provision(ctx context.Context, ui packersdk.Ui, comm packersdk.Communicator, _ map[string]any) error {
	stage := p.config.StagingDirectory
	ui.Say(fmt.Sprintf("kubeup-node: staging %d files and %d images in %s", len(p.plan.Files), len(p.plan.Images), stage))
	sudo, err := needsSudo(ctx, comm)
	if err != nil {
		return err
	}
	// The staging directory is made by the communicator's user (who may not be root) and only
	// written by it; the script, run as root, reads it and removes it.
	if err := run(ctx, comm, ui, fmt.Sprintf("mkdir -p %s/bin %s/files %s/images", shellQuote(stage), shellQuote(stage), shellQuote(stage)), nil); err != nil {
		return err
	}
	for _, f := range p.plan.Files {
		if err := p.upload(comm, f); err != nil {
			return err
		}
	}
	for i, img := range p.plan.Images {
		ui.Say(fmt.Sprintf("image %d/%d: %s", i+1, len(p.plan.Images), filepath.Base(img)))
		if err := uploadFile(comm, img, path.Join(stage, "images", filepath.Base(img))); err != nil {
			return err
		}
	}
	script := path.Join(stage, "install.sh")
	if err := comm.Upload(script, strings.NewReader(p.plan.Script), nil); err != nil {
		return fmt.Errorf("upload %s: %w", script, err)
	}
	var out bytes.Buffer
	cmd := "sh " + shellQuote(script)
	if sudo {
		cmd = "sudo -n " + cmd
	}
	if err := run(ctx, comm, ui, cmd, &out); err != nil {
		if failed := failedChecks(out.String()); failed != "" {
			return fmt.Errorf("kubeup-node: the image fails the node spec: %s", failed)
		}
		return fmt.Errorf("kubeup-node: the install script failed (its output is above): %w", err)
	}
	return nil
}

// upload stages one file of the plan.
func (p *Provisioner) upload(comm packersdk.Communicator, f Install) error {
	dst := path.Join(p.config.StagingDirectory, f.Stage)
	switch {
	case f.Local != "":
		return uploadFile(comm, f.Local, dst)
	case f.Embedded != "":
		data, err := files.ReadFile("files/" + f.Embedded)
		if err != nil {
			return err
		}
		return comm.Upload(dst, bytes.NewReader(data), nil)
	default:
		return comm.Upload(dst, strings.NewReader(f.Content), nil)
	}
}

func uploadFile(comm packersdk.Communicator, local, dst string) error {
	f, err := os.Open(local) // follows symbolic links: a directory of links to cached builds works
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := comm.Upload(dst, f, &fi); err != nil {
		return fmt.Errorf("upload %s to %s: %w", local, dst, err)
	}
	return nil
}

// needsSudo tells whether the communicator's user is not root (cloud builders log in as an
// ordinary user; the chroot builder runs as root and its images have no sudo).
func needsSudo(ctx context.Context, comm packersdk.Communicator) (bool, error) {
	var out bytes.Buffer
	cmd := &packersdk.RemoteCmd{Command: "id -u", Stdout: &out, Stderr: io.Discard}
	if err := comm.Start(ctx, cmd); err != nil {
		return false, fmt.Errorf("id -u on the machine: %w", err)
	}
	if st := cmd.Wait(); st != 0 {
		return false, fmt.Errorf("id -u on the machine exited %d", st)
	}
	return strings.TrimSpace(out.String()) != "0", nil
}

// run runs a command on the machine, its output shown in the build's UI (and kept in out).
func run(ctx context.Context, comm packersdk.Communicator, ui packersdk.Ui, command string, out io.Writer) error {
	cmd := &packersdk.RemoteCmd{Command: command, Stdout: out}
	if err := cmd.RunWithUi(ctx, comm, ui); err != nil {
		return fmt.Errorf("%s: %w", command, err)
	}
	if st := cmd.ExitStatus(); st != 0 {
		return fmt.Errorf("%s: exit status %d", command, st)
	}
	return nil
}

// failedChecks reads the image check's report line from the script's output and lists what
// failed, with the evidence; empty if there is no failing report.
func failedChecks(output string) string {
	s := bufio.NewScanner(strings.NewReader(output))
	s.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for s.Scan() {
		line := s.Text()
		i := strings.Index(line, machine.ReportPrefix)
		if i < 0 {
			continue
		}
		var r machine.Phase1Report
		if json.Unmarshal([]byte(line[i+len(machine.ReportPrefix):]), &r) != nil || r.Pass {
			continue
		}
		var failed []string
		for _, c := range r.Checks {
			if !c.Pass {
				failed = append(failed, fmt.Sprintf("%s (%s)", c.Name, c.Evidence))
			}
		}
		return strings.Join(failed, "; ")
	}
	return ""
}
