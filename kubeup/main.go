// Command kubeup brings up and checks kubeup clusters: `kubeup up/status/down` (local QEMU
// machines, AWS, vSphere), `kubeup verify` (the phases' exit criteria checked with client-go),
// `kubeup certs status` (every machine's certificates and their expiry), `kubeup tokens` (the
// node pool's bootstrap tokens: list, revoke, sync into the launch template), `kubeup pxe serve`
// (bare metal from the network) and `kubeup bundle` (the offline component images).
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	root := &cobra.Command{
		Use:           "kubeup",
		Short:         "Bring up and check Kubernetes clusters on machines nobody logs into",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newUpCmd(), newStatusCmd(), newDownCmd(), newVerifyCmd(), newBundleCmd(), newPXECmd(), newCertsCmd(), newTokensCmd())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "kubeup:", err)
		os.Exit(1)
	}
}
