package cli

import (
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"kubeup.dev/kubeup/internal/versions"
)

// VersionInfo is what `version` prints.
type VersionInfo struct {
	Command string `json:"command"`
	Kubeup  string `json:"kubeup"`
	Commit  string `json:"commit"`
	Go      string `json:"go"`
	// Kubernetes are the Kubernetes releases this kubeup brings up.
	Kubernetes []string `json:"kubernetes"`
	Etcd       string   `json:"etcd"`
}

// Version is the version of command.
func Version(command string) VersionInfo {
	return VersionInfo{
		Command:    command,
		Kubeup:     versions.Kubeup,
		Commit:     versions.BuildCommit(),
		Go:         runtime.Version(),
		Kubernetes: versions.Supported,
		Etcd:       versions.Etcd,
	}
}

func (v VersionInfo) String() string {
	return fmt.Sprintf("%s %s (commit %s, %s); brings up Kubernetes %s with etcd %s", v.Command, v.Kubeup, v.Commit, v.Go, strings.Join(v.Kubernetes, ", "), v.Etcd)
}

// AddVersion gives root a --version flag and a version command (-o json|yaml), both printing
// kubeup's version and commit and the Kubernetes releases it brings up.
func AddVersion(root *cobra.Command) {
	v := Version(root.Name())
	root.Version = v.Kubeup
	root.SetVersionTemplate(v.String() + "\n")
	var o Output
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print kubeup's version and commit and the Kubernetes releases it brings up",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Check(); err != nil {
				return err
			}
			return o.Print(cmd.OutOrStdout(), v, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, v.String())
				return err
			})
		},
	}
	o.Register(cmd)
	root.AddCommand(cmd)
}
