package cli

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"
)

// Output formats.
const (
	Table = "table"
	JSON  = "json"
	YAML  = "yaml"
)

// Formats are the values of -o, the default first.
var Formats = []string{Table, JSON, YAML}

// Output is a command's -o flag.
type Output struct {
	Format string
}

// Register adds -o/--output to cmd, with its values completed.
func (o *Output) Register(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&o.Format, "output", "o", Table, "output format: table, json or yaml")
	cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(Formats, cobra.ShellCompDirectiveNoFileComp))
}

// Check refuses an unknown format (a usage error). "text", verify's old name for the table, is
// still taken.
func (o *Output) Check() error {
	switch o.Format {
	case Table, JSON, YAML:
		return nil
	case "text":
		o.Format = Table
		return nil
	}
	return Usagef("-o %s: use table, json or yaml", o.Format)
}

// Structured says whether the output is a document for scripts rather than the table.
func (o *Output) Structured() bool { return o.Format == JSON || o.Format == YAML }

// Print writes v as JSON or YAML (field names from its json tags, the same in both), or calls
// table for the table.
func (o *Output) Print(w io.Writer, v any, table func(io.Writer) error) error {
	switch o.Format {
	case JSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case YAML:
		data, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	case Table, "text", "":
		return table(w)
	}
	return fmt.Errorf("unknown output format %q", o.Format)
}
