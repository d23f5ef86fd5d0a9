package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"kubeup.dev/kubeup/internal/cli"
	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/internal/tokenpool"
	"kubeup.dev/kubeup/pxe"
)

func newPXECmd() *cobra.Command {
	cmd := &cobra.Command{Use: "pxe", Short: "The network boot server for bare metal"}
	cmd.AddCommand(newPXEServeCmd())
	return cmd
}

func newPXEServeCmd() *cobra.Command {
	var (
		config, state, ignDir, assets, listen, tlsListen, advertise, defaultRole, reports string
		ttl                                                                               time.Duration
		reuse, anyAddress                                                                 bool
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve iPXE scripts, boot files, pointer configs over HTTP and the machines' configs over HTTPS",
		Long: `kubeup pxe serve boots a bare-metal cluster from the network. Point DHCP (or dnsmasq's
proxy-DHCP: pxe/dnsmasq.sh) at http://ADVERTISE:8080/boot.ipxe; each machine, known by its MAC,
UUID, hostname or serial, gets a script that boots the OS from --assets with Ignition pointed at
a pointer config holding no secret. The real config (ignition-gen's, in --ignition) is fetched
once over HTTPS, pinned by hash and trusting only the cluster CA, by the address that fetched
the script; everything else is a 404 and a log line. docs/pxe.md has the details: tokens,
--reuse, --any-address, --default-role, the node token pool, reports, restarts.`,
		Example: `  ignition-gen --config configs/metal.yaml --out out
  kubeup pxe serve --config configs/metal.yaml --ignition out --assets /srv/kubeup --advertise 10.20.0.2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := cluster.Load(config)
			if err != nil {
				return cli.Usage(err)
			}
			if state == "" {
				state = cfg.StateDir()
			}
			b, err := pki.Load(state, cfg)
			if err != nil {
				return err
			}
			if advertise == "" && cfg.Metal != nil && cfg.Metal.PXEServer != "" {
				if u, err := url.Parse(cfg.Metal.PXEServer); err == nil {
					advertise = u.Hostname()
				}
			}
			if advertise == "" {
				return fmt.Errorf("--advertise: the address machines reach this server at (or metal.pxeServer in %s)", config)
			}
			_, port, err := net.SplitHostPort(listen)
			if err != nil {
				return fmt.Errorf("--listen %q: %w", listen, err)
			}
			_, tlsPort, err := net.SplitHostPort(tlsListen)
			if err != nil {
				return fmt.Errorf("--tls-listen %q: %w", tlsListen, err)
			}
			certPEM, keyPEM, err := pki.ServingCert(b, "kubeup-pxe", []string{advertise}, 365*24*time.Hour)
			if err != nil {
				return err
			}
			pair, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				return err
			}
			if reports == "" {
				reports = filepath.Join(state, "pxe-reports.jsonl")
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			// With the node token pool, node configs carry the pool's current token, read at
			// each boot with the distributors' narrow identity; the bundle's until the cluster
			// first answers.
			var nodeTokens pxe.NodeTokens
			if cfg.PKI.BootstrapTokenPool {
				nodeTokens = &tokenpool.Source{Bundle: b, Server: cfg.EndpointURL(), Fallback: b.Token}
			}
			srv, err := pxe.New(pxe.Options{
				ConfigFile: config, IgnitionDir: ignDir, AssetsDir: assets,
				BaseURL:    "http://" + net.JoinHostPort(advertise, port),
				TLSBaseURL: "https://" + net.JoinHostPort(advertise, tlsPort),
				CA:         b.File("pki/ca.crt"), DefaultRole: defaultRole, TokenTTL: ttl, Reuse: reuse, AnyAddress: anyAddress,
				ReportsFile: reports, TokensFile: filepath.Join(state, "pxe-tokens.json"), NodeTokens: nodeTokens, Log: log,
			})
			if err != nil {
				return err
			}
			plain, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			secure, err := net.Listen("tcp", tlsListen)
			if err != nil {
				return err
			}
			if cfg.Metal != nil && cfg.Metal.PXEServer != "" {
				if u, err := url.Parse(cfg.Metal.PXEServer); err == nil && u.Port() != tlsPort {
					log.Warn("metal.pxeServer names another port than --tls-listen: the agents' reports will not arrive",
						"pxeServer", cfg.Metal.PXEServer, "tls-listen", tlsListen)
				}
			}
			log.Info("serving", "boot", "http://"+net.JoinHostPort(advertise, port)+"/boot.ipxe",
				"configs", "https://"+net.JoinHostPort(advertise, tlsPort), "machines", len(cfg.Machines))
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return srv.Serve(ctx, plain, secure, &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&config, "config", "c", "configs/metal.yaml", "cluster config file (its machines, os, metal.pxeServer)")
	f.StringVar(&state, "state", "", "secrets bundle directory (default .kubeup/<cluster name>)")
	f.StringVar(&ignDir, "ignition", "out", "directory of ignition-gen's configs (<machine>.ign, <role>.ign)")
	f.StringVar(&assets, "assets", "assets", "directory of boot files, one folder per OS (debian/, flatcar/)")
	f.StringVar(&listen, "listen", ":8080", "plain-HTTP address: boot scripts, boot files, pointer configs, reports")
	f.StringVar(&tlsListen, "tls-listen", ":8443", "HTTPS address: the machines' configs, and the agents' reports (metal.pxeServer must name it)")
	f.StringVar(&advertise, "advertise", "", "host or address machines reach this server at (default: metal.pxeServer's host)")
	f.StringVar(&defaultRole, "default-role", "", "give unknown machines this role's config: only node, whose config holds no key (one that does is refused); default: unknown machines get nothing")
	f.DurationVar(&ttl, "token-ttl", 10*time.Minute, "how long after its script a machine may fetch its config")
	f.BoolVar(&reuse, "reuse", false, "let a token fetch its config again until it expires (default: once)")
	f.BoolVar(&anyAddress, "any-address", false, "hand a config to any address holding the token (default: only the script's requester)")
	f.StringVar(&reports, "reports", "", "file of progress reports, one JSON line each (default <state>/pxe-reports.jsonl)")
	return cmd
}
