package ignition

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"kubeup.dev/kubeup/internal/machine"
)

// writeRegistries writes containerd's hosts.toml for each registry the cluster config mirrors,
// with the mirrors' CA beside it (files, from registryFiles). containerd reads them at every
// pull (the image's config points config_path at machine.ContainerdCertsDir): a registry's
// mirrors are tried in order, then the registry itself. Images the bundle loaded are in the
// store and never pulled. Only the master's files carry the mirrors' credentials; a node's
// agent gets them from the API (manifests.RegistryHosts), so no node config holds them.
func writeRegistries(p *Plan, files map[string]File) {
	for _, rel := range slices.Sorted(maps.Keys(files)) {
		p.file(machine.ContainerdCertsDir+"/"+rel, files[rel].Mode, files[rel].Data)
	}
}

// registryFiles renders every registry's files, by their path under machine.ContainerdCertsDir
// (docker.io/hosts.toml). hosts.toml is 0600 everywhere, as the master's and the one a node's
// agent writes carry credentials.
func (in *inputs) registryFiles(withAuth bool) map[string]File {
	out := map[string]File{}
	for _, r := range in.cfg.Registries {
		dir := machine.ContainerdCertsDir + "/" + r.Registry
		auth := in.bundle.RegistryAuthFor(r)
		var b strings.Builder
		fmt.Fprintf(&b, "# %s's mirrors, from the cluster config's registries, tried in order before %s itself.\n", r.Registry, r.Registry)
		for _, m := range r.Mirrors {
			fmt.Fprintf(&b, "\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", m)
			if r.CA != "" {
				fmt.Fprintf(&b, "  ca = %q\n", dir+"/"+machine.RegistryCAFile)
			}
			// containerd sends a host's headers with every request to it: HTTP basic
			// authentication, which a registry behind htpasswd (distribution's) takes. A
			// registry that asks for a bearer token instead is not served (docs/registries.md).
			if c, ok := auth[m]; ok && withAuth {
				fmt.Fprintf(&b, "  [host.%q.header]\n    Authorization = %q\n", m, c.BasicAuth())
			}
		}
		out[r.Registry+"/"+machine.RegistryHostsFile] = File{Mode: 0o600, Data: []byte(b.String())}
		if r.CA != "" {
			out[r.Registry+"/"+machine.RegistryCAFile] = File{Mode: 0o644, Data: []byte(r.CA)}
		}
	}
	return out
}
