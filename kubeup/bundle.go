package main

import (
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/spf13/cobra"

	"kubeup.dev/kubeup/internal/bundle"
	"kubeup.dev/kubeup/internal/versions"
)

func newBundleCmd() *cobra.Command {
	var out, source, mirror, userland, k8s string
	var binDirs []string
	cmd := &cobra.Command{
		Use:   "bundle",
		Short: "Write the offline component bundle: every image the cluster runs, as OCI archives",
		Long: `bundle writes every component image under its upstream reference as an OCI archive in
OUT/images/, and OUT/bundle.json with each reference and digest. With --source=build (the
default) the images are assembled from binaries built from source at the pinned versions
(hack/bundle.sh builds them and runs this; KUBEUP_KUBERNETES=v1.36.3 hack/bundle.sh for another release); with --source=registry they are pulled from their
registries, or from --mirror. kubeup's own images (kubeup.dev/probe, kubeup.dev/flannel-cni-plugin)
are in no registry: both sources build them from --bin-dir and --userland-dir.`,
		Example: `  hack/bundle.sh                                   # build from source into the cache
  kubeup bundle --source registry --out bundle     # a site with internet`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			if _, ok := versions.ReleaseOf(k8s); !ok {
				return fmt.Errorf("--kubernetes-version %s: use one of %s", k8s, strings.Join(versions.Supported, ", "))
			}
			comps := bundle.Components(k8s)
			w := cmd.OutOrStdout()
			var m bundle.Manifest
			var err error
			switch source {
			case "build":
				m, err = bundle.Make(ctx, k8s, comps, bundle.Options{BinDirs: binDirs, Out: out, UserlandDir: userland,
					Progress: func(r bundle.ImageRecord) { fmt.Fprintf(w, "  %s %s\n", r.Ref, r.Digest) }})
			case "registry":
				m, err = bundle.FetchAll(ctx, k8s, comps, mirror, bundle.Options{BinDirs: binDirs, Out: out, UserlandDir: userland})
			default:
				return fmt.Errorf("--source %s: use build or registry", source)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "bundle: %d images in %s (%s)\n", len(m.Images), out, bundle.ManifestFile)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "bundle", "bundle directory")
	cmd.Flags().StringVar(&k8s, "kubernetes-version", versions.Kubernetes, "the Kubernetes release whose images to write ("+strings.Join(versions.Supported, ", ")+")")
	cmd.Flags().StringVar(&source, "source", "build", "build (from binaries built from source) or registry")
	cmd.Flags().StringVar(&mirror, "mirror", "", "with --source registry: pull from this registry host instead of each image's own")
	cmd.Flags().StringArrayVar(&binDirs, "bin-dir", nil, "directory holding built component binaries (repeatable)")
	cmd.Flags().StringVar(&userland, "userland-dir", "", "directory of the userland root filesystems (hack/userland.sh)")
	return cmd
}
