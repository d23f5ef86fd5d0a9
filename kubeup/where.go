package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"kubeup.dev/kubeup/internal/cli"
	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/provider/targets"
)

// where is the cluster a command works on: its config, its secrets bundle directory (and the
// provider's directory inside it), and for commands that talk to it, the admin kubeconfig.
type where struct {
	config, state string
	kubeconfig    string
	// configFlags are --config of each command registered with this where (rotate-ca's
	// subcommands share one), to tell a default from a choice.
	configFlags []*pflag.Flag
}

// defaultConfig is --config's default: the cluster `make up` brings up. Where it does not
// exist, cluster.StarterFile is the default.
const defaultConfig = "configs/local.yaml"

func (w *where) register(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&w.config, "config", "c", defaultConfig, "cluster config file, or "+cluster.StarterFile+" where the default does not exist")
	w.configFlags = append(w.configFlags, cmd.Flags().Lookup("config"))
	cmd.Flags().StringVar(&w.state, "state", "", "secrets bundle directory (default .kubeup/<cluster name>)")
	cmd.MarkFlagFilename("config", "yaml", "yml")
	cmd.MarkFlagDirname("state")
}

// registerKubeconfig adds --kubeconfig, for commands that talk to the cluster.
func (w *where) registerKubeconfig(cmd *cobra.Command) {
	cmd.Flags().StringVar(&w.kubeconfig, "kubeconfig", "", "admin kubeconfig of the cluster (default: the one 'kubeup up' wrote for --config's target; 'kubeup kubeconfig' prints it)")
	cmd.MarkFlagFilename("kubeconfig")
}

// configChosen says whether --config was given.
func (w *where) configChosen() bool {
	return slices.ContainsFunc(w.configFlags, func(f *pflag.Flag) bool { return f.Changed })
}

// noConfig says whether there is no config to use: --config not given, and neither the default
// nor cluster.StarterFile exists.
func (w *where) noConfig() bool {
	return !w.configChosen() && !exists(defaultConfig) && !exists(cluster.StarterFile)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// load reads the config; one that does not load is a usage error (exit 2).
func (w *where) load() (*cluster.Config, string, error) {
	if !w.configChosen() && !exists(defaultConfig) {
		if !exists(cluster.StarterFile) {
			return nil, "", cli.Usagef("no cluster config here: neither %s nor %s exists (fix: --config FILE, or 'kubeup up --provider qemu|aws|vsphere' writes a starter %s)",
				defaultConfig, cluster.StarterFile, cluster.StarterFile)
		}
		w.config = cluster.StarterFile
	}
	cfg, err := cluster.Load(w.config)
	if err != nil {
		return nil, "", cli.Usage(err)
	}
	state := w.state
	if state == "" {
		state = cfg.StateDir()
	}
	return cfg, state, nil
}

// adminKubeconfig is --kubeconfig, or else the host kubeconfig 'kubeup up' wrote for the
// config's target. A named file that is missing is bad usage; the default missing means the
// cluster was never brought up from this host (exit 3), and the error says how to bring it up.
func (w *where) adminKubeconfig() (string, error) {
	if w.kubeconfig != "" {
		if _, err := os.Stat(w.kubeconfig); err != nil {
			return "", cli.Usagef("--kubeconfig: %w", err)
		}
		return w.kubeconfig, nil
	}
	cfg, state, err := w.load()
	if err != nil {
		return "", err
	}
	path := targets.HostKubeconfig(state, cfg.Target)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return "", cli.Unreachable(fmt.Errorf("no admin kubeconfig at %s: cluster %s (%s) has not been brought up from here; run 'kubeup up --config %s', or name a kubeconfig with --kubeconfig", path, cfg.Name, w.config, w.config))
	} else if err != nil {
		return "", cli.Usage(err)
	}
	return path, nil
}

// restConfig loads the admin kubeconfig, with a timeout per request so a command never hangs
// on an API server that does not answer.
func (w *where) restConfig() (*rest.Config, error) {
	path, err := w.adminKubeconfig()
	if err != nil {
		return nil, err
	}
	return loadRestConfig(path)
}

func loadRestConfig(path string) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, cli.Usagef("kubeconfig %s: %w", path, err)
	}
	cfg.Timeout = 30 * time.Second
	return cfg, nil
}

// client is a clientset for the admin kubeconfig.
func (w *where) client() (kubernetes.Interface, error) {
	cfg, err := w.restConfig()
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// reachable asks the API server for its version, so a command that cannot reach the cluster
// says so (exit 3) rather than failing each of its checks.
func reachable(cfg *rest.Config) error {
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if _, err := c.Discovery().ServerVersion(); err != nil {
		err = fmt.Errorf("the API server at %s does not answer: %w", cfg.Host, err)
		if cli.ExitCode(err) == cli.ExitUnreachable {
			return cli.Unreachable(err)
		}
		return err
	}
	return nil
}
