// Command ignition-gen turns a cluster config into a secrets bundle and one Ignition config per
// machine (or per role), and tells which delivery channel each config fits.
package main

import (
	"errors"
	"fmt"
	"os"

	"kubeup.dev/kubeup/internal/cluster"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		var probs cluster.Problems
		if errors.As(err, &probs) {
			fmt.Fprintln(os.Stderr, probs.Error())
		} else {
			fmt.Fprintln(os.Stderr, "ignition-gen:", err)
		}
		os.Exit(1)
	}
}
