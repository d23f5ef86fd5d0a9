package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"kubeup.dev/kubeup/internal/cli"
)

// contextName is the kubectl context `kubeup kubeconfig --merge` makes for a cluster.
func contextName(cluster string) string { return "kubeup-" + cluster }

func newKubeconfigCmd() *cobra.Command {
	var w where
	var merge bool
	cmd := &cobra.Command{
		Use:   "kubeconfig",
		Short: "Print the path of the cluster's admin kubeconfig, or merge it into ~/.kube/config",
		Long: `kubeconfig prints the path of the admin kubeconfig 'kubeup up' wrote for the config's
target: the one whose server this host reaches (QEMU: a forwarded port; AWS: the Elastic IP).
Every kubeup command that talks to the cluster uses it by default.

With --merge it adds the cluster, its admin user and a context named kubeup-<cluster> to the
kubeconfig kubectl uses ($KUBECONFIG's first file, or ~/.kube/config; 0600), replacing an
earlier kubeup-<cluster>, and makes that context the current one.`,
		Example: `  kubectl --kubeconfig "$(kubeup kubeconfig)" get nodes
  kubeup kubeconfig --merge && kubectl get nodes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := w.adminKubeconfig()
			if err != nil {
				return err
			}
			if !merge {
				fmt.Fprintln(cmd.OutOrStdout(), path)
				return nil
			}
			cfg, _, err := w.load()
			if err != nil {
				return err
			}
			name := contextName(cfg.Name)
			into, err := mergeKubeconfig(path, name)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "merged %s into %s as context %s (now the current context)\n", path, into, name)
			return nil
		},
	}
	w.register(cmd)
	w.registerKubeconfig(cmd)
	cmd.Flags().BoolVar(&merge, "merge", false, "merge it into kubectl's kubeconfig as context kubeup-<cluster> and switch to it")
	return cmd
}

// mergeKubeconfig adds the current context of the kubeconfig at path, its cluster and its user
// to kubectl's kubeconfig under name (files it points to embedded, so the entry stands alone),
// makes it current, and returns the file it wrote. clientcmd locks and writes it as kubectl does.
func mergeKubeconfig(path, name string) (string, error) {
	src, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return "", cli.Usagef("kubeconfig %s: %w", path, err)
	}
	if err := clientcmdapi.FlattenConfig(src); err != nil {
		return "", fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	ctx := src.Contexts[src.CurrentContext]
	if ctx == nil || src.Clusters[ctx.Cluster] == nil || src.AuthInfos[ctx.AuthInfo] == nil {
		return "", cli.Usagef("kubeconfig %s: its current context %q does not name a cluster and a user", path, src.CurrentContext)
	}
	po := clientcmd.NewDefaultPathOptions()
	dst, err := po.GetStartingConfig()
	if err != nil {
		return "", fmt.Errorf("read %s: %w", po.GetDefaultFilename(), err)
	}
	cl, user := *src.Clusters[ctx.Cluster], *src.AuthInfos[ctx.AuthInfo]
	cl.LocationOfOrigin, user.LocationOfOrigin = "", ""
	dst.Clusters[name] = &cl
	dst.AuthInfos[name] = &user
	dst.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	dst.CurrentContext = name
	if err := clientcmd.ModifyConfig(po, *dst, false); err != nil {
		return "", fmt.Errorf("write %s: %w", po.GetDefaultFilename(), err)
	}
	return po.GetDefaultFilename(), nil
}
