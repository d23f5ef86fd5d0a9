// Command ignition-gen turns a cluster config into a secrets bundle and one Ignition config per
// machine (or per role), and tells which delivery channel each config fits.
package main

import (
	"kubeup.dev/kubeup/internal/cli"
)

func main() {
	root := newRootCmd()
	cli.AddVersion(root)
	cli.Execute(root)
}
