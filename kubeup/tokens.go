package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"kubeup.dev/kubeup/internal/cli"
	"kubeup.dev/kubeup/internal/ignition"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/internal/provider/targets"
	"kubeup.dev/kubeup/internal/tokenpool"
)

func newTokensCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tokens",
		Short: "The node pool's bootstrap tokens: list, revoke, and put the current one into the fleet's node config",
		Long: `With pki.bootstrapTokenPool set, the master's agent keeps a node bootstrap token valid for
fleets: when the newest has less than a third of pki.bootstrapTokenTTL left it mints a successor
and publishes it (kube-system/kubeup-node-token); the old one stays valid until it expires, then
the controller-manager deletes it. kubeup pxe serve puts the current token into every node config
it hands out; on AWS, kubeup up and kubeup tokens sync put it into the launch template.
See docs/bootstrap-tokens.md.`,
	}
	cmd.AddCommand(newTokensListCmd(), newTokensRevokeCmd(), newTokensSyncCmd())
	return cmd
}

func newTokensListCmd() *cobra.Command {
	var w where
	var o cli.Output
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the node pool's valid tokens (IDs and expiry, never the secrets) and which is published",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Check(); err != nil {
				return err
			}
			c, err := w.client()
			if err != nil {
				return err
			}
			now := time.Now()
			ms, err := tokenpool.Members(cmd.Context(), c, now)
			if err != nil {
				return err
			}
			doc := tokenList{Tokens: []tokenStatus{}}
			published, perr := (&tokenpool.Source{Client: c}).Current(cmd.Context())
			if perr != nil {
				doc.PublishedError = perr.Error()
			}
			for _, t := range ms {
				doc.Tokens = append(doc.Tokens, tokenStatus{ID: t.ID, Expires: t.Expires.UTC(), SecondsLeft: int64(max(t.Expires.Sub(now), 0).Seconds()), Published: perr == nil && t.ID == published.ID})
			}
			return o.Print(cmd.OutOrStdout(), doc, func(out io.Writer) error {
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TOKEN ID\tEXPIRES (UTC)\tLEFT\tPUBLISHED")
				for _, t := range doc.Tokens {
					pub := ""
					if t.Published {
						pub = "yes"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.ID, t.Expires.Format(time.RFC3339), (time.Duration(t.SecondsLeft) * time.Second).Round(time.Minute), pub)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				if len(doc.Tokens) == 0 {
					fmt.Fprintln(out, "no valid node pool token: new nodes cannot join (is pki.bootstrapTokenPool set and the master's agent running?)")
				}
				if perr != nil {
					fmt.Fprintln(out, "published token:", perr)
				}
				return nil
			})
		},
	}
	w.register(cmd)
	w.registerKubeconfig(cmd)
	o.Register(cmd)
	return cmd
}

// tokenList is `kubeup tokens list -o json|yaml`: field names scripts rely on. Never a secret.
type tokenList struct {
	Tokens []tokenStatus `json:"tokens"`
	// PublishedError says why no published token was read, if none was.
	PublishedError string `json:"publishedError,omitempty"`
}

type tokenStatus struct {
	ID          string    `json:"id"`
	Expires     time.Time `json:"expires"`
	SecondsLeft int64     `json:"secondsLeft"`
	// Published: the token kubeup-node-token names, the one new configs get.
	Published bool `json:"published"`
}

func newTokensRevokeCmd() *cobra.Command {
	var w where
	cmd := &cobra.Command{
		Use:   "revoke TOKEN-ID",
		Short: "Revoke a node pool token at once (a leaked one); a successor is minted and published if it was the newest",
		Long: `revoke deletes the token's bootstrap-token Secret: from then on the API server refuses it. If
it was the newest, a successor is minted and published right away, as the agent would on its
next round. Nodes that already joined with it keep their certificates (list what it was used for
with kubectl get csr: the requestor is system:bootstrap:TOKEN-ID). Configs already handed out
with it no longer join: run kubeup tokens sync (AWS) so the fleet's new machines get the
successor; kubeup pxe serve picks it up by itself.`,
		Example: `  kubeup tokens revoke abcdef --config configs/aws.yaml && kubeup tokens sync --config configs/aws.yaml`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, _, err := w.load()
			if err != nil {
				return err
			}
			c, err := w.client()
			if err != nil {
				return err
			}
			if err := tokenpool.Revoke(cmd.Context(), c, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked node token %s\n", args[0])
			if !cfg.PKI.BootstrapTokenPool {
				return nil
			}
			r, err := (&tokenpool.Pool{Client: c, TTL: cfg.TokenTTL()}).Once(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "current node token: %s (expires %s; minted now: %v)\n", r.Current.ID, r.Current.Expires.UTC().Format(time.RFC3339), r.Minted)
			return nil
		},
	}
	w.register(cmd)
	w.registerKubeconfig(cmd)
	return cmd
}

func newTokensSyncCmd() *cobra.Command {
	var w where
	var dry bool
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Put the node pool's current token into the node config the fleet's targets hold (AWS: the launch template)",
		Long: `sync reads the published node token with the token distributors' identity (a client
certificate issued in memory from the bundle's CA, allowed to read that one Secret) from the API
server named in <state>/aws/admin.conf (the Elastic IP; kubeup up writes it), renders the
node role's config with it and, on AWS, makes it a new version of the nodes' launch template,
changing nothing but the user-data, and makes that version the default: the Auto Scaling group's
new instances join with it. It changes nothing when the template already carries it. Run it
more often than a third of pki.bootstrapTokenTTL (a timer, cron or CI job), and after kubeup
tokens revoke. On bare metal there is nothing to sync: kubeup pxe serve reads the token at
each boot. AWS credentials come from the SDK's usual chain; sync needs only
ec2:DescribeLaunchTemplates, ec2:DescribeLaunchTemplateVersions, ec2:CreateLaunchTemplateVersion
and ec2:ModifyLaunchTemplate on the cluster's template (and s3:PutObject if the node config is
kept in S3).`,
		Example: `  kubeup tokens sync --config configs/aws.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, state, err := w.load()
			if err != nil {
				return err
			}
			if !cfg.PKI.BootstrapTokenPool {
				return fmt.Errorf("%s: pki.bootstrapTokenPool is not set: the cluster keeps no node token pool to sync", w.config)
			}
			row, err := targets.Lookup(cfg.Target)
			if err != nil {
				return err
			}
			if row.SyncTokens == nil {
				fmt.Fprintln(cmd.OutOrStdout(), row.TokensNote)
				return nil
			}
			return row.SyncTokens(cmd.Context(), cfg, (&cloudOptions{}).targetOptions(cfg, state, cmd.OutOrStdout()), dry)
		},
	}
	w.register(cmd)
	cmd.Flags().BoolVar(&dry, "dry-run", false, "say what would change and change nothing")
	return cmd
}

// poolReadTimeout bounds the wait for the cluster's answer: on a first up there is no cluster yet.
const poolReadTimeout = 5 * time.Second

// poolNodeConfig is a node config with the node pool's current token, read with the token
// distributors' identity.
func poolNodeConfig(ctx context.Context, out io.Writer, server string, b *pki.Bundle, raw []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, poolReadTimeout)
	defer cancel()
	tok, err := (&tokenpool.Source{Bundle: b, Server: server}).Current(ctx)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "node config: the node pool's token %s (expires %s)\n", tok.ID, tok.Expires.UTC().Format(time.RFC3339))
	return ignition.WithBootstrapToken(raw, tok.String())
}
