package qemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/fsutil"
	"kubeup.dev/kubeup/internal/ignition"
	"kubeup.dev/kubeup/internal/provider"
)

// Provider runs a cluster's machines as QEMU VMs on this host (provider.Provider): every
// machine of Config, from the image in ImageDir, with everything it makes under Dir.
type Provider struct {
	Config   *cluster.Config
	Dir      string
	ImageDir string
	// APIPort is the host port forwarded to the API server; 0 picks a free one.
	APIPort int
	KVM     bool
	// Out gets warnings (a busy host).
	Out io.Writer

	spec *Spec // what Create starts, filled by Prepare and Deliver
}

var (
	_ provider.Provider     = (*Provider)(nil)
	_ provider.Booted       = (*Provider)(nil)
	_ provider.EtcdRestorer = (*Provider)(nil)
)

// Target is qemu.
func (p *Provider) Target() string { return cluster.TargetQEMU }

// Prepare finds the image and checks that this host can run every machine, before anything
// is written: a host too small says so now, not after a 30-minute timeout. It refuses a
// directory whose machines still run.
func (p *Provider) Prepare(context.Context) (provider.Prepared, error) {
	if err := canStart(p.Dir); err != nil {
		return provider.Prepared{}, err
	}
	img, err := ImageIn(p.ImageDir)
	if err != nil {
		return provider.Prepared{}, err
	}
	if err := img.CheckRelease(p.ImageDir, p.Config.KubernetesVersion); err != nil {
		return provider.Prepared{}, err
	}
	host, err := ReadHost()
	if err != nil {
		return provider.Prepared{}, fmt.Errorf("read the host's cores and memory: %w", err)
	}
	warnings, err := host.Fits(len(p.Config.Machines), p.Config.QEMU.Memory, p.KVM)
	if err != nil {
		return provider.Prepared{}, err
	}
	for _, w := range warnings {
		fmt.Fprintf(p.out(), "warning: %s\n", w)
	}
	p.spec = &Spec{Dir: p.Dir, Image: img, Memory: p.Config.QEMU.Memory, CPUs: p.Config.QEMU.CPUs, APIPort: p.APIPort, KVM: p.KVM,
		HostForwards: p.Config.QEMU.HostForwards}
	if len(p.spec.HostForwards) > 0 {
		if p.spec.Netcat, err = exec.LookPath("nc"); err != nil {
			return provider.Prepared{}, fmt.Errorf("qemu.hostForwards: QEMU runs nc for each connection to them, and there is none: %w (fix: apt-get install netcat-openbsd)", err)
		}
	}
	return provider.Prepared{Render: RenderOptions()}, nil
}

// RenderOptions are the renderer's options for QEMU machines, for bring-up and for every later
// render of a machine's config (an upgrade, a restore): the master keeps etcd's data on a disk
// of its own, which Replace keeps.
func RenderOptions() ignition.Options { return ignition.Options{EtcdDevice: EtcdDevice} }

func (p *Provider) out() io.Writer {
	if p.Out == nil {
		return io.Discard
	}
	return p.Out
}

// configDir holds the machines' configs for QEMU's fw_cfg, which reads each when its VM starts.
func (p *Provider) configDir() string { return filepath.Join(p.Dir, "ignition") }

func (p *Provider) configFile(name string) string { return filepath.Join(p.configDir(), name+".ign") }

// fwCfgName is the QEMU firmware config item Ignition's qemu platform reads its config from.
const fwCfgName = "opt/com.coreos/config"

// Channel is QEMU's: every config goes whole through fw_cfg, which only this host's VM reads.
func Channel(*cluster.Config, ignition.Config) (provider.Channel, error) {
	return provider.Channel{How: "fw_cfg " + fwCfgName}, nil
}

// Deliver writes each config where its VM's fw_cfg reads it (0600: a master's holds the CA
// keys).
func (p *Provider) Deliver(_ context.Context, configs []ignition.Config) error {
	if p.spec == nil {
		return errors.New("qemu: Deliver before Prepare")
	}
	if err := fsutil.MkdirAll(p.configDir(), 0o700); err != nil {
		return err
	}
	for _, c := range configs {
		m, ok := p.Config.Machine(c.Name)
		if !ok {
			return fmt.Errorf("qemu: config %s names no machine of the cluster (QEMU starts named machines only)", c.Name)
		}
		if err := fsutil.WriteFile(p.configFile(c.Name), c.Raw, 0o600); err != nil {
			return err
		}
		p.spec.Machines = append(p.spec.Machines, Machine{Name: m.Name, Role: m.Role, MAC: m.MAC, Ignition: p.configFile(c.Name)})
	}
	return nil
}

// Create starts every delivered machine.
func (p *Provider) Create(context.Context) error {
	if p.spec == nil {
		return errors.New("qemu: Create before Prepare")
	}
	if err := Up(p.spec); err != nil {
		return err
	}
	p.APIPort = p.spec.APIPort
	return nil
}

// state is what Create made: in memory after Create, from state.json for a later command.
func (p *Provider) state() (*Spec, error) {
	if p.spec != nil && len(p.spec.Machines) > 0 {
		return p.spec, nil
	}
	s, err := Load(p.Dir)
	if err != nil {
		return nil, fmt.Errorf("no cluster made by 'kubeup up' in %s: %w", p.Dir, err)
	}
	return s, nil
}

// Machines reads every machine's serial console.
func (p *Provider) Machines(context.Context) ([]provider.Machine, error) {
	s, err := p.state()
	if err != nil {
		return nil, err
	}
	var ms []provider.Machine
	for _, m := range s.Machines {
		c, _ := s.ReadConsole(m.Name)
		ms = append(ms, provider.Machine{Name: m.Name, Role: m.Role, Running: s.Running(m.Name), Console: c})
	}
	return ms, nil
}

// Endpoint is the API port forwarded to 127.0.0.1.
func (p *Provider) Endpoint(context.Context) (string, error) {
	s, err := p.state()
	if err != nil {
		return "", err
	}
	if s.Netboot != nil {
		return "", fmt.Errorf("%s: a network-booted cluster forwards no API port; the host reaches the master at its address", p.Dir)
	}
	return fmt.Sprintf("https://127.0.0.1:%d", s.APIPort), nil
}

// Replace cuts machine name's power, throws its root disk away and boots a fresh overlay of
// the image with config, as a new machine of the same name, MAC and address. The master's etcd
// disk stays. With ImageDir set the machine boots that image from now on (an upgrade's new
// release), which must hold the Config's release.
func (p *Provider) Replace(_ context.Context, name string, config ignition.Config) error {
	s, err := p.state()
	if err != nil {
		return err
	}
	i := slices.IndexFunc(s.Machines, func(m Machine) bool { return m.Name == name })
	if i < 0 {
		return fmt.Errorf("no machine %q in %s", name, p.Dir)
	}
	if s.Netboot != nil {
		return fmt.Errorf("%s: a network-booted machine gets its config from the PXE server: replace it there and power-cycle it", name)
	}
	m := s.Machines[i]
	if s.hasEtcdDisk(m) {
		if _, err := os.Stat(s.etcdDisk(name)); err != nil {
			return fmt.Errorf("%s keeps etcd's data on its root disk (it was made by an older kubeup, before the master had an etcd disk of its own): replacing the root would lose it", name)
		}
	}
	img, err := p.newImage()
	if err != nil {
		return err
	}
	if img != nil {
		m.Image = img
	}
	if err := s.stop(name); err != nil {
		return err
	}
	if err := fsutil.WriteFile(m.Ignition, config.Raw, 0o600); err != nil {
		return err
	}
	if err := os.Remove(s.overlay(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := s.newOverlay(m); err != nil {
		return err
	}
	// Recorded before the start: a later command (a power cycle, a resumed upgrade) must know
	// which image the new overlay is of.
	s.Machines[i] = m
	if err := s.save(); err != nil {
		return err
	}
	return s.start(m)
}

// DeliveredConfig is the config machine name booted with last (on its first boot from its
// current root): what Deliver or Replace gave it.
func (p *Provider) DeliveredConfig(name string) ([]byte, error) {
	s, err := p.state()
	if err != nil {
		return nil, err
	}
	m, ok := s.Machine(name)
	if !ok {
		return nil, fmt.Errorf("no machine %q in %s", name, p.Dir)
	}
	return os.ReadFile(m.Ignition)
}

// newImage is the image in ImageDir, checked to hold the config's release; nil without ImageDir.
func (p *Provider) newImage() (*Image, error) {
	if p.ImageDir == "" {
		return nil, nil
	}
	img, err := ImageIn(p.ImageDir)
	if err != nil {
		return nil, err
	}
	if err := img.CheckRelease(p.ImageDir, p.Config.KubernetesVersion); err != nil {
		return nil, err
	}
	return &img, nil
}

// HasEtcdData says whether master name still has its etcd disk, the cluster's data.
func (p *Provider) HasEtcdData(name string) (bool, error) {
	s, err := p.state()
	if err != nil {
		return false, err
	}
	_, err = os.Stat(s.etcdDisk(name))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// RestoreEtcd brings master name back with etcd's data from dataDir (a data directory restored
// from a snapshot): its power is cut, it gets a new etcd disk holding dataDir, and then a new
// root with config as Replace gives it. Whatever its old etcd disk held is gone: callers ask
// HasEtcdData first.
func (p *Provider) RestoreEtcd(ctx context.Context, name, dataDir string, config ignition.Config) error {
	s, err := p.state()
	if err != nil {
		return err
	}
	m, ok := s.Machine(name)
	if !ok {
		return fmt.Errorf("no machine %q in %s", name, p.Dir)
	}
	if !s.hasEtcdDisk(m) {
		return fmt.Errorf("%s has no etcd disk of its own to restore onto (only the master of a cluster booted from disks has one)", name)
	}
	// What Replace would refuse is refused before the power is cut and the disk replaced.
	if _, err := p.newImage(); err != nil {
		return err
	}
	if err := s.stop(name); err != nil {
		return err
	}
	if err := s.newEtcdDiskFrom(name, dataDir); err != nil {
		return err
	}
	return p.Replace(ctx, name, config)
}

// ImageOf is the image machine name boots now (the cluster's, or the one Replace gave it).
func (p *Provider) ImageOf(name string) (Image, error) {
	s, err := p.state()
	if err != nil {
		return Image{}, err
	}
	m, ok := s.Machine(name)
	if !ok {
		return Image{}, fmt.Errorf("no machine %q in %s", name, p.Dir)
	}
	return s.imageOf(m), nil
}

// RenderOptions are the package's RenderOptions: every QEMU master's etcd disk has the same
// device name.
func (p *Provider) RenderOptions(context.Context) (ignition.Options, error) {
	return RenderOptions(), nil
}

// BootedImage is the directory of the image machine name boots now, as ImageDir names one.
func (p *Provider) BootedImage(_ context.Context, name string) (string, error) {
	img, err := p.ImageOf(name)
	if err != nil {
		return "", err
	}
	return filepath.Dir(img.Disk), nil
}

// BootedConfig is DeliveredConfig.
func (p *Provider) BootedConfig(_ context.Context, name string) ([]byte, error) {
	return p.DeliveredConfig(name)
}

// Logs says where to look when a machine does not come up.
func (p *Provider) Logs() string {
	return fmt.Sprintf("serial logs: %s/*.serial.log", p.Dir)
}

// Down stops every machine and removes Dir.
func (p *Provider) Down(context.Context) error {
	if err := Down(p.Dir); err != nil {
		return err
	}
	fmt.Fprintf(p.out(), "removed %s\n", p.Dir)
	return nil
}
