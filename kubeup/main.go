// Command kubeup brings up and checks kubeup clusters: `kubeup up/status/down` (local QEMU
// machines, AWS, vSphere), `kubeup verify` (the phases' exit criteria checked with client-go),
// `kubeup certs status` (every machine's certificates and their expiry), `kubeup tokens` (the
// node pool's bootstrap tokens: list, revoke, sync into the launch template), `kubeup pxe serve`
// (bare metal from the network) and `kubeup bundle` (the offline component images).
package main

import (
	"flag"
	"io"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"kubeup.dev/kubeup/internal/cli"
)

func main() {
	quietClientGo()
	cli.Execute(newRootCmd())
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "kubeup",
		Short: "Bring up and check Kubernetes clusters on machines nobody logs into",
		Long: `kubeup brings up Kubernetes clusters from a cluster config (up, status, down), checks them
(verify), and manages what runs them: certificates (certs), the node pool's bootstrap tokens
(tokens), the offline images (bundle) and bare metal's network boot (pxe serve). Commands that
talk to a cluster use the admin kubeconfig 'kubeup up' wrote for the config's target; 'kubeup
kubeconfig' prints its path or merges it into ~/.kube/config. docs/ has a page per topic.`,
	}
	root.AddCommand(newUpCmd(), newStatusCmd(), newDownCmd(), newVerifyCmd(), newKubeconfigCmd(), newBundleCmd(), newPXECmd(), newCertsCmd(), newTokensCmd(), newEtcdCmd(), newUpgradeCmd(), newRegistryCmd())
	cli.AddVersion(root)
	return root
}

// quietClientGo keeps client-go's log lines (throttling notes, deprecation warnings) out of the
// commands' output: what matters comes back as an error.
func quietClientGo() {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	fs.Set("logtostderr", "false")
	fs.Set("alsologtostderr", "false")
	fs.Set("stderrthreshold", "FATAL")
	klog.SetOutput(io.Discard)
}
