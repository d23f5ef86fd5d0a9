package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"kubeup.dev/kubeup/internal/carotation"
	"kubeup.dev/kubeup/internal/fsutil"
	"kubeup.dev/kubeup/internal/manifests"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/internal/renewal"
)

// rotateCA carries the flags of `certs rotate-ca`.
type rotateCA struct {
	where
	timeout time.Duration
}

func newRotateCACmd() *cobra.Command {
	var r rotateCA
	cmd := &cobra.Command{
		Use:   "rotate-ca",
		Short: "Replace the cluster's CAs with new ones, with a period in which both are trusted",
		Long: `rotate-ca replaces the cluster CA, the front-proxy CA and the etcd CA in three steps
(docs/ca-rotation.md is the guide):

  plan    what will change, and where a rotation in progress is
  start   make the new CAs in the secrets bundle (the old ones stay) and hand them to the
          master's agent in the secret kube-system/kubeup-ca-rotation; the agent then makes
          every trust file hold old and new CA, re-issues every certificate of the master from
          the new CA and switches the controller-manager's signer, restarting one component
          at a time with a health check after each
  status  where the master is, and what still depends on the old CAs
  finish  once nothing depends on the old CAs: the agent drops them from every trust file,
          then the bundle takes the new CAs and re-issues its certificates and kubeconfigs
          from them (every replaced file kept as <file>.<time>.old), and the secret is deleted

Each step can be run again: a step already done changes nothing.`,
	}
	for _, sub := range []*cobra.Command{
		{Use: "plan", Short: "Show what a CA rotation changes, and the rotation in progress if any", RunE: r.plan},
		{Use: "start", Short: "Make the new CAs and hand them to the master's agent", RunE: r.start},
		{Use: "status", Short: "Show where the rotation is and what still depends on the old CAs", RunE: r.status},
		{Use: "finish", Short: "Drop the old CAs everywhere once nothing depends on them", RunE: r.finish},
	} {
		sub.Args = cobra.NoArgs
		r.register(sub)
		r.registerKubeconfig(sub)
		if sub.Use == "finish" {
			sub.Flags().DurationVar(&r.timeout, "timeout", 15*time.Minute, "how long to wait for the master to drop the old CAs")
		}
		cmd.AddCommand(sub)
	}
	return cmd
}

// clients returns a client with the kubeconfig's own credentials and one whose client
// certificate is re-issued (same key, in memory) from the rotation's new cluster CA. Both trust
// the old and the new CA: the API server's certificate moves from one to the other during the
// rotation, and once the old CA is dropped only a certificate from the new one is accepted.
func (r *rotateCA) clients(state string) (old, fresh kubernetes.Interface, err error) {
	path, err := r.adminKubeconfig()
	if err != nil {
		return nil, nil, err
	}
	news, err := pki.RotationCAs(state)
	if err != nil {
		return nil, nil, fmt.Errorf("the rotation's new CAs: %w", err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, nil, fmt.Errorf("load %s: %w", path, err)
	}
	cfg.Timeout = 15 * time.Second
	if len(cfg.CAData) == 0 && cfg.CAFile != "" {
		if cfg.CAData, err = os.ReadFile(cfg.CAFile); err != nil {
			return nil, nil, err
		}
	}
	cfg.CAFile = ""
	cfg.CAData = append(append([]byte{}, cfg.CAData...), news[0].Cert...)
	if old, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, nil, err
	}
	if len(cfg.CertData) == 0 {
		return old, old, nil // a token: the API server accepts it whatever the CAs
	}
	oldCA, err := os.ReadFile(filepath.Join(state, "pki", "ca.crt"))
	if err != nil {
		return nil, nil, err
	}
	cert, err := pki.Reissue(cfg.CertData, append(append([]byte{}, news[0].Cert...), oldCA...), news[0].Key, timeNow(), time.Hour)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: a client certificate from the new CA: %w", path, err)
	}
	c2 := *cfg
	c2.CertData = cert
	fresh, err = kubernetes.NewForConfig(&c2)
	return old, fresh, err
}

func (r *rotateCA) plan(cmd *cobra.Command, _ []string) error {
	cfg, state, err := r.load()
	if err != nil {
		return err
	}
	if _, err := pki.Load(state, cfg); err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	rot, err := pki.ReadRotation(state)
	if err != nil {
		return err
	}
	if rot.InProgress() {
		fmt.Fprintf(w, "CA rotation %s is in progress (started %s): see 'kubeup certs rotate-ca status --config %s'\n\n", rot.ID, rot.Started.Format(time.RFC3339), r.config)
	}
	fmt.Fprintf(w, "A CA rotation of cluster %s (bundle %s) does this:\n", cfg.Name, state)
	fmt.Fprintf(w, "start:\n  bundle: new CAs in %s/%s/pki (ca, front-proxy-ca, etcd/ca; %s keys, 0600); pki/ untouched\n", state, pki.RotationDir, pkiAlg(state))
	fmt.Fprintf(w, "  kubectl: %s (the bundle's admin.conf) and kubeup's host copies (<state>/qemu/admin.conf, <state>/aws/admin.conf) trust old+new until finish\n", dualAdminConf(state))
	fmt.Fprintf(w, "  cluster: secret %s/%s with the new CAs, for the master's agent\n", carotation.Namespace, carotation.SecretName)
	fmt.Fprintf(w, "master's agent, stage by stage (each restart followed by a health check; the API is unavailable while etcd and the API server restart):\n")
	fmt.Fprintf(w, "  %s: pki/ca.crt, pki/front-proxy-ca.crt, pki/etcd/ca.crt and the CA data of admin.conf, super-admin.conf, controller-manager.conf, scheduler.conf, kubelet.conf hold old+new; the controller-manager signs from %s; restarts %s\n",
		carotation.TrustBoth, carotation.SignerCert, strings.Join([]string{renewal.ControllerManager, renewal.Etcd, renewal.APIServer, renewal.Scheduler}, ", "))
	fmt.Fprintf(w, "  %s: waits until every node's agent publishes that its machine trusts the new CA (nodes follow kube-root-ca.crt: pki/ca.crt and the CA data of kubelet.conf and bootstrap-kubelet.conf, then the kubelet restarts)\n", carotation.NodesTrust)
	fmt.Fprintf(w, "  %s: every Deployment and DaemonSet in %s restarts its pods, which then trust both CAs; waits until no pod from before runs\n", carotation.PodsTrust, strings.Join(manifests.AddonNamespaces, ", "))
	var names []string
	for _, it := range renewal.MasterItems {
		names = append(names, it.Name)
	}
	fmt.Fprintf(w, "  %s: re-issued from the new CAs, same keys: %s; restarts %s\n", carotation.Reissue, strings.Join(names, ", "), strings.Join(renewal.RestartOrder, ", "))
	fmt.Fprintf(w, "  %s: the controller-manager signs kubelet certificates with the new CA; restarts %s\n", carotation.SwitchSigner, renewal.ControllerManager)
	fmt.Fprintf(w, "  pods: kube-root-ca.crt in every namespace holds old+new from %s on\n", carotation.TrustBoth)
	fmt.Fprintf(w, "every machine: once the new CA signs, its agent gets the kubelet a client and a serving certificate from it (CSRs as the kubelet) and restarts the kubelet\n")
	fmt.Fprintf(w, "finish (refused while anything is still from the old CAs):\n  master: old CAs dropped from every trust file; restarts %s\n", strings.Join(renewal.RestartOrder, ", "))
	fmt.Fprintf(w, "  nodes: follow kube-root-ca.crt to the new CA alone; the kubelet restarts\n  pods: the add-ons restart their pods once more, on the new CA alone\n")
	fmt.Fprintf(w, "  bundle: pki/ takes the new CAs; every certificate and kubeconfig re-issued from them (same keys); replaced files kept as <file>.<time>.old; the secret is deleted\n")
	fmt.Fprintf(w, "  kubectl: kubeup's host copies of admin.conf take the bundle's new CA and certificate; %s is removed\n", dualAdminConf(state))
	fmt.Fprintf(w, "  then: render the configs again (ignition-gen --config %s) so new machines get the new CAs\n", r.config)
	return nil
}

func pkiAlg(state string) string {
	data, err := os.ReadFile(filepath.Join(state, pki.MetaFile))
	if err != nil {
		return "the bundle's"
	}
	if i := strings.Index(string(data), `"keyAlgorithm": "`); i >= 0 {
		rest := string(data)[i+len(`"keyAlgorithm": "`):]
		return rest[:strings.IndexByte(rest, '"')]
	}
	return "the bundle's"
}

func (r *rotateCA) start(cmd *cobra.Command, _ []string) error {
	cfg, state, err := r.load()
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	rot, started, err := pki.StartRotation(state, cfg, timeNow())
	if err != nil {
		return err
	}
	if started {
		fmt.Fprintf(w, "CA rotation %s: new CAs made in %s\n", rot.ID, filepath.Join(state, pki.RotationDir))
	} else {
		fmt.Fprintf(w, "CA rotation %s is already in progress in %s: no new CAs made\n", rot.ID, state)
	}
	news, err := pki.RotationCAs(state)
	if err != nil {
		return err
	}
	wrote, err := trustBothAdmin(state, news[0].Cert, nil)
	if err != nil {
		return fmt.Errorf("admin kubeconfigs trusting both CAs: %w", err)
	}
	for _, p := range wrote {
		fmt.Fprintf(w, "%s: trusts the old and the new cluster CA\n", p)
	}
	copies, _ := hostAdminConfs(state)
	fmt.Fprintf(w, "until finish, use kubectl with %s: from the Reissue stage on, the API server's certificate\n"+
		"comes from the new CA, which %s does not trust until finish\n",
		strings.Join(append([]string{dualAdminConf(state)}, copies...), " or "), filepath.Join(state, "admin.conf"))
	old, _, err := r.clients(state)
	if err != nil {
		return err
	}
	created, err := carotation.Handover(cmd.Context(), old, rot.ID, news)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(w, "handed to the master's agent: secret %s/%s created\n", carotation.Namespace, carotation.SecretName)
	} else {
		fmt.Fprintf(w, "secret %s/%s already holds rotation %s: unchanged\n", carotation.Namespace, carotation.SecretName, rot.ID)
	}
	fmt.Fprintf(w, "follow it with: kubeup certs rotate-ca status --config %s\n", r.config)
	return nil
}

// either runs fn with the old client, and with the fresh one if the API server no longer
// accepts the old CA's certificate.
func either(old, fresh kubernetes.Interface, fn func(kubernetes.Interface) error) error {
	err := fn(old)
	if apierrors.IsUnauthorized(err) {
		return fn(fresh)
	}
	return err
}

func (r *rotateCA) status(cmd *cobra.Command, _ []string) error {
	_, state, err := r.load()
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	rot, err := pki.ReadRotation(state)
	if err != nil {
		return err
	}
	switch {
	case rot == nil:
		fmt.Fprintf(w, "bundle %s: no CA rotation started\n", state)
		return nil
	case rot.InProgress():
		fmt.Fprintf(w, "bundle %s: CA rotation %s started %s, in progress\n", state, rot.ID, rot.Started.Format(time.RFC3339))
	default:
		fmt.Fprintf(w, "bundle %s: CA rotation %s finished %s\n", state, rot.ID, rot.Finished.Format(time.RFC3339))
		return nil
	}
	old, fresh, err := r.clients(state)
	if err != nil {
		return err
	}
	news, _ := pki.RotationCAs(state)
	ctx := cmd.Context()
	return either(old, fresh, func(c kubernetes.Interface) error {
		st, err := carotation.GetStatus(ctx, c)
		if err != nil {
			return err
		}
		if st == nil {
			fmt.Fprintf(w, "cluster: no secret %s/%s: run start\n", carotation.Namespace, carotation.SecretName)
			return nil
		}
		fmt.Fprintf(w, "master: stage %s: %s\n", orPending(st.Stage), st.Message)
		blockers, err := carotation.Blockers(ctx, c, news)
		if err != nil {
			return err
		}
		printBlockers(w, blockers)
		return nil
	})
}

func orPending(s carotation.Stage) string {
	if s == "" {
		return "(not picked up by the master's agent yet)"
	}
	return string(s)
}

func printBlockers(w io.Writer, blockers []string) {
	if len(blockers) == 0 {
		fmt.Fprintln(w, "nothing depends on the old CAs: ready to finish")
		return
	}
	fmt.Fprintln(w, "still depending on the old CAs:")
	for _, b := range blockers {
		fmt.Fprintln(w, "  "+b)
	}
}

func (r *rotateCA) finish(cmd *cobra.Command, _ []string) error {
	cfg, state, err := r.load()
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	rot, err := pki.ReadRotation(state)
	if err != nil {
		return err
	}
	if rot == nil {
		return fmt.Errorf("no CA rotation in %s: start one with: kubeup certs rotate-ca start --config %s", state, r.config)
	}
	ctx := cmd.Context()
	old, fresh, err := r.clients(state)
	if err != nil {
		return err
	}
	if !rot.InProgress() {
		// A finish that stopped after the bundle took the new CAs still owes the copies and
		// the deletion.
		if _, err := refreshAdminCopies(state); err != nil {
			return err
		}
		if err := carotation.Delete(ctx, fresh); err != nil {
			return fmt.Errorf("delete secret %s/%s (it holds the CA keys): %w", carotation.Namespace, carotation.SecretName, err)
		}
		fmt.Fprintf(w, "CA rotation %s finished %s: nothing to do\n", rot.ID, rot.Finished.Format(time.RFC3339))
		return nil
	}
	news, _ := pki.RotationCAs(state)
	err = either(old, fresh, func(c kubernetes.Interface) error {
		st, err := carotation.GetStatus(ctx, c)
		if err != nil {
			return err
		}
		if st != nil && (st.Stage == carotation.Finishing || st.Stage == carotation.Finished) {
			return nil // asked before: wait for it below
		}
		blockers, err := carotation.Blockers(ctx, c, news)
		if err != nil {
			return err
		}
		if len(blockers) > 0 {
			printBlockers(w, blockers)
			return fmt.Errorf("not finishing CA rotation %s: %d thing(s) still depend on the old CAs (listed above); nothing was changed", rot.ID, len(blockers))
		}
		if err := carotation.RequestFinish(ctx, c); err != nil {
			return err
		}
		fmt.Fprintln(w, "nothing depends on the old CAs: asked the master's agent to drop them")
		return nil
	})
	if err != nil {
		return err
	}
	// From Finishing on the API server refuses the old CA's client certificates, and the
	// bundle takes the new CAs only once the master is done (minutes on a slow machine): the
	// kubeconfigs that start made trust both get the same key's certificate from the new CA now.
	user, err := adminFromNewCA(state, news[0])
	if err != nil {
		return err
	}
	if _, err := trustBothAdmin(state, news[0].Cert, user); err != nil {
		return fmt.Errorf("admin kubeconfigs with a certificate from the new CA: %w", err)
	}
	if err := carotation.WaitFor(ctx, fresh, carotation.Finished, r.timeout, func(s carotation.Status) {
		fmt.Fprintf(w, "master: stage %s: %s\n", s.Stage, s.Message)
	}); err != nil {
		return err
	}
	changed, err := pki.FinishRotation(state, cfg, timeNow())
	if err != nil {
		return fmt.Errorf("the master finished, but the bundle did not take the new CAs: %w (run finish again)", err)
	}
	fmt.Fprintf(w, "bundle %s: new CAs in place; re-issued %s (previous versions kept as <file>.<time>.old)\n", state, strings.Join(changed, ", "))
	copies, err := refreshAdminCopies(state)
	if err != nil {
		return fmt.Errorf("the bundle took the new CAs, but: %w (run finish again)", err)
	}
	for _, c := range copies {
		fmt.Fprintf(w, "%s: new CA and certificate from the bundle's admin.conf, same server\n", c)
	}
	if err := carotation.Delete(ctx, fresh); err != nil {
		return fmt.Errorf("delete secret %s/%s (it holds the CA keys): %w", carotation.Namespace, carotation.SecretName, err)
	}
	fmt.Fprintf(w, "secret %s/%s deleted\nCA rotation %s finished: render the configs again (ignition-gen --config %s) so new machines get the new CAs\n",
		carotation.Namespace, carotation.SecretName, rot.ID, r.config)
	return nil
}

// hostAdminConfs lists the copies of admin.conf that kubeup keeps beside the bundle for the
// host: <state>/qemu/admin.conf, <state>/aws/admin.conf (the same user, another server address).
func hostAdminConfs(state string) ([]string, error) {
	paths, err := filepath.Glob(filepath.Join(state, "*", "admin.conf"))
	var out []string
	for _, p := range paths {
		if !strings.HasPrefix(filepath.Base(filepath.Dir(p)), pki.RotationDir) {
			out = append(out, p)
		}
	}
	return out, err
}

// dualAdminConf is the bundle's admin.conf trusting the old and the new cluster CA, for the
// rotation: the bundle's own must keep the CA of its pki/ (ignition-gen checks that) until
// finish.
func dualAdminConf(state string) string {
	return filepath.Join(state, pki.RotationDir, "admin.conf")
}

// bundleAdmin loads the bundle's admin.conf and returns its CA data and user.
func bundleAdmin(state string) (*clientcmdapi.Config, []byte, *clientcmdapi.AuthInfo, error) {
	path := filepath.Join(state, "admin.conf")
	admin, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx := admin.Contexts[admin.CurrentContext]
	if ctx == nil || admin.Clusters[ctx.Cluster] == nil || admin.AuthInfos[ctx.AuthInfo] == nil {
		return nil, nil, nil, fmt.Errorf("%s: no current context", path)
	}
	return admin, admin.Clusters[ctx.Cluster].CertificateAuthorityData, admin.AuthInfos[ctx.AuthInfo], nil
}

// writeAdminCopy gives every cluster of kc the CA data ca and, when user is not nil, every
// user of kc user's certificate and key, keeping the servers, and writes it to path (0600,
// atomically) unless the file already holds just that. It reports whether it wrote.
func writeAdminCopy(path string, kc *clientcmdapi.Config, ca []byte, user *clientcmdapi.AuthInfo) (bool, error) {
	for _, c := range kc.Clusters {
		c.CertificateAuthorityData, c.LocationOfOrigin = ca, ""
	}
	for _, a := range kc.AuthInfos {
		if user != nil {
			a.ClientCertificateData, a.ClientKeyData = user.ClientCertificateData, user.ClientKeyData
		}
		a.LocationOfOrigin = ""
	}
	data, err := clientcmd.Write(*kc)
	if err != nil {
		return false, err
	}
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	return true, fsutil.ReplaceFile(path, data, 0o600)
}

// trustBothAdmin keeps kubectl working through the rotation: from Reissue on, the API
// server's certificate comes from the new CA, which a kubeconfig trusting the old CA alone
// refuses, while it accepts client certificates of both CAs until Finishing. start gives the
// host copies (hostAdminConfs) old + new CA data and writes the bundle's admin.conf so as a
// dual-trust twin (dualAdminConf), keeping their certificate (user nil); finish gives them
// user, a certificate from the new CA, before the master drops the old one. It returns the
// files it wrote.
func trustBothAdmin(state string, newCA []byte, user *clientcmdapi.AuthInfo) ([]string, error) {
	admin, ca, _, err := bundleAdmin(state)
	if err != nil {
		return nil, err
	}
	both := append(append([]byte{}, ca...), newCA...)
	var done []string
	if wrote, err := writeAdminCopy(dualAdminConf(state), admin, both, user); err != nil {
		return nil, err
	} else if wrote {
		done = append(done, dualAdminConf(state))
	}
	copies, err := writeHostCopies(state, both, user)
	return append(done, copies...), err
}

// writeHostCopies gives the host copies of admin.conf (hostAdminConfs) the CA data ca and, when
// user is not nil, user's certificate and key. It returns the files it wrote.
func writeHostCopies(state string, ca []byte, user *clientcmdapi.AuthInfo) ([]string, error) {
	paths, err := hostAdminConfs(state)
	if err != nil {
		return nil, err
	}
	var done []string
	for _, p := range paths {
		kc, err := clientcmd.LoadFromFile(p)
		if err != nil {
			return done, err
		}
		if wrote, err := writeAdminCopy(p, kc, ca, user); err != nil {
			return done, err
		} else if wrote {
			done = append(done, p)
		}
	}
	return done, nil
}

// adminFromNewCA is the bundle's admin user with its certificate re-issued (same key) from the
// rotation's new cluster CA, as finish will re-issue the bundle's.
func adminFromNewCA(state string, newCA pki.NewCA) (*clientcmdapi.AuthInfo, error) {
	_, ca, user, err := bundleAdmin(state)
	if err != nil {
		return nil, err
	}
	cert, err := pki.Reissue(user.ClientCertificateData, append(append([]byte{}, newCA.Cert...), ca...), newCA.Key, timeNow(), pki.LeafValidity)
	if err != nil {
		return nil, fmt.Errorf("admin.conf: a certificate from the new CA: %w", err)
	}
	fresh := *user
	fresh.ClientCertificateData = cert
	return &fresh, nil
}

// refreshAdminCopies gives the host copies of admin.conf the bundle's CA data and certificate,
// keeping their server, once the bundle took the new CAs (finish): the old ones are refused
// after a rotation. It removes the dual-trust twin: the bundle's admin.conf is the one to use
// again. A copy already up to date is not rewritten.
func refreshAdminCopies(state string) ([]string, error) {
	_, ca, user, err := bundleAdmin(state)
	if err != nil {
		return nil, err
	}
	if err := os.Remove(dualAdminConf(state)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return writeHostCopies(state, ca, user)
}
