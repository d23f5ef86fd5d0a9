package ignition

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/fsutil"
	"kubeup.dev/kubeup/internal/pki"
)

// Output is one rendered config and the file Generate wrote it to.
type Output struct {
	Config
	File string // path written
}

// Options select what Configs renders, and where Generate writes it.
type Options struct {
	// OutDir is where Generate writes the configs; Configs ignores it.
	OutDir string
	// Role, if set, renders only the config of that role's anonymous machines (out/<role>.ign).
	Role string
	// EtcdDevice, if set, is the block device that holds the master's etcd data (on AWS the EBS
	// volume's udev path, which the provider knows): the master's config formats it if it has no
	// filesystem and mounts it at /var/lib/etcd before the kubelet starts etcd.
	EtcdDevice string
}

// Config is one machine's (or one role's) rendered Ignition config, in memory.
type Config struct {
	Name  string // machine name, or role for a role config
	Role  string
	Raw   []byte
	Sizes Sizes
}

// Configs renders every machine of cfg (or the one role of opt.Role) from the bundle. It writes
// nothing: a provider delivers the configs over its own channel, ignition-gen writes them.
func Configs(cfg *cluster.Config, b *pki.Bundle, opt Options) ([]Config, error) {
	in, err := newInputs(cfg, b)
	if err != nil {
		return nil, err
	}
	type job struct {
		role string
		m    *cluster.Machine
	}
	var jobs []job
	switch opt.Role {
	case "":
		for i := range cfg.Machines {
			jobs = append(jobs, job{cfg.Machines[i].Role, &cfg.Machines[i]})
		}
	case cluster.RoleNode:
		jobs = []job{{cluster.RoleNode, nil}}
	case cluster.RoleMaster:
		// The master's certificates name its address, so its role config is the master machine's
		// config without the hostname and static network that identify one box.
		jobs = []job{{cluster.RoleMaster, nil}}
	default:
		return nil, fmt.Errorf("unknown role %q: use master or node", opt.Role)
	}
	// Machines are independent: render them on every core, each worker with its own renderer.
	outs := make([]Config, len(jobs))
	errs := make([]error, len(jobs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(jobs)) {
		wg.Go(func() {
			r := newRenderer()
			for i := range next {
				outs[i], errs[i] = r.config(in, jobs[i].role, jobs[i].m, opt)
			}
		})
	}
	for i := range jobs {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return outs, nil
}

// config renders one machine's config.
func (r *renderer) config(in *inputs, role string, m *cluster.Machine, opt Options) (Config, error) {
	p, err := in.plan(role, m)
	if err != nil {
		return Config{}, err
	}
	if role == cluster.RoleMaster && opt.EtcdDevice != "" {
		etcdVolume(&p, opt.EtcdDevice)
	}
	raw, err := r.render(p)
	if err != nil {
		return Config{}, err
	}
	return Config{Name: p.Name, Role: p.Role, Raw: raw, Sizes: r.measure(raw)}, nil
}

// Generate renders every machine of cfg (or the one role of opt.Role) from the bundle and writes
// the configs to opt.OutDir (Write).
func Generate(cfg *cluster.Config, b *pki.Bundle, opt Options) ([]Output, error) {
	cs, err := Configs(cfg, b, opt)
	if err != nil {
		return nil, err
	}
	return Write(opt.OutDir, cs)
}

// Write writes each config to dir as <name>.ign, 0600. How each reaches its machine is its
// target's to say (the providers' Channel). Files whose content is unchanged are left alone, so
// a re-run with the same inputs changes nothing on disk.
func Write(dir string, cs []Config) ([]Output, error) {
	if err := fsutil.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	outs := make([]Output, len(cs))
	for i, c := range cs {
		outs[i] = Output{Config: c, File: filepath.Join(dir, c.Name+".ign")}
		// Configs can hold keys and tokens: readable by the owner only.
		if err := fsutil.WriteFile(outs[i].File, c.Raw, 0o600); err != nil {
			return nil, err
		}
	}
	return outs, nil
}
