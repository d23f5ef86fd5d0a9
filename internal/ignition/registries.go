package ignition

import (
	"fmt"
	"strings"

	"kubeup.dev/kubeup/internal/machine"
)

// registries writes containerd's hosts.toml for each registry the cluster config mirrors, with
// the mirrors' CA beside it. containerd reads them at every pull (the image's config points
// config_path at machine.ContainerdCertsDir): a registry's mirrors are tried in order, then the
// registry itself. Images the bundle loaded are in the store and never pulled.
func (in *inputs) registries(p *Plan) {
	for _, r := range in.cfg.Registries {
		dir := machine.ContainerdCertsDir + "/" + r.Registry
		var b strings.Builder
		fmt.Fprintf(&b, "# %s's mirrors, from the cluster config's registries, tried in order before %s itself.\n", r.Registry, r.Registry)
		for _, m := range r.Mirrors {
			fmt.Fprintf(&b, "\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", m)
			if r.CA != "" {
				fmt.Fprintf(&b, "  ca = %q\n", dir+"/ca.crt")
			}
		}
		p.file(dir+"/hosts.toml", 0o644, []byte(b.String()))
		if r.CA != "" {
			p.file(dir+"/ca.crt", 0o644, []byte(r.CA))
		}
	}
}
