// Package machine is the contract between a kubeup machine image and the configs rendered for
// it: where each OS layout installs kubeup's binaries, the units and files a config relies on,
// the kernel settings every machine needs, and the lines and annotations a machine reports its
// progress with. The Packer plugin (which installs), the renderer (which writes units that run
// what was installed) and the agent (which runs on the machine and reports) all read it from
// here, so a path cannot drift apart between them. It holds constants and wire types only: no
// client-go, no Butane, nothing a small binary would not want to link.
package machine
